package approver

import (
	"net/http"
	"os"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// shared is the one real control plane of this package's tests, started by
// the first test that needs it and stopped by TestMain.
var shared controlplane.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// controlPlane returns the package's control plane (see controlplane.Shared).
func controlPlane(t *testing.T) *controlplane.ControlPlane { return shared.Get(t) }

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// clientWith returns an admin client of cp whose requests pass through
// around, which may act before and after handing a request to next, the
// transport to the real apiserver (count it, change the cluster in between,
// hold the response back).
func clientWith(t *testing.T, cp *controlplane.ControlPlane, around func(r *http.Request, next http.RoundTripper) (*http.Response, error)) kubernetes.Interface {
	t.Helper()
	cfg := cp.RESTConfig()
	cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { return around(r, next) })
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube
}

// clientsetFor returns a client of cfg.
func clientsetFor(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube
}
