package provider_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestGroupRecordedWithPlacement: the push that reports the group created
// leaves the pod's metadata alone; the annotations recording the group go
// out with its placement, in one push, so the core re-syncs the pod (and
// compares it whole) once rather than twice.
func TestGroupRecordedWithPlacement(t *testing.T) {
	t.Parallel()
	e := newSMEnv(t)
	pod := e.newPod("web", nil, false)
	if err := e.p.CreatePod(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	id := e.waitGroups(1)[0].ContainerGroupId
	e.waitPush("web", "with the group recorded", func(p *corev1.Pod) bool { return p.Annotations[annInstanceID] == id })
	first := -1
	pushes := e.pushed("web")
	for i, p := range pushes {
		if c := condition(p.Status, condCreated); c != nil && c.Status == corev1.ConditionTrue && first < 0 {
			first = i
			if len(p.Annotations) != len(pod.Annotations) {
				t.Errorf("the push reporting the group created changes the pod's annotations: %v", p.Annotations)
			}
		}
		if p.Annotations[annInstanceID] != "" {
			if p.Annotations[annZoneID] == "" || p.Annotations[annVSwitchID] == "" {
				t.Errorf("push %d records the group %s without its placement: %v", i, id, p.Annotations)
			}
			break
		}
	}
	if first < 0 {
		t.Fatalf("no push reported the group created: %d pushes", len(pushes))
	}
	// The provider's own copy has the group from the start.
	got, err := e.p.GetPod(e.ctx, e.ns, "web")
	if err != nil || got.Annotations[annInstanceID] != id {
		t.Errorf("GetPod: %v, annotations %v; want the group %s", err, got.Annotations, id)
	}
}
