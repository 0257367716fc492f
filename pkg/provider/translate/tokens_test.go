package translate

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestAdoptedRenewWithin: half of what the shortest token of an adopted
// group surely has left: (1 − fraction) of 90 % of its lifetime.
func TestAdoptedRenewWithin(t *testing.T) {
	projected := func(secs ...int64) *corev1.Pod {
		pod := &corev1.Pod{}
		for i, s := range secs {
			src := &corev1.ServiceAccountTokenProjection{Path: "token"}
			if s > 0 {
				src.ExpirationSeconds = &s
			}
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("v%d", i), VolumeSource: corev1.VolumeSource{
				Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: src}}}}})
		}
		return pod
	}
	for _, tt := range []struct {
		name      string
		pod       *corev1.Pod
		kubeProxy bool
		fraction  float64
		want      time.Duration
	}{
		{"kube-api-access (3607 s, default fraction)", projected(0), false, 0, 324630 * time.Millisecond},
		{"kube-proxy only", projected(), true, 0.8, 324 * time.Second},
		{"shortest source wins", projected(0, 600), true, 0.8, 54 * time.Second},
		{"fraction 0.5", projected(3600), false, 0.5, 810 * time.Second},
		{"no token", projected(), false, 0.8, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := AdoptedRenewWithin(tt.pod, tt.kubeProxy, tt.fraction)
			if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
