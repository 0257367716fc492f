package profile

import (
	"os"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
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
	return controlplane.TestNamespace(t, kube, "profile-test")
}
