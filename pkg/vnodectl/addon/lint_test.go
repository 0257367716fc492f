package addon

import (
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestChartLint runs `helm lint` (the SDK's linter: Chart.yaml, values,
// schema, templates, manifests against their Kubernetes schemas) and fails
// on any warning, for the default and the everything-on values.
func TestChartLint(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(DefaultRenderKubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range map[string]map[string]any{"minimal": minimal(), "every value": everyValue()} {
		t.Run(name, func(t *testing.T) {
			l := lint.AllWithKubeVersion(filepath.Join("..", "..", "..", "charts", "ack-virtual-node"), vals, DefaultNamespace, kv)
			if len(l.Messages) == 0 {
				t.Fatal("the linter reported nothing at all, not even its INFO lines: it did not run")
			}
			for _, m := range l.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}
