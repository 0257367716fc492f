package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// tokenRetry is how long a failed renewal waits before the next try.
const tokenRetry = 30 * time.Second

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
		if e.groupID == "" || e.tokens.At.IsZero() || e.tokens.At.After(now) || isTerminal(e.pod.Status.Phase) {
			continue
		}
		e.tokens.At = now.Add(tokenRetry) // in flight; retried if it fails
		work = append(work, due{pod: e.pod.DeepCopy(), groupID: e.groupID, volumes: e.tokens.Volumes})
	}
	lister := p.podLister
	p.mu.Unlock()
	for _, w := range work {
		logger := klog.FromContext(ctx).WithValues("pod", key(w.pod.Namespace, w.pod.Name), "group", w.groupID)
		if !renewalPod(w.pod, lister) {
			// Deleted (its group goes with it), or not in the informer
			// yet just after a restart: tried again in tokenRetry.
			logger.V(2).Info("pod not in the pod informer; its tokens are renewed once it is", "retry", tokenRetry)
			continue
		}
		vols, refresh, err := p.translator.RefreshVolumes(ctx, w.pod, w.volumes)
		if err == nil {
			req := &eci.UpdateContainerGroupRequest{ContainerGroupId: w.groupID, UpdateType: eci.UpdateIncremental}
			for _, v := range vols { // only w.volumes (RefreshVolumes)
				// The token files' content is renewed; their modes are the
				// ones the group was created with (the published update
				// takes no DefaultMode or Mode).
				u, ok := v.ForUpdate()
				if !ok {
					err = fmt.Errorf("volume %q is a %s, which UpdateContainerGroup cannot change", v.Name, v.Type)
					break
				}
				req.Volumes = append(req.Volumes, u)
			}
			if err == nil {
				err = p.opts.Cloud.UpdateContainerGroup(ctx, req)
			}
		}
		if err != nil {
			logger.Error(err, "renewing the service-account token failed; retrying", "in", tokenRetry)
			if !p.permissionEvent(w.pod, err, "renewing the service-account token") {
				p.event(w.pod, corev1.EventTypeWarning, "TokenRefreshFailed", "renewing the service-account token: %v", err)
			}
			continue
		}
		logger.V(2).Info("renewed service-account token", "next", refresh.At)
		p.mu.Lock()
		if e, ok := p.pods[key(w.pod.Namespace, w.pod.Name)]; ok && e.groupID == w.groupID {
			e.tokens = refresh
		}
		p.mu.Unlock()
	}
}
