package approver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

var (
	ecKey  = mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	rsaKey = mustKey(rsa.GenerateKey(rand.Reader, 2048))
	edKey  = func() crypto.Signer { _, k, err := ed25519.GenerateKey(rand.Reader); must(err); return k }()
)

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func mustKey[K crypto.Signer](k K, err error) crypto.Signer { must(err); return k }

func csrPEM(t *testing.T, key crypto.Signer, tmpl x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

var (
	good    = pkix.Name{CommonName: "system:vnode:vn1", Organization: []string{"system:vnodes"}}
	allUses = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}
	noKE    = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
)

func TestPolicyCheck(t *testing.T) {
	type mod func(*certificatesv1.CertificateSigningRequest)
	build := func(key crypto.Signer, tmpl x509.CertificateRequest, usages []certificatesv1.KeyUsage, mods ...mod) *certificatesv1.CertificateSigningRequest {
		csr := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: csrPEM(t, key, tmpl), SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages: usages, Username: "system:bootstrap:abcdef",
		}}
		for _, m := range mods {
			m(csr)
		}
		return csr
	}
	tests := []struct {
		name    string
		csr     *certificatesv1.CertificateSigningRequest
		reason  string // "" means approvable
		renewal bool
	}{
		{"ecdsa all usages", build(ecKey, x509.CertificateRequest{Subject: good}, allUses), "", false},
		{"ecdsa without key encipherment", build(ecKey, x509.CertificateRequest{Subject: good}, noKE), "", false},
		{"ed25519 without key encipherment", build(edKey, x509.CertificateRequest{Subject: good}, noKE), "", false},
		{"rsa all usages", build(rsaKey, x509.CertificateRequest{Subject: good}, allUses), "", false},
		{"usages reordered and duplicated", build(ecKey, x509.CertificateRequest{Subject: good},
			[]certificatesv1.KeyUsage{"client auth", "key encipherment", "digital signature", "client auth"}), "", false},
		{"renewal: requester is the CN", build(ecKey, x509.CertificateRequest{Subject: good}, allUses,
			func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Username = "system:vnode:vn1" }), "", true},
		{"rsa without key encipherment", build(rsaKey, x509.CertificateRequest{Subject: good}, noKE), ReasonWrongUsages, false},
		{"server auth usage", build(ecKey, x509.CertificateRequest{Subject: good},
			append(append([]certificatesv1.KeyUsage{}, allUses...), certificatesv1.UsageServerAuth)), ReasonWrongUsages, false},
		{"missing client auth", build(ecKey, x509.CertificateRequest{Subject: good},
			[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment}), ReasonWrongUsages, false},
		{"kubelet signer", build(ecKey, x509.CertificateRequest{Subject: good}, allUses,
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.SignerName = certificatesv1.KubeAPIServerClientKubeletSignerName
			}), ReasonWrongSigner, false},
		{"custom signer", build(ecKey, x509.CertificateRequest{Subject: good}, allUses,
			func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com/vnode" }), ReasonWrongSigner, false},
		{"wrong organization", build(ecKey, x509.CertificateRequest{Subject: pkix.Name{CommonName: good.CommonName, Organization: []string{"system:nodes"}}}, allUses), ReasonWrongOrg, false},
		{"extra organization", build(ecKey, x509.CertificateRequest{Subject: pkix.Name{CommonName: good.CommonName, Organization: []string{"system:vnodes", "system:masters"}}}, allUses), ReasonWrongOrg, false},
		{"no organization", build(ecKey, x509.CertificateRequest{Subject: pkix.Name{CommonName: good.CommonName}}, allUses), ReasonWrongOrg, false},
		{"kubelet common name", build(ecKey, x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:vn1", Organization: good.Organization}}, allUses), ReasonWrongCommonName, false},
		{"prefix without node name", build(ecKey, x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:vnode:", Organization: good.Organization}}, allUses), ReasonWrongCommonName, false},
		{"prefix without colon", build(ecKey, x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:vnodes", Organization: good.Organization}}, allUses), ReasonWrongCommonName, false},
		{"DNS SAN", build(ecKey, x509.CertificateRequest{Subject: good, DNSNames: []string{"kubernetes.default"}}, allUses), ReasonSANs, false},
		{"IP SAN", build(ecKey, x509.CertificateRequest{Subject: good, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}}, allUses), ReasonSANs, false},
		{"email SAN", build(ecKey, x509.CertificateRequest{Subject: good, EmailAddresses: []string{"a@b.c"}}, allUses), ReasonSANs, false},
		{"URI SAN", build(ecKey, x509.CertificateRequest{Subject: good, URIs: []*url.URL{{Scheme: "spiffe", Host: "x"}}}, allUses), ReasonSANs, false},
		{"not PEM", build(ecKey, x509.CertificateRequest{Subject: good}, allUses,
			func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = []byte("garbage") }), ReasonBadRequest, false},
		{"two PEM blocks", build(ecKey, x509.CertificateRequest{Subject: good}, allUses,
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.Request = append(c.Spec.Request, c.Spec.Request...)
			}), ReasonBadRequest, false},
		{"wrong PEM type", build(ecKey, x509.CertificateRequest{Subject: good}, allUses, func(c *certificatesv1.CertificateSigningRequest) {
			b, _ := pem.Decode(c.Spec.Request)
			c.Spec.Request = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})
		}), ReasonBadRequest, false},
		{"already approved", build(ecKey, x509.CertificateRequest{Subject: good}, allUses, func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
		}), ReasonAlreadyDecided, false},
		{"already denied", build(ecKey, x509.CertificateRequest{Subject: good}, allUses, func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue}}
		}), ReasonAlreadyDecided, false},
		{"already issued", build(ecKey, x509.CertificateRequest{Subject: good}, allUses,
			func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("x") }), ReasonAlreadyDecided, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DefaultPolicy().Check(tt.csr)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("want approvable, got %v", err)
				}
				if req.NodeName != "vn1" || req.CommonName != "system:vnode:vn1" || req.Renewal != tt.renewal {
					t.Fatalf("request = %+v, want node vn1 renewal=%v", req, tt.renewal)
				}
				want := map[bool]string{false: "nodeclient", true: "selfnodeclient"}[tt.renewal]
				if req.Subresource() != want {
					t.Errorf("subresource %q, want %q", req.Subresource(), want)
				}
				return
			}
			rej, ok := errors.AsType[*Rejection](err)
			if !ok {
				t.Fatalf("want rejection %s, got %v", tt.reason, err)
			}
			if rej.Reason != tt.reason {
				t.Fatalf("reason %q (%s), want %q", rej.Reason, rej.Detail, tt.reason)
			}
		})
	}
}

func TestCustomPolicy(t *testing.T) {
	p := Policy{Organization: "acme:vnodes", CNPrefix: "acme:vnode:"}
	csr := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
		Request:    csrPEM(t, ecKey, x509.CertificateRequest{Subject: pkix.Name{CommonName: "acme:vnode:x", Organization: []string{"acme:vnodes"}}}),
		SignerName: certificatesv1.KubeAPIServerClientSignerName, Usages: noKE,
	}}
	if _, err := p.Check(csr); err != nil {
		t.Fatalf("custom policy: %v", err)
	}
	if _, err := DefaultPolicy().Check(csr); err == nil {
		t.Fatal("default policy accepted a custom-policy CSR")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	base, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if got := base.Policy(); got != DefaultPolicy() {
		t.Fatalf("default policy %+v", got)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		env  string
	}{
		{"metrics address", func(c *Config) { c.MetricsAddr = "8080" }, "APPROVER_METRICS_ADDR"},
		{"empty organization", func(c *Config) { c.Organization = " " }, "APPROVER_ORGANIZATION"},
		{"masters organization", func(c *Config) { c.Organization = "system:masters" }, "APPROVER_ORGANIZATION"},
		{"empty prefix", func(c *Config) { c.CNPrefix = "" }, "APPROVER_CN_PREFIX"},
		{"prefix without colon", func(c *Config) { c.CNPrefix = "system:vnode" }, "APPROVER_CN_PREFIX"},
		{"kubelet prefix", func(c *Config) { c.CNPrefix = "system:node:" }, "APPROVER_CN_PREFIX"},
		{"workers", func(c *Config) { c.Workers = 0 }, "APPROVER_WORKERS"},
		{"resync", func(c *Config) { c.ResyncInterval = -1 }, "APPROVER_RESYNC_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *base
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.env) {
				t.Fatalf("error %v does not name %s", err, tt.env)
			}
		})
	}
	t.Run("bad environment value names the variable", func(t *testing.T) {
		t.Setenv("APPROVER_WORKERS", "many")
		if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "APPROVER_WORKERS") {
			t.Fatalf("error %v does not name APPROVER_WORKERS", err)
		}
	})
}

func TestMetricsPerInstance(t *testing.T) {
	for range 2 {
		if _, err := NewMetrics(prometheus.NewRegistry()); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering twice in one registry should fail, not panic")
	}
}
