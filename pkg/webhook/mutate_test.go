package webhook

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var wantToleration = corev1.Toleration{Key: TolerationKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

func mustProfile(t *testing.T, selectors string) *profile.Profile {
	t.Helper()
	p, err := profile.Parse(map[string]string{"selectors": selectors})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// applyPatch applies d's patch to pod the way the apiserver does.
func applyPatch(t *testing.T, pod *corev1.Pod, d Decision) *corev1.Pod {
	t.Helper()
	if len(d.Patch) == 0 {
		return pod.DeepCopy()
	}
	doc, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(d.Patch)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		t.Fatalf("decode patch %s: %v", raw, err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("apply patch %s: %v", raw, err)
	}
	var res corev1.Pod
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

func TestDecide(t *testing.T) {
	prof := mustProfile(t, `[
		{"name":"big","objectSelector":{"matchLabels":{"size":"big"}},
		 "effect":{"annotations":{"k8s.aliyun.com/eci-use-specs":"2-4Gi"},"labels":{"eci-size":"big"}}},
		{"name":"flag","objectSelector":{"matchLabels":{"flag":"on"}},"effect":{"labels":{"empty":""}}},
		{"name":"team","namespaceSelector":{"matchLabels":{"team":"a"}},
		 "effect":{"annotations":{"k8s.aliyun.com/eci-use-specs":"1-2Gi","k8s.aliyun.com/eci-spot-strategy":"SpotAsPriceGo"}}}
	]`)
	pod := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "p-"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	labels := func(kv ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Labels = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				p.Labels[kv[i]] = kv[i+1]
			}
		}
	}
	tests := []struct {
		name     string
		ns       string
		nsLabels map[string]string
		pod      *corev1.Pod
		prof     *profile.Profile
		// want* describe the pod after the patch.
		wantRoute       bool
		wantReason      string
		wantSelectors   []string
		wantNodeSel     map[string]string
		wantTolerations []corev1.Toleration
		wantAnnotations map[string]string
		wantLabels      map[string]string
	}{
		{name: "unrelated pod", ns: "default", pod: pod(nil), wantReason: SkipNoMatch},
		{name: "pod label", ns: "default", pod: pod(labels(LabelECI, "true")),
			wantRoute: true, wantReason: ReasonPodLabel,
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration},
			wantLabels: map[string]string{LabelECI: "true"}},
		{name: "legacy pod label", ns: "default", pod: pod(labels("eci", "true")),
			wantRoute: true, wantReason: ReasonPodLegacyLabel,
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration},
			wantLabels: map[string]string{"eci": "true"}},
		{name: "pod label false is not routing", ns: "default", pod: pod(labels(LabelECI, "false")), wantReason: SkipOptOut,
			wantLabels: map[string]string{LabelECI: "false"}},
		{name: "namespace label", ns: "vk", nsLabels: map[string]string{LabelECI: "true"}, pod: pod(nil),
			wantRoute: true, wantReason: ReasonNamespaceLabel,
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration}},
		{name: "legacy namespace injection label", ns: "vk", nsLabels: map[string]string{LabelInjectionLegacy: "enabled"}, pod: pod(nil),
			wantRoute: true, wantReason: ReasonNamespaceLegacyLabel,
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration}},
		{name: "legacy namespace eci label", ns: "vk", nsLabels: map[string]string{"eci": "true"}, pod: pod(nil),
			wantRoute: true, wantReason: ReasonNamespaceLegacyLabel,
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration}},
		{name: "injection label with another value", ns: "vk", nsLabels: map[string]string{LabelInjectionLegacy: "disabled"}, pod: pod(nil),
			wantReason: SkipNoMatch},
		{name: "opt-out in labelled namespace", ns: "vk", nsLabels: map[string]string{LabelECI: "true"}, pod: pod(labels(LabelECI, "false")),
			wantReason: SkipOptOut, wantLabels: map[string]string{LabelECI: "false"}},
		{name: "opt-out beats a profile selector", ns: "vk", prof: prof, pod: pod(labels(LabelECI, "false", "size", "big")),
			wantReason: SkipOptOut, wantLabels: map[string]string{LabelECI: "false", "size": "big"}},
		{name: "kube-system is left alone", ns: "kube-system", nsLabels: map[string]string{LabelECI: "true"}, pod: pod(labels(LabelECI, "true")),
			wantReason: SkipKubeSystem, wantLabels: map[string]string{LabelECI: "true"}},
		{name: "pod with nodeName is left alone", ns: "default", pod: pod(func(p *corev1.Pod) {
			labels(LabelECI, "true")(p)
			p.Spec.NodeName = "node-1"
		}), wantReason: SkipNodeName, wantLabels: map[string]string{LabelECI: "true"}},
		{name: "daemonset pod is left alone", ns: "vk", nsLabels: map[string]string{LabelECI: "true"}, pod: pod(func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "ds", UID: "1"}}
		}), wantReason: SkipDaemonSet},
		{name: "replicaset pod is routed", ns: "vk", nsLabels: map[string]string{LabelECI: "true"}, pod: pod(func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "1"}}
		}), wantRoute: true, wantReason: ReasonNamespaceLabel,
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration}},
		{name: "existing nodeSelector and tolerations are kept", ns: "default", pod: pod(func(p *corev1.Pod) {
			labels(LabelECI, "true")(p)
			p.Spec.NodeSelector = map[string]string{"zone": "a"}
			p.Spec.Tolerations = []corev1.Toleration{{Key: "other", Operator: corev1.TolerationOpExists}}
		}), wantRoute: true, wantReason: ReasonPodLabel,
			wantNodeSel:     map[string]string{"zone": "a", "type": "virtual-kubelet"},
			wantTolerations: []corev1.Toleration{{Key: "other", Operator: corev1.TolerationOpExists}, wantToleration},
			wantLabels:      map[string]string{LabelECI: "true"}},
		{name: "another type selector is replaced", ns: "default", pod: pod(func(p *corev1.Pod) {
			labels(LabelECI, "true")(p)
			p.Spec.NodeSelector = map[string]string{"type": "gpu"}
		}), wantRoute: true, wantReason: ReasonPodLabel,
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration},
			wantLabels: map[string]string{LabelECI: "true"}},
		{name: "hand-written toleration is not duplicated", ns: "default", pod: pod(func(p *corev1.Pod) {
			labels(LabelECI, "true")(p)
			p.Spec.Tolerations = []corev1.Toleration{{Key: TolerationKey, Operator: corev1.TolerationOpExists}}
		}), wantRoute: true, wantReason: ReasonPodLabel,
			wantNodeSel:     map[string]string{"type": "virtual-kubelet"},
			wantTolerations: []corev1.Toleration{{Key: TolerationKey, Operator: corev1.TolerationOpExists}},
			wantLabels:      map[string]string{LabelECI: "true"}},
		{name: "toleration for another effect is not enough", ns: "default", pod: pod(func(p *corev1.Pod) {
			labels(LabelECI, "true")(p)
			p.Spec.Tolerations = []corev1.Toleration{{Key: TolerationKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
		}), wantRoute: true, wantReason: ReasonPodLabel,
			wantNodeSel:     map[string]string{"type": "virtual-kubelet"},
			wantTolerations: []corev1.Toleration{{Key: TolerationKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}, wantToleration},
			wantLabels:      map[string]string{LabelECI: "true"}},
		{name: "profile selector routes and annotates", ns: "default", prof: prof, pod: pod(labels("size", "big")),
			wantRoute: true, wantReason: ReasonProfileSelector, wantSelectors: []string{"big"},
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration},
			wantAnnotations: map[string]string{"k8s.aliyun.com/eci-use-specs": "2-4Gi"},
			wantLabels:      map[string]string{"size": "big", "eci-size": "big"}},
		{name: "empty label value from a selector", ns: "default", prof: prof, pod: pod(func(p *corev1.Pod) {
			labels("flag", "on")(p)
		}), wantRoute: true, wantReason: ReasonProfileSelector, wantSelectors: []string{"flag"},
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration},
			wantLabels: map[string]string{"flag": "on", "empty": ""}},
		{name: "selectors in order, first wins, pod wins", ns: "a", nsLabels: map[string]string{"team": "a"}, prof: prof,
			pod: pod(func(p *corev1.Pod) {
				labels("size", "big", "eci-size", "mine")(p)
				p.Annotations = map[string]string{"keep": "me"}
			}),
			wantRoute: true, wantReason: ReasonProfileSelector, wantSelectors: []string{"big", "team"},
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration},
			wantAnnotations: map[string]string{"keep": "me", "k8s.aliyun.com/eci-use-specs": "2-4Gi", "k8s.aliyun.com/eci-spot-strategy": "SpotAsPriceGo"},
			wantLabels:      map[string]string{"size": "big", "eci-size": "mine"}},
		{name: "label routes, selector effect still applies", ns: "a", nsLabels: map[string]string{"team": "a"}, prof: prof,
			pod:       pod(labels(LabelECI, "true")),
			wantRoute: true, wantReason: ReasonPodLabel, wantSelectors: []string{"team"},
			wantNodeSel: map[string]string{"type": "virtual-kubelet"}, wantTolerations: []corev1.Toleration{wantToleration},
			wantAnnotations: map[string]string{"k8s.aliyun.com/eci-use-specs": "1-2Gi", "k8s.aliyun.com/eci-spot-strategy": "SpotAsPriceGo"},
			wantLabels:      map[string]string{LabelECI: "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Namespace: tt.ns, NamespaceLabels: tt.nsLabels, Pod: tt.pod, Profile: tt.prof}
			d := Decide(in)
			if d.Route != tt.wantRoute || d.Reason != tt.wantReason || !reflect.DeepEqual(d.Selectors, tt.wantSelectors) {
				t.Fatalf("Decide = route %v reason %q selectors %v, want %v %q %v", d.Route, d.Reason, d.Selectors,
					tt.wantRoute, tt.wantReason, tt.wantSelectors)
			}
			if !d.Route && len(d.Patch) > 0 {
				t.Fatalf("patch for a pod that is not routed: %+v", d.Patch)
			}
			got := applyPatch(t, tt.pod, d)
			if !reflect.DeepEqual(got.Spec.NodeSelector, tt.wantNodeSel) {
				t.Errorf("nodeSelector = %v, want %v", got.Spec.NodeSelector, tt.wantNodeSel)
			}
			if !reflect.DeepEqual(got.Spec.Tolerations, tt.wantTolerations) {
				t.Errorf("tolerations = %+v, want %+v", got.Spec.Tolerations, tt.wantTolerations)
			}
			if !reflect.DeepEqual(got.Annotations, tt.wantAnnotations) {
				t.Errorf("annotations = %v, want %v", got.Annotations, tt.wantAnnotations)
			}
			if !reflect.DeepEqual(got.Labels, tt.wantLabels) {
				t.Errorf("labels = %v, want %v", got.Labels, tt.wantLabels)
			}
			// Several webhook entries may call for one pod: a second pass
			// over the result must change nothing.
			in.Pod = got
			if again := Decide(in); len(again.Patch) != 0 {
				t.Errorf("second pass patches again: %+v", again.Patch)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	if got := escape("k8s.aliyun.com/a~b"); got != "k8s.aliyun.com~1a~0b" {
		t.Errorf("escape = %q", got)
	}
}
