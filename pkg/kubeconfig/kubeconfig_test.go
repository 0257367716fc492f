package kubeconfig

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a kubeconfig with one context per server (named
// after its index: "c0", "c1", ...), the current context being the first.
func writeKubeconfig(t *testing.T, servers ...string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	for i, s := range servers {
		n := "c" + string(rune('0'+i))
		cfg.Clusters[n] = &clientcmdapi.Cluster{Server: s, CertificateAuthorityData: []byte("ca-" + n)}
		cfg.AuthInfos[n] = &clientcmdapi.AuthInfo{Token: "token-" + n}
		cfg.Contexts[n] = &clientcmdapi.Context{Cluster: n, AuthInfo: n}
	}
	cfg.CurrentContext = "c0"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	path := writeKubeconfig(t, "https://10.0.0.1:6443")
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if c.Host != "https://10.0.0.1:6443" || c.BearerToken != "token-c0" || string(c.CAData) != "ca-c0" {
		t.Errorf("Load = host %q token %q CA %q, want the file's cluster and user", c.Host, c.BearerToken, c.CAData)
	}
}

func TestLoadErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), "KUBECONFIG "+missing) {
		t.Errorf("Load(missing file) = %v, want an error naming KUBECONFIG and the path", err)
	}
	// Outside a pod: no KUBERNETES_SERVICE_HOST/PORT.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	_, err := Load("")
	if !errors.Is(err, rest.ErrNotInCluster) || !strings.Contains(err.Error(), "set KUBECONFIG") {
		t.Errorf(`Load("") outside a cluster = %v, want rest.ErrNotInCluster with the advice to set KUBECONFIG`, err)
	}
}

func TestKubectl(t *testing.T) {
	explicit := writeKubeconfig(t, "https://explicit:6443", "https://explicit-other:6443")
	env := writeKubeconfig(t, "https://from-env:6443")
	t.Setenv(clientcmd.RecommendedConfigPathEnvVar, env)
	tests := []struct {
		name, path, context string
		wantHost            string
	}{
		{"the path wins over $KUBECONFIG", explicit, "", "https://explicit:6443"},
		{"a context replaces the current one", explicit, "c1", "https://explicit-other:6443"},
		{"no path: $KUBECONFIG", "", "", "https://from-env:6443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Kubectl(tt.path, tt.context).ClientConfig()
			if err != nil {
				t.Fatal(err)
			}
			if c.Host != tt.wantHost {
				t.Errorf("host %q, want %q", c.Host, tt.wantHost)
			}
		})
	}
	if _, err := Kubectl(explicit, "missing").ClientConfig(); err == nil {
		t.Error("a context the file lacks was accepted")
	}
}
