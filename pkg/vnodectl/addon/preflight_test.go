package addon

import (
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeversion"
)

func TestCheckNetworkValues(t *testing.T) {
	cases := []struct {
		name string
		vals map[string]any
		want []string // substrings, one per expected problem; empty = valid
	}{
		{"valid", map[string]any{"region": "cn-hangzhou", "vSwitches": []any{"vsw-a", "vsw-b"}, "securityGroup": "sg-a"}, nil},
		{"comma-separated string", map[string]any{"region": "cn-hangzhou", "vSwitches": "vsw-a, vsw-b", "securityGroup": "sg-a"}, nil},
		{"all empty", map[string]any{}, []string{"region is empty", "vSwitches is empty", "securityGroup is empty"}},
		{"malformed", map[string]any{"region": "Hangzhou", "vSwitches": []any{"subnet-1"}, "securityGroup": "default"},
			[]string{`region "Hangzhou" is not a region id`, `vSwitches: "subnet-1" is not a vSwitch id`, `securityGroup "default" is not a security group id`}},
		{"too many vSwitches", map[string]any{"region": "cn-hangzhou", "securityGroup": "sg-a",
			"vSwitches": []any{"vsw-1", "vsw-2", "vsw-3", "vsw-4", "vsw-5", "vsw-6", "vsw-7", "vsw-8", "vsw-9", "vsw-10", "vsw-11"}},
			[]string{"vSwitches has 11 entries: ECI accepts at most 10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := checkNetworkValues(tc.vals)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestRenderedControllerEnv reads the controller env back from a rendered
// release manifest, which is what Upgrade compares live edits against.
func TestRenderedControllerEnv(t *testing.T) {
	r, err := Render(map[string]any{"region": "cn-hangzhou", "vSwitches": []any{"vsw-a", "vsw-b"}, "securityGroup": "sg-a", "kubeProxy": false}, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := renderedControllerEnv(r.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"ECI_VSWITCH": "vsw-a,vsw-b", "ECI_SECURITY_GROUP": "sg-a", "ECI_KUBE_PROXY": "false", "ECI_REGION": "cn-hangzhou"} {
		if e := env[name]; e == nil || e.Value != want {
			t.Errorf("%s = %+v, want %q", name, e, want)
		}
		m, ok := editableEnv[name]
		if !ok {
			t.Errorf("%s is not an editable setting", name)
			continue
		}
		// Each editable variable parses back to a value the chart renders
		// to the same string.
		v, err := m.parse(want)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		r2, err := Render(map[string]any{"region": "cn-hangzhou", "vSwitches": []any{"vsw-a", "vsw-b"}, "securityGroup": "sg-a", "kubeProxy": false, m.value: v}, RenderOptions{})
		if err != nil {
			t.Fatalf("%s=%v: %v", m.value, v, err)
		}
		env2, _ := renderedControllerEnv(r2.Manifest)
		if env2[name] == nil || env2[name].Value != want {
			t.Errorf("%s: value %s=%v renders %+v, want %q", name, m.value, v, env2[name], want)
		}
	}
	if env, err := renderedControllerEnv("---\nkind: ConfigMap\nmetadata: {name: x}\n"); err != nil || len(env) != 0 {
		t.Errorf("manifest without the Deployment: %v %v", env, err)
	}
}

// TestChartKubeVersion: the chart's kubeVersion is the supported range of
// pkg/kubeversion (1.16 to 1.30), and Render refuses clusters outside it.
func TestChartKubeVersion(t *testing.T) {
	ch, err := Chart()
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.KubeVersion != kubeversion.ChartConstraint {
		t.Errorf("Chart.yaml kubeVersion %q, want %q (pkg/kubeversion)", ch.Metadata.KubeVersion, kubeversion.ChartConstraint)
	}
	cases := []struct {
		version string
		ok      bool
	}{{"v1.15.12", false}, {"v1.16.0", true}, {"v1.20.15", true}, {"v1.30.1-aliyun.1", true}, {"v1.30.14", true}, {"v1.31.0", false}, {"v1.33.1", false}}
	for _, tc := range cases {
		_, err := Render(map[string]any{"region": "cn-hangzhou", "vSwitches": []any{"vsw-a"}, "securityGroup": "sg-a"}, RenderOptions{KubeVersion: tc.version})
		if (err == nil) != tc.ok {
			t.Errorf("Kubernetes %s: err %v, want ok=%v", tc.version, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "kubeVersion") {
			t.Errorf("Kubernetes %s: error %q does not name kubeVersion", tc.version, err)
		}
	}
}

// TestChartIsFreshPerCall: Helm's upgrade with ReuseValues replaces the
// Values of the chart it is given; a shared chart would carry one
// release's values into the next install (found by running the CLI test
// before the lifecycle test in one process).
func TestChartIsFreshPerCall(t *testing.T) {
	a, err := Chart()
	if err != nil {
		t.Fatal(err)
	}
	a.Values = map[string]any{"region": "cn-leaked"}
	b, err := Chart()
	if err != nil {
		t.Fatal(err)
	}
	if b.Values["region"] != "" {
		t.Errorf("second Chart() sees region %v from the first one's Values", b.Values["region"])
	}
}
