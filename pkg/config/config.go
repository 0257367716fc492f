// Package config loads the ack-virtual-node-controller's configuration from
// environment variables (the names users already set with
// `kubectl -n kube-system edit deployment ack-virtual-node-controller`) and
// validates it once at start-up.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Config is the controller's whole configuration.
type Config struct {
	// VSwitches are the vSwitch ids (ECI_VSWITCH, comma-separated, 1-10 of
	// one VPC; several zones give failover when a zone runs out of stock).
	VSwitches []string `envconfig:"ECI_VSWITCH"`
	// SecurityGroup is the security group of new container groups.
	SecurityGroup string `envconfig:"ECI_SECURITY_GROUP"`
	// KubeProxy says whether pods can reach ClusterIP Services (default true).
	KubeProxy bool `envconfig:"ECI_KUBE_PROXY" default:"true"`
	// KubeProxyImage is the kube-proxy image every group runs while
	// KubeProxy is on (ECI_KUBE_PROXY_IMAGE); empty means
	// DefaultKubeProxyImage of ECI_REGION and the cluster's version, read
	// from the API server at start-up.
	KubeProxyImage string `envconfig:"ECI_KUBE_PROXY_IMAGE"`
	// APIServerURL is the API server address kube-proxy in the ECI pods
	// talks to (KUBERNETES_APISERVER_URL): it must be reachable from the
	// vSwitches' VPC. Empty means the address the controller itself uses.
	APIServerURL string `envconfig:"KUBERNETES_APISERVER_URL"`
	// APIServerCA is a PEM file with the CA that verifies APIServerURL
	// (KUBERNETES_APISERVER_CA); empty means the CA of the controller's own
	// kubeconfig (in a pod: the service-account CA).
	APIServerCA string `envconfig:"KUBERNETES_APISERVER_CA"`
	// Region is the Alibaba Cloud region of the vSwitches.
	Region string `envconfig:"ECI_REGION"`
	// Endpoint overrides the ECI endpoint (host[:port] or http(s) URL); the
	// simulator is reached this way.
	Endpoint string `envconfig:"ECI_ENDPOINT"`
	// ClusterID tags every container group so that groups of different
	// clusters never mix; empty means the UID of the kube-system namespace.
	ClusterID string `envconfig:"CLUSTER_ID"`
	// ClusterDomain is the cluster's DNS domain, in the search path of
	// ClusterFirst pods (the kubelet's --cluster-domain); empty means the
	// zone the cluster's CoreDNS serves (ConfigMap kube-system/coredns),
	// else cluster.local.
	ClusterDomain string `envconfig:"CLUSTER_DOMAIN"`
	// ClusterDNS are the resolvers of ClusterFirst pods (comma-separated
	// IPs, the kubelet's --cluster-dns); empty means the ClusterIP of
	// ClusterDNSService.
	ClusterDNS []string `envconfig:"CLUSTER_DNS"`
	// ClusterDNSService is the cluster DNS Service, namespace/name.
	ClusterDNSService string `envconfig:"CLUSTER_DNS_SERVICE" default:"kube-system/kube-dns"`
	// NodeName is the name of the virtual node, or with VIRTUAL_NODE_COUNT
	// above 1 the prefix of the names <name>-0..<name>-N-1. Unset, it is
	// the pod name when that is a StatefulSet ordinal pod (the seeds'
	// virtual-node-eci-0..N-1 form: pod virtual-node-eci-2 serves node
	// virtual-node-eci-2), else DefaultNodeName.
	NodeName string `envconfig:"VIRTUAL_NODE_NAME"`
	// NodeCount is how many virtual nodes the replicas of this controller
	// share (VIRTUAL_NODE_COUNT): each node is run by exactly one replica
	// at a time, the holder of its Lease, so replicas share the load and
	// take over the nodes of a replica that died.
	NodeCount int `envconfig:"VIRTUAL_NODE_COUNT" default:"1"`
	// PodName is this replica's identity in the node Leases (POD_NAME,
	// from the downward API); empty means the hostname, which in a pod is
	// the pod name. Two live replicas must never share one.
	PodName string `envconfig:"POD_NAME"`
	// PodNamespace is the namespace of the ownership Leases
	// (POD_NAMESPACE, the controller's own namespace).
	PodNamespace string `envconfig:"POD_NAMESPACE" default:"kube-system"`
	// LeaseDuration is how long a node's ownership Lease stays valid
	// without renewal: a dead replica's nodes are taken over after it.
	LeaseDuration time.Duration `envconfig:"VIRTUAL_NODE_LEASE_DURATION" default:"15s"`
	// RenewDeadline is how long the owner keeps retrying a renewal before
	// it stops the node; it must be shorter than LeaseDuration so the node
	// is stopped before anyone else may take it.
	RenewDeadline time.Duration `envconfig:"VIRTUAL_NODE_LEASE_RENEW_DEADLINE" default:"10s"`
	// RetryPeriod is how often Leases are renewed and free ones tried.
	RetryPeriod time.Duration `envconfig:"VIRTUAL_NODE_LEASE_RETRY_PERIOD" default:"2s"`
	// NodeIP is the address the apiserver dials for logs, exec, stats and
	// its node proxy (the Node's InternalIP). Unset, it is this host's
	// first address other than loopback and link-local (ChooseNodeIP; in
	// a pod that is the pod IP, which the chart passes explicitly from
	// status.podIP), else LoopbackNodeIP.
	NodeIP string `envconfig:"VIRTUAL_NODE_IP"`
	// NodeIPDetected says VIRTUAL_NODE_IP was unset and NodeIP was chosen
	// from the host's interfaces (see CheckNodeIP).
	NodeIPDetected bool `ignored:"true"`
	// ListenIP restricts the kubelet API to one local address; empty means
	// every interface.
	ListenIP string `envconfig:"KUBELET_LISTEN_IP"`
	// KubeletPort is the TLS port of the kubelet API (logs, exec, stats).
	KubeletPort int `envconfig:"KUBELET_PORT" default:"10250"`
	// MetricsAddr serves Prometheus /metrics, /healthz (the probes) and,
	// with PprofEnabled, /debug/pprof, without credentials; nothing about
	// pods (specs, stats, logs) is served there, only on the authenticated
	// kubelet port. Every interface by default: the kubelet's probes and
	// Prometheus reach a pod on its pod IP.
	MetricsAddr string `envconfig:"METRICS_ADDR" default:":10255"`
	// Kubeconfig is the kubeconfig path; empty means in-cluster config.
	Kubeconfig string `envconfig:"KUBECONFIG"`
	// ServingCert and ServingKey are the kubelet API's TLS pair; empty means
	// a self-signed pair made at start-up.
	ServingCert string `envconfig:"KUBELET_SERVING_CERT"`
	ServingKey  string `envconfig:"KUBELET_SERVING_KEY"`
	// ClientCA verifies client certificates (the apiserver's kubelet client
	// cert) on the kubelet API; empty means the CA of the kubeconfig.
	ClientCA string `envconfig:"KUBELET_CLIENT_CA"`
	// PodCapacity is the node's pod capacity (the docs recommend 3,000).
	PodCapacity int `envconfig:"ECI_POD_CAPACITY" default:"3000"`
	// CPUCapacity and MemoryCapacity are what the node advertises.
	CPUCapacity    string `envconfig:"ECI_CPU_CAPACITY" default:"20000"`
	MemoryCapacity string `envconfig:"ECI_MEMORY_CAPACITY" default:"80Ti"`
	// EphemeralStorageCapacity is the ephemeral-storage the node
	// advertises, so pods that request some are scheduled (each group has
	// 30 GiB free and can add more, see translate.ephemeralStorage).
	EphemeralStorageCapacity string `envconfig:"ECI_EPHEMERAL_STORAGE_CAPACITY" default:"1Pi"`
	// StatusInterval is how often changed group statuses are fetched.
	StatusInterval time.Duration `envconfig:"ECI_STATUS_INTERVAL" default:"2s"`
	// FastStatusInterval replaces StatusInterval while any pod of the node
	// waits for its group to start, so a new pod is seen Running soon after
	// the cloud starts it; a node with nothing starting polls at the slow
	// rate whatever its pod count.
	FastStatusInterval time.Duration `envconfig:"ECI_STATUS_FAST_INTERVAL" default:"250ms"`
	// StatusCallRate bounds the DescribeContainerGroupStatus calls per
	// second the fast poll may bring the node up to, on average, however
	// many pods start or fail to (a pod is polled fast for its first
	// minute only), besides provider.FastCallsPerStart for each group
	// created (so a node that creates pods sees them start within the
	// fast interval).
	StatusCallRate float64 `envconfig:"ECI_STATUS_CALL_RATE" default:"1"`
	// ResyncInterval is how often all groups are listed to find lost ones.
	ResyncInterval time.Duration `envconfig:"ECI_RESYNC_INTERVAL" default:"60s"`
	// CloudUnavailableGrace is how long the ECI API may refuse the
	// AccessKey or not answer before the Node shows
	// ContainerInstanceAPI=False and the NoSchedule taint
	// virtual-kubelet.io/cloud-unavailable.
	CloudUnavailableGrace time.Duration `envconfig:"ECI_API_UNAVAILABLE_GRACE" default:"60s"`
	// TokenRefreshFraction is the share of a projected service-account
	// token's lifetime after which it is renewed in the group.
	TokenRefreshFraction float64 `envconfig:"SA_TOKEN_REFRESH_FRACTION" default:"0.8"`
	// TLSBootstrap (TLS_BOOTSTRAP_ENABLED, the console's TlsBootstrapEnabled)
	// treats KUBECONFIG as a bootstrap kubeconfig (`vnodectl kubeconfig
	// --mode bootstrap`): the controller asks for a client certificate
	// (approved by vnode-approver), keeps it in CertDir so a restart does not
	// bootstrap again, and renews it before it expires.
	TLSBootstrap bool `envconfig:"TLS_BOOTSTRAP_ENABLED" default:"false"`
	// CertDir keeps the bootstrapped client certificate; mount a volume
	// there so restarts reuse it.
	CertDir string `envconfig:"VNODE_CERT_DIR" default:"/var/lib/ack-virtual-node/pki"`
	// KubeAPIQPS and KubeAPIBurst rate-limit the controller's requests to
	// the apiserver. Each pod costs about ten requests (status updates,
	// annotations, events, service-account tokens), so client-go's default
	// of 5/s would cap a node at one new pod every two seconds.
	KubeAPIQPS   float32 `envconfig:"KUBE_API_QPS" default:"100"`
	KubeAPIBurst int     `envconfig:"KUBE_API_BURST" default:"200"`
	// ECIQuotaScale multiplies the client-side rate limits, which are the
	// published ECI API quotas: raise it when the account's quotas were
	// raised, lower it when other tools share them; 0 turns the client
	// limits off and leaves pacing to the cloud's Throttling answers.
	ECIQuotaScale float64 `envconfig:"ECI_API_QUOTA_SCALE" default:"1"`
	// ECIQuotaShare is this cluster's fraction of the account's ECI API
	// quotas (after ECI_API_QUOTA_SCALE), for several clusters (or several
	// node sets) on one account: the replicas of one Deployment split it
	// among themselves through their Leases, but they do not see other
	// clusters; give each cluster its part by hand (e.g. 0.5 for two).
	ECIQuotaShare float64 `envconfig:"ECI_API_QUOTA_SHARE" default:"1"`
	// PodSyncWorkers is how many pods each virtual node creates, deletes
	// and reports status for at once. A create waits on the cloud (about a
	// second), so a few workers cap a node at a few pods per second.
	PodSyncWorkers int `envconfig:"POD_SYNC_WORKERS" default:"64"`
	// PprofEnabled serves Go's /debug/pprof profiles on METRICS_ADDR, for
	// finding what a busy controller spends its CPU and memory on.
	PprofEnabled bool `envconfig:"PPROF_ENABLED" default:"false"`
	// MemoryLimitBytes is the container's memory limit (the chart sets it
	// from the downward API, limits.memory); the controller keeps its heap
	// within 90 % of it unless GOMEMLIMIT is set (cmd/virtual-node). 0: none.
	MemoryLimitBytes int64 `envconfig:"MEMORY_LIMIT_BYTES"`
	// NodeLabels are extra labels of the virtual node (VIRTUAL_NODE_LABELS,
	// "key=value,key=value"; see console.go).
	NodeLabels string `envconfig:"VIRTUAL_NODE_LABELS"`
	// NodeTaints are extra taints of the virtual node, and the removal of
	// its default taint (VIRTUAL_NODE_TAINTS, "key[=value]:Effect,...",
	// "virtual-kubelet.io/provider-" removes the default; see console.go).
	NodeTaints string `envconfig:"VIRTUAL_NODE_TAINTS"`
	// Tags are tags of every container group (ECI_TAGS, "key:value,..."),
	// besides the controller's own; the eci-profile key tags replaces them.
	Tags string `envconfig:"ECI_TAGS"`
	// ResourceGroupID is the resource group of new container groups
	// (ECI_RESOURCE_GROUP_ID, rg-...; empty: the account's default); the
	// eci-profile key resourceGroupId replaces it.
	ResourceGroupID string `envconfig:"ECI_RESOURCE_GROUP_ID"`
	// LegacyNodes (VIRTUAL_NODE_LEGACY_NAMES, comma-separated) are nodes of
	// an earlier Deployment form that ordinal 0 of the StatefulSet keeps
	// serving besides its own, so a migration keeps their pods and groups
	// (see StatefulSetOrdinal). Other pods ignore it; the drain includes it.
	LegacyNodes []string `envconfig:"VIRTUAL_NODE_LEGACY_NAMES"`
	// ScaleDownTimeout bounds the drain of a StatefulSet ordinal pod that
	// is scaled away (VIRTUAL_NODE_SCALE_DOWN_TIMEOUT): its pods are
	// deleted and its groups waited for (two thirds of it), then the groups
	// left are deleted (the rest). Keep the pod's
	// terminationGracePeriodSeconds above it.
	ScaleDownTimeout time.Duration `envconfig:"VIRTUAL_NODE_SCALE_DOWN_TIMEOUT" default:"2m"`
	// StatefulSet and Ordinal are derived, not read: the StatefulSet whose
	// ordinal pod this replica is when its node is named after the pod
	// (VIRTUAL_NODE_NAME unset), and the pod's ordinal.
	StatefulSet string `ignored:"true"`
	Ordinal     int    `ignored:"true"`
	// ImageCacheController runs the ImageCache controller (pkg/imagecache)
	// on the replica that holds the first virtual node
	// (IMAGE_CACHE_CONTROLLER; the chart sets it from
	// imageCache.controller, default true there).
	ImageCacheController bool `envconfig:"IMAGE_CACHE_CONTROLLER" default:"false"`
}

var (
	vswitchRE = regexp.MustCompile(`^vsw-[a-z0-9-]+$`)
	sgRE      = regexp.MustCompile(`^sg-[a-z0-9-]+$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2,}-[a-z0-9-]+$`)
	nodeRE    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
	nsRE      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// DefaultNodeName is the node name when VIRTUAL_NODE_NAME is unset and the
// pod is not a StatefulSet ordinal pod.
const DefaultNodeName = "virtual-kubelet"

// MaxNodeCount bounds VIRTUAL_NODE_COUNT: every node costs informers and a
// kubelet port in each replica that runs it.
const MaxNodeCount = 100

// statefulSetPodRE matches a StatefulSet pod name, <statefulset>-<ordinal>
// (ordinals have no leading zeros).
var statefulSetPodRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?-(0|[1-9][0-9]*)$`)

// Load reads the environment, fills what is derived from it (the replica's
// identity, the node name of a StatefulSet ordinal pod) and validates the
// result.
func Load() (*Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	// A comma-separated list read from the environment may carry spaces
	// and empty items ("vsw-a, vsw-b,"); a list set in code is taken as is.
	c.LegacyNodes = trimList(c.LegacyNodes)
	var vsw []string
	for _, v := range c.VSwitches {
		if v = strings.TrimSpace(v); v != "" {
			vsw = append(vsw, v)
		}
	}
	c.VSwitches = vsw
	c.SecurityGroup = strings.TrimSpace(c.SecurityGroup)
	if c.NodeIP = strings.TrimSpace(c.NodeIP); c.NodeIP == "" {
		c.NodeIP, _ = detectNodeIP(hostInterfaces)
		c.NodeIPDetected = true
	}
	// In a pod the hostname is the pod name; outside one (a developer's
	// machine) a hostname such as ip-10-0-0-1 must not become a node name.
	_, inPod := os.LookupEnv("KUBERNETES_SERVICE_HOST")
	inPod = inPod && os.Getenv("KUBERNETES_SERVICE_HOST") != ""
	explicitPod := c.PodName != ""
	if c.PodName == "" {
		c.PodName, _ = os.Hostname()
	}
	if c.NodeName == "" {
		c.NodeName = DefaultNodeName
		if (explicitPod || inPod) && c.NodeCount == 1 {
			if n, ok := StatefulSetNodeName(c.PodName); ok {
				c.NodeName = n
				c.StatefulSet, c.Ordinal, _ = StatefulSetOrdinal(c.PodName)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Defaults returns the configuration an empty environment gives outside a
// pod: every field's `default` tag applied, this host's name as the
// replica's identity and its first address other than loopback as the
// node's (VIRTUAL_NODE_IP unset), the rest zero. Code that builds a
// configuration (tests, the benchmark) starts from it and sets what it
// needs, so Validate never has to guess what a zero meant.
func Defaults() *Config {
	c := &Config{NodeName: DefaultNodeName, NodeIPDetected: true}
	c.PodName, _ = os.Hostname()
	c.NodeIP, _ = detectNodeIP(hostInterfaces)
	v := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		def, ok := v.Type().Field(i).Tag.Lookup("default")
		if !ok {
			continue
		}
		if err := setDefault(v.Field(i), def); err != nil {
			// The tags are constants of this file; TestDefaults parses each.
			panic(fmt.Sprintf("config: default of %s: %v", v.Type().Field(i).Name, err))
		}
	}
	return c
}

// setDefault parses def into f for the kinds Config uses.
func setDefault(f reflect.Value, def string) error {
	switch {
	case f.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(def)
		f.SetInt(int64(d))
		return err
	case f.Kind() == reflect.String:
		f.SetString(def)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(def)
		f.SetBool(b)
		return err
	case f.Kind() == reflect.Int:
		n, err := strconv.Atoi(def)
		f.SetInt(int64(n))
		return err
	case f.Kind() == reflect.Float32 || f.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(def, f.Type().Bits())
		f.SetFloat(x)
		return err
	default:
		return fmt.Errorf("unsupported kind %s", f.Kind())
	}
	return nil
}

// Validate checks every value and names the environment variable and the fix
// in its error. It never changes c: a configuration built in code starts
// from Defaults().
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	vsw := c.VSwitches
	switch {
	case len(vsw) == 0:
		add("ECI_VSWITCH is empty: set it to 1-10 comma-separated vSwitch ids, e.g. vsw-aaa,vsw-bbb")
	case len(vsw) > 10:
		add("ECI_VSWITCH has %d vSwitches: ECI accepts at most 10", len(vsw))
	}
	seen := map[string]bool{}
	for _, v := range vsw {
		if !vswitchRE.MatchString(v) {
			add("ECI_VSWITCH: %q is not a vSwitch id (expected vsw-...)", v)
		}
		if seen[v] {
			add("ECI_VSWITCH: %q is listed twice", v)
		}
		seen[v] = true
	}
	if c.SecurityGroup == "" {
		add("ECI_SECURITY_GROUP is empty: set it to the security group id of new ECI pods, e.g. sg-xxx")
	} else if !sgRE.MatchString(c.SecurityGroup) {
		add("ECI_SECURITY_GROUP: %q is not a security group id (expected sg-...)", c.SecurityGroup)
	}
	if c.Region == "" {
		add("ECI_REGION is empty: set it to the region of the vSwitches, e.g. cn-hangzhou")
	} else if !regionRE.MatchString(c.Region) {
		add("ECI_REGION: %q is not a region id (expected e.g. cn-hangzhou)", c.Region)
	}
	if c.KubeProxyImage != "" && strings.ContainsAny(c.KubeProxyImage, " \t\n") {
		add("ECI_KUBE_PROXY_IMAGE: %q is not an image reference: set e.g. %s, or leave it empty for the regional image of the cluster's version", c.KubeProxyImage, KubeProxyImageFor("cn-hangzhou", "v1.30.1-aliyun.1"))
	}
	if c.APIServerURL != "" {
		if u, err := url.Parse(c.APIServerURL); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			add("KUBERNETES_APISERVER_URL: %q is not an https URL of the API server: set the address ECI pods in the VPC reach it at, e.g. https://192.168.0.10:6443, or leave it empty for the controller's own", c.APIServerURL)
		}
	}
	if c.ClusterDomain != "" {
		if errs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(errs) > 0 {
			add("CLUSTER_DOMAIN: %q is not a DNS domain (%s): set the cluster's domain, e.g. cluster.local, or leave it empty to read it from the cluster's CoreDNS", c.ClusterDomain, strings.Join(errs, "; "))
		}
	}
	for _, ip := range c.ClusterDNS {
		if net.ParseIP(ip) == nil {
			add("CLUSTER_DNS: %q is not an IP address: set comma-separated resolver IPs, e.g. 10.96.0.10, or leave it empty for the ClusterIP of CLUSTER_DNS_SERVICE", ip)
		}
	}
	if ns, name, ok := strings.Cut(c.ClusterDNSService, "/"); !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1035Label(name)) > 0 {
		add("CLUSTER_DNS_SERVICE: %q is not namespace/name of a Service: set e.g. kube-system/kube-dns", c.ClusterDNSService)
	}
	if !nodeRE.MatchString(c.NodeName) {
		add("VIRTUAL_NODE_NAME: %q is not a valid node name (lower-case letters, digits, '-' and '.')", c.NodeName)
	} else if c.NodeCount > 1 && len(c.NodeName)+1+len(strconv.Itoa(c.NodeCount-1)) > 253 {
		add("VIRTUAL_NODE_NAME: %q is too long to append -<index> for VIRTUAL_NODE_COUNT=%d (node names have at most 253 characters)", c.NodeName, c.NodeCount)
	}
	if c.NodeCount < 1 || c.NodeCount > MaxNodeCount {
		add("VIRTUAL_NODE_COUNT: %d is out of range: set 1-%d (more nodes for more pods; about 3,000 pods per node)", c.NodeCount, MaxNodeCount)
	}
	if c.PodName == "" {
		add("POD_NAME is empty and the hostname is unknown: set POD_NAME from the downward API (fieldRef metadata.name)")
	} else if len(c.PodName) > 253 {
		add("POD_NAME: %q is longer than 253 characters", c.PodName)
	}
	if !nsRE.MatchString(c.PodNamespace) {
		add("POD_NAMESPACE: %q is not a namespace name (lower-case letters, digits and '-'); set it from the downward API (fieldRef metadata.namespace)", c.PodNamespace)
	}
	switch {
	case c.LeaseDuration < time.Second:
		add("VIRTUAL_NODE_LEASE_DURATION: %s is too short (minimum 1s; Leases count whole seconds)", c.LeaseDuration)
	case c.RenewDeadline <= 0 || c.RenewDeadline >= c.LeaseDuration:
		add("VIRTUAL_NODE_LEASE_RENEW_DEADLINE: %s must be positive and shorter than VIRTUAL_NODE_LEASE_DURATION (%s), so a replica that cannot renew stops its nodes before another may take them", c.RenewDeadline, c.LeaseDuration)
	case c.RetryPeriod <= 0 || float64(c.RetryPeriod)*1.2 >= float64(c.RenewDeadline):
		add("VIRTUAL_NODE_LEASE_RETRY_PERIOD: %s must be positive and below VIRTUAL_NODE_LEASE_RENEW_DEADLINE (%s) / 1.2, so a renewal can be retried before the deadline", c.RetryPeriod, c.RenewDeadline)
	}
	if net.ParseIP(c.NodeIP) == nil {
		add("VIRTUAL_NODE_IP: %q is not an IP address: set the address the apiserver reaches this controller at (in a pod: status.podIP), or leave it unset for this host's first address other than loopback", c.NodeIP)
	}
	if c.KubeletPort < 1 || c.KubeletPort > 65535 {
		add("KUBELET_PORT: %d is not a TCP port", c.KubeletPort)
	} else if c.NodeCount > 1 && c.KubeletPort+c.NodeCount-1 > 65535 {
		add("KUBELET_PORT: %d + VIRTUAL_NODE_COUNT (%d) runs past port 65535 (node i listens on KUBELET_PORT+i)", c.KubeletPort, c.NodeCount)
	} else if n := c.nodeTotal(); n > 1 && c.KubeletPort+n-1 > 65535 {
		add("KUBELET_PORT: %d + the %d nodes of ordinal 0 (its own and VIRTUAL_NODE_LEGACY_NAMES) runs past port 65535 (node i listens on KUBELET_PORT+i)", c.KubeletPort, n)
	}
	errs = append(errs, c.validateStatefulSet()...)
	if host, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
		add("METRICS_ADDR: %q is not host:port (%v): set e.g. :10255 (every interface, as the probes and Prometheus need in a pod)", c.MetricsAddr, err)
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		add("METRICS_ADDR: %q has no TCP port 1-65535: set e.g. %s", c.MetricsAddr, net.JoinHostPort(host, "10255"))
	} else if c.KubeletPort <= p && p < c.KubeletPort+max(c.NodeCount, c.nodeTotal(), 1) {
		add("METRICS_ADDR: port %d is the kubelet API port of node %d (KUBELET_PORT+%d): set another, e.g. %s", p, p-c.KubeletPort, p-c.KubeletPort, net.JoinHostPort(host, "10255"))
	}
	if c.PodCapacity < 1 {
		add("ECI_POD_CAPACITY: must be at least 1, got %d", c.PodCapacity)
	}
	if q, err := resource.ParseQuantity(c.CPUCapacity); err != nil || q.Sign() <= 0 {
		add("ECI_CPU_CAPACITY: %q is not a positive quantity: set the CPU the node advertises, e.g. 20000 (cores) or 500m", c.CPUCapacity)
	}
	if q, err := resource.ParseQuantity(c.EphemeralStorageCapacity); err != nil || q.Sign() <= 0 {
		add("ECI_EPHEMERAL_STORAGE_CAPACITY: %q is not a positive quantity: set the ephemeral-storage the node advertises, e.g. 1Pi or 100Ti", c.EphemeralStorageCapacity)
	}
	if q, err := resource.ParseQuantity(c.MemoryCapacity); err != nil || q.Sign() <= 0 {
		add("ECI_MEMORY_CAPACITY: %q is not a positive quantity: set the memory the node advertises, e.g. 80Ti or 512Gi", c.MemoryCapacity)
	}
	if c.StatusInterval < 100*time.Millisecond {
		add("ECI_STATUS_INTERVAL: %s is too short (minimum 100ms)", c.StatusInterval)
	}
	if c.FastStatusInterval < 100*time.Millisecond || c.FastStatusInterval > c.StatusInterval {
		add("ECI_STATUS_FAST_INTERVAL: %s must be between 100ms and ECI_STATUS_INTERVAL (%s)", c.FastStatusInterval, c.StatusInterval)
	}
	if c.StatusCallRate < 0.1 || c.StatusCallRate > 50 {
		add("ECI_STATUS_CALL_RATE: %g is outside 0.1-50 (DescribeContainerGroupStatus calls a second the fast poll may reach; the account has 166/s for all its nodes), e.g. 1", c.StatusCallRate)
	}
	if c.CloudUnavailableGrace < time.Second || c.CloudUnavailableGrace > time.Hour {
		add("ECI_API_UNAVAILABLE_GRACE: %s must be between 1s and 1h (how long the ECI API may refuse the AccessKey or not answer before new pods are kept off the node), e.g. 60s", c.CloudUnavailableGrace)
	}
	if c.ResyncInterval < c.StatusInterval {
		add("ECI_RESYNC_INTERVAL: %s must not be shorter than ECI_STATUS_INTERVAL (%s)", c.ResyncInterval, c.StatusInterval)
	}
	if c.TokenRefreshFraction <= 0 || c.TokenRefreshFraction >= 1 {
		add("SA_TOKEN_REFRESH_FRACTION: %v must be between 0 and 1 (e.g. 0.8 renews tokens at 80%% of their lifetime)", c.TokenRefreshFraction)
	}
	if c.TLSBootstrap && c.Kubeconfig == "" {
		add("TLS_BOOTSTRAP_ENABLED=true needs KUBECONFIG: set it to the bootstrap kubeconfig written by `vnodectl kubeconfig --mode bootstrap`")
	}
	if c.TLSBootstrap && strings.TrimSpace(c.CertDir) == "" {
		add("VNODE_CERT_DIR is empty: set it to a writable directory (a volume) for the bootstrapped certificate")
	}
	if c.KubeAPIQPS <= 0 {
		add("KUBE_API_QPS: %v must be positive (requests per second to the apiserver, e.g. 100)", c.KubeAPIQPS)
	}
	if c.KubeAPIBurst < 1 || float32(c.KubeAPIBurst) < c.KubeAPIQPS {
		add("KUBE_API_BURST: %d must be at least 1 and not below KUBE_API_QPS (%v)", c.KubeAPIBurst, c.KubeAPIQPS)
	}
	if c.ECIQuotaScale < 0 {
		add("ECI_API_QUOTA_SCALE: %v must not be negative (1 keeps the published quotas, 0 turns client-side limits off)", c.ECIQuotaScale)
	}
	if !(c.ECIQuotaShare > 0 && c.ECIQuotaShare <= 1) {
		add("ECI_API_QUOTA_SHARE: %v is out of range: set this cluster's fraction of the account's ECI API quotas, above 0 and at most 1 (1 when it is the only cluster on the account, 0.5 for each of two)", c.ECIQuotaShare)
	}
	if c.PodSyncWorkers < 1 || c.PodSyncWorkers > 1000 {
		add("POD_SYNC_WORKERS: %d is out of range: set 1-1000 (pods each node works on at once, e.g. 64)", c.PodSyncWorkers)
	}
	errs = append(errs, c.consoleProblems()...)
	if (c.ServingCert == "") != (c.ServingKey == "") {
		add("KUBELET_SERVING_CERT and KUBELET_SERVING_KEY must be set together")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// StatefulSetNodeName returns the node a StatefulSet ordinal pod serves: its
// own name (pod virtual-node-eci-2 serves node virtual-node-eci-2), as the
// seeds' `kubectl -n kube-system scale statefulset virtual-node-eci` form
// expects. ok is false for names that are not <name>-<ordinal>.
func StatefulSetNodeName(podName string) (string, bool) {
	if len(podName) > 253 || !statefulSetPodRE.MatchString(podName) {
		return "", false
	}
	return podName, true
}

// NodeNames are the virtual nodes the replicas share: NodeName itself when
// NodeCount is 1, else NodeName-0 .. NodeName-<NodeCount-1>. Ordinal 0 of
// a StatefulSet serves its own node and then the LegacyNodes.
func (c *Config) NodeNames() []string {
	if c.NodeCount <= 1 {
		if c.StatefulSet != "" && c.Ordinal == 0 {
			return append([]string{c.NodeName}, c.LegacyNodes...)
		}
		return []string{c.NodeName}
	}
	names := make([]string, c.NodeCount)
	for i := range names {
		names[i] = c.NodeName + "-" + strconv.Itoa(i)
	}
	return names
}

// ForNode returns a copy of c for the index-th of NodeNames: its name and
// kubelet port (KUBELET_PORT + index, advertised in the node's
// daemonEndpoints, so nodes run by one replica never share a port).
func (c *Config) ForNode(index int) *Config {
	n := *c
	n.NodeName = c.NodeNames()[index]
	n.KubeletPort = c.KubeletPort + index
	n.NodeCount = 1
	return &n
}

// KubeProxyImageRegistry is the vendor's regional registry (VPC address)
// that DefaultKubeProxyImage pulls kube-proxy from; %s is the region.
const KubeProxyImageRegistry = "registry-%s-vpc.ack.aliyuncs.com/acs/kube-proxy"

// KubeProxyImageFor is the default of ECI_KUBE_PROXY_IMAGE: the vendor's
// kube-proxy image in the region's registry (VPC address, so pulls stay in
// the VPC), tagged with the cluster's version. ACK clusters report their
// version in the image's form (v1.30.1-aliyun.1) and it is used as is;
// other clusters get the same major.minor.patch with the vendor's first
// patch suffix (v1.30.14 gives v1.30.14-aliyun.1). Where that tag is not
// published, set ECI_KUBE_PROXY_IMAGE.
func KubeProxyImageFor(region, gitVersion string) string {
	v := strings.TrimPrefix(strings.TrimSpace(gitVersion), "v")
	core, suffix, _ := strings.Cut(v, "-")
	// Build metadata (+...) never belongs in a tag.
	core, _, _ = strings.Cut(core, "+")
	suffix, _, _ = strings.Cut(suffix, "+")
	tag := "v" + core
	if strings.HasPrefix(suffix, "aliyun.") {
		tag += "-" + suffix
	} else {
		tag += "-aliyun.1"
	}
	return fmt.Sprintf(KubeProxyImageRegistry, region) + ":" + tag
}
