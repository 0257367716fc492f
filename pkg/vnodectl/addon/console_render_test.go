package addon

import (
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestRenderConsoleSettings: the console's VNode settings (tags, resource
// group, node labels and taints) become the controller's variables only
// when set, and the controller accepts what the chart renders.
func TestRenderConsoleSettings(t *testing.T) {
	controllerEnv := func(t *testing.T, values map[string]any) (map[string]corev1.EnvVar, corev1.Container) {
		objs, _ := render(t, values)
		var d appsv1.Deployment
		objs.get(t, "Deployment/kube-system/ack-virtual-node-controller", &d)
		c := d.Spec.Template.Spec.Containers[0]
		return containerEnv(c), c
	}
	t.Run("defaults set none", func(t *testing.T) {
		env, _ := controllerEnv(t, minimal())
		for _, name := range []string{"ECI_TAGS", "ECI_RESOURCE_GROUP_ID", "VIRTUAL_NODE_LABELS", "VIRTUAL_NODE_TAINTS"} {
			if e, ok := env[name]; ok {
				t.Errorf("%s rendered by default: %q", name, e.Value)
			}
		}
	})
	t.Run("taints keep the default unless asked", func(t *testing.T) {
		env, c := controllerEnv(t, with(minimal(), "controller", map[string]any{
			"nodeTaints": []any{map[string]any{"key": "gpu", "effect": "PreferNoSchedule"}, map[string]any{"key": "dedicated", "value": "batch", "effect": "NoExecute"}}}))
		if got := env["VIRTUAL_NODE_TAINTS"].Value; got != "gpu:PreferNoSchedule,dedicated=batch:NoExecute" {
			t.Fatalf("VIRTUAL_NODE_TAINTS = %q", got)
		}
		loadFromEnv(t, c.Env, nil, nil)
		cfg, err := config.Load()
		if err != nil {
			t.Fatal(err)
		}
		if taints := cfg.NodeTaintList(); len(taints) != 3 || taints[0].Key != config.DefaultTaintKey {
			t.Errorf("taints = %v, want the default and two more", taints)
		}
	})
	t.Run("tags and labels", func(t *testing.T) {
		env, c := controllerEnv(t, with(minimal(), "resourceGroupId", "rg-1", "tags", map[string]any{"b": "2", "a": "1"},
			"controller", map[string]any{"nodeLabels": map[string]any{"pool": "eci", "zone": "h"}, "defaultTaint": false}))
		for name, want := range map[string]string{"ECI_RESOURCE_GROUP_ID": "rg-1", "ECI_TAGS": "a:1,b:2",
			"VIRTUAL_NODE_LABELS": "pool=eci,zone=h", "VIRTUAL_NODE_TAINTS": "virtual-kubelet.io/provider-"} {
			if env[name].Value != want {
				t.Errorf("%s = %q, want %q", name, env[name].Value, want)
			}
		}
		loadFromEnv(t, c.Env, nil, nil)
		cfg, err := config.Load()
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.NodeTaintList()) != 0 || cfg.NodeLabelMap()["zone"] != "h" || len(cfg.GroupTags()) != 2 || cfg.ResourceGroupID != "rg-1" {
			t.Errorf("controller reads %+v", cfg)
		}
	})
	twelve := map[string]any{}
	for _, k := range strings.Split("a b c d e f g h i j k l", " ") {
		twelve[k] = "v"
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"resource group not an id", with(minimal(), "resourceGroupId", "default"), []string{"/resourceGroupId", "does not match pattern"}},
		{"too many tags", with(minimal(), "tags", twelve), []string{"/tags", "maxProperties"}},
		{"tag key with a colon", with(minimal(), "tags", map[string]any{"a:b": "1"}), []string{"invalid propertyName 'a:b'"}},
		{"tag value with a comma", with(minimal(), "tags", map[string]any{"a": "1,2"}), []string{"/tags/a", "does not match pattern"}},
		{"taint without effect", with(minimal(), "controller", map[string]any{"nodeTaints": []any{map[string]any{"key": "a"}}}), []string{"/controller/nodeTaints/0", "effect"}},
		{"taint with a bad effect", with(minimal(), "controller", map[string]any{"nodeTaints": []any{map[string]any{"key": "a", "effect": "Never"}}}), []string{"/controller/nodeTaints/0/effect"}},
		{"label value not a label value", with(minimal(), "controller", map[string]any{"nodeLabels": map[string]any{"a": "b c"}}), []string{"/controller/nodeLabels/a"}},
		{"defaultTaint not a boolean", with(minimal(), "controller", map[string]any{"defaultTaint": "no"}), []string{"/controller/defaultTaint", "want boolean"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(tc.values, RenderOptions{})
			if err == nil {
				t.Fatal("rendered without error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}
