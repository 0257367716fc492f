// Package config loads the ack-virtual-node-controller's configuration from
// environment variables (the names users already set with
// `kubectl -n kube-system edit deployment ack-virtual-node-controller`) and
// validates it once at start-up.
package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
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
	// Region is the Alibaba Cloud region of the vSwitches.
	Region string `envconfig:"ECI_REGION"`
	// Endpoint overrides the ECI endpoint (host[:port] or http(s) URL); the
	// simulator is reached this way.
	Endpoint string `envconfig:"ECI_ENDPOINT"`
	// ClusterID tags every container group so that groups of different
	// clusters never mix; empty means the UID of the kube-system namespace.
	ClusterID string `envconfig:"CLUSTER_ID"`
	// NodeName is the name of the virtual node.
	NodeName string `envconfig:"VIRTUAL_NODE_NAME" default:"virtual-kubelet"`
	// NodeIP is the address the apiserver dials for logs and exec.
	NodeIP string `envconfig:"VIRTUAL_NODE_IP" default:"127.0.0.1"`
	// ListenIP restricts the kubelet API to one local address; empty means
	// every interface.
	ListenIP string `envconfig:"KUBELET_LISTEN_IP"`
	// KubeletPort is the TLS port of the kubelet API (logs, exec, stats).
	KubeletPort int `envconfig:"KUBELET_PORT" default:"10250"`
	// MetricsAddr serves Prometheus metrics and health checks.
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
	// StatusInterval is how often changed group statuses are fetched.
	StatusInterval time.Duration `envconfig:"ECI_STATUS_INTERVAL" default:"2s"`
	// ResyncInterval is how often all groups are listed to find lost ones.
	ResyncInterval time.Duration `envconfig:"ECI_RESYNC_INTERVAL" default:"60s"`
	// TokenRefreshFraction is the share of a projected service-account
	// token's lifetime after which it is renewed in the group.
	TokenRefreshFraction float64 `envconfig:"SA_TOKEN_REFRESH_FRACTION" default:"0.8"`
}

var (
	vswitchRE = regexp.MustCompile(`^vsw-[a-z0-9-]+$`)
	sgRE      = regexp.MustCompile(`^sg-[a-z0-9-]+$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2,}-[a-z0-9-]+$`)
	nodeRE    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
)

// Load reads the environment and validates the result.
func Load() (*Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks every value and names the environment variable and the fix
// in its error.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	var vsw []string
	for _, v := range c.VSwitches {
		if v = strings.TrimSpace(v); v != "" {
			vsw = append(vsw, v)
		}
	}
	c.VSwitches = vsw
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
	c.SecurityGroup = strings.TrimSpace(c.SecurityGroup)
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
	if !nodeRE.MatchString(c.NodeName) {
		add("VIRTUAL_NODE_NAME: %q is not a valid node name (lower-case letters, digits, '-' and '.')", c.NodeName)
	}
	if c.KubeletPort < 1 || c.KubeletPort > 65535 {
		add("KUBELET_PORT: %d is not a TCP port", c.KubeletPort)
	}
	if c.PodCapacity < 1 {
		add("ECI_POD_CAPACITY: must be at least 1, got %d", c.PodCapacity)
	}
	if c.StatusInterval < 100*time.Millisecond {
		add("ECI_STATUS_INTERVAL: %s is too short (minimum 100ms)", c.StatusInterval)
	}
	if c.ResyncInterval < c.StatusInterval {
		add("ECI_RESYNC_INTERVAL: %s must not be shorter than ECI_STATUS_INTERVAL (%s)", c.ResyncInterval, c.StatusInterval)
	}
	if c.TokenRefreshFraction <= 0 || c.TokenRefreshFraction >= 1 {
		add("SA_TOKEN_REFRESH_FRACTION: %v must be between 0 and 1 (e.g. 0.8 renews tokens at 80%% of their lifetime)", c.TokenRefreshFraction)
	}
	if (c.ServingCert == "") != (c.ServingKey == "") {
		add("KUBELET_SERVING_CERT and KUBELET_SERVING_KEY must be set together")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}
