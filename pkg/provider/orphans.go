package provider

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Orphans and lost groups: every path that finds a group without its pod,
// or a pod without its group, is in this file.
//
//   - Adopt, at start-up: takes over the node's groups whose pod exists,
//     deletes the others.
//   - sweep, with each full status listing: deletes untracked groups whose
//     pod is gone.
//   - markLost/lose, with each full status listing: fails pods whose group
//     is confirmed gone, and finishes the deletion of terminating ones.
//   - housekeep and PodDeleted: delete the groups of pods deleted without
//     the core telling the provider.
//   - goneDuringRetry and deleteLateGroup: a retried create that finishes
//     after its pod was deleted records nothing and deletes its group.

// SetPodLister gives the provider the node's pod informer, for the
// housekeeping that finds pods deleted without the provider being told.
func (p *Provider) SetPodLister(l corev1listers.PodLister) {
	p.mu.Lock()
	p.podLister = l
	p.mu.Unlock()
}

// PodDeleted is the pod informer's delete handler for deletions the
// virtual-kubelet core drops: when the informer missed the final state of
// a pod (a watch that broke while pods were deleted, then a relist) it
// hands over a tombstone, which the core ignores, and the pod's group
// would run on, billed, with no pod. The group is deleted here instead.
func (p *Provider) PodDeleted(obj any) {
	tomb, ok := obj.(cache.DeletedFinalStateUnknown)
	if !ok {
		return // the core handles a plain delete
	}
	pod, ok := tomb.Obj.(*corev1.Pod)
	if !ok {
		return
	}
	p.mu.RLock()
	e, tracked := p.pods[key(pod.Namespace, pod.Name)]
	same := tracked && e.pod.UID == pod.UID && e.deleting.Load() == 0
	ctx := p.runCtx
	p.mu.RUnlock()
	if !same || ctx == nil || ctx.Err() != nil {
		return // not ours, or the node is not running: housekeeping will see to it
	}
	p.metrics.missedDeletions.Inc()
	klog.FromContext(ctx).Info("pod deleted while the watch was down; deleting its group", "pod", key(pod.Namespace, pod.Name), "group", e.groupID)
	if err := p.DeletePod(ctx, pod); err != nil {
		// Housekeeping retries with the next full status listing.
		klog.FromContext(ctx).Error(err, "delete the group of a pod deleted while the watch was down", "pod", key(pod.Namespace, pod.Name))
	}
}

// housekeep deletes the groups of pods that no longer exist, as a
// kubelet's housekeeping kills containers of pods it is no longer asked to
// run. Any deletion the core missed ends here, within one full listing.
// Pods missing from the informer are looked up in the apiserver (one list
// of the node's pods, only when some are missing) before their groups are
// deleted, so an informer that is relisting deletes nothing; pods whose
// deletion is under way are left to it.
func (p *Provider) housekeep(ctx context.Context) {
	p.mu.RLock()
	lister := p.podLister
	var gone []*corev1.Pod
	if lister != nil {
		for _, e := range p.pods {
			if e.deleting.Load() > 0 {
				continue
			}
			cur, err := lister.Pods(e.pod.Namespace).Get(e.pod.Name)
			if (err != nil && apierrors.IsNotFound(err)) || (err == nil && cur.UID != e.pod.UID) {
				gone = append(gone, e.pod.DeepCopy())
			}
		}
	}
	p.mu.RUnlock()
	if len(gone) == 0 {
		return
	}
	list, err := p.opts.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", p.opts.NodeName).String(),
	})
	if err != nil {
		klog.FromContext(ctx).Error(err, "housekeeping: cannot list the node's pods; retrying with the next full listing")
		return
	}
	exists := make(map[types.UID]bool, len(list.Items))
	for i := range list.Items {
		exists[list.Items[i].UID] = true
	}
	for _, pod := range gone {
		if exists[pod.UID] {
			continue
		}
		p.metrics.missedDeletions.Inc()
		klog.FromContext(ctx).Info("housekeeping: pod no longer exists; deleting its group", "pod", key(pod.Namespace, pod.Name))
		if err := p.DeletePod(ctx, pod); err != nil && !errdefs.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "housekeeping: delete failed; retrying with the next full listing", "pod", key(pod.Namespace, pod.Name))
		}
	}
}

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
// touched. It reads the cloud with one listing and the apiserver with one
// listing of the node's pods (paged), not one GET per group: a node taken
// over with 10,000 pods is adopted in seconds, not in 10,000 requests.
func (p *Provider) Adopt(ctx context.Context) (adopted, deleted int, err error) {
	groups, err := p.listOwnGroups(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("list container groups of node %s: %w", p.opts.NodeName, err)
	}
	if len(groups) == 0 {
		return 0, 0, nil
	}
	pods, err := p.nodePods(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("list the pods of node %s: %w", p.opts.NodeName, err)
	}
	logger := klog.FromContext(ctx)
	for _, g := range groups {
		ns, name, uid := tagValue(g.Tags, translate.TagPodNamespace), tagValue(g.Tags, translate.TagPodName), tagValue(g.Tags, translate.TagPodUID)
		if pod := pods[key(ns, name)]; pod != nil && string(pod.UID) == uid {
			p.track(pod, &g)
			adopted++
			logger.Info("adopted container group", "pod", key(ns, name), "group", g.ContainerGroupId)
			continue
		}
		// Gone, replaced by a pod of the same name, or bound elsewhere.
		if err := p.opts.Cloud.DeleteContainerGroup(ctx, g.ContainerGroupId); err != nil && !eci.IsNotFound(err) {
			return adopted, deleted, fmt.Errorf("delete orphaned container group %s: %w", g.ContainerGroupId, err)
		}
		deleted++
		p.metrics.orphansDeleted.Inc()
		logger.Info("deleted orphaned container group", "pod", key(ns, name), "group", g.ContainerGroupId)
	}
	return adopted, deleted, nil
}

// adoptPageSize is the page of the node's pod listing at adoption: big
// enough that 10,000 pods take 20 requests, small enough that a page stays
// a few MB.
const adoptPageSize = 500

// nodePods lists the pods bound to this node from the apiserver (a
// consistent read, page by page), by namespace/name.
func (p *Provider) nodePods(ctx context.Context) (map[string]*corev1.Pod, error) {
	out := map[string]*corev1.Pod{}
	opts := metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", p.opts.NodeName).String(),
		Limit:         adoptPageSize,
	}
	for {
		list, err := p.opts.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			pod := &list.Items[i]
			out[key(pod.Namespace, pod.Name)] = pod
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}

// track starts following a pod whose group already exists, with the
// status the cloud reports for it.
func (p *Provider) track(pod *corev1.Pod, g *eci.ContainerGroup) {
	created := parseTime(g.CreationTime).Time
	if created.IsZero() {
		created = p.clock.Now()
	}
	// The stored status starts as what the apiserver shows, not as what
	// the cloud says: the first status sync then sees the difference and
	// pushes it. A process killed between a group starting and its status
	// being written would otherwise leave the pod Pending for good, since
	// the cloud's status no longer changes.
	stored := pod.DeepCopy()
	// Read from the apiserver, not the informer: trimmed as the informer
	// trims (TrimPod), or the core would find it differs from its own copy
	// (tolerations) and hand every adopted pod to UpdatePod.
	trimPod(stored)
	if stored.Status.Phase == "" {
		stored.Status = corev1.PodStatus{Phase: corev1.PodPending}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &entry{groupID: g.ContainerGroupId, created: created, marked: true}
	e.keep(stored)
	vols := translate.TokenVolumes(pod)
	kubeProxy := translate.HasKubeProxy(g)
	if kubeProxy {
		vols = append(vols, translate.KubeProxyVolume)
	}
	if len(vols) > 0 {
		// When the adopted group's tokens expire is unknown: renew them
		// within the time they surely have left, at a random point of it
		// after the first minute, so that the groups of a node taken over
		// are not all renewed at once.
		within := translate.AdoptedRenewWithin(pod, kubeProxy, p.opts.TokenRefreshFraction)
		first := min(time.Minute, within)
		at := p.clock.Now().Add(first)
		if spread := within - first; spread > 0 {
			at = at.Add(time.Duration(rand.Int64N(int64(spread))))
		}
		e.tokens = translate.TokenRefresh{At: at, Volumes: vols}
	}
	p.pods[key(pod.Namespace, pod.Name)] = e
	p.byGroup[g.ContainerGroupId] = key(pod.Namespace, pod.Name)
}

// groupOfPod finds the group created for a pod UID, used when a create is
// answered with IdempotentParameterMismatch: the group exists from an
// earlier attempt whose parameters (e.g. a freshly minted token) differ.
func (p *Provider) groupOfPod(ctx context.Context, uid string) (*eci.ContainerGroup, error) {
	groups, err := p.listOwnGroups(ctx, eci.Tag{Key: translate.TagPodUID, Value: uid})
	if err != nil || len(groups) == 0 {
		return nil, err
	}
	return &groups[0], nil
}

// sweep deletes this node's groups whose pod no longer exists (deleted
// while the controller was down or between a create and its record), so
// nothing is left running and billed. A group whose pod still exists is
// left to the pod controller, which adopts or creates it.
func (p *Provider) sweep(ctx context.Context, groups []eci.GroupStatus) {
	for _, g := range groups {
		if g.Namespace == "" || g.Name == "" {
			continue
		}
		pod, err := p.opts.Kube.CoreV1().Pods(g.Namespace).Get(ctx, g.Name, metav1.GetOptions{})
		if err == nil && string(pod.UID) == g.UID {
			continue
		}
		if err != nil && !apierrors.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "orphan sweep: cannot look up pod", "pod", key(g.Namespace, g.Name))
			continue
		}
		p.mu.RLock()
		_, tracked := p.byGroup[g.ContainerGroupId]
		p.mu.RUnlock()
		if tracked {
			continue
		}
		if err := p.opts.Cloud.DeleteContainerGroup(ctx, g.ContainerGroupId); err != nil && !eci.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "orphan sweep: delete failed", "group", g.ContainerGroupId)
			continue
		}
		p.metrics.orphansDeleted.Inc()
		klog.FromContext(ctx).Info("deleted orphaned container group", "group", g.ContainerGroupId, "pod", key(g.Namespace, g.Name))
	}
}

// markLost fails pods whose group no longer exists in the cloud (host
// failure, expiry, deleted outside Kubernetes) so their controller
// replaces them, instead of leaving them Running forever.
//
// A listing of thousands of groups takes a while, and groups created
// after it began are not in it: only groups created lostGrace before the
// listing began can be missing from it. Those that are missing are then
// described by id, so a listing the cloud answered inconsistently never
// fails a running pod (whose group would be left running and billed).
func (p *Provider) markLost(ctx context.Context, seen map[string]bool, listStart time.Time) {
	var missing []string
	p.mu.RLock()
	for id, k := range p.byGroup {
		e := p.pods[k]
		if seen[id] || !e.created.Before(listStart.Add(-lostGrace)) || isTerminal(e.pod.Status.Phase) {
			continue
		}
		missing = append(missing, id)
	}
	p.mu.RUnlock()
	_ = p.describeBatches(ctx, missing, func(batch []string, groups []eci.ContainerGroup, err error) error {
		if err != nil {
			// Unconfirmed: the next full listing asks again.
			klog.FromContext(ctx).Error(err, "cannot confirm that container groups are gone", "groups", batch)
			return nil
		}
		found := map[string]bool{}
		for i := range groups {
			found[groups[i].ContainerGroupId] = true
		}
		for _, id := range batch {
			if found[id] {
				p.metrics.listingMisses.Inc()
				klog.FromContext(ctx).Info("container group missing from the status listing but present when described; not lost", "group", id)
				continue
			}
			p.lose(ctx, id)
		}
		return nil
	})
}

// lose fails the pod of a group that is confirmed gone, unless the pod's
// deletion is under way: a terminating pod whose group is gone has simply
// finished its deletion (the group may have been deleted by a call whose
// answer was lost in a cloud outage), and is removed, never failed.
func (p *Provider) lose(ctx context.Context, id string) {
	p.mu.RLock()
	k, ok := p.byGroup[id]
	var e *entry
	var uid types.UID
	var ns, name string
	if ok {
		e = p.pods[k]
		uid, ns, name = e.pod.UID, e.pod.Namespace, e.pod.Name
	}
	lister := p.podLister
	p.mu.RUnlock()
	if !ok {
		return
	}
	if p.isTerminating(e, uid, lister, ns, name) {
		if e.deleting.Load() > 0 {
			return // the DeletePod under way finds the group gone and finishes
		}
		p.mu.RLock()
		same := p.byGroup[id] == k && p.pods[k] == e
		pod := e.pod.DeepCopy()
		p.mu.RUnlock()
		if !same {
			return
		}
		klog.FromContext(ctx).Info("container group of a terminating pod is gone; finishing its deletion", "pod", k, "group", id)
		p.finishDeletion(ctx, pod, k, e)
		return
	}
	p.mu.Lock()
	if p.byGroup[id] != k || p.pods[k] != e || isTerminal(e.pod.Status.Phase) {
		p.mu.Unlock()
		return
	}
	now := metav1.Now()
	e.pod.Status.Phase = corev1.PodFailed
	e.pod.Status.Reason = "ContainerInstanceNotFound"
	e.pod.Status.Message = "the ECI container group " + id + " no longer exists"
	for i := range e.pod.Status.ContainerStatuses {
		cs := &e.pod.Status.ContainerStatuses[i]
		if cs.State.Terminated == nil {
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: "ContainerInstanceNotFound", FinishedAt: now}}
		}
		cs.Ready = false
	}
	pod := e.pod.DeepCopy()
	e.pushed.Store(0) // pushed here, not by pushLatest
	p.mu.Unlock()
	p.event(pod, corev1.EventTypeWarning, "ContainerInstanceNotFound", "%s", pod.Status.Message)
	p.push(pod)
}

// deleteLateGroup deletes the group a retried create made for a pod that
// was deleted or replaced while the create was in flight (see created).
func (p *Provider) deleteLateGroup(ctx context.Context, pod *corev1.Pod, groupID string) {
	logger := klog.FromContext(ctx).WithValues("pod", key(pod.Namespace, pod.Name), "uid", pod.UID)
	logger.Info("pod deleted while its group was created; deleting the group", "group", groupID)
	if err := p.opts.Cloud.DeleteContainerGroup(ctx, groupID); err != nil && !eci.IsNotFound(err) {
		logger.Error(err, "delete group of deleted pod failed; the orphan sweep at start-up will retry", "group", groupID)
	}
}

// goneDuringRetry reports whether pod k of uid, which a retry found waiting
// for its group, was deleted, replaced by a pod of that name or given a
// group while the retry ran. The caller holds p.mu.
func (p *Provider) goneDuringRetry(k string, uid types.UID) bool {
	cur, ok := p.pods[k]
	return !ok || cur.pod.UID != uid || cur.groupID != ""
}
