package bootstrap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClientConfigRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	noCA := filepath.Join(dir, "no-ca")
	kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n" +
		"contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: abcdef.0123456789abcdef}\n"
	if err := os.WriteFile(noCA, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no node name", Options{BootstrapKubeconfig: noCA, CertDir: dir}, "node name is empty"},
		{"no cert dir", Options{BootstrapKubeconfig: noCA, NodeName: "vn1"}, "certificate directory is empty"},
		{"missing kubeconfig", Options{BootstrapKubeconfig: filepath.Join(dir, "nope"), CertDir: dir, NodeName: "vn1"}, "bootstrap kubeconfig"},
		{"kubeconfig without CA", Options{BootstrapKubeconfig: noCA, CertDir: dir, NodeName: "vn1"}, "no certificate-authority-data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ClientConfig(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
