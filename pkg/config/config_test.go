package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	base := map[string]string{
		"ECI_VSWITCH":        "vsw-a, vsw-b",
		"ECI_SECURITY_GROUP": "sg-1",
		"ECI_REGION":         "cn-hangzhou",
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "defaults", check: func(t *testing.T, c *Config) {
			if len(c.VSwitches) != 2 || c.VSwitches[1] != "vsw-b" {
				t.Errorf("VSwitches = %q", c.VSwitches)
			}
			if !c.KubeProxy || c.NodeName != "virtual-kubelet" || c.KubeletPort != 10250 {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{name: "kube proxy off", env: map[string]string{"ECI_KUBE_PROXY": "false"}, check: func(t *testing.T, c *Config) {
			if c.KubeProxy {
				t.Error("ECI_KUBE_PROXY=false not honoured")
			}
		}},
		{name: "missing vswitch", env: map[string]string{"ECI_VSWITCH": ""}, wantErr: "ECI_VSWITCH"},
		{name: "bad vswitch", env: map[string]string{"ECI_VSWITCH": "subnet-1"}, wantErr: `ECI_VSWITCH: "subnet-1"`},
		{name: "duplicate vswitch", env: map[string]string{"ECI_VSWITCH": "vsw-a,vsw-a"}, wantErr: "listed twice"},
		{name: "too many vswitches", env: map[string]string{"ECI_VSWITCH": "vsw-1,vsw-2,vsw-3,vsw-4,vsw-5,vsw-6,vsw-7,vsw-8,vsw-9,vsw-10,vsw-11"}, wantErr: "at most 10"},
		{name: "bad security group", env: map[string]string{"ECI_SECURITY_GROUP": "default"}, wantErr: "ECI_SECURITY_GROUP"},
		{name: "missing region", env: map[string]string{"ECI_REGION": ""}, wantErr: "ECI_REGION"},
		{name: "kube proxy settings", env: map[string]string{"ECI_KUBE_PROXY_IMAGE": "example.com/kube-proxy:v1", "KUBERNETES_APISERVER_URL": "https://192.168.0.10:6443", "KUBERNETES_APISERVER_CA": "/etc/ca.pem"}, check: func(t *testing.T, c *Config) {
			if c.KubeProxyImage != "example.com/kube-proxy:v1" || c.APIServerURL != "https://192.168.0.10:6443" || c.APIServerCA != "/etc/ca.pem" {
				t.Errorf("kube-proxy settings not read: %q %q %q", c.KubeProxyImage, c.APIServerURL, c.APIServerCA)
			}
		}},
		{name: "apiserver url not https", env: map[string]string{"KUBERNETES_APISERVER_URL": "http://192.168.0.10:6443"}, wantErr: "KUBERNETES_APISERVER_URL: \"http://192.168.0.10:6443\" is not an https URL"},
		{name: "cluster DNS settings", env: map[string]string{"CLUSTER_DOMAIN": "corp.example", "CLUSTER_DNS": "10.0.0.10,10.0.0.11", "CLUSTER_DNS_SERVICE": "dns/coredns"}, check: func(t *testing.T, c *Config) {
			if c.ClusterDomain != "corp.example" || len(c.ClusterDNS) != 2 || c.ClusterDNS[1] != "10.0.0.11" || c.ClusterDNSService != "dns/coredns" {
				t.Errorf("domain %q, dns %v, service %q", c.ClusterDomain, c.ClusterDNS, c.ClusterDNSService)
			}
		}},
		{name: "cluster DNS defaults", env: map[string]string{}, check: func(t *testing.T, c *Config) {
			if c.ClusterDomain != "" || len(c.ClusterDNS) != 0 || c.ClusterDNSService != "kube-system/kube-dns" {
				t.Errorf("domain %q, dns %v, service %q; want detected, none, kube-system/kube-dns", c.ClusterDomain, c.ClusterDNS, c.ClusterDNSService)
			}
		}},
		{name: "cluster domain invalid", env: map[string]string{"CLUSTER_DOMAIN": "Corp_Example"}, wantErr: `CLUSTER_DOMAIN: "Corp_Example" is not a DNS domain`},
		{name: "cluster DNS not an IP", env: map[string]string{"CLUSTER_DNS": "10.0.0.10,dns.local"}, wantErr: `CLUSTER_DNS: "dns.local" is not an IP address`},
		{name: "cluster DNS service without namespace", env: map[string]string{"CLUSTER_DNS_SERVICE": "kube-dns"}, wantErr: `CLUSTER_DNS_SERVICE: "kube-dns" is not namespace/name`},
		{name: "apiserver url without host", env: map[string]string{"KUBERNETES_APISERVER_URL": "https://"}, wantErr: "KUBERNETES_APISERVER_URL"},
		{name: "kube proxy image with spaces", env: map[string]string{"ECI_KUBE_PROXY_IMAGE": "kube proxy"}, wantErr: "ECI_KUBE_PROXY_IMAGE"},
		{name: "bad kube proxy", env: map[string]string{"ECI_KUBE_PROXY": "maybe"}, wantErr: "ECI_KUBE_PROXY"},
		{name: "bad node name", env: map[string]string{"VIRTUAL_NODE_NAME": "Bad_Name"}, wantErr: "VIRTUAL_NODE_NAME"},
		{name: "token refresh fraction out of range", env: map[string]string{"SA_TOKEN_REFRESH_FRACTION": "1.5"}, wantErr: "SA_TOKEN_REFRESH_FRACTION"},
		{name: "apiserver rate limit defaults", check: func(t *testing.T, c *Config) {
			if c.KubeAPIQPS != 100 || c.KubeAPIBurst != 200 {
				t.Errorf("KUBE_API_QPS/BURST = %v/%d, want 100/200", c.KubeAPIQPS, c.KubeAPIBurst)
			}
			if c.PodSyncWorkers != 64 || c.PprofEnabled {
				t.Errorf("POD_SYNC_WORKERS/PPROF_ENABLED = %d/%v, want 64/false", c.PodSyncWorkers, c.PprofEnabled)
			}
		}},
		{name: "tls bootstrap without kubeconfig", env: map[string]string{"TLS_BOOTSTRAP_ENABLED": "true"}, wantErr: "TLS_BOOTSTRAP_ENABLED=true needs KUBECONFIG"},
		{name: "tls bootstrap", env: map[string]string{"TLS_BOOTSTRAP_ENABLED": "true", "KUBECONFIG": "/etc/vnode/vnode-config"}, check: func(t *testing.T, c *Config) {
			if !c.TLSBootstrap || c.CertDir != "/var/lib/ack-virtual-node/pki" {
				t.Errorf("TLSBootstrap %v, CertDir %q", c.TLSBootstrap, c.CertDir)
			}
		}},
		{name: "fast status interval above the slow one", env: map[string]string{"ECI_STATUS_INTERVAL": "1s", "ECI_STATUS_FAST_INTERVAL": "2s"}, wantErr: "ECI_STATUS_FAST_INTERVAL"},
		{name: "status call rate default", check: func(t *testing.T, c *Config) {
			if c.StatusCallRate != 1 {
				t.Errorf("ECI_STATUS_CALL_RATE = %g, want 1", c.StatusCallRate)
			}
		}},
		{name: "status call rate set", env: map[string]string{"ECI_STATUS_CALL_RATE": "4"}, check: func(t *testing.T, c *Config) {
			if c.StatusCallRate != 4 {
				t.Errorf("ECI_STATUS_CALL_RATE = %g, want 4", c.StatusCallRate)
			}
		}},
		{name: "status call rate zero", env: map[string]string{"ECI_STATUS_CALL_RATE": "0"}, wantErr: "ECI_STATUS_CALL_RATE: 0 is outside 0.1-50"},
		{name: "cloud unavailable grace default", check: func(t *testing.T, c *Config) {
			if c.CloudUnavailableGrace != time.Minute {
				t.Errorf("ECI_API_UNAVAILABLE_GRACE = %s, want 1m", c.CloudUnavailableGrace)
			}
		}},
		{name: "cloud unavailable grace too short", env: map[string]string{"ECI_API_UNAVAILABLE_GRACE": "100ms"}, wantErr: "ECI_API_UNAVAILABLE_GRACE: 100ms must be between 1s and 1h"},
		{name: "zero apiserver qps", env: map[string]string{"KUBE_API_QPS": "0"}, wantErr: "KUBE_API_QPS"},
		{name: "burst below qps", env: map[string]string{"KUBE_API_QPS": "50", "KUBE_API_BURST": "10"}, wantErr: "KUBE_API_BURST"},
		{name: "negative quota scale", env: map[string]string{"ECI_API_QUOTA_SCALE": "-1"}, wantErr: "ECI_API_QUOTA_SCALE"},
		{name: "quota share zero", env: map[string]string{"ECI_API_QUOTA_SHARE": "0"}, wantErr: "ECI_API_QUOTA_SHARE: 0 is out of range"},
		{name: "quota share above one", env: map[string]string{"ECI_API_QUOTA_SHARE": "1.5"}, wantErr: "ECI_API_QUOTA_SHARE: 1.5 is out of range"},
		{name: "quota share", env: map[string]string{"ECI_API_QUOTA_SHARE": "0.25"}, check: func(t *testing.T, c *Config) {
			if c.ECIQuotaShare != 0.25 {
				t.Errorf("ECIQuotaShare %v", c.ECIQuotaShare)
			}
		}},
		{name: "quota scale", env: map[string]string{"ECI_API_QUOTA_SCALE": "2.5"}, check: func(t *testing.T, c *Config) {
			if c.ECIQuotaScale != 2.5 {
				t.Errorf("ECIQuotaScale %v", c.ECIQuotaScale)
			}
		}},
		{name: "no pod sync workers", env: map[string]string{"POD_SYNC_WORKERS": "0"}, wantErr: "POD_SYNC_WORKERS: 0 is out of range"},
		{name: "pod sync workers and pprof", env: map[string]string{"POD_SYNC_WORKERS": "8", "PPROF_ENABLED": "true"}, check: func(t *testing.T, c *Config) {
			if c.PodSyncWorkers != 8 || !c.PprofEnabled {
				t.Errorf("PodSyncWorkers %d, PprofEnabled %v", c.PodSyncWorkers, c.PprofEnabled)
			}
		}},
		{name: "half a serving pair", env: map[string]string{"KUBELET_SERVING_CERT": "/x.crt"}, wantErr: "KUBELET_SERVING_KEY"},
		{name: "statefulset ordinal pod names the node", env: map[string]string{"POD_NAME": "virtual-node-eci-2"}, check: func(t *testing.T, c *Config) {
			if c.NodeName != "virtual-node-eci-2" || len(c.NodeNames()) != 1 || c.NodeNames()[0] != "virtual-node-eci-2" {
				t.Errorf("NodeName = %q, NodeNames = %q, want virtual-node-eci-2", c.NodeName, c.NodeNames())
			}
			if c.PodName != "virtual-node-eci-2" || c.PodNamespace != "kube-system" {
				t.Errorf("identity = %s/%s", c.PodNamespace, c.PodName)
			}
		}},
		{name: "statefulset ordinal 0", env: map[string]string{"POD_NAME": "virtual-node-eci-0"}, check: func(t *testing.T, c *Config) {
			if c.NodeName != "virtual-node-eci-0" {
				t.Errorf("NodeName = %q, want virtual-node-eci-0", c.NodeName)
			}
		}},
		{name: "deployment pod keeps the default node name", env: map[string]string{"POD_NAME": "ack-virtual-node-controller-7d9f8b-xk2lp"}, check: func(t *testing.T, c *Config) {
			if c.NodeName != DefaultNodeName {
				t.Errorf("NodeName = %q, want %s", c.NodeName, DefaultNodeName)
			}
		}},
		{name: "leading zero is not an ordinal", env: map[string]string{"POD_NAME": "web-01"}, check: func(t *testing.T, c *Config) {
			if c.NodeName != DefaultNodeName {
				t.Errorf("NodeName = %q, want %s", c.NodeName, DefaultNodeName)
			}
		}},
		{name: "explicit node name beats the ordinal", env: map[string]string{"POD_NAME": "virtual-node-eci-3", "VIRTUAL_NODE_NAME": "vn"}, check: func(t *testing.T, c *Config) {
			if c.NodeName != "vn" {
				t.Errorf("NodeName = %q, want vn", c.NodeName)
			}
		}},
		{name: "several nodes", env: map[string]string{"VIRTUAL_NODE_NAME": "vn", "VIRTUAL_NODE_COUNT": "3", "POD_NAME": "ctl-abc", "POD_NAMESPACE": "vk-system"}, check: func(t *testing.T, c *Config) {
			if got := strings.Join(c.NodeNames(), ","); got != "vn-0,vn-1,vn-2" {
				t.Errorf("NodeNames = %s", got)
			}
			n := c.ForNode(2)
			if n.NodeName != "vn-2" || n.KubeletPort != 10252 || c.KubeletPort != 10250 {
				t.Errorf("ForNode(2) = %s:%d (base %d)", n.NodeName, n.KubeletPort, c.KubeletPort)
			}
			if c.PodNamespace != "vk-system" || c.LeaseDuration != 15*time.Second || c.RenewDeadline != 10*time.Second || c.RetryPeriod != 2*time.Second {
				t.Errorf("lease settings = %s %s %s %s", c.PodNamespace, c.LeaseDuration, c.RenewDeadline, c.RetryPeriod)
			}
		}},
		{name: "several nodes do not take the ordinal name", env: map[string]string{"POD_NAME": "virtual-node-eci-1", "VIRTUAL_NODE_COUNT": "2"}, check: func(t *testing.T, c *Config) {
			if got := strings.Join(c.NodeNames(), ","); got != DefaultNodeName+"-0,"+DefaultNodeName+"-1" {
				t.Errorf("NodeNames = %s", got)
			}
		}},
		{name: "node count zero", env: map[string]string{"VIRTUAL_NODE_COUNT": "0"}, wantErr: "VIRTUAL_NODE_COUNT: 0"},
		{name: "node count too high", env: map[string]string{"VIRTUAL_NODE_COUNT": "101"}, wantErr: "VIRTUAL_NODE_COUNT: 101"},
		{name: "node count not a number", env: map[string]string{"VIRTUAL_NODE_COUNT": "three"}, wantErr: "VIRTUAL_NODE_COUNT"},
		{name: "bad lease namespace", env: map[string]string{"POD_NAMESPACE": "Kube_System"}, wantErr: "POD_NAMESPACE"},
		{name: "lease too short", env: map[string]string{"VIRTUAL_NODE_LEASE_DURATION": "500ms"}, wantErr: "VIRTUAL_NODE_LEASE_DURATION"},
		{name: "renew deadline not below lease", env: map[string]string{"VIRTUAL_NODE_LEASE_DURATION": "10s", "VIRTUAL_NODE_LEASE_RENEW_DEADLINE": "10s"}, wantErr: "VIRTUAL_NODE_LEASE_RENEW_DEADLINE"},
		{name: "retry period too long", env: map[string]string{"VIRTUAL_NODE_LEASE_RETRY_PERIOD": "9s"}, wantErr: "VIRTUAL_NODE_LEASE_RETRY_PERIOD"},
		{name: "kubelet ports run out", env: map[string]string{"KUBELET_PORT": "65534", "VIRTUAL_NODE_COUNT": "3"}, wantErr: "KUBELET_PORT: 65534"},
		{name: "metrics address without a port", env: map[string]string{"METRICS_ADDR": "10255"}, wantErr: `METRICS_ADDR: "10255" is not host:port`},
		{name: "metrics address empty", env: map[string]string{"METRICS_ADDR": ""}, wantErr: `METRICS_ADDR: "" is not host:port`},
		{name: "metrics address port zero", env: map[string]string{"METRICS_ADDR": "127.0.0.1:0"}, wantErr: `METRICS_ADDR: "127.0.0.1:0" has no TCP port`},
		{name: "metrics address on a kubelet port", env: map[string]string{"METRICS_ADDR": ":10251", "VIRTUAL_NODE_COUNT": "3"}, wantErr: "METRICS_ADDR: port 10251 is the kubelet API port of node 1"},
		{name: "metrics address on one interface", env: map[string]string{"METRICS_ADDR": "10.0.0.5:9100"}, check: func(t *testing.T, c *Config) {
			if c.MetricsAddr != "10.0.0.5:9100" {
				t.Errorf("METRICS_ADDR = %q", c.MetricsAddr)
			}
		}},
		{name: "cpu capacity not a quantity", env: map[string]string{"ECI_CPU_CAPACITY": "lots"}, wantErr: `ECI_CPU_CAPACITY: "lots"`},
		{name: "cpu capacity zero", env: map[string]string{"ECI_CPU_CAPACITY": "0"}, wantErr: `ECI_CPU_CAPACITY: "0"`},
		{name: "memory capacity negative", env: map[string]string{"ECI_MEMORY_CAPACITY": "-1Gi"}, wantErr: `ECI_MEMORY_CAPACITY: "-1Gi"`},
		{name: "capacities", env: map[string]string{"ECI_CPU_CAPACITY": "500m", "ECI_MEMORY_CAPACITY": "512Gi"}, check: func(t *testing.T, c *Config) {
			if c.CPUCapacity != "500m" || c.MemoryCapacity != "512Gi" {
				t.Errorf("capacities %s/%s", c.CPUCapacity, c.MemoryCapacity)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The machine's own environment must not leak in (a CI runner
			// in a pod has these set).
			for _, k := range []string{"POD_NAME", "POD_NAMESPACE", "KUBERNETES_SERVICE_HOST", "VIRTUAL_NODE_NAME", "VIRTUAL_NODE_COUNT"} {
				t.Setenv(k, "") // restored when the test ends
				os.Unsetenv(k)
			}
			for k, v := range base {
				t.Setenv(k, v)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() error = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() = %v", err)
			}
			tt.check(t, c)
		})
	}
}

// TestDefaults: Defaults() is what Load() gives for an empty environment
// (plus the three required values), so code-built configurations and the
// environment agree on every default.
func TestDefaults(t *testing.T) {
	for _, k := range []string{"POD_NAME", "POD_NAMESPACE", "KUBERNETES_SERVICE_HOST", "VIRTUAL_NODE_NAME", "VIRTUAL_NODE_COUNT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("ECI_VSWITCH", "vsw-a")
	t.Setenv("ECI_SECURITY_GROUP", "sg-a")
	t.Setenv("ECI_REGION", "cn-hangzhou")
	loaded, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	d.VSwitches, d.SecurityGroup, d.Region = []string{"vsw-a"}, "sg-a", "cn-hangzhou"
	if !reflect.DeepEqual(d, loaded) {
		t.Errorf("Defaults() = %+v\nLoad()     = %+v", d, loaded)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Defaults() with the required values is invalid: %v", err)
	}
	// Every field read from the environment with a default has it applied.
	v := reflect.ValueOf(Defaults()).Elem()
	for i := 0; i < v.NumField(); i++ {
		if _, ok := v.Type().Field(i).Tag.Lookup("default"); ok && v.Field(i).IsZero() && v.Field(i).Kind() != reflect.Bool {
			t.Errorf("Defaults() left %s zero", v.Type().Field(i).Name)
		}
	}
}

// TestValidateDoesNotChange: Validate only reports. A configuration built
// in code keeps what it was given (spaces included, which it reports),
// and zero values are reported rather than replaced.
func TestValidateDoesNotChange(t *testing.T) {
	c := Defaults()
	c.VSwitches, c.SecurityGroup, c.Region = []string{" vsw-a", ""}, " sg-a ", "cn-hangzhou"
	c.NodeCount, c.PodSyncWorkers, c.ECIQuotaScale = 0, 0, 0
	before := *c
	before.VSwitches = append([]string(nil), c.VSwitches...)
	err := c.Validate()
	if !reflect.DeepEqual(*c, before) {
		t.Errorf("Validate changed the configuration:\nbefore %+v\nafter  %+v", before, *c)
	}
	for _, want := range []string{`ECI_VSWITCH: " vsw-a"`, `ECI_SECURITY_GROUP: " sg-a "`, "VIRTUAL_NODE_COUNT: 0", "POD_SYNC_WORKERS: 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	// ECI_API_QUOTA_SCALE=0 is a documented setting (client limits off),
	// not a missing value.
	if err != nil && strings.Contains(err.Error(), "ECI_API_QUOTA_SCALE") {
		t.Errorf("Validate() reports quota scale 0: %v", err)
	}
}

func TestKubeProxyImageFor(t *testing.T) {
	for _, tc := range []struct{ region, version, want string }{
		// ACK clusters report the version kube-proxy's image is tagged with.
		{"cn-hangzhou", "v1.30.1-aliyun.1", "registry-cn-hangzhou-vpc.ack.aliyuncs.com/acs/kube-proxy:v1.30.1-aliyun.1"},
		{"cn-beijing", "v1.28.9-aliyun.2", "registry-cn-beijing-vpc.ack.aliyuncs.com/acs/kube-proxy:v1.28.9-aliyun.2"},
		// Other clusters get their version with the vendor's first patch.
		{"cn-shanghai", "v1.30.14", "registry-cn-shanghai-vpc.ack.aliyuncs.com/acs/kube-proxy:v1.30.14-aliyun.1"},
		{"cn-shanghai", "v1.29.3-eks-abc+build.1", "registry-cn-shanghai-vpc.ack.aliyuncs.com/acs/kube-proxy:v1.29.3-aliyun.1"},
		{"ap-southeast-1", "v1.31.0+k3s1", "registry-ap-southeast-1-vpc.ack.aliyuncs.com/acs/kube-proxy:v1.31.0-aliyun.1"},
	} {
		if got := KubeProxyImageFor(tc.region, tc.version); got != tc.want {
			t.Errorf("KubeProxyImageFor(%q, %q) = %q, want %q", tc.region, tc.version, got, tc.want)
		}
	}
}
