package controlplane

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestCAIssuesVerifiableCerts(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	certPEM, keyPEM, err := ca.IssueClientCert("system:node:n1", []string{"system:nodes"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("client pair unusable: %v", err)
	}
	c := parse(t, certPEM)
	if c.Subject.CommonName != "system:node:n1" || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != "system:nodes" {
		t.Errorf("subject = %v", c.Subject)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client cert: %v", err)
	}

	certPEM, _, err = ca.IssueServingCert([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	s := parse(t, certPEM)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := s.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("serving cert for %s: %v", host, err)
		}
	}
	if _, _, err := ca.IssueServingCert(nil); err == nil {
		t.Error("IssueServingCert(nil) succeeded")
	}
	if _, _, err := ca.IssueClientCert("", nil); err == nil {
		t.Error("IssueClientCert with empty CN succeeded")
	}
}

func TestServiceAccountKeyIsRSA(t *testing.T) {
	priv, pub, err := newServiceAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(priv), "RSA PRIVATE KEY") || !strings.Contains(string(pub), "PUBLIC KEY") {
		t.Errorf("unexpected PEM types: %.40q / %.40q", priv, pub)
	}
}

func TestTailFile(t *testing.T) {
	path := t.TempDir() + "/log"
	var b strings.Builder
	for i := 0; i < 100; i++ {
		b.WriteString(strings.Repeat("x", 10) + "\n")
	}
	b.WriteString("last line\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := tailFile(path, 3, 4096)
	if lines := strings.Split(got, "\n"); len(lines) != 3 || lines[2] != "last line" {
		t.Errorf("tail = %q", got)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 5; i++ {
		ports, err := freePorts(3)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
	}
}

func parse(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPrefixWriter(t *testing.T) {
	var out strings.Builder
	w := &prefixWriter{prefix: "[etcd] ", w: &out}
	for _, chunk := range []string{"one\ntw", "o\n", "partial"} {
		if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if got, want := out.String(), "[etcd] one\n[etcd] two\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAddrInUse(t *testing.T) {
	race := &ProcessError{Component: "etcd", Err: errors.New("exited"), LogTail: "listen tcp 127.0.0.1:2379: bind: address already in use"}
	if !addrInUse(fmt.Errorf("wrapped: %w", race)) {
		t.Error("port race not recognised")
	}
	if addrInUse(&ProcessError{Component: "etcd", Err: errors.New("exited"), LogTail: "permission denied"}) || addrInUse(nil) {
		t.Error("other failures must not be retried")
	}
}
