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

// clientWith is cp.ClientWith, failing the test on error.
func clientWith(t *testing.T, cp *controlplane.ControlPlane, around func(r *http.Request, next http.RoundTripper) (*http.Response, error)) kubernetes.Interface {
	t.Helper()
	kube, err := cp.ClientWith(around)
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
