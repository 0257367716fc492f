package provider

import (
	"context"
	"os"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// shared is the one real control plane of this package's tests that need
// an apiserver, started by the first of them and stopped by TestMain.
var shared controlplane.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// registerNode makes sure the Node name exists in the apiserver of kube,
// as the virtual node registers itself before pods are bound to it. Tests
// that create pods bound to a node need it: the kube-controller-manager's
// pod garbage collector deletes the pods of a node that does not exist
// (40 s after it first sees the node missing, then at every pass, every
// 20 s), and the provider then rightly deletes their groups as orphans.
// The Node is shared by every test of the package and never deleted; it
// posts no status, so the node lifecycle controller marks it unreachable
// after a minute, but evicts its pods only once their default toleration
// (300 s) has run out, far beyond any test.
func registerNode(t testing.TB, kube kubernetes.Interface, name string) {
	t.Helper()
	_, err := kube.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("register node %s: %v", name, err)
	}
}
