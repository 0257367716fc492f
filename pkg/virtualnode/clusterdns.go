package virtualnode

import (
	"bufio"
	"context"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// CoreDNSConfigMap is where a cluster's CoreDNS keeps its Corefile
// (kubeadm, ACK and most distributions).
const CoreDNSConfigMap = "coredns"

// ClusterDomain returns the cluster's DNS domain and where it came from:
// configured (CLUSTER_DOMAIN), else the zone of the kubernetes plugin in
// the CoreDNS Corefile (ConfigMap namespace/coredns), else
// translate.DefaultClusterDomain.
func ClusterDomain(ctx context.Context, kube kubernetes.Interface, configured, namespace string) (domain, source string) {
	if configured != "" {
		return configured, "CLUSTER_DOMAIN"
	}
	cm, err := kube.CoreV1().ConfigMaps(namespace).Get(ctx, CoreDNSConfigMap, metav1.GetOptions{})
	if err == nil {
		if d := corefileDomain(cm.Data["Corefile"]); d != "" {
			return d, "ConfigMap " + namespace + "/" + CoreDNSConfigMap
		}
	}
	return translate.DefaultClusterDomain, "default"
}

// corefileDomain returns the first zone of the kubernetes plugin in a
// Corefile ("kubernetes cluster.local in-addr.arpa ip6.arpa {"), skipping
// the reverse zones; "" when there is none.
func corefileDomain(corefile string) string {
	sc := bufio.NewScanner(strings.NewReader(corefile))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "kubernetes" {
			continue
		}
		for _, z := range f[1:] {
			if z == "{" {
				break
			}
			z = strings.TrimSuffix(strings.ToLower(z), ".")
			if z == "" || strings.HasSuffix(z, "in-addr.arpa") || strings.HasSuffix(z, "ip6.arpa") || len(validation.IsDNS1123Subdomain(z)) > 0 {
				continue
			}
			return z
		}
	}
	return ""
}
