package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/approver"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	dto "github.com/prometheus/client_model/go"
	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestApprover runs vnode-approver in-process, under its own least-privilege
// ClusterRole, against the real control plane: TLS-bootstrap and renewal
// CSRs of virtual nodes are approved and signed by kube-controller-manager;
// forged ones are left pending.
func TestApprover(t *testing.T) {
	t.Parallel()
	// A control plane of its own: its approver decides every CSR of the cluster,
	// and it creates the approver's ClusterRole under its fixed name.
	env := testenv.Start(t, testenv.Options{})
	kube := env.Kube
	ctx := context.Background()
	const (
		bootstrapUser = "system:bootstrap:abcdef"
		renewNode     = "vn-renew"
		renewUser     = "system:vnode:" + renewNode
		mallory       = "mallory"
	)

	// RBAC: the approver's own role, and the requesters' permissions.
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, approver.ClusterRole(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	approverBind(t, kube, "vnode-approver", approver.ClusterRoleName, "vnode-approver")
	for user, roles := range map[string][]string{
		bootstrapUser: {"system:node-bootstrapper", "system:certificates.k8s.io:certificatesigningrequests:nodeclient"},
		renewUser:     {"system:node-bootstrapper", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"},
		mallory:       {"system:node-bootstrapper"},
	} {
		for _, role := range roles {
			approverBind(t, kube, "test:"+strings.ReplaceAll(user, ":", "-")+":"+role[strings.LastIndex(role, ":")+1:], role, user)
		}
	}
	clientAs := func(user string, groups ...string) kubernetes.Interface {
		cfg, err := env.ControlPlane.RESTConfigFor(user, groups)
		if err != nil {
			t.Fatal(err)
		}
		return kubernetes.NewForConfigOrDie(cfg)
	}
	bootstrap := clientAs(bootstrapUser, "system:bootstrappers")
	renewer := clientAs(renewUser, "system:vnodes")
	unprivileged := clientAs(mallory, "system:bootstrappers")

	// The approver, as its own identity, stopped when the test ends.
	ctrl, err := approver.New(approver.Options{
		Client: clientAs("vnode-approver"), Policy: approver.DefaultPolicy(), Workers: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("approver Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("approver did not stop within 10s")
		}
	})
	// A second instance in the same process must not panic on metrics.
	if _, err := approver.New(approver.Options{Client: kube, Policy: approver.DefaultPolicy()}); err != nil {
		t.Fatalf("second approver instance: %v", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vnodeSubject := func(node string) pkix.Name {
		return pkix.Name{CommonName: "system:vnode:" + node, Organization: []string{"system:vnodes"}}
	}
	clientUsages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}
	submit := func(t *testing.T, as kubernetes.Interface, name string, tmpl x509.CertificateRequest, signer string) {
		t.Helper()
		der, err := x509.CreateCertificateRequest(rand.Reader, &tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = as.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
				SignerName: signer, Usages: clientUsages,
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create CSR %s: %v", name, err)
		}
	}
	// issued waits for approval and signature and checks both.
	issued := func(t *testing.T, name, cn string) {
		t.Helper()
		var csr *certificatesv1.CertificateSigningRequest
		poll(t, "CSR "+name+" approved and issued", 30*time.Second, func(ctx context.Context) (bool, error) {
			var err error
			csr, err = kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
			return err == nil && len(csr.Status.Certificate) > 0, err
		})
		var approved bool
		for _, c := range csr.Status.Conditions {
			if c.Type == certificatesv1.CertificateApproved && c.Reason == "AutoApproved" && c.Message != "" {
				approved = true
			}
		}
		if !approved {
			t.Fatalf("no Approved/AutoApproved condition: %+v", csr.Status.Conditions)
		}
		block, _ := pem.Decode(csr.Status.Certificate)
		if block == nil {
			t.Fatalf("certificate is not PEM: %q", csr.Status.Certificate)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(env.ControlPlane.CACert())
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("certificate does not chain to the cluster CA: %v", err)
		}
		if cert.Subject.CommonName != cn {
			t.Fatalf("certificate CN %q, want %q", cert.Subject.CommonName, cn)
		}
		// The apiserver accepts it as the virtual node's identity.
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		cfg := env.ControlPlane.RESTConfig()
		cfg.CertData = csr.Status.Certificate
		cfg.KeyData = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
		review, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if u := review.Status.UserInfo; u.Username != cn || !slices.Contains(u.Groups, "system:vnodes") {
			t.Fatalf("certificate authenticates as %s %v, want %s in system:vnodes", u.Username, u.Groups, cn)
		}
		poll(t, "AutoApproved event on CSR "+name, 15*time.Second, func(ctx context.Context) (bool, error) {
			evs, err := kube.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
			if err != nil {
				return false, err
			}
			for _, e := range evs.Items {
				if e.Reason == "AutoApproved" && e.Type == "Normal" && e.InvolvedObject.Kind == "CertificateSigningRequest" {
					return true, nil
				}
			}
			return false, nil
		})
	}
	// leftAlone waits until the approver has counted the CSR's rejection,
	// then checks the CSR carries no decision (never denied either).
	leftAlone := func(t *testing.T, name, reason string, before float64) {
		t.Helper()
		poll(t, fmt.Sprintf("approver to reject CSR %s as %s", name, reason), 30*time.Second, func(context.Context) (bool, error) {
			return approverDecisions(ctrl, approver.DecisionNotApproved, reason) > before, nil
		})
		csr, err := kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(csr.Status.Conditions) > 0 || len(csr.Status.Certificate) > 0 {
			t.Fatalf("forged CSR %s was decided: %+v", name, csr.Status)
		}
	}

	t.Run("bootstrap CSR is approved and issued", func(t *testing.T) {
		submit(t, bootstrap, "vnode-vn1", x509.CertificateRequest{Subject: vnodeSubject("vn1")}, certificatesv1.KubeAPIServerClientSignerName)
		issued(t, "vnode-vn1", "system:vnode:vn1")
		if got := approverDecisions(ctrl, approver.DecisionApproved, approver.ReasonNew); got < 1 {
			t.Errorf("approved/new counter = %v", got)
		}
	})
	t.Run("renewal by the node itself is approved", func(t *testing.T) {
		submit(t, renewer, "vnode-renew", x509.CertificateRequest{Subject: vnodeSubject(renewNode)}, certificatesv1.KubeAPIServerClientSignerName)
		issued(t, "vnode-renew", renewUser)
		if got := approverDecisions(ctrl, approver.DecisionApproved, approver.ReasonRenewal); got < 1 {
			t.Errorf("approved/renewal counter = %v", got)
		}
	})
	forged := []struct {
		name, reason, signer string
		as                   kubernetes.Interface
		tmpl                 x509.CertificateRequest
	}{
		{"forged-org", approver.ReasonWrongOrg, certificatesv1.KubeAPIServerClientSignerName, bootstrap,
			x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:vnode:vn2", Organization: []string{"system:vnodes", "cluster-admins"}}}},
		{"forged-dns-san", approver.ReasonSANs, certificatesv1.KubeAPIServerClientSignerName, bootstrap,
			x509.CertificateRequest{Subject: vnodeSubject("vn2"), DNSNames: []string{"kubernetes.default.svc"}}},
		{"forged-signer", approver.ReasonWrongSigner, "example.com/vnode", bootstrap,
			x509.CertificateRequest{Subject: vnodeSubject("vn2")}},
		{"forged-no-nodeclient", approver.ReasonNotAuthorized, certificatesv1.KubeAPIServerClientSignerName, unprivileged,
			x509.CertificateRequest{Subject: vnodeSubject("vn2")}},
		// selfnodeclient covers only one's own name.
		{"forged-other-node", approver.ReasonNotAuthorized, certificatesv1.KubeAPIServerClientSignerName, renewer,
			x509.CertificateRequest{Subject: vnodeSubject("vn3")}},
	}
	for _, f := range forged {
		t.Run("not approved: "+f.name, func(t *testing.T) {
			before := approverDecisions(ctrl, approver.DecisionNotApproved, f.reason)
			submit(t, f.as, f.name, f.tmpl, f.signer)
			leftAlone(t, f.name, f.reason, before)
		})
	}
}

func approverBind(t *testing.T, kube kubernetes.Interface, name, role, user string) {
	t.Helper()
	_, err := kube.RbacV1().ClusterRoleBindings().Create(context.Background(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("bind %s to %s: %v", user, role, err)
	}
}

func approverDecisions(c *approver.Controller, decision, reason string) float64 {
	var m dto.Metric
	if err := c.Metrics().Decisions.WithLabelValues(decision, reason).Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
