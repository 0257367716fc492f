package provider

import (
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestDiffUpdate(t *testing.T) {
	base := corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "setup", Image: "setup:1"}, {Name: "proxy", Image: "proxy:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
		Containers:     []corev1.Container{{Name: "app", Image: "app:1"}, {Name: "log", Image: "log:1"}},
	}
	for _, tc := range []struct {
		name        string
		mut         func(s *corev1.PodSpec)
		wantImages  []eci.UpdateContainer
		wantRefused []string
	}{
		{name: "nothing", mut: func(s *corev1.PodSpec) {}},
		{name: "tolerations are Kubernetes' business", mut: func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
		}},
		{name: "an app image", mut: func(s *corev1.PodSpec) { s.Containers[1].Image = "log:2" },
			wantImages: []eci.UpdateContainer{{Name: "log", Image: "log:2"}}},
		{name: "a native sidecar's image goes to the group", mut: func(s *corev1.PodSpec) { s.InitContainers[1].Image = "proxy:2"; s.Containers[0].Image = "app:2" },
			wantImages: []eci.UpdateContainer{{Name: "proxy", Image: "proxy:2"}, {Name: "app", Image: "app:2"}}},
		{name: "an init container has run", mut: func(s *corev1.PodSpec) { s.InitContainers[0].Image = "setup:2" },
			wantRefused: []string{"spec.initContainers[0].image (setup:1 → setup:2): the init container has run already"}},
		{name: "activeDeadlineSeconds", mut: func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](60) },
			wantRefused: []string{"spec.activeDeadlineSeconds (none → 60s): UpdateContainerGroup has no such parameter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := slimSpec(&base)
			cur := *base.DeepCopy()
			tc.mut(&cur)
			u := diffUpdate(&old, &cur)
			if len(u.images) != len(tc.wantImages) {
				t.Fatalf("images %+v, want %+v", u.images, tc.wantImages)
			}
			for i := range u.images {
				if u.images[i] != tc.wantImages[i] {
					t.Errorf("images %+v, want %+v", u.images, tc.wantImages)
				}
			}
			if len(u.refused) != len(tc.wantRefused) {
				t.Fatalf("refused %q, want %q", u.refused, tc.wantRefused)
			}
			for i := range u.refused {
				if !strings.Contains(u.refused[i], tc.wantRefused[i]) {
					t.Errorf("refused %q, want %q", u.refused[i], tc.wantRefused[i])
				}
			}
		})
	}
	if a, b := updateToken("uid", []eci.UpdateContainer{{Name: "a", Image: "1"}, {Name: "b", Image: "2"}}), updateToken("uid", []eci.UpdateContainer{{Name: "b", Image: "2"}, {Name: "a", Image: "1"}}); a != b || len(a) > 64 {
		t.Errorf("update tokens %q, %q: want one token for one set of images, at most 64 characters", a, b)
	}
}
