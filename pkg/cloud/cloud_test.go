package cloud

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var shared controlplane.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

func TestClusterIDConfigured(t *testing.T) {
	// CLUSTER_ID set: the apiserver is not asked.
	id, err := ClusterID(context.Background(), &config.Config{ClusterID: "c-123"}, controlplane.NoAPIServer(t))
	if err != nil || id != "c-123" {
		t.Fatalf("ClusterID = %q, %v; want CLUSTER_ID c-123", id, err)
	}
}

func TestClusterIDDerived(t *testing.T) {
	kube := shared.Get(t).Clientset()
	ns, err := kube.CoreV1().Namespaces().Get(context.Background(), metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ClusterID(context.Background(), &config.Config{}, kube)
	if err != nil || id != string(ns.UID) || id == "" {
		t.Fatalf("ClusterID = %q, %v; want the kube-system namespace UID %q", id, err, ns.UID)
	}
}

func TestClusterIDUnreachable(t *testing.T) {
	unreachable := kubernetes.NewForConfigOrDie(&rest.Config{Host: "http://127.0.0.1:1"})
	_, err := ClusterID(context.Background(), &config.Config{}, unreachable)
	if err == nil || !strings.Contains(err.Error(), "CLUSTER_ID is empty") {
		t.Fatalf("ClusterID with no apiserver = %v, want an error naming CLUSTER_ID", err)
	}
}
