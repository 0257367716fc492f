package nodeaccess

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"bootstrap", ModeBootstrap, false},
		{"serviceaccount", ModeServiceAccount, false},
		{"common", ModeServiceAccount, false},
		{"admin", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseMode(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--mode") {
			t.Errorf("error does not name the flag: %v", err)
		}
	}
}

func TestTokenUsable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	secret := func(edit func(*corev1.Secret)) *corev1.Secret {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-abcdef"},
			Type:       bootstrapSecretType,
			Data: map[string][]byte{
				keyTokenID: []byte("abcdef"), keyTokenSecret: []byte("0123456789abcdef"),
				keyUsageAuthentication: []byte("true"), keyExtraGroups: []byte(BootstrapGroup),
			},
		}
		if edit != nil {
			edit(s)
		}
		return s
	}
	tests := []struct {
		name string
		s    *corev1.Secret
		want bool
	}{
		{"valid, no expiry", secret(nil), true},
		{"expires in an hour", secret(func(s *corev1.Secret) { s.Data[keyExpiration] = []byte(now.Add(time.Hour).Format(time.RFC3339)) }), true},
		{"expires in 30s", secret(func(s *corev1.Secret) { s.Data[keyExpiration] = []byte(now.Add(30 * time.Second).Format(time.RFC3339)) }), false},
		{"bad expiration", secret(func(s *corev1.Secret) { s.Data[keyExpiration] = []byte("tomorrow") }), false},
		{"other group", secret(func(s *corev1.Secret) {
			s.Data[keyExtraGroups] = []byte("system:bootstrappers:kubeadm:default-node-token")
		}), false},
		{"no authentication usage", secret(func(s *corev1.Secret) { delete(s.Data, keyUsageAuthentication) }), false},
		{"name does not match id", secret(func(s *corev1.Secret) { s.Name = "bootstrap-token-zzzzzz" }), false},
		{"wrong type", secret(func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokenUsable(tt.s, now); got != tt.want {
				t.Errorf("tokenUsable = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRandomString(t *testing.T) {
	a, err := randomString(16)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := randomString(16)
	if len(a) != 16 || a == b || strings.Trim(a, bootstrapTokenChars) != "" {
		t.Errorf("randomString: %q %q", a, b)
	}
}

func TestBindingsPerMode(t *testing.T) {
	tests := []struct {
		mode        Mode
		wantSubject string
		wantCount   int
	}{
		{ModeBootstrap, NodeGroup, 6},
		{ModeServiceAccount, ServiceAccountName, 4},
	}
	for _, tt := range tests {
		bs := bindings(tt.mode)
		if len(bs) != tt.wantCount {
			t.Errorf("%s: %d bindings, want %d", tt.mode, len(bs), tt.wantCount)
		}
		if bs[0].role != RoleNode || bs[0].subject.Name != tt.wantSubject {
			t.Errorf("%s: first binding %+v", tt.mode, bs[0])
		}
		for _, b := range bs {
			if b.subject.Name == BootstrapGroup && b.role != RoleNodeBootstrapper && b.role != RoleNodeClient {
				t.Errorf("bootstrap group bound to %s: it must only create CSRs", b.role)
			}
		}
	}
}

func TestLoadAdminCA(t *testing.T) {
	dir := t.TempDir()
	caPath := filepath.Join(dir, "ca.crt")
	caPEM := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	if err := os.WriteFile(caPath, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name string, cl *clientcmdapi.Cluster) string {
		c := clientcmdapi.NewConfig()
		c.Clusters["prod"] = cl
		c.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: "t"}
		c.Contexts["admin@prod"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "admin"}
		c.CurrentContext = "admin@prod"
		p := filepath.Join(dir, name)
		if err := clientcmd.WriteToFile(*c, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		cluster *clientcmdapi.Cluster
		caFile  string
		wantCA  []byte
		wantErr error
	}{
		{"inline data", &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443", CertificateAuthorityData: caPEM}, "", caPEM, nil},
		{"file path is inlined", &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443", CertificateAuthority: caPath}, "", caPEM, nil},
		{"--ca-file wins", &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443", InsecureSkipTLSVerify: true}, caPath, caPEM, nil},
		{"no CA", &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443", InsecureSkipTLSVerify: true}, "", nil, ErrNoCA},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := LoadAdmin(write(string(rune('a'+i)), tt.cluster), "", tt.caFile)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "certificate-authority PATH field") {
					t.Errorf("error lacks the advice: %v", err)
				}
				return
			}
			if string(a.CAData) != string(tt.wantCA) || a.ClusterName != "prod" || a.ContextName != "admin@prod" {
				t.Errorf("admin = CA %q cluster %q context %q", a.CAData, a.ClusterName, a.ContextName)
			}
		})
	}
}
