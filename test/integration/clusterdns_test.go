package integration

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/virtualnode"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestClusterDNS: ClusterFirst pods resolve through the cluster's own DNS
// settings, not a hard-coded cluster.local and kube-dns. A node with
// CLUSTER_DOMAIN and CLUSTER_DNS_SERVICE gives its pods that Service's
// ClusterIP and that domain's search path; CLUSTER_DNS gives fixed
// resolvers; a DNS Service that does not exist gives the pod the VPC
// resolver and a MissingClusterDNS Warning naming the Service and the fix.
// Without CLUSTER_DOMAIN the domain is read from the CoreDNS Corefile.
func TestClusterDNS(t *testing.T) {
	t.Parallel()
	env := startShared(t, testenv.Options{})
	kube := env.Kube
	ctx := context.Background()
	ns := uniqueName("clusterdns")
	createNamespace(t, kube, ns)
	dns, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "corp-dns"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	sent := func(g simulator.ContainerGroup) map[string]string {
		t.Helper()
		for _, r := range env.Simulator.Requests("CreateContainerGroup") {
			if r.Params["ContainerGroupName"] == g.ContainerGroupName {
				return r.Params
			}
		}
		t.Fatalf("no CreateContainerGroup recorded for group %s", g.ContainerGroupName)
		return nil
	}
	for _, tc := range []struct {
		name      string
		configure func(c *nodeDNS)
		wantNS    []string
		wantPath  []string
		missing   bool
	}{
		{name: "service", configure: func(c *nodeDNS) { c.domain, c.service = "corp.example", ns+"/corp-dns" },
			wantNS: []string{dns.Spec.ClusterIP}, wantPath: []string{ns + ".svc.corp.example", "svc.corp.example", "corp.example"}},
		{name: "fixed", configure: func(c *nodeDNS) { c.ips = []string{"10.10.0.53", "10.10.0.54"} },
			wantNS: []string{"10.10.0.53", "10.10.0.54"}, wantPath: []string{ns + ".svc.cluster.local", "svc.cluster.local", "cluster.local"}},
		{name: "missing", configure: func(c *nodeDNS) { c.service = ns + "/no-such-dns" }, missing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d nodeDNS
			tc.configure(&d)
			node := uniqueName("dns-" + tc.name)
			cfg := env.NodeConfig(t, node)
			cfg.ClusterDomain, cfg.ClusterDNS = d.domain, d.ips
			if d.service != "" {
				cfg.ClusterDNSService = d.service
			}
			env.StartNode(t, cfg)
			createPodsOn(t, kube, ns, "pod-"+tc.name, 1, node)
			name := "pod-" + tc.name + "-0"
			g := podGroup(t, kube, env.Simulator, ns, name)
			poll(t, name+" Running", 60*time.Second, func(ctx context.Context) (bool, error) {
				p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				return err == nil && p.Status.Phase == corev1.PodRunning, err
			})
			params := sent(g)
			if tc.missing {
				if params["DnsPolicy"] != "Default" || len(g.DnsConfig.NameServers) != 0 {
					t.Errorf("DnsPolicy %q, nameservers %v; want Default (the VPC resolver) and none", params["DnsPolicy"], g.DnsConfig.NameServers)
				}
				waitEvent(t, kube, ns, name, corev1.EventTypeWarning, provider.ReasonMissingClusterDNS,
					"the cluster DNS Service "+ns+"/no-such-dns does not exist", "CLUSTER_DNS_SERVICE")
				return
			}
			if params["DnsPolicy"] != "None" || !reflect.DeepEqual(g.DnsConfig.NameServers, tc.wantNS) || !reflect.DeepEqual(g.DnsConfig.Searches, tc.wantPath) {
				t.Errorf("DnsPolicy %q, nameservers %v, searches %v; want None, %v, %v", params["DnsPolicy"], g.DnsConfig.NameServers, g.DnsConfig.Searches, tc.wantNS, tc.wantPath)
			}
		})
	}

	t.Run("domain from the CoreDNS Corefile", func(t *testing.T) {
		if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: virtualnode.CoreDNSConfigMap},
			Data:       map[string]string{"Corefile": ".:53 {\n    errors\n    kubernetes corp.internal in-addr.arpa ip6.arpa {\n       pods insecure\n    }\n    forward . /etc/resolv.conf\n}\n"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ configured, namespace, want, from string }{
			{"", ns, "corp.internal", "ConfigMap " + ns + "/coredns"},
			{"set.example", ns, "set.example", "CLUSTER_DOMAIN"},
			{"", uniqueName("no-coredns"), "cluster.local", "default"},
		} {
			if d, from := virtualnode.ClusterDomain(ctx, kube, tc.configured, tc.namespace); d != tc.want || from != tc.from {
				t.Errorf("ClusterDomain(%q, %s) = %q from %q, want %q from %q", tc.configured, tc.namespace, d, from, tc.want, tc.from)
			}
		}
	})
}

// nodeDNS is one node's cluster DNS settings in TestClusterDNS.
type nodeDNS struct {
	domain, service string
	ips             []string
}
