package webhook

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultPath is the HTTP path the admission handler serves.
const DefaultPath = "/mutate-pods"

// Config is the whole configuration of virtual-node-affinity-admission-controller,
// read from the environment (flags of cmd/vnode-webhook override it).
type Config struct {
	// ListenAddr is the TLS address of the admission endpoint.
	ListenAddr string `envconfig:"WEBHOOK_LISTEN_ADDR" default:":9443"`
	// Namespace is the namespace of the release: the Service and the
	// certificate Secret live there.
	Namespace string `envconfig:"WEBHOOK_NAMESPACE" default:"kube-system"`
	// ServiceName is the Service in front of the webhook pods; the serving
	// certificate is issued for its DNS names.
	ServiceName string `envconfig:"WEBHOOK_SERVICE_NAME" default:"virtual-node-affinity-admission-controller"`
	// ServicePort is the Service port the apiserver dials.
	ServicePort int32 `envconfig:"WEBHOOK_SERVICE_PORT" default:"443"`
	// CertSecretName is the Secret holding the CA and serving certificate.
	CertSecretName string `envconfig:"WEBHOOK_CERT_SECRET" default:"ack-virtual-node-webhook-cert"`
	// ConfigurationName is the MutatingWebhookConfiguration this process
	// owns and keeps up to date.
	ConfigurationName string `envconfig:"WEBHOOK_CONFIGURATION_NAME" default:"virtual-node-affinity-admission-controller"`
	// URL switches the clientConfig from the Service to this https URL
	// (out-of-cluster runs and tests, e.g. https://127.0.0.1:9443/mutate-pods);
	// an empty path means DefaultPath. The certificate is issued for its host.
	URL string `envconfig:"WEBHOOK_URL"`
	// ClusterDomain is the cluster's DNS domain, for the Service's fully
	// qualified name in the serving certificate; empty means
	// cluster.local.
	ClusterDomain string `envconfig:"CLUSTER_DOMAIN"`
	// TimeoutSeconds is how long the apiserver waits for an answer before
	// it admits the pod unchanged (failurePolicy Ignore).
	TimeoutSeconds int32 `envconfig:"WEBHOOK_TIMEOUT_SECONDS" default:"3"`
	// MetricsAddr serves /metrics, /healthz and /readyz over plain HTTP;
	// empty disables it.
	MetricsAddr string `envconfig:"WEBHOOK_METRICS_ADDR" default:":8080"`
	// Kubeconfig is the kubeconfig path; empty means in-cluster config.
	Kubeconfig string `envconfig:"KUBECONFIG"`
	// ProfileNamespace is the namespace of the eci-profile ConfigMap.
	ProfileNamespace string `envconfig:"ECI_PROFILE_NAMESPACE" default:"kube-system"`
	// ProfileName is the name of the eci-profile ConfigMap.
	ProfileName string `envconfig:"ECI_PROFILE_NAME" default:"eci-profile"`
	// CAValidity is the lifetime of a new CA.
	CAValidity time.Duration `envconfig:"WEBHOOK_CA_VALIDITY" default:"87600h"`
	// CertValidity is the lifetime of a new serving certificate.
	CertValidity time.Duration `envconfig:"WEBHOOK_CERT_VALIDITY" default:"8760h"`
	// RenewBefore renews a certificate (or the CA) that expires sooner.
	RenewBefore time.Duration `envconfig:"WEBHOOK_CERT_RENEW_BEFORE" default:"720h"`
	// ResyncInterval is how often the certificate and the webhook
	// configuration are checked (renewal, repair of manual edits).
	ResyncInterval time.Duration `envconfig:"WEBHOOK_RESYNC_INTERVAL" default:"1m"`
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

// ConfigFromEnv reads the environment with defaults but does not validate,
// so that command-line flags can override values before Validate.
func ConfigFromEnv() (*Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return &c, nil
}

// Validate checks every value and names the environment variable and the
// fix in its error.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	if _, port, err := net.SplitHostPort(c.ListenAddr); err != nil {
		add("WEBHOOK_LISTEN_ADDR: %q is not host:port (%v); use e.g. :9443", c.ListenAddr, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("WEBHOOK_LISTEN_ADDR: %q has no valid port; use e.g. :9443", c.ListenAddr)
	}
	for _, e := range validation.IsDNS1123Subdomain(c.ClusterDomain) {
		if c.ClusterDomain == "" {
			break
		}
		add("CLUSTER_DOMAIN: %q is not a DNS domain (%s); set the cluster's domain, e.g. cluster.local", c.ClusterDomain, e)
	}
	for _, e := range validation.IsDNS1123Label(c.Namespace) {
		add("WEBHOOK_NAMESPACE: %q is not a namespace name (%s); set it to the release namespace, e.g. kube-system", c.Namespace, e)
	}
	if c.URL == "" {
		for _, e := range validation.IsDNS1035Label(c.ServiceName) {
			add("WEBHOOK_SERVICE_NAME: %q is not a Service name (%s)", c.ServiceName, e)
		}
		if c.ServicePort < 1 || c.ServicePort > 65535 {
			add("WEBHOOK_SERVICE_PORT: %d is not a TCP port", c.ServicePort)
		}
	} else if _, err := c.endpointURL(); err != nil {
		add("WEBHOOK_URL: %v", err)
	}
	for _, e := range validation.IsDNS1123Subdomain(c.CertSecretName) {
		add("WEBHOOK_CERT_SECRET: %q is not a Secret name (%s)", c.CertSecretName, e)
	}
	for _, e := range validation.IsDNS1123Subdomain(c.ConfigurationName) {
		add("WEBHOOK_CONFIGURATION_NAME: %q is not an object name (%s)", c.ConfigurationName, e)
	}
	if c.TimeoutSeconds < 1 || c.TimeoutSeconds > 30 {
		add("WEBHOOK_TIMEOUT_SECONDS: %d is outside 1-30 (the apiserver's limits)", c.TimeoutSeconds)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			add("WEBHOOK_METRICS_ADDR: %q is not host:port (%v); use e.g. :8080, or empty to disable", c.MetricsAddr, err)
		}
	}
	for _, e := range validation.IsDNS1123Label(c.ProfileNamespace) {
		add("ECI_PROFILE_NAMESPACE: %q is not a namespace name (%s)", c.ProfileNamespace, e)
	}
	for _, e := range validation.IsDNS1123Subdomain(c.ProfileName) {
		add("ECI_PROFILE_NAME: %q is not a ConfigMap name (%s)", c.ProfileName, e)
	}
	if c.RenewBefore <= 0 {
		add("WEBHOOK_CERT_RENEW_BEFORE: %s must be positive, e.g. 720h", c.RenewBefore)
	}
	if c.CertValidity <= c.RenewBefore {
		add("WEBHOOK_CERT_VALIDITY: %s must be longer than WEBHOOK_CERT_RENEW_BEFORE (%s), or every check would renew it", c.CertValidity, c.RenewBefore)
	}
	if c.CAValidity < c.CertValidity {
		add("WEBHOOK_CA_VALIDITY: %s must not be shorter than WEBHOOK_CERT_VALIDITY (%s)", c.CAValidity, c.CertValidity)
	}
	if c.ResyncInterval < time.Second {
		add("WEBHOOK_RESYNC_INTERVAL: %s is too short (minimum 1s)", c.ResyncInterval)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// endpointURL parses URL with the apiserver's rules for webhook URLs.
func (c *Config) endpointURL() (*url.URL, error) {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q is not a URL (%w); use e.g. https://127.0.0.1:9443%s", c.URL, err, DefaultPath)
	case u.Scheme != "https":
		return nil, fmt.Errorf("%q must use https (the apiserver only calls webhooks over TLS)", c.URL)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%q has no host", c.URL)
	case u.User != nil, u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("%q must not contain user info, a query or a fragment (the apiserver refuses them)", c.URL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = DefaultPath
	}
	return u, nil
}

// Path is the HTTP path the handler is served at (the URL's path in URL
// mode, DefaultPath otherwise).
func (c *Config) Path() string {
	if c.URL != "" {
		if u, err := c.endpointURL(); err == nil {
			return u.Path
		}
	}
	return DefaultPath
}

// Hosts are the names the serving certificate must be valid for.
func (c *Config) Hosts() []string {
	if c.URL != "" {
		if u, err := c.endpointURL(); err == nil {
			return []string{u.Hostname()}
		}
	}
	svc, ns := c.ServiceName, c.Namespace
	domain := c.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc." + domain}
}
