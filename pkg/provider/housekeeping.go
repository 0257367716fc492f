package provider

import (
	"context"

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
	missedDeletions.Inc()
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
		missedDeletions.Inc()
		klog.FromContext(ctx).Info("housekeeping: pod no longer exists; deleting its group", "pod", key(pod.Namespace, pod.Name))
		if err := p.DeletePod(ctx, pod); err != nil && !errdefs.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "housekeeping: delete failed; retrying with the next full listing", "pod", key(pod.Namespace, pod.Name))
		}
	}
}
