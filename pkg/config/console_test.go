package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
)

func validConsoleBase() *Config {
	c := Defaults()
	c.VSwitches, c.SecurityGroup, c.Region = []string{"vsw-a"}, "sg-1", "cn-hangzhou"
	return c
}

func tagList(n int) string {
	var items []string
	for i := range n {
		items = append(items, fmt.Sprintf("k%d:v%d", i, i))
	}
	return strings.Join(items, ",")
}

// TestConsoleSettingsValidate: every console setting is checked by
// Validate, each error names the variable and the fix, and Validate never
// changes the Config.
func TestConsoleSettingsValidate(t *testing.T) {
	defaultTaint := corev1.Taint{Key: DefaultTaintKey, Value: DefaultTaintValue, Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name       string
		set        func(c *Config)
		wantErr    []string // all must appear
		wantLabels map[string]string
		wantTaints []corev1.Taint
		wantTags   []eci.Tag
	}{
		{name: "nothing set keeps the default taint", set: func(c *Config) {},
			wantLabels: map[string]string{}, wantTaints: []corev1.Taint{defaultTaint}},
		{name: "labels", set: func(c *Config) { c.NodeLabels = " team=web , alibabacloud.com/zone=a,empty=" },
			wantLabels: map[string]string{"team": "web", "alibabacloud.com/zone": "a", "empty": ""}, wantTaints: []corev1.Taint{defaultTaint}},
		{name: "label without =", set: func(c *Config) { c.NodeLabels = "team" }, wantErr: []string{"VIRTUAL_NODE_LABELS", `"team" is not key=value`}},
		{name: "bad label key", set: func(c *Config) { c.NodeLabels = "bad key=x" }, wantErr: []string{"VIRTUAL_NODE_LABELS", "label key \"bad key\" is invalid"}},
		{name: "bad label value", set: func(c *Config) { c.NodeLabels = "k=not ok" }, wantErr: []string{"VIRTUAL_NODE_LABELS", "value \"not ok\""}},
		{name: "own label refused", set: func(c *Config) { c.NodeLabels = "type=real" }, wantErr: []string{"VIRTUAL_NODE_LABELS", `label "type" is set by the controller`}},
		{name: "label twice", set: func(c *Config) { c.NodeLabels = "a=1,a=2" }, wantErr: []string{"listed twice"}},
		{name: "extra taints keep the default", set: func(c *Config) { c.NodeTaints = "dedicated=batch:NoSchedule, gpu:PreferNoSchedule" },
			wantLabels: map[string]string{},
			wantTaints: []corev1.Taint{defaultTaint, {Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule},
				{Key: "gpu", Effect: corev1.TaintEffectPreferNoSchedule}}},
		{name: "default removed explicitly", set: func(c *Config) { c.NodeTaints = "virtual-kubelet.io/provider-,dedicated=batch:NoExecute" },
			wantLabels: map[string]string{}, wantTaints: []corev1.Taint{{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoExecute}}},
		{name: "default removed with its effect", set: func(c *Config) { c.NodeTaints = "virtual-kubelet.io/provider:NoSchedule-" },
			wantLabels: map[string]string{}, wantTaints: nil},
		{name: "default value replaced", set: func(c *Config) { c.NodeTaints = "virtual-kubelet.io/provider=eci:NoSchedule" },
			wantLabels: map[string]string{}, wantTaints: []corev1.Taint{{Key: DefaultTaintKey, Value: "eci", Effect: corev1.TaintEffectNoSchedule}}},
		{name: "default kept beside another effect", set: func(c *Config) { c.NodeTaints = "virtual-kubelet.io/provider=eci:NoExecute" },
			wantLabels: map[string]string{}, wantTaints: []corev1.Taint{defaultTaint, {Key: DefaultTaintKey, Value: "eci", Effect: corev1.TaintEffectNoExecute}}},
		{name: "removing another taint refused", set: func(c *Config) { c.NodeTaints = "dedicated-" },
			wantErr: []string{"VIRTUAL_NODE_TAINTS", "only the default taint virtual-kubelet.io/provider can be removed"}},
		{name: "removing the default with the wrong effect", set: func(c *Config) { c.NodeTaints = "virtual-kubelet.io/provider:NoExecute-" },
			wantErr: []string{"VIRTUAL_NODE_TAINTS", "write virtual-kubelet.io/provider- to remove it"}},
		{name: "removed and listed", set: func(c *Config) {
			c.NodeTaints = "virtual-kubelet.io/provider-,virtual-kubelet.io/provider=x:NoSchedule"
		}, wantErr: []string{"both removed"}},
		{name: "taint without effect", set: func(c *Config) { c.NodeTaints = "dedicated=batch" }, wantErr: []string{"VIRTUAL_NODE_TAINTS", "has no effect"}},
		{name: "taint with a bad effect", set: func(c *Config) { c.NodeTaints = "dedicated=batch:Never" }, wantErr: []string{"VIRTUAL_NODE_TAINTS", `effect "Never"`}},
		{name: "reserved taint", set: func(c *Config) { c.NodeTaints = "node.kubernetes.io/unschedulable:NoSchedule" }, wantErr: []string{"VIRTUAL_NODE_TAINTS", "remove it from the list"}},
		{name: "cloud-unavailable taint reserved", set: func(c *Config) { c.NodeTaints = "virtual-kubelet.io/cloud-unavailable=x:NoSchedule" }, wantErr: []string{"VIRTUAL_NODE_TAINTS"}},
		{name: "taint twice", set: func(c *Config) { c.NodeTaints = "a=1:NoSchedule,a=2:NoSchedule" }, wantErr: []string{"listed twice"}},
		{name: "bad taint value", set: func(c *Config) { c.NodeTaints = "a=b c:NoSchedule" }, wantErr: []string{"VIRTUAL_NODE_TAINTS", `the value "b c"`}},
		{name: "tags", set: func(c *Config) { c.Tags = "team:web, cost-center:42,empty:" },
			wantLabels: map[string]string{}, wantTaints: []corev1.Taint{defaultTaint},
			wantTags: []eci.Tag{{Key: "team", Value: "web"}, {Key: "cost-center", Value: "42"}, {Key: "empty"}}},
		{name: "tags at the limit", set: func(c *Config) { c.Tags = tagList(11) },
			wantLabels: map[string]string{}, wantTaints: []corev1.Taint{defaultTaint}, wantTags: mustTags(tagList(11))},
		{name: "too many tags", set: func(c *Config) { c.Tags = tagList(12) },
			wantErr: []string{"ECI_TAGS has 12 tags; at most 11", "20 tags", "ClusterId", "k8s.aliyun.com/eci-custom-tags", "remove 1"}},
		{name: "own tag key refused", set: func(c *Config) { c.Tags = "ClusterId:other" }, wantErr: []string{"ECI_TAGS", `"ClusterId" is one of the controller's own`}},
		{name: "reserved tag prefix", set: func(c *Config) { c.Tags = "aliyun-x:1" }, wantErr: []string{"ECI_TAGS", "reserves"}},
		{name: "tag key too long", set: func(c *Config) { c.Tags = strings.Repeat("k", 65) + ":v" }, wantErr: []string{"ECI_TAGS", "longer than 64"}},
		{name: "tag value with a URL", set: func(c *Config) { c.Tags = "site:https://example.com" }, wantErr: []string{"ECI_TAGS", "http"}},
		{name: "tag without colon", set: func(c *Config) { c.Tags = "team" }, wantErr: []string{"ECI_TAGS", "key:value"}},
		{name: "tag twice", set: func(c *Config) { c.Tags = "a:1,a:2" }, wantErr: []string{"ECI_TAGS", "listed twice"}},
		{name: "resource group", set: func(c *Config) { c.ResourceGroupID = "rg-aek2abc" },
			wantLabels: map[string]string{}, wantTaints: []corev1.Taint{defaultTaint}},
		{name: "bad resource group", set: func(c *Config) { c.ResourceGroupID = "default" },
			wantErr: []string{`ECI_RESOURCE_GROUP_ID: "default" is not a resource group id`, "rg-"}},
		{name: "several problems at once", set: func(c *Config) {
			c.NodeLabels, c.NodeTaints, c.Tags, c.ResourceGroupID = "x", "y", "z", "w"
		}, wantErr: []string{"VIRTUAL_NODE_LABELS", "VIRTUAL_NODE_TAINTS", "ECI_TAGS", "ECI_RESOURCE_GROUP_ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConsoleBase()
			tt.set(c)
			before := *c
			err := c.Validate()
			if !reflect.DeepEqual(before, *c) {
				t.Fatalf("Validate changed the config:\n%+v\n%+v", before, *c)
			}
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Validate = nil, want an error with %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := c.NodeLabelMap(); !reflect.DeepEqual(got, tt.wantLabels) {
				t.Errorf("labels = %v, want %v", got, tt.wantLabels)
			}
			if got := c.NodeTaintList(); !reflect.DeepEqual(got, tt.wantTaints) {
				t.Errorf("taints = %v, want %v", got, tt.wantTaints)
			}
			if got := c.GroupTags(); !reflect.DeepEqual(got, tt.wantTags) {
				t.Errorf("tags = %v, want %v", got, tt.wantTags)
			}
		})
	}
}

func mustTags(s string) []eci.Tag {
	t, p := eci.ParseTagList(s)
	if len(p) > 0 {
		panic(p)
	}
	return t
}

// TestConsoleSettingsFromEnv: the variables reach the Config through Load.
func TestConsoleSettingsFromEnv(t *testing.T) {
	for k, v := range map[string]string{
		"ECI_VSWITCH": "vsw-a", "ECI_SECURITY_GROUP": "sg-1", "ECI_REGION": "cn-hangzhou",
		"VIRTUAL_NODE_LABELS": "team=web", "VIRTUAL_NODE_TAINTS": "virtual-kubelet.io/provider-",
		"ECI_TAGS": "team:web", "ECI_RESOURCE_GROUP_ID": "rg-1",
	} {
		t.Setenv(k, v)
	}
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeLabels != "team=web" || c.NodeTaints != "virtual-kubelet.io/provider-" || c.Tags != "team:web" || c.ResourceGroupID != "rg-1" {
		t.Errorf("console settings not read: %+v", c)
	}
	if len(c.NodeTaintList()) != 0 {
		t.Errorf("default taint not removed: %v", c.NodeTaintList())
	}
}
