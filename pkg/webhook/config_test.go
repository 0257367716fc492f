package webhook

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigDefaults(t *testing.T) {
	for _, k := range []string{"WEBHOOK_LISTEN_ADDR", "WEBHOOK_NAMESPACE", "WEBHOOK_URL", "WEBHOOK_TIMEOUT_SECONDS", "KUBECONFIG"} {
		t.Setenv(k, "") // restores the variable after the test
		os.Unsetenv(k)
	}
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != ":9443" || c.Namespace != "kube-system" || c.CertSecretName != "ack-virtual-node-webhook-cert" ||
		c.TimeoutSeconds != 3 || c.RenewBefore != 720*time.Hour || c.ProfileName != "eci-profile" {
		t.Errorf("defaults = %+v", c)
	}
	if c.Path() != DefaultPath {
		t.Errorf("path = %q", c.Path())
	}
	want := []string{
		"virtual-node-affinity-admission-controller",
		"virtual-node-affinity-admission-controller.kube-system",
		"virtual-node-affinity-admission-controller.kube-system.svc",
		"virtual-node-affinity-admission-controller.kube-system.svc.cluster.local",
	}
	if !reflect.DeepEqual(c.Hosts(), want) {
		t.Errorf("hosts = %v", c.Hosts())
	}

	t.Setenv("CLUSTER_DOMAIN", "corp.example")
	if c, err := LoadConfig(); err != nil || c.Hosts()[3] != "virtual-node-affinity-admission-controller.kube-system.svc.corp.example" {
		t.Errorf("hosts with CLUSTER_DOMAIN: %v, %v", c.Hosts(), err)
	}
	t.Setenv("CLUSTER_DOMAIN", "Not_A_Domain")
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "CLUSTER_DOMAIN") {
		t.Errorf("invalid CLUSTER_DOMAIN: %v", err)
	}
	t.Setenv("CLUSTER_DOMAIN", "cluster.local")

	t.Setenv("WEBHOOK_TIMEOUT_SECONDS", "three")
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "WEBHOOK_TIMEOUT_SECONDS") {
		t.Errorf("unparsable value: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*Config)
		want string // substring of the error; "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"URL mode", func(c *Config) { c.URL = "https://127.0.0.1:9443/hook"; c.ServiceName = "" }, ""},
		{"bad listen address", func(c *Config) { c.ListenAddr = "9443" }, "WEBHOOK_LISTEN_ADDR"},
		{"bad namespace", func(c *Config) { c.Namespace = "Kube_System" }, "WEBHOOK_NAMESPACE"},
		{"bad service", func(c *Config) { c.ServiceName = "1svc" }, "WEBHOOK_SERVICE_NAME"},
		{"bad service port", func(c *Config) { c.ServicePort = 0 }, "WEBHOOK_SERVICE_PORT"},
		{"bad secret", func(c *Config) { c.CertSecretName = "" }, "WEBHOOK_CERT_SECRET"},
		{"bad configuration name", func(c *Config) { c.ConfigurationName = "A B" }, "WEBHOOK_CONFIGURATION_NAME"},
		{"http URL", func(c *Config) { c.URL = "http://127.0.0.1:9443" }, "WEBHOOK_URL"},
		{"URL with query", func(c *Config) { c.URL = "https://127.0.0.1:9443/x?a=b" }, "WEBHOOK_URL"},
		{"timeout", func(c *Config) { c.TimeoutSeconds = 31 }, "WEBHOOK_TIMEOUT_SECONDS"},
		{"metrics address", func(c *Config) { c.MetricsAddr = "8080" }, "WEBHOOK_METRICS_ADDR"},
		{"renew before validity", func(c *Config) { c.RenewBefore = c.CertValidity }, "WEBHOOK_CERT_VALIDITY"},
		{"CA shorter than cert", func(c *Config) { c.CAValidity = time.Hour }, "WEBHOOK_CA_VALIDITY"},
		{"resync", func(c *Config) { c.ResyncInterval = time.Millisecond }, "WEBHOOK_RESYNC_INTERVAL"},
		{"profile name", func(c *Config) { c.ProfileName = "" }, "ECI_PROFILE_NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.mut(c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	c := testConfig()
	c.URL = "https://127.0.0.1:9443/hook"
	if c.Path() != "/hook" || !reflect.DeepEqual(c.Hosts(), []string{"127.0.0.1"}) {
		t.Errorf("URL mode path %q hosts %v", c.Path(), c.Hosts())
	}
}
