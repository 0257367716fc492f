package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// listOwnGroups lists every group of this cluster and node, page by page.
func (p *Provider) listOwnGroups(ctx context.Context, extra ...eci.Tag) ([]eci.ContainerGroup, error) {
	var out []eci.ContainerGroup
	req := &eci.DescribeContainerGroupsRequest{Tags: append(p.ownTags(), extra...), Limit: eci.MaxDescribeLimit}
	for {
		resp, err := p.opts.Cloud.DescribeContainerGroups(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, resp.ContainerGroups...)
		if resp.NextToken == "" || len(resp.ContainerGroups) == 0 {
			return out, nil
		}
		req.NextToken = resp.NextToken
	}
}

func tagValue(tags []eci.Tag, k string) string {
	for _, t := range tags {
		if t.Key == k {
			return t.Value
		}
	}
	return ""
}

// Adopt rebuilds the provider's state from the cloud at start-up, before
// the pod controller runs: groups whose pod still exists are taken over (so
// a restart never creates a second group for a pod), groups whose pod is
// gone are deleted. Only groups tagged with this cluster and node are
// touched.
func (p *Provider) Adopt(ctx context.Context) (adopted, deleted int, err error) {
	groups, err := p.listOwnGroups(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("list container groups of node %s: %w", p.opts.NodeName, err)
	}
	logger := klog.FromContext(ctx)
	for _, g := range groups {
		ns, name, uid := tagValue(g.Tags, TagPodNamespace), tagValue(g.Tags, TagPodName), tagValue(g.Tags, TagPodUID)
		pod, err := p.opts.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil && string(pod.UID) == uid && pod.Spec.NodeName == p.opts.NodeName:
			p.track(pod, &g)
			adopted++
			logger.Info("adopted container group", "pod", key(ns, name), "group", g.ContainerGroupId)
		case err == nil || apierrors.IsNotFound(err):
			if err := p.opts.Cloud.DeleteContainerGroup(ctx, g.ContainerGroupId); err != nil && !eci.IsNotFound(err) {
				return adopted, deleted, fmt.Errorf("delete orphaned container group %s: %w", g.ContainerGroupId, err)
			}
			deleted++
			orphansDeleted.Inc()
			logger.Info("deleted orphaned container group", "pod", key(ns, name), "group", g.ContainerGroupId)
		default:
			return adopted, deleted, fmt.Errorf("look up pod %s of group %s: %w", key(ns, name), g.ContainerGroupId, err)
		}
	}
	return adopted, deleted, nil
}

// track starts following a pod whose group already exists, with the
// status the cloud reports for it.
func (p *Provider) track(pod *corev1.Pod, g *eci.ContainerGroup) {
	created := parseTime(g.CreationTime).Time
	if created.IsZero() {
		created = time.Now()
	}
	// The stored status starts as what the apiserver shows, not as what
	// the cloud says: the first status sync then sees the difference and
	// pushes it. A process killed between a group starting and its status
	// being written would otherwise leave the pod Pending for good, since
	// the cloud's status no longer changes.
	stored := pod.DeepCopy()
	if stored.Status.Phase == "" {
		stored.Status = corev1.PodStatus{Phase: corev1.PodPending}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &entry{pod: stored, groupID: g.ContainerGroupId, created: created}
	if vols := translate.TokenVolumes(pod); len(vols) > 0 {
		// When the adopted group's tokens expire is unknown: renew soon.
		e.tokens = translate.TokenRefresh{At: time.Now().Add(time.Minute), Volumes: vols}
	}
	p.pods[key(pod.Namespace, pod.Name)] = e
	p.byGroup[g.ContainerGroupId] = key(pod.Namespace, pod.Name)
}

// groupOfPod finds the group created for a pod UID, used when a create is
// answered with IdempotentParameterMismatch: the group exists from an
// earlier attempt whose parameters (e.g. a freshly minted token) differ.
func (p *Provider) groupOfPod(ctx context.Context, uid string) (*eci.ContainerGroup, error) {
	groups, err := p.listOwnGroups(ctx, eci.Tag{Key: TagPodUID, Value: uid})
	if err != nil || len(groups) == 0 {
		return nil, err
	}
	return &groups[0], nil
}
