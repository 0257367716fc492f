package webhook

import (
	"net/http"
	"os"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/controlplane"
	"k8s.io/client-go/kubernetes"
)

// shared is the one real control plane of this package's tests, started by
// the first test that needs it and stopped by TestMain.
var shared controlplane.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// controlPlane returns the package's control plane (see controlplane.Shared).
func controlPlane(t *testing.T) *controlplane.ControlPlane { return shared.Get(t) }

// testNamespace creates a namespace of the test's own, deleted when it ends.
func testNamespace(t *testing.T, kube kubernetes.Interface) string {
	return controlplane.TestNamespace(t, kube, "webhook-test")
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// clientWith returns an admin client of cp whose requests pass through
// hook, which sees each request before it goes to the real apiserver and
// may act first (count it, change the cluster in between).
func clientWith(t *testing.T, cp *controlplane.ControlPlane, hook func(*http.Request)) kubernetes.Interface {
	t.Helper()
	cfg := cp.RESTConfig()
	cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hook(r)
			return next.RoundTrip(r)
		})
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube
}

// noAPIServer is a client for code that must not call the apiserver.
func noAPIServer(t *testing.T) kubernetes.Interface { return controlplane.NoAPIServer(t) }
