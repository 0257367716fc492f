package version_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ack-virtual-node/ack-virtual-node"

// TestSmallBinariesLinkNoProvider checks what the webhook, the approver and
// vnodectl link now that they read their version from this package instead
// of pkg/virtualnode: not the provider, not virtual-kubelet, and (webhook
// and approver) not the ECI SDK. vnodectl links the SDK through pkg/eci
// only, for doctor's credential check against the ECI API.
func TestSmallBinariesLinkNoProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module's dependencies")
	}
	noController := []string{module + "/pkg/provider", module + "/pkg/virtualnode", "github.com/virtual-kubelet/"}
	noCloud := append([]string{module + "/pkg/eci", "github.com/aliyun/"}, noController...)
	tests := []struct {
		cmd    string
		banned []string
	}{
		{"vnode-webhook", noCloud},
		{"vnode-approver", noCloud},
		{"vnodectl", noController},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			deps := listDeps(t, module+"/cmd/"+tt.cmd)
			if _, ok := deps[module+"/pkg/version"]; !ok {
				t.Fatalf("%s does not depend on pkg/version: is `go list` reading this module?", tt.cmd)
			}
			for pkg, imports := range deps {
				for _, b := range tt.banned {
					if strings.HasPrefix(pkg, b) {
						t.Errorf("%s links %s", tt.cmd, pkg)
					}
				}
				// The SDK may only come in through pkg/eci.
				if strings.HasPrefix(pkg, "github.com/aliyun/") || pkg == module+"/pkg/eci" {
					continue
				}
				for _, imp := range imports {
					if strings.HasPrefix(imp, "github.com/aliyun/alibaba-cloud-sdk-go") {
						t.Errorf("%s imports the ECI SDK (%s) directly; only pkg/eci may", pkg, imp)
					}
				}
			}
		})
	}
}

// listDeps returns every package pkg links with the packages each imports.
func listDeps(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		deps[f[0]] = f[1:]
	}
	return deps
}
