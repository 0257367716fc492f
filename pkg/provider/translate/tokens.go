package translate

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DefaultTokenRefreshFraction is the share of a projected token's lifetime
// after which it is renewed, as the kubelet does (80 %).
const DefaultTokenRefreshFraction = 0.8

// TokenRefresh says which volumes of a pod carry service-account tokens
// and when the first of them is due for renewal.
type TokenRefresh struct {
	At      time.Time
	Volumes []string
}

func (r *TokenRefresh) add(volume string, at time.Time) {
	if !slices.Contains(r.Volumes, volume) {
		r.Volumes = append(r.Volumes, volume)
	}
	if r.At.IsZero() || at.Before(r.At) {
		r.At = at
	}
}

// refreshTime is when a token expiring at exp is renewed.
func (t *Translator) refreshTime(exp time.Time) time.Time {
	f := t.opts.TokenRefreshFraction
	if f <= 0 || f >= 1 {
		f = DefaultTokenRefreshFraction
	}
	now := time.Now()
	return now.Add(time.Duration(float64(exp.Sub(now)) * f))
}

// TokenVolumes lists a pod's projected volumes with a service-account
// token, for groups adopted after a restart whose token times are unknown.
func TokenVolumes(pod *corev1.Pod) []string {
	var out []string
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				out = append(out, v.Name)
				break
			}
		}
	}
	return out
}
