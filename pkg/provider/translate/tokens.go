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

// defaultTokenSeconds is the lifetime of a projected token that names
// none: the admission plugin's kube-api-access volume asks for 3607 s.
const defaultTokenSeconds = 3607

// AdoptedRenewWithin is how soon the tokens of an adopted group (a restart,
// or another replica's node taken over) must be renewed, its tokens' ages
// being unknown: a token in a group always has at least (1 − fraction) of
// 90 % of its lifetime left (renewals come at fraction of what is left; a
// shared kube-proxy token is handed out within a tenth of its lifetime),
// and half of the shortest such span leaves room for the time the node had
// no owner. Renewals spread over it instead of all coming at once: a
// replica that takes over 4,000 pods renewed them all a minute later, 1,400
// UpdateContainerGroup calls and as many TokenRequests in a burst.
func AdoptedRenewWithin(pod *corev1.Pod, kubeProxy bool, fraction float64) time.Duration {
	if fraction <= 0 || fraction >= 1 {
		fraction = DefaultTokenRefreshFraction
	}
	shortest := int64(0)
	if kubeProxy {
		shortest = KubeProxyTokenSeconds
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken == nil {
				continue
			}
			l := int64(defaultTokenSeconds)
			if s.ServiceAccountToken.ExpirationSeconds != nil {
				l = *s.ServiceAccountToken.ExpirationSeconds
			}
			if shortest == 0 || l < shortest {
				shortest = l
			}
		}
	}
	return time.Duration(float64(shortest) * (1 - fraction) * 0.9 / 2 * float64(time.Second))
}
