package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// fakeClock is an injectable clock tests move forward.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const day = 24 * time.Hour

// newTestCerts returns a manager of the Secret "cert" in namespace ns.
func newTestCerts(t *testing.T, kube kubernetes.Interface, ns string, clock *fakeClock, hosts ...string) *CertManager {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"svc", "svc.ns.svc", "127.0.0.1"}
	}
	m, err := NewCertManager(CertOptions{
		Kube: kube, Namespace: ns, SecretName: "cert", Hosts: hosts,
		CAValidity: 365 * day, CertValidity: 90 * day, RenewBefore: 30 * day, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func servingLeaf(t *testing.T, m *CertManager) *x509.Certificate {
	t.Helper()
	c, err := m.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func secretData(t *testing.T, kube kubernetes.Interface, ns string) map[string][]byte {
	t.Helper()
	s, err := kube.CoreV1().Secrets(ns).Get(context.Background(), "cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Data
}

func TestCertManager(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	kube := controlPlane(t).Clientset()
	ns := testNamespace(t, kube)
	m := newTestCerts(t, kube, ns, clock)
	if _, err := m.GetCertificate(nil); err == nil {
		t.Error("certificate served before Ensure")
	}

	// Creates.
	changed, err := m.Ensure(ctx)
	if err != nil || !changed {
		t.Fatalf("first Ensure: changed %v, %v", changed, err)
	}
	leaf := servingLeaf(t, m)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(m.CABundle()) {
		t.Fatal("CA bundle has no certificate")
	}
	for _, h := range []string{"svc", "svc.ns.svc", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, CurrentTime: clock.Now()}); err != nil {
			t.Errorf("serving certificate not valid for %s: %v", h, err)
		}
	}
	if got := leaf.NotAfter.Sub(clock.Now()); got < 89*day || got > 90*day {
		t.Errorf("serving certificate lifetime %s", got)
	}
	first := secretData(t, kube, ns)

	// Reuses: a second manager (another replica, or a restart) adopts it.
	m2 := newTestCerts(t, kube, ns, clock)
	if _, err := m2.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if servingLeaf(t, m2).SerialNumber.Cmp(leaf.SerialNumber) != 0 || string(m2.CABundle()) != string(m.CABundle()) {
		t.Error("second manager did not reuse the stored certificate")
	}
	clock.Advance(59 * day)
	if changed, err := m.Ensure(ctx); err != nil || changed {
		t.Fatalf("Ensure with 31 days left: changed %v, %v", changed, err)
	}
	if servingLeaf(t, m).SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Error("renewed with more than 30 days left")
	}

	// Renews the serving certificate near expiry, keeping the CA so the
	// webhook configuration's caBundle does not change.
	clock.Advance(2 * day)
	changed, err = m.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if changed {
		t.Error("caBundle changed for a serving-certificate renewal")
	}
	renewed := servingLeaf(t, m)
	if renewed.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("serving certificate not renewed with 29 days left")
	}
	if _, err := renewed.Verify(x509.VerifyOptions{DNSName: "svc", Roots: roots, CurrentTime: clock.Now()}); err != nil {
		t.Errorf("renewed certificate not trusted by the old bundle: %v", err)
	}
	if string(secretData(t, kube, ns)[SecretKeyCABundle]) != string(first[SecretKeyCABundle]) {
		t.Error("CA replaced for a serving-certificate renewal")
	}
	// The other replica picks the renewal up at its next Ensure.
	if _, err := m2.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if servingLeaf(t, m2).SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Error("other replica did not adopt the renewed certificate")
	}

	// Renews the CA near its expiry; the old CA stays in the bundle so
	// replicas still serving the old certificate stay trusted.
	clock.Advance(280 * day) // day 341: the CA has 24 days left
	changed, err = m.Ensure(ctx)
	if err != nil || !changed {
		t.Fatalf("CA renewal: changed %v, %v", changed, err)
	}
	bundle, err := parseCerts(m.CABundle())
	if err != nil {
		t.Fatal(err)
	}
	if len(bundle) != 2 {
		t.Fatalf("bundle has %d CAs, want new + old", len(bundle))
	}
	newRoots := x509.NewCertPool()
	newRoots.AppendCertsFromPEM(m.CABundle())
	if _, err := servingLeaf(t, m).Verify(x509.VerifyOptions{DNSName: "svc", Roots: newRoots, CurrentTime: clock.Now()}); err != nil {
		t.Errorf("new certificate not trusted: %v", err)
	}
	// Once the old CA has expired it leaves the bundle at the next renewal
	// (day 402: the serving certificate of day 341 has 29 days left).
	clock.Advance(61 * day)
	if changed, err := m.Ensure(ctx); err != nil || !changed {
		t.Fatalf("renewal after the old CA expired: changed %v, %v", changed, err)
	}
	if bundle, _ := parseCerts(m.CABundle()); len(bundle) != 1 {
		t.Errorf("expired CA kept: %d CAs", len(bundle))
	}
}

func TestCertManagerRepairs(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	cp := controlPlane(t)
	kube := cp.Clientset()
	tests := []struct {
		name    string
		breakIt func(data map[string][]byte)
		newCA   bool
	}{
		{name: "garbage", breakIt: func(d map[string][]byte) {
			for k := range d {
				d[k] = []byte("garbage")
			}
		}, newCA: true},
		// The apiserver refuses a kubernetes.io/tls Secret without the
		// tls.crt key, so a broken serving pair is an emptied one.
		{name: "missing serving pair", breakIt: func(d map[string][]byte) { d[SecretKeyCert] = []byte{} }},
		{name: "CA key of another CA", breakIt: func(d map[string][]byte) {
			d[SecretKeyCAKey] = newTestCertsData(t, kube, clock)[SecretKeyCAKey]
		}, newCA: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := testNamespace(t, kube)
			m := newTestCerts(t, kube, ns, clock)
			if _, err := m.Ensure(ctx); err != nil {
				t.Fatal(err)
			}
			oldBundle := m.CABundle()
			sec, err := kube.CoreV1().Secrets(ns).Get(ctx, "cert", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tt.breakIt(sec.Data)
			if _, err := kube.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			m2 := newTestCerts(t, kube, ns, clock)
			if _, err := m2.Ensure(ctx); err != nil {
				t.Fatalf("Ensure on a broken Secret: %v", err)
			}
			if got := string(m2.CABundle()) != string(oldBundle); got != tt.newCA {
				t.Errorf("new CA = %v, want %v", got, tt.newCA)
			}
			if why := m2.check(secretData(t, kube, ns)); why != "" {
				t.Errorf("repaired Secret still bad: %s", why)
			}
		})
	}

	t.Run("new host names re-issue the serving certificate", func(t *testing.T) {
		ns := testNamespace(t, kube)
		m := newTestCerts(t, kube, ns, clock, "a.ns.svc")
		if _, err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		m2 := newTestCerts(t, kube, ns, clock, "b.ns.svc")
		if _, err := m2.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if err := servingLeaf(t, m2).VerifyHostname("b.ns.svc"); err != nil {
			t.Error(err)
		}
	})

	t.Run("a Secret created by another replica meanwhile is adopted", func(t *testing.T) {
		stored := newTestCertsData(t, kube, clock)
		// This replica finds no Secret, then loses the race to create one:
		// the other replica's Secret is created for real between its read
		// and its create, which the apiserver then refuses.
		ns := testNamespace(t, kube)
		var raced atomic.Bool
		racing := clientWith(t, cp, func(r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/"+ns+"/secrets" && raced.CompareAndSwap(false, true) {
				_, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: "cert", Namespace: ns},
					Type:       corev1.SecretTypeTLS,
					Data:       stored,
				}, metav1.CreateOptions{})
				if err != nil {
					t.Errorf("other replica's create: %v", err)
				}
			}
		})
		m := newTestCerts(t, racing, ns, clock)
		if _, err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if !raced.Load() {
			t.Fatal("the manager never tried to create the Secret")
		}
		if string(m.CABundle()) != string(stored[SecretKeyCABundle]) {
			t.Error("did not adopt the Secret the other replica created")
		}
	})
}

// newTestCertsData returns the Secret data of a fresh manager, in a
// namespace of its own.
func newTestCertsData(t *testing.T, kube kubernetes.Interface, clock *fakeClock) map[string][]byte {
	t.Helper()
	ns := testNamespace(t, kube)
	m := newTestCerts(t, kube, ns, clock)
	if _, err := m.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return secretData(t, kube, ns)
}

func TestNewCertManagerValidates(t *testing.T) {
	// Validation happens before any API call.
	kube := noAPIServer(t)
	for name, o := range map[string]CertOptions{
		"no client":            {Namespace: "ns", SecretName: "s", Hosts: []string{"h"}, CAValidity: 3, CertValidity: 2, RenewBefore: 1},
		"no hosts":             {Kube: kube, Namespace: "ns", SecretName: "s", CAValidity: 3, CertValidity: 2, RenewBefore: 1},
		"renew >= validity":    {Kube: kube, Namespace: "ns", SecretName: "s", Hosts: []string{"h"}, CAValidity: 3, CertValidity: 2, RenewBefore: 2},
		"CA shorter than cert": {Kube: kube, Namespace: "ns", SecretName: "s", Hosts: []string{"h"}, CAValidity: 1, CertValidity: 2, RenewBefore: 1},
	} {
		if _, err := NewCertManager(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
