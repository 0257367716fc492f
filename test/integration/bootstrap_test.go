package integration

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/approver"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/bootstrap"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/virtualnode"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestTLSBootstrap: from the kubeconfig `vnodectl kubeconfig --mode
// bootstrap` makes, pkg/bootstrap gets a certificate approved by
// vnode-approver and signed by kube-controller-manager (3-minute
// certificates here), a restart with the same directory reuses it without
// a new CSR, and the certificate is renewed (as selfnodeclient) before it
// expires. A real virtual node runs on the bootstrapped identity (RBAC
// from vnodectl only), goes Ready, and through the rotation and past the
// first certificate's expiry its Lease never lapses and it stays Ready.
func TestTLSBootstrap(t *testing.T) {
	t.Parallel()
	// A control plane of its own: a short --cluster-signing-duration (a flag
	// of the controller-manager) and an approver that decides every CSR.
	//
	// Why 3 minutes: the signer backdates NotBefore by 5 minutes, and
	// client-go's certificate manager rotates at 70-84% of NotAfter-NotBefore.
	// With 2-minute certificates that deadline falls between 6 s before and
	// 53 s after issue, so about one restart in ten rotated at once (CI,
	// stop 18: the renewal came before the test looked). With 3 minutes it
	// falls 36-103 s after issue: the restart always sees the first
	// certificate, and the renewal is always one the test watches.
	env := testenv.Start(t, testenv.Options{ControlPlane: controlplane.Options{ClusterSigningDuration: 3 * time.Minute}})
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
	ctrl := startApprover(t, cp)

	csrCount := func() int {
		t.Helper()
		l, err := kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	whoami := func(c kubernetes.Interface) (authenticationv1.UserInfo, error) {
		r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return authenticationv1.UserInfo{}, err
		}
		return r.Status.UserInfo, nil
	}
	certDir := filepath.Join(dir, "certs")
	opts := bootstrap.Options{BootstrapKubeconfig: bootKC, CertDir: certDir, NodeName: "vn-tls", WaitTimeout: time.Minute}

	// First start: bootstraps.
	ctx1, cancel1 := context.WithCancel(ctx)
	first, err := bootstrap.ClientConfig(ctx1, opts)
	if err != nil {
		cancel1()
		t.Fatal(err)
	}
	u, err := whoami(kubernetes.NewForConfigOrDie(first.Config))
	if err != nil || u.Username != "system:vnode:vn-tls" || !slices.Contains(u.Groups, "system:vnodes") {
		cancel1()
		t.Fatalf("bootstrapped identity %+v, %v", u, err)
	}
	serial := first.Manager.Current().Leaf.SerialNumber
	cancel1()
	first.Manager.Stop()
	afterFirst := csrCount()
	if afterFirst != 1 {
		t.Errorf("%d CSRs after bootstrapping, want 1", afterFirst)
	}

	// Restart with the same directory: no new CSR, same certificate.
	renewalsBefore := approverDecisions(ctrl, approver.DecisionApproved, approver.ReasonRenewal)
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	second, err := bootstrap.ClientConfig(ctx2, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Manager.Stop()
	old := second.Manager.Current().Leaf
	if old.SerialNumber.Cmp(serial) != 0 || csrCount() != afterFirst {
		t.Fatalf("restart bootstrapped again: serial %v (was %v), %d CSRs", old.SerialNumber, serial, csrCount())
	}
	client := kubernetes.NewForConfigOrDie(second.Config)
	if _, err := whoami(client); err != nil {
		t.Fatal(err)
	}

	// The virtual node on that identity (what the lead wires with
	// TLS bootstrapping enabled).
	const node = "vn-tls"
	nodeCfg := env.NodeConfig(t, node)
	nodeCtx, stopNode := context.WithCancel(ctx)
	ready, nodeDone := make(chan struct{}), make(chan error, 1)
	go func() {
		nodeDone <- virtualnode.Run(nodeCtx, virtualnode.Options{Config: nodeCfg, RESTConfig: rest.CopyConfig(second.Config), Credential: env.Credential, Ready: ready})
	}()
	t.Cleanup(func() {
		stopNode()
		select {
		case err := <-nodeDone:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("virtual node: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("virtual node did not stop within 30s")
		}
	})
	select {
	case <-ready:
	case err := <-nodeDone:
		t.Fatalf("virtual node on the bootstrapped certificate exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("virtual node on the bootstrapped certificate not Ready within 60s")
	}
	// Watch the node's Lease and Ready condition (as admin) from now on.
	type sample struct {
		renew    time.Time
		ready    bool
		duration time.Duration
	}
	samples := make(chan sample, 1000)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-tk.C:
			}
			l, err1 := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(watchCtx, node, metav1.GetOptions{})
			n, err2 := kube.CoreV1().Nodes().Get(watchCtx, node, metav1.GetOptions{})
			if err1 != nil || err2 != nil || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
				continue
			}
			s := sample{renew: l.Spec.RenewTime.Time, duration: time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second, ready: testutil.NodeReady(n)}
			select {
			case samples <- s:
			default:
			}
		}
	}()

	// Rotation: a new certificate before the old one expires, requested
	// with the old one (a renewal), and the same client keeps working once
	// the old certificate has expired.
	poll(t, "certificate renewed", old.NotAfter.Sub(time.Now())+30*time.Second, func(context.Context) (bool, error) {
		return second.Manager.Current().Leaf.SerialNumber.Cmp(old.SerialNumber) != 0, nil
	})
	if renewed := second.Manager.Current().Leaf; !renewed.NotAfter.After(old.NotAfter) || time.Now().After(old.NotAfter) {
		t.Errorf("renewed certificate expires %s (old %s), renewed at %s: not before the old one expired", renewed.NotAfter, old.NotAfter, time.Now())
	}
	if got := approverDecisions(ctrl, approver.DecisionApproved, approver.ReasonRenewal); got <= renewalsBefore {
		t.Errorf("renewal not approved as selfnodeclient (renewal counter %v -> %v)", renewalsBefore, got)
	}
	// Wait past the old certificate's expiry; requests must still succeed.
	poll(t, "old certificate expired", time.Until(old.NotAfter)+10*time.Second, func(context.Context) (bool, error) {
		return time.Now().After(old.NotAfter.Add(2 * time.Second)), nil
	})
	u, err = whoami(client)
	if err != nil || u.Username != "system:vnode:vn-tls" {
		t.Fatalf("client after the old certificate expired: %+v, %v", u, err)
	}
	// The node renews its Lease after the old certificate expired, so it
	// uses the new one.
	poll(t, "node Lease renewed after the first certificate expired", time.Minute, func(ctx context.Context) (bool, error) {
		l, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node, metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(old.NotAfter), err
	})
	stopWatch()
	<-watchDone
	close(samples)
	var prev time.Time
	n := 0
	for s := range samples {
		n++
		if !s.ready {
			t.Errorf("node %s not Ready at a sample during rotation (lease renewed %s)", node, s.renew)
		}
		if !prev.IsZero() && s.renew.Sub(prev) > s.duration {
			t.Errorf("Lease gap %s > lease duration %s (renewals %s -> %s): the node lost its identity", s.renew.Sub(prev), s.duration, prev, s.renew)
		}
		prev = s.renew
	}
	if n < 30 {
		t.Errorf("only %d Lease samples during rotation", n)
	}
}

// startApprover runs vnode-approver in-process under its least-privilege
// ClusterRole until the test ends.
func startApprover(t *testing.T, cp *controlplane.ControlPlane) *approver.Controller {
	t.Helper()
	kube := cp.Clientset()
	if _, err := kube.RbacV1().ClusterRoles().Create(context.Background(), approver.ClusterRole(), metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	approverBind(t, kube, "vnode-approver", approver.ClusterRoleName, "vnode-approver")
	cfg, err := cp.RESTConfigFor("vnode-approver", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := approver.New(approver.Options{Client: kubernetes.NewForConfigOrDie(cfg), Policy: approver.DefaultPolicy(), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("approver: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("approver did not stop within 10s")
		}
	})
	return ctrl
}
