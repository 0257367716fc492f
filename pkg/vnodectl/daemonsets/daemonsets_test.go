package daemonsets

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func term(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: reqs}
}

func required(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
}

var zoneA = corev1.NodeSelectorRequirement{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}

func TestExcludes(t *testing.T) {
	tests := []struct {
		name string
		spec corev1.PodSpec
		want bool
	}{
		{"no affinity", corev1.PodSpec{}, false},
		{"vendor's expression", corev1.PodSpec{Affinity: required(term(Requirement()))}, true},
		{"one of two terms lacks it (terms are ORed)", corev1.PodSpec{Affinity: required(term(Requirement()), term(zoneA))}, false},
		{"both terms", corev1.PodSpec{Affinity: required(term(zoneA, Requirement()), term(Requirement()))}, true},
		{"type In other values", corev1.PodSpec{Affinity: required(term(corev1.NodeSelectorRequirement{Key: "type", Operator: corev1.NodeSelectorOpIn, Values: []string{"ecs"}}))}, true},
		{"type In virtual-kubelet", corev1.PodSpec{Affinity: required(term(corev1.NodeSelectorRequirement{Key: "type", Operator: corev1.NodeSelectorOpIn, Values: []string{"virtual-kubelet"}}))}, false},
		{"type DoesNotExist", corev1.PodSpec{Affinity: required(term(corev1.NodeSelectorRequirement{Key: "type", Operator: corev1.NodeSelectorOpDoesNotExist}))}, true},
		{"NotIn other values", corev1.PodSpec{Affinity: required(term(corev1.NodeSelectorRequirement{Key: "type", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"gpu"}}))}, false},
		{"nodeSelector type=ecs", corev1.PodSpec{NodeSelector: map[string]string{"type": "ecs"}}, true},
		{"nodeSelector type=virtual-kubelet", corev1.PodSpec{NodeSelector: map[string]string{"type": "virtual-kubelet"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Excludes(&tt.spec); got != tt.want {
				t.Errorf("Excludes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAddExclusion(t *testing.T) {
	tests := []struct {
		name        string
		spec        corev1.PodSpec
		wantChanged bool
		wantTerms   int
	}{
		{"nil affinity", corev1.PodSpec{}, true, 1},
		{"pod affinity only", corev1.PodSpec{Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{}}}, true, 1},
		{"empty required", corev1.PodSpec{Affinity: required()}, true, 1},
		{"two terms", corev1.PodSpec{Affinity: required(term(zoneA), corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"n"}}}})}, true, 2},
		{"already excluded", corev1.PodSpec{Affinity: required(term(zoneA, Requirement()))}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hadPodAnti := tt.spec.Affinity != nil && tt.spec.Affinity.PodAntiAffinity != nil
			if got := AddExclusion(&tt.spec); got != tt.wantChanged {
				t.Fatalf("changed = %v, want %v", got, tt.wantChanged)
			}
			if !Excludes(&tt.spec) {
				t.Fatalf("spec does not exclude virtual nodes after AddExclusion: %+v", tt.spec.Affinity)
			}
			if n := len(tt.spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms); n != tt.wantTerms {
				t.Errorf("%d terms, want %d", n, tt.wantTerms)
			}
			if hadPodAnti && tt.spec.Affinity.PodAntiAffinity == nil {
				t.Error("pod anti-affinity lost")
			}
			if AddExclusion(&tt.spec) {
				t.Error("second AddExclusion changed the spec")
			}
		})
	}
}

func TestToleratesVirtualNode(t *testing.T) {
	tests := []struct {
		name string
		tol  []corev1.Toleration
		want bool
	}{
		{"none", nil, false},
		{"everything", []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, true},
		{"key exists", []corev1.Toleration{{Key: TaintKey, Operator: corev1.TolerationOpExists}}, true},
		{"key equal value", []corev1.Toleration{{Key: TaintKey, Operator: corev1.TolerationOpEqual, Value: TaintValue, Effect: corev1.TaintEffectNoSchedule}}, true},
		{"wrong value", []corev1.Toleration{{Key: TaintKey, Operator: corev1.TolerationOpEqual, Value: "other"}}, false},
		{"other effect", []corev1.Toleration{{Key: TaintKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}, false},
		{"other key", []corev1.Toleration{{Key: "node-role.kubernetes.io/master", Operator: corev1.TolerationOpExists}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ToleratesVirtualNode(&corev1.PodSpec{Tolerations: tt.tol}); got != tt.want {
				t.Errorf("= %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name, a, b string
		want       []string
	}{
		{"added lines", "x\ny\n", "x\nz\ny\n", []string{" x", "+z", " y"}},
		{"removed line", "x\ny\n", "y\n", []string{"-x", " y"}},
		{"from empty", "", "a\n", []string{"+a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff("a", "b", tt.a, tt.b)
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")[3:]
			if strings.Join(lines, "|") != strings.Join(tt.want, "|") {
				t.Errorf("diff body %q, want %q\n%s", lines, tt.want, got)
			}
		})
	}
}
