package virtualnode

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	k8sversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// kubeProxyConfig is how the kube-proxy in ECI pods reaches the API
// server: ECI_KUBE_PROXY_IMAGE, else the vendor's regional image of the
// cluster's version; KUBERNETES_APISERVER_URL, else the controller's own
// address; KUBERNETES_APISERVER_CA, else the CA of the controller's
// kubeconfig (caCfg: a bootstrapped config keeps it in the bootstrap
// kubeconfig). It is built whatever ECI_KUBE_PROXY says: the eci-profile
// and a pod's annotation can turn kube-proxy on for some pods.
func kubeProxyConfig(ctx context.Context, cfg *config.Config, restCfg, caCfg *rest.Config, sv *k8sversion.Info) (*translate.KubeProxyConfig, error) {
	kp := &translate.KubeProxyConfig{Image: cfg.KubeProxyImage, Server: cfg.APIServerURL, Namespace: cfg.PodNamespace}
	if kp.Image == "" {
		kp.Image = config.KubeProxyImageFor(cfg.Region, sv.GitVersion)
	}
	if kp.Server == "" {
		kp.Server = restCfg.Host
		if !strings.Contains(kp.Server, "://") {
			// A bare host[:port], as rest.Config allows.
			kp.Server = "https://" + kp.Server
		}
	}
	switch {
	case cfg.APIServerCA != "":
		ca, err := os.ReadFile(cfg.APIServerCA)
		if err != nil {
			return nil, fmt.Errorf("KUBERNETES_APISERVER_CA: %w; set it to a PEM file with the CA of KUBERNETES_APISERVER_URL, or leave it empty for the kubeconfig's CA", err)
		}
		kp.CA = ca
	case len(caCfg.CAData) > 0:
		kp.CA = caCfg.CAData
	case caCfg.CAFile != "":
		ca, err := os.ReadFile(caCfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("the kubeconfig's CA %s (for kube-proxy in ECI pods): %w; set KUBERNETES_APISERVER_CA", caCfg.CAFile, err)
		}
		kp.CA = ca
	}
	logger := klog.FromContext(ctx)
	if u, err := url.Parse(kp.Server); err == nil && cfg.APIServerURL == "" {
		if host, _, _ := net.SplitHostPort(u.Host); host != "" && host == os.Getenv("KUBERNETES_SERVICE_HOST") {
			logger.Info("Warning: kube-proxy in ECI pods would reach the API server at the kubernetes Service's ClusterIP, which an ECI pod cannot reach before its kube-proxy runs; set KUBERNETES_APISERVER_URL to an address the VPC reaches (e.g. the API server's internal load balancer)",
				"server", kp.Server)
		}
	}
	logger.Info("kube-proxy for ECI pods", "image", kp.Image, "server", kp.Server, "serviceAccount", kp.Namespace+"/"+nodeaccess.KubeProxyServiceAccountName,
		"caFromKubeconfig", cfg.APIServerCA == "", "defaultOn", cfg.KubeProxy)
	return kp, nil
}
