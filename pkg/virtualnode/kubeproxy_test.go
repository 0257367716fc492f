package virtualnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	k8sversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/rest"
)

func TestKubeProxyConfig(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, []byte("file-ca"), 0o600); err != nil {
		t.Fatal(err)
	}
	sv := &k8sversion.Info{GitVersion: "v1.30.1-aliyun.1"}
	own := &rest.Config{Host: "https://10.0.0.1:6443", TLSClientConfig: rest.TLSClientConfig{CAData: []byte("kubeconfig-ca")}}
	base := func() *config.Config {
		c := config.Defaults()
		c.Region = "cn-beijing"
		return c
	}

	// Defaults: the regional image of the cluster's version, the
	// controller's own server and CA, the controller's namespace.
	kp, err := kubeProxyConfig(context.Background(), base(), own, own, sv)
	if err != nil {
		t.Fatal(err)
	}
	if kp.Image != "registry-cn-beijing-vpc.ack.aliyuncs.com/acs/kube-proxy:v1.30.1-aliyun.1" || kp.Server != own.Host ||
		string(kp.CA) != "kubeconfig-ca" || kp.Namespace != "kube-system" {
		t.Errorf("defaults: %+v", kp)
	}

	// The settings win; a bare host:port becomes an https URL.
	c := base()
	c.KubeProxyImage, c.APIServerURL, c.APIServerCA, c.PodNamespace = "my/kube-proxy:1", "https://192.168.0.10:6443", caFile, "ack"
	if kp, err = kubeProxyConfig(context.Background(), c, own, own, sv); err != nil {
		t.Fatal(err)
	}
	if kp.Image != "my/kube-proxy:1" || kp.Server != "https://192.168.0.10:6443" || string(kp.CA) != "file-ca" || kp.Namespace != "ack" {
		t.Errorf("settings: %+v", kp)
	}
	bare := &rest.Config{Host: "10.0.0.2:6443", TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}}
	if kp, err = kubeProxyConfig(context.Background(), base(), bare, bare, sv); err != nil || kp.Server != "https://10.0.0.2:6443" || string(kp.CA) != "file-ca" {
		t.Errorf("bare host and CA file: %+v %v", kp, err)
	}

	// A CA file that cannot be read names the variable.
	c = base()
	c.APIServerCA = filepath.Join(dir, "missing.pem")
	if _, err := kubeProxyConfig(context.Background(), c, own, own, sv); err == nil || !strings.Contains(err.Error(), "KUBERNETES_APISERVER_CA") {
		t.Errorf("missing CA file: %v, want an error naming KUBERNETES_APISERVER_CA", err)
	}
}
