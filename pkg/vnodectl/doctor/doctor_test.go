package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no such host", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "lb.kubesphere.local", IsNotFound: true}}, "PrivateZone"},
		{"client timeout text", errors.New(`Get "https://10.50.0.1:6443/version?timeout=32s": net/http: request canceled (Client.Timeout exceeded while awaiting headers)`), "same VPC"},
		{"deadline", fmt.Errorf("dial: %w", context.DeadlineExceeded), "same VPC"},
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "Nothing listens"},
		{"dns server failure", &net.DNSError{Err: "server misbehaving", Name: "x"}, "DNS servers of the VPC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); !strings.Contains(got, tt.want) {
				t.Errorf("classify = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestLoadKubeconfig(t *testing.T) {
	dir := t.TempDir()
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	write := func(name string, cl *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) string {
		c := clientcmdapi.NewConfig()
		c.Clusters["c"], c.AuthInfos["vnode"] = cl, u
		c.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "vnode"}
		c.CurrentContext = "x"
		p := filepath.Join(dir, name)
		if err := clientcmd.WriteToFile(*c, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := &clientcmdapi.Cluster{Server: "https://10.16.0.1:6443", CertificateAuthorityData: ca}
	tests := []struct {
		name, path    string
		wantStatus    Status
		wantBootstrap bool
		want          string
	}{
		{"bootstrap token", write("a", good, &clientcmdapi.AuthInfo{Token: "abcdef.0123456789abcdef"}), Pass, true, "bootstrap token"},
		{"service account token", write("b", good, &clientcmdapi.AuthInfo{Token: "eyJhbGciOi.x.y"}), Pass, false, "with a token"},
		{"CA path", write("c", &clientcmdapi.Cluster{Server: "https://10.16.0.1:6443", CertificateAuthority: "/etc/kubernetes/pki/ca.crt"}, &clientcmdapi.AuthInfo{Token: "t"}), Fail, false, "certificate-authority is the path"},
		{"no credential", write("d", good, &clientcmdapi.AuthInfo{}), Fail, false, "neither a token"},
		{"http server", write("e", &clientcmdapi.Cluster{Server: "http://10.16.0.1:8080", CertificateAuthorityData: ca}, &clientcmdapi.AuthInfo{Token: "t"}), Fail, false, "not an https:// URL"},
		{"missing file", filepath.Join(dir, "nope"), Fail, false, "vnodectl kubeconfig -o"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, res := loadKubeconfig(tt.path)
			if res.Status != tt.wantStatus || !strings.Contains(res.Message+res.Fix, tt.want) {
				t.Fatalf("result %+v, want %s containing %q", res, tt.wantStatus, tt.want)
			}
			if res.Status == Pass && (info.bootstrap != tt.wantBootstrap || info.port != "6443" || info.host != "10.16.0.1") {
				t.Errorf("info %+v", info)
			}
			if res.Status == Fail && res.Fix == "" {
				t.Error("a failure without a fix")
			}
		})
	}
}

// TestVersionResult: doctor accepts exactly pkg/kubeversion's range, and a
// failure names the version and the range.
func TestVersionResult(t *testing.T) {
	cases := []struct {
		v    version.Info
		want Status
	}{
		{version.Info{Major: "1", Minor: "15", GitVersion: "v1.15.12"}, Fail},
		{version.Info{Major: "1", Minor: "16", GitVersion: "v1.16.15"}, Pass},
		{version.Info{Major: "1", Minor: "20+", GitVersion: "v1.20.7-aliyun.1"}, Pass},
		{version.Info{Major: "1", Minor: "30", GitVersion: "v1.30.14"}, Pass},
		{version.Info{Major: "1", Minor: "31", GitVersion: "v1.31.2"}, Fail},
		{version.Info{GitVersion: "v1.19.16"}, Pass},
		{version.Info{GitVersion: "devel"}, Fail},
	}
	for _, c := range cases {
		r := versionResult(&c.v)
		if r.Status != c.want || r.Name != CheckVersion {
			t.Errorf("%s: %+v, want %s", c.v.GitVersion, r, c.want)
		}
		if !strings.Contains(r.Message, c.v.GitVersion) || !strings.Contains(r.Message+r.Fix, "1.16 to 1.30") {
			t.Errorf("%s: %q / %q does not name the version and the range 1.16 to 1.30", c.v.GitVersion, r.Message, r.Fix)
		}
		if r.Status == Fail && r.Fix == "" {
			t.Errorf("%s: a failure without a fix", c.v.GitVersion)
		}
	}
}
