package provider

import (
	"context"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestUpdatePodKeepsProviderAnnotations: the core hands UpdatePod its
// informer's copy, which may not have the annotations the provider just
// patched; the stored copy (written whole by the core's next status update)
// must keep them, while the user's own changes are taken.
func TestUpdatePodKeepsProviderAnnotations(t *testing.T) {
	env := newSimEnv(t)
	p := env.p
	stored := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{
			translate.AnnotationInstanceID: "eci-1", translate.AnnotationZoneID: "cn-hangzhou-h", translate.AnnotationVSwitchID: "vsw-h",
			translate.AnnotationVPC: "vpc-1", "user": "old",
		}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	p.mu.Lock()
	p.pods["default/web"] = &entry{pod: stored, groupID: "eci-1"}
	p.mu.Unlock()

	for _, tc := range []struct {
		name     string
		incoming map[string]string
		want     map[string]string
	}{
		{"informer copy without the placement", map[string]string{translate.AnnotationInstanceID: "eci-1", "user": "new"},
			map[string]string{translate.AnnotationInstanceID: "eci-1", translate.AnnotationZoneID: "cn-hangzhou-h", translate.AnnotationVSwitchID: "vsw-h", translate.AnnotationVPC: "vpc-1", "user": "new"}},
		{"no annotations at all", nil,
			map[string]string{translate.AnnotationInstanceID: "eci-1", translate.AnnotationZoneID: "cn-hangzhou-h", translate.AnnotationVSwitchID: "vsw-h", translate.AnnotationVPC: "vpc-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: tc.incoming}}
			if err := p.UpdatePod(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			p.mu.RLock()
			got := p.pods["default/web"].pod
			p.mu.RUnlock()
			if len(got.Annotations) != len(tc.want) {
				t.Errorf("annotations %v, want %v", got.Annotations, tc.want)
			}
			for k, v := range tc.want {
				if got.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
				}
			}
			if got.Status.Phase != corev1.PodRunning {
				t.Errorf("status replaced: %v", got.Status.Phase)
			}
		})
	}
}
