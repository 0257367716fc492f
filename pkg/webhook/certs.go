package webhook

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Data keys of the certificate Secret. tls.crt/tls.key make it a regular
// kubernetes.io/tls Secret; ca.crt is the bundle the apiserver trusts.
const (
	// SecretKeyCABundle holds the current CA first, then older CAs still
	// valid; it is the caBundle of the webhook configuration.
	SecretKeyCABundle = "ca.crt"
	// SecretKeyCAKey holds the current CA's private key.
	SecretKeyCAKey = "ca.key"
	// SecretKeyCert holds the serving certificate.
	SecretKeyCert = corev1.TLSCertKey
	// SecretKeyKey holds the serving key.
	SecretKeyKey = corev1.TLSPrivateKeyKey
)

// managedByLabel marks the objects this process writes.
const managedByLabel = "app.kubernetes.io/managed-by"

// component is the name of the webhook in labels, events and certificates.
const component = "virtual-node-affinity-admission-controller"

// CertOptions configure a CertManager.
type CertOptions struct {
	// Kube reads and writes the Secret.
	Kube kubernetes.Interface
	// Namespace is the namespace of the Secret.
	Namespace string
	// SecretName is the name of the Secret.
	SecretName string
	// Hosts are the DNS names and IP addresses of the serving certificate.
	Hosts []string
	// CAValidity is the lifetime of a new CA.
	CAValidity time.Duration
	// CertValidity is the lifetime of a new serving certificate.
	CertValidity time.Duration
	// RenewBefore renews the CA or the certificate when it expires sooner.
	RenewBefore time.Duration
	// Now is the clock; nil means time.Now. Tests move it forward to
	// exercise renewal.
	Now func() time.Time
}

// CertManager keeps a CA and a serving certificate in a Secret and serves
// the certificate through GetCertificate. The Secret is the source of truth
// shared by every replica: whoever finds it missing or near expiry writes a
// new version with an optimistic-concurrency update, and the others adopt
// it at their next Ensure; no leader election is needed.
//
// When the CA itself is renewed, the old CA stays in the bundle until it
// expires, so the apiserver keeps trusting replicas that still serve a
// certificate of the old CA until they reload.
type CertManager struct {
	opts CertOptions

	mu       sync.Mutex // serialises Ensure
	cert     atomic.Pointer[tls.Certificate]
	caBundle atomic.Pointer[[]byte]
}

// NewCertManager validates opts and returns a manager with no certificate
// loaded yet; call Ensure before serving.
func NewCertManager(opts CertOptions) (*CertManager, error) {
	switch {
	case opts.Kube == nil:
		return nil, errors.New("cert manager: no Kubernetes client")
	case opts.Namespace == "" || opts.SecretName == "":
		return nil, errors.New("cert manager: Secret namespace and name are required")
	case len(opts.Hosts) == 0:
		return nil, errors.New("cert manager: no host names for the serving certificate")
	case opts.RenewBefore <= 0 || opts.CertValidity <= opts.RenewBefore || opts.CAValidity < opts.CertValidity:
		return nil, fmt.Errorf("cert manager: need 0 < renewBefore (%s) < certValidity (%s) <= caValidity (%s)",
			opts.RenewBefore, opts.CertValidity, opts.CAValidity)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &CertManager{opts: opts}, nil
}

// GetCertificate returns the serving certificate currently loaded; it is
// tls.Config.GetCertificate, so a renewed certificate is served to the next
// handshake without a restart.
func (m *CertManager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := m.cert.Load()
	if c == nil {
		return nil, errors.New("serving certificate not loaded yet")
	}
	return c, nil
}

// CABundle returns the PEM bundle of CAs the apiserver must trust (nil
// before the first successful Ensure).
func (m *CertManager) CABundle() []byte {
	if b := m.caBundle.Load(); b != nil {
		return bytes.Clone(*b)
	}
	return nil
}

// NotAfter returns the expiry of the loaded serving certificate.
func (m *CertManager) NotAfter() time.Time {
	if c := m.cert.Load(); c != nil && c.Leaf != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}

// Ensure makes the Secret hold a CA and a serving certificate for Hosts
// that stay valid for longer than RenewBefore, creating or renewing what is
// missing, broken or near expiry, and loads the result. It returns whether
// the CA bundle changed in memory (the webhook configuration then needs the
// new caBundle).
func (m *CertManager) Ensure(ctx context.Context) (bundleChanged bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	secrets := m.opts.Kube.CoreV1().Secrets(m.opts.Namespace)
	ref := klog.KRef(m.opts.Namespace, m.opts.SecretName)
	// A few rounds: another replica may create or renew the Secret between
	// our read and our write; we then adopt its version.
	for attempt := 0; attempt < 5; attempt++ {
		sec, err := secrets.Get(ctx, m.opts.SecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			data, err := m.renew(nil, "no Secret")
			if err != nil {
				return false, err
			}
			sec = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: m.opts.SecretName, Namespace: m.opts.Namespace,
					Labels: map[string]string{managedByLabel: component}},
				Type: corev1.SecretTypeTLS,
				Data: data,
			}
			created, err := secrets.Create(ctx, sec, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("create certificate Secret %s: %w", ref, err)
			}
			klog.InfoS("created webhook CA and serving certificate", "secret", ref, "hosts", m.opts.Hosts)
			return m.load(created.Data)
		}
		if err != nil {
			return false, fmt.Errorf("read certificate Secret %s: %w", ref, err)
		}
		why := m.check(sec.Data)
		if why == "" {
			return m.load(sec.Data)
		}
		data, err := m.renew(sec.Data, why)
		if err != nil {
			return false, err
		}
		upd := sec.DeepCopy()
		upd.Data = data
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		upd.Labels[managedByLabel] = component
		// The update carries the resourceVersion we read: a concurrent
		// renewal makes it fail with a conflict instead of overwriting.
		updated, err := secrets.Update(ctx, upd, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("renew certificate Secret %s: %w", ref, err)
		}
		klog.InfoS("renewed webhook certificate", "secret", ref, "reason", why)
		return m.load(updated.Data)
	}
	return false, fmt.Errorf("certificate Secret %s keeps changing under us; retry later", ref)
}

// material is the parsed content of the Secret.
type material struct {
	ca     *x509.Certificate
	caKey  crypto.Signer
	bundle []*x509.Certificate
	leaf   *x509.Certificate
	pair   *tls.Certificate
}

func parseMaterial(data map[string][]byte) (material, error) {
	var m material
	bundle, err := parseCerts(data[SecretKeyCABundle])
	if err != nil || len(bundle) == 0 {
		return m, fmt.Errorf("%s has no certificate", SecretKeyCABundle)
	}
	m.bundle, m.ca = bundle, bundle[0]
	key, err := parseKey(data[SecretKeyCAKey])
	if err != nil {
		return m, fmt.Errorf("%s: %w", SecretKeyCAKey, err)
	}
	if !publicKeysEqual(m.ca.PublicKey, key.Public()) || !m.ca.IsCA {
		return m, fmt.Errorf("%s does not belong to the first CA of %s", SecretKeyCAKey, SecretKeyCABundle)
	}
	m.caKey = key
	pair, err := tls.X509KeyPair(data[SecretKeyCert], data[SecretKeyKey])
	if err != nil {
		return m, fmt.Errorf("serving pair: %w", err)
	}
	m.pair, m.leaf = &pair, pair.Leaf
	return m, nil
}

// check returns why the Secret needs a write, or "" when it is fine.
func (m *CertManager) check(data map[string][]byte) string {
	mat, err := parseMaterial(data)
	if err != nil {
		return "unusable: " + err.Error()
	}
	now := m.opts.Now()
	switch {
	case mat.ca.NotAfter.Sub(now) < m.opts.RenewBefore:
		return "CA expires " + mat.ca.NotAfter.UTC().Format(time.RFC3339)
	case mat.leaf.NotAfter.Sub(now) < m.opts.RenewBefore:
		return "serving certificate expires " + mat.leaf.NotAfter.UTC().Format(time.RFC3339)
	case mat.leaf.CheckSignatureFrom(mat.ca) != nil:
		return "serving certificate not signed by the current CA"
	}
	for _, h := range m.opts.Hosts {
		if mat.leaf.VerifyHostname(h) != nil {
			return "serving certificate not valid for " + h
		}
	}
	return ""
}

// renew returns new Secret data: the old CA is kept when it is usable and
// not near expiry (so the caBundle, and with it the webhook configuration,
// does not change for a routine serving-certificate renewal); otherwise a
// new CA is made and the old one stays in the bundle while it is valid.
func (m *CertManager) renew(old map[string][]byte, why string) (map[string][]byte, error) {
	now := m.opts.Now()
	var ca *x509.Certificate
	var caKey crypto.Signer
	var bundle []*x509.Certificate
	if old != nil {
		bundle, _ = parseCerts(old[SecretKeyCABundle])
		if key, err := parseKey(old[SecretKeyCAKey]); err == nil && len(bundle) > 0 &&
			bundle[0].IsCA && publicKeysEqual(bundle[0].PublicKey, key.Public()) &&
			bundle[0].NotAfter.Sub(now) >= m.opts.RenewBefore {
			ca, caKey = bundle[0], key
		}
	}
	if ca == nil {
		var err error
		if ca, caKey, err = newCA(now, m.opts.CAValidity); err != nil {
			return nil, err
		}
		klog.InfoS("made a new webhook CA", "reason", why, "notAfter", ca.NotAfter)
		bundle = append([]*x509.Certificate{ca}, bundle...)
	}
	// Keep only CAs still valid: an expired one trusts nothing.
	var kept []*x509.Certificate
	for _, c := range bundle {
		if c.NotAfter.After(now) {
			kept = append(kept, c)
		}
	}
	certPEM, keyPEM, err := issueServing(ca, caKey, m.opts.Hosts, now, m.opts.CertValidity)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	var bundlePEM []byte
	for _, c := range kept {
		bundlePEM = append(bundlePEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return map[string][]byte{
		SecretKeyCABundle: bundlePEM,
		SecretKeyCAKey:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		SecretKeyCert:     certPEM,
		SecretKeyKey:      keyPEM,
	}, nil
}

// load installs the serving pair and bundle of data.
func (m *CertManager) load(data map[string][]byte) (bool, error) {
	pair, err := tls.X509KeyPair(data[SecretKeyCert], data[SecretKeyKey])
	if err != nil {
		return false, fmt.Errorf("load serving certificate: %w", err)
	}
	bundle := bytes.Clone(data[SecretKeyCABundle])
	prev := m.caBundle.Load()
	m.cert.Store(&pair)
	m.caBundle.Store(&bundle)
	return prev == nil || !bytes.Equal(*prev, bundle), nil
}

func newCA(now time.Time, validity time.Duration) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: component + "-ca@" + strconvUnix(now)},
		// Backdated an hour: clocks of the apiserver and this pod differ.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA: %w", err)
	}
	return cert, key, nil
}

func issueServing(ca *x509.Certificate, caKey crypto.Signer, hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate serving key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	// A certificate cannot outlive its CA.
	notAfter = minTime(notAfter, ca.NotAfter)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode serving key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		out = append(out, c)
	}
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if ek, err2 := x509.ParseECPrivateKey(block.Bytes); err2 == nil {
			return ek, nil
		}
		return nil, fmt.Errorf("parse key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("key cannot sign")
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return s, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func strconvUnix(t time.Time) string { return fmt.Sprintf("%d", t.Unix()) }
