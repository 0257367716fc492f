package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestStatefulSetOrdinal(t *testing.T) {
	for _, tt := range []struct {
		pod     string
		sts     string
		ordinal int
		ok      bool
	}{
		{"virtual-node-eci-0", "virtual-node-eci", 0, true},
		{"virtual-node-eci-12", "virtual-node-eci", 12, true},
		{"web-01", "", 0, false},
		{"virtual-kubelet", "", 0, false},
		{"a-99999999999999999999999", "", 0, false},
	} {
		sts, ord, ok := StatefulSetOrdinal(tt.pod)
		if sts != tt.sts || ord != tt.ordinal || ok != tt.ok {
			t.Errorf("StatefulSetOrdinal(%q) = %q, %d, %v; want %q, %d, %v", tt.pod, sts, ord, ok, tt.sts, tt.ordinal, tt.ok)
		}
	}
}

// TestLoadStatefulSetForm: an ordinal pod knows its StatefulSet and
// ordinal; ordinal 0 alone also serves VIRTUAL_NODE_LEGACY_NAMES, on the
// next kubelet ports; a pod of another form (the drain Job) accepts the
// variable and serves its own nodes only.
func TestLoadStatefulSetForm(t *testing.T) {
	load := func(t *testing.T, env map[string]string) (*Config, error) {
		t.Helper()
		for _, k := range []string{"POD_NAME", "POD_NAMESPACE", "KUBERNETES_SERVICE_HOST", "VIRTUAL_NODE_NAME", "VIRTUAL_NODE_COUNT", "VIRTUAL_NODE_LEGACY_NAMES", "VIRTUAL_NODE_SCALE_DOWN_TIMEOUT"} {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
		for k, v := range map[string]string{"ECI_VSWITCH": "vsw-a", "ECI_SECURITY_GROUP": "sg-1", "ECI_REGION": "cn-hangzhou"} {
			t.Setenv(k, v)
		}
		for k, v := range env {
			t.Setenv(k, v)
		}
		return Load()
	}
	legacy := "virtual-kubelet-0, virtual-kubelet-1"
	c, err := load(t, map[string]string{"POD_NAME": "virtual-node-eci-0", "VIRTUAL_NODE_LEGACY_NAMES": legacy})
	if err != nil {
		t.Fatal(err)
	}
	if c.StatefulSet != "virtual-node-eci" || c.Ordinal != 0 || c.ScaleDownTimeout != 2*time.Minute {
		t.Errorf("StatefulSet %q, Ordinal %d, ScaleDownTimeout %s", c.StatefulSet, c.Ordinal, c.ScaleDownTimeout)
	}
	if got := strings.Join(c.NodeNames(), ","); got != "virtual-node-eci-0,virtual-kubelet-0,virtual-kubelet-1" {
		t.Errorf("ordinal 0 NodeNames = %s", got)
	}
	if n := c.ForNode(2); n.NodeName != "virtual-kubelet-1" || n.KubeletPort != 10252 {
		t.Errorf("ForNode(2) = %s:%d", n.NodeName, n.KubeletPort)
	}
	c, err = load(t, map[string]string{"POD_NAME": "virtual-node-eci-3", "VIRTUAL_NODE_LEGACY_NAMES": legacy})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.NodeNames(), ","); got != "virtual-node-eci-3" || c.Ordinal != 3 {
		t.Errorf("ordinal 3 NodeNames = %s (ordinal %d)", got, c.Ordinal)
	}
	c, err = load(t, map[string]string{"POD_NAME": "ack-virtual-node-drain-x7k2p", "VIRTUAL_NODE_LEGACY_NAMES": "virtual-kubelet"})
	if err != nil {
		t.Fatal(err)
	}
	if c.StatefulSet != "" || strings.Join(c.NodeNames(), ",") != DefaultNodeName {
		t.Errorf("a Job pod: StatefulSet %q, NodeNames %v", c.StatefulSet, c.NodeNames())
	}
	c, err = load(t, map[string]string{"POD_NAME": "virtual-node-eci-1", "VIRTUAL_NODE_NAME": "vn"})
	if err != nil || c.StatefulSet != "" {
		t.Errorf("an explicit VIRTUAL_NODE_NAME is not the StatefulSet form: %v, StatefulSet %q", err, c.StatefulSet)
	}
	for env, want := range map[string]string{
		"Bad_Name":                        `VIRTUAL_NODE_LEGACY_NAMES: "Bad_Name" is not a valid node name`,
		"virtual-node-eci-0":              `"virtual-node-eci-0" is listed twice or is this pod's own node`,
		"virtual-kubelet,virtual-kubelet": `"virtual-kubelet" is listed twice`,
	} {
		if _, err := load(t, map[string]string{"POD_NAME": "virtual-node-eci-0", "VIRTUAL_NODE_LEGACY_NAMES": env}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("VIRTUAL_NODE_LEGACY_NAMES=%s: %v, want %q", env, err, want)
		}
	}
	if _, err := load(t, map[string]string{"VIRTUAL_NODE_SCALE_DOWN_TIMEOUT": "1s"}); err == nil || !strings.Contains(err.Error(), "VIRTUAL_NODE_SCALE_DOWN_TIMEOUT: 1s") {
		t.Errorf("VIRTUAL_NODE_SCALE_DOWN_TIMEOUT=1s: %v", err)
	}
	if _, err := load(t, map[string]string{"POD_NAME": "virtual-node-eci-0", "VIRTUAL_NODE_LEGACY_NAMES": "a,b", "KUBELET_PORT": "65534"}); err == nil || !strings.Contains(err.Error(), "KUBELET_PORT: 65534 + the 3 nodes of ordinal 0") {
		t.Errorf("ports past 65535: %v", err)
	}
}
