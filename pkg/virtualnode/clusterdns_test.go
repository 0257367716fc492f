package virtualnode

import "testing"

func TestCorefileDomain(t *testing.T) {
	for _, tc := range []struct{ name, corefile, want string }{
		{"kubeadm", ".:53 {\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n    }\n}\n", "cluster.local"},
		{"custom domain, reverse zone first", ".:53 {\n  kubernetes in-addr.arpa corp.example. ip6.arpa\n}\n", "corp.example"},
		{"commented out", ".:53 {\n  # kubernetes old.example\n  kubernetes new.example {\n  }\n}\n", "new.example"},
		{"no kubernetes plugin", ".:53 {\n  forward . /etc/resolv.conf\n}\n", ""},
		{"only reverse zones", ".:53 {\n  kubernetes in-addr.arpa ip6.arpa\n}\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := corefileDomain(tc.corefile); got != tc.want {
				t.Errorf("corefileDomain = %q, want %q", got, tc.want)
			}
		})
	}
}
