package kubeversion

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		major, minor, git string
		ok                bool
	}{
		{"1", "15", "v1.15.12", false},
		{"1", "16", "v1.16.0", true},
		{"1", "20+", "v1.20.15-eks-1", true},
		{"1", "30", "v1.30.1-aliyun.1", true},
		{"1", "31", "v1.31.0", false},
		{"2", "0", "v2.0.0", false},
		{"", "", "v1.18.20", true}, // only gitVersion
		{"", "", "v1.14.0", false},
	}
	for _, c := range cases {
		err := Check(c.major, c.minor, c.git)
		if (err == nil) != c.ok {
			t.Errorf("Check(%q, %q, %q) = %v, want ok=%v", c.major, c.minor, c.git, err, c.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), c.git) || !strings.Contains(err.Error(), "1.16 to 1.30")) {
			t.Errorf("Check(%q): %q does not name the version and the range", c.git, err)
		}
	}
	if err := Check("", "", "devel"); err == nil || !strings.Contains(err.Error(), `"devel"`) {
		t.Errorf("Check of an unreadable version: %v, want an error naming it", err)
	}
	if ChartConstraint != ">=1.16.0-0 <1.31.0-0" {
		t.Errorf("ChartConstraint %q", ChartConstraint)
	}
	if m := Minors(); len(m) != 15 || m[0] != 16 || m[14] != 30 {
		t.Errorf("Minors() = %v", m)
	}
}

// TestServed spot-checks the table against the deprecation guide's
// removals and the GA releases the issue names.
func TestServed(t *testing.T) {
	cases := []struct {
		group, version, kind string
		minor                int
		want                 bool
	}{
		{"policy", "v1beta1", "PodDisruptionBudget", 20, true},
		{"policy", "v1", "PodDisruptionBudget", 20, false},
		{"policy", "v1", "PodDisruptionBudget", 21, true},
		{"policy", "v1beta1", "PodDisruptionBudget", 25, false},
		{"certificates.k8s.io", "v1beta1", "CertificateSigningRequest", 18, true},
		{"certificates.k8s.io", "v1", "CertificateSigningRequest", 18, false},
		{"certificates.k8s.io", "v1", "CertificateSigningRequest", 19, true},
		{"certificates.k8s.io", "v1beta1", "CertificateSigningRequest", 22, false},
		{"admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", 16, true},
		{"rbac.authorization.k8s.io", "v1beta1", "ClusterRole", 22, false},
	}
	for _, c := range cases {
		got, known := Served(schema.GroupVersionKind{Group: c.group, Version: c.version, Kind: c.kind}, c.minor)
		if !known || got != c.want {
			t.Errorf("Served(%s/%s %s, 1.%d) = %v (known %v), want %v", c.group, c.version, c.kind, c.minor, got, known, c.want)
		}
	}
	if _, known := Served(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, 20); known {
		t.Error("an unlisted kind is reported as known")
	}
}
