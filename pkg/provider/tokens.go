package provider

import (
	"context"
	"slices"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// DefaultTokenRefreshFraction is the share of a projected token's lifetime
// after which it is renewed, as the kubelet does (80 %).
const DefaultTokenRefreshFraction = 0.8

// tokenRetry is how long a failed renewal waits before the next try.
const tokenRetry = 30 * time.Second

// tokenRefresh says which volumes of a pod carry service-account tokens
// and when the first of them is due for renewal.
type tokenRefresh struct {
	at      time.Time
	volumes []string
}

func (r *tokenRefresh) add(volume string, at time.Time) {
	if !slices.Contains(r.volumes, volume) {
		r.volumes = append(r.volumes, volume)
	}
	if r.at.IsZero() || at.Before(r.at) {
		r.at = at
	}
}

// refreshTime is when a token expiring at exp is renewed.
func (p *Provider) refreshTime(exp time.Time) time.Time {
	f := p.opts.TokenRefreshFraction
	if f <= 0 || f >= 1 {
		f = DefaultTokenRefreshFraction
	}
	now := time.Now()
	return now.Add(time.Duration(float64(exp.Sub(now)) * f))
}

// tokenVolumes lists a pod's projected volumes with a service-account
// token, for groups adopted after a restart whose token times are unknown.
func tokenVolumes(pod *corev1.Pod) []string {
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

// refreshTokens renews the projected service-account tokens that are due,
// by updating the token volumes' files in place (UpdateContainerGroup,
// IncrementalUpdate), so workloads keep a valid token for as long as they
// run, like on a kubelet; never a long-lived legacy token Secret.
func (p *Provider) refreshTokens(ctx context.Context) {
	now := time.Now()
	type due struct {
		pod     *corev1.Pod
		groupID string
		volumes []string
	}
	var work []due
	p.mu.Lock()
	for _, e := range p.pods {
		if e.groupID == "" || e.tokens.at.IsZero() || e.tokens.at.After(now) || isTerminal(e.pod.Status.Phase) {
			continue
		}
		e.tokens.at = now.Add(tokenRetry) // in flight; retried if it fails
		work = append(work, due{pod: e.pod.DeepCopy(), groupID: e.groupID, volumes: e.tokens.volumes})
	}
	p.mu.Unlock()
	for _, w := range work {
		logger := klog.FromContext(ctx).WithValues("pod", key(w.pod.Namespace, w.pod.Name), "group", w.groupID)
		vols, refresh, err := p.buildVolumes(ctx, w.pod)
		if err == nil {
			req := &eci.UpdateContainerGroupRequest{ContainerGroupId: w.groupID, UpdateType: eci.UpdateIncremental}
			for _, v := range vols {
				if slices.Contains(w.volumes, v.Name) {
					req.Volumes = append(req.Volumes, v)
				}
			}
			err = p.opts.Cloud.UpdateContainerGroup(ctx, req)
		}
		if err != nil {
			logger.Error(err, "renewing the service-account token failed; retrying", "in", tokenRetry)
			p.event(w.pod, corev1.EventTypeWarning, "TokenRefreshFailed", "renewing the service-account token: %v", err)
			continue
		}
		logger.V(2).Info("renewed service-account token", "next", refresh.at)
		p.mu.Lock()
		if e, ok := p.pods[key(w.pod.Namespace, w.pod.Name)]; ok && e.groupID == w.groupID {
			e.tokens = refresh
		}
		p.mu.Unlock()
	}
}
