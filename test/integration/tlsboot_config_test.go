package integration

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/bootstrap"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTLSBootstrapEnabled runs the virtual node the way a self-managed
// cluster configures it: TLS_BOOTSTRAP_ENABLED with KUBECONFIG set to the
// bootstrap kubeconfig from `vnodectl kubeconfig --mode bootstrap`. The node
// must get its certificate through vnode-approver, go Ready on it, and
// keep it in VNODE_CERT_DIR so a restart asks for no second one.
func TestTLSBootstrapEnabled(t *testing.T) {
	t.Parallel()
	// A control plane of its own: it lists every CSR of the cluster and runs an
	// approver that decides them all.
	env := testenv.Start(t, testenv.Options{})
	cp := env.ControlPlane
	kube := cp.Clientset()
	ctx := context.Background()
	dir := t.TempDir()

	admin, err := nodeaccess.LoadAdmin(cp.Kubeconfig(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	bootKC := filepath.Join(dir, "vnode-config")
	if _, err := nodeaccess.Generate(ctx, admin, nodeaccess.Options{Mode: nodeaccess.ModeBootstrap, Output: bootKC}); err != nil {
		t.Fatal(err)
	}
	startApprover(t, cp)

	cfg := env.NodeConfig(t, "vn-tls-env")
	cfg.Kubeconfig = bootKC
	cfg.TLSBootstrap = true
	cfg.CertDir = filepath.Join(dir, "pki")
	cfg.PodName = "vn-tls-env-replica"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env.StartNode(t, cfg) // returns once the node is Ready

	csrs, err := kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issued := 0
	for _, c := range csrs.Items {
		approved := false
		for _, cond := range c.Status.Conditions {
			approved = approved || cond.Type == certificatesv1.CertificateApproved
		}
		if !approved || len(c.Status.Certificate) == 0 {
			continue
		}
		block, _ := pem.Decode(c.Status.Certificate)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName == "system:vnode:"+cfg.PodName {
			issued++
		}
	}
	if issued != 1 {
		t.Errorf("%d approved and issued CSRs for system:vnode:%s, want 1", issued, cfg.PodName)
	}
	if _, err := os.Stat(filepath.Join(cfg.CertDir, bootstrap.PairName+"-current.pem")); err != nil {
		t.Errorf("certificate not kept in VNODE_CERT_DIR: %v", err)
	}
	if n, err := kube.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{}); err != nil || n.Labels["type"] != "virtual-kubelet" {
		t.Errorf("node %s: %v", cfg.NodeName, err)
	}

	// A pod runs through the bootstrapped identity.
	tpl := onVirtualNode("", nil, corev1.RestartPolicyAlways)
	tpl.Spec.NodeSelector = map[string]string{corev1.LabelHostname: cfg.NodeName}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "tls-boot-pod", Namespace: "default"}, Spec: tpl.Spec}
	if _, err := kube.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Pods("default").Delete(context.Background(), pod.Name, metav1.DeleteOptions{})
	})
	poll(t, "pod Running on the bootstrapped node", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
}
