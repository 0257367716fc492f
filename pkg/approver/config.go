package approver

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config is the whole configuration of vnode-approver, read from the
// environment so that the Deployment manifest is the single place an
// operator changes it.
type Config struct {
	// Kubeconfig is the kubeconfig path; empty means in-cluster, which is
	// how the approver normally runs.
	Kubeconfig string `envconfig:"KUBECONFIG"`
	// MetricsAddr serves /metrics and /healthz over plain HTTP; empty
	// disables the listener (tests, or when scraping is not wanted).
	MetricsAddr string `envconfig:"APPROVER_METRICS_ADDR" default:":8080"`
	// Organization is the only subject organisation (group) a virtual
	// node's client certificate may carry. It must not be a group with
	// broad built-in rights, since approving it hands them out.
	Organization string `envconfig:"APPROVER_ORGANIZATION" default:"system:vnodes"`
	// CNPrefix prefixes the node name in the certificate's common name:
	// a virtual node named vn1 authenticates as "system:vnode:vn1".
	CNPrefix string `envconfig:"APPROVER_CN_PREFIX" default:"system:vnode:"`
	// Workers is how many CSRs are evaluated concurrently.
	Workers int `envconfig:"APPROVER_WORKERS" default:"2"`
	// ResyncInterval re-evaluates pending CSRs, so that a CSR left alone
	// for missing RBAC is approved once the permission is granted.
	ResyncInterval time.Duration `envconfig:"APPROVER_RESYNC_INTERVAL" default:"5m"`
}

// ConfigFromEnv reads the environment with defaults but does not validate,
// so that command-line flags can override values before Validate.
func ConfigFromEnv() (*Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return &c, nil
}

// LoadConfig reads the environment and validates the result.
func LoadConfig() (*Config, error) {
	c, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// privilegedGroups are groups the approver must never certify: a CSR for
// them would be a privilege escalation, not a virtual node.
var privilegedGroups = map[string]bool{
	"system:masters":       true,
	"system:nodes":         true,
	"system:authenticated": true,
	"system:bootstrappers": true,
}

// Validate checks every value and names the environment variable and the
// fix in its error, so a bad Deployment fails at start and not at the
// first CSR.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			add("APPROVER_METRICS_ADDR: %q is not host:port (%v); use e.g. :8080, or empty to disable", c.MetricsAddr, err)
		}
	}
	switch {
	case strings.TrimSpace(c.Organization) == "":
		add("APPROVER_ORGANIZATION: must not be empty; use the default system:vnodes")
	case privilegedGroups[c.Organization]:
		add("APPROVER_ORGANIZATION: %q is a built-in group with broad rights; approving it would be a privilege escalation, use system:vnodes", c.Organization)
	}
	switch {
	case strings.TrimSpace(c.CNPrefix) == "":
		add("APPROVER_CN_PREFIX: must not be empty (every certificate would be approvable); use the default system:vnode:")
	case !strings.HasSuffix(c.CNPrefix, ":"):
		add("APPROVER_CN_PREFIX: %q must end with ':' so the node name is separated, e.g. system:vnode:", c.CNPrefix)
	case c.CNPrefix == "system:node:":
		add("APPROVER_CN_PREFIX: system:node: is the kubelet's identity, approved by kube-controller-manager; use system:vnode:")
	}
	if c.Workers < 1 || c.Workers > 64 {
		add("APPROVER_WORKERS: %d is outside 1-64", c.Workers)
	}
	if c.ResyncInterval < 0 {
		add("APPROVER_RESYNC_INTERVAL: %s must not be negative; 0 disables re-evaluation", c.ResyncInterval)
	}
	if len(errs) > 0 {
		return errors.New("invalid configuration:\n  " + strings.Join(errs, "\n  "))
	}
	return nil
}

// Policy returns the certificate policy the configuration describes.
func (c *Config) Policy() Policy {
	return Policy{Organization: c.Organization, CNPrefix: c.CNPrefix}
}
