package provider

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Reasons of the events an in-place pod update gives.
const (
	// ReasonImageUpdated (Normal): changed container images were sent to
	// the group with UpdateContainerGroup.
	ReasonImageUpdated = "ContainerImageUpdated"
	// ReasonImageUpdateFailed (Warning): the cloud refused or did not
	// answer the update; the core retries it.
	ReasonImageUpdateFailed = "ContainerImageUpdateFailed"
	// ReasonUpdateNotApplied (Warning): a change Kubernetes allows on a
	// running pod that the group cannot take (no published parameter).
	ReasonUpdateNotApplied = "PodUpdateNotApplied"
)

// podUpdate is what an update of a pod with a group changes.
type podUpdate struct {
	images  []eci.UpdateContainer // containers whose image changed
	changes []string              // "app: old → new", for the event
	refused []string              // what the group cannot take, each with why
}

// diffUpdate compares the spec the group was made from (old, the slim
// copy) with the updated one. Kubernetes lets a running pod change
// container images, activeDeadlineSeconds, tolerations and
// terminationGracePeriodSeconds only. Images of containers (and of native
// sidecars, which are containers of the group) go to UpdateContainerGroup;
// an ordinary init container has run already, as a kubelet it is not run
// again (said in an event); activeDeadlineSeconds has no published update
// parameter (refused, with an event). Tolerations and the grace period
// are Kubernetes' business.
func diffUpdate(old, cur *corev1.PodSpec) podUpdate {
	var u podUpdate
	images := map[string]string{}
	for _, c := range old.Containers {
		images[c.Name] = c.Image
	}
	sidecar := map[string]bool{}
	for _, c := range old.InitContainers {
		images[c.Name] = c.Image
		sidecar[c.Name] = c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
	}
	check := func(field string, c corev1.Container, init bool) {
		was, ok := images[c.Name]
		if !ok || was == c.Image {
			return
		}
		if init && !sidecar[c.Name] {
			u.refused = append(u.refused, fmt.Sprintf("%s.image (%s → %s): the init container has run already and is not run again", field, was, c.Image))
			return
		}
		u.images = append(u.images, eci.UpdateContainer{Name: c.Name, Image: c.Image})
		u.changes = append(u.changes, fmt.Sprintf("%s: %s → %s", c.Name, was, c.Image))
	}
	for i, c := range cur.InitContainers {
		check(fmt.Sprintf("spec.initContainers[%d]", i), c, true)
	}
	for i, c := range cur.Containers {
		check(fmt.Sprintf("spec.containers[%d]", i), c, false)
	}
	if d := deadline(cur.ActiveDeadlineSeconds); d != deadline(old.ActiveDeadlineSeconds) {
		u.refused = append(u.refused, fmt.Sprintf("spec.activeDeadlineSeconds (%s → %s): UpdateContainerGroup has no such parameter, the group keeps %s; delete the pod to apply it",
			deadline(old.ActiveDeadlineSeconds), d, deadline(old.ActiveDeadlineSeconds)))
	}
	return u
}

func deadline(d *int64) string {
	if d == nil {
		return "none"
	}
	return fmt.Sprintf("%ds", *d)
}

// updateToken is the ClientToken of an image update: the pod and the
// images asked for, so a retry of the same update is one update.
func updateToken(uid string, images []eci.UpdateContainer) string {
	parts := make([]string, len(images))
	for i, c := range images {
		parts[i] = c.Name + "=" + c.Image
	}
	sort.Strings(parts)
	h := fnv.New64a()
	_, _ = h.Write([]byte(strings.Join(parts, "\n")))
	return fmt.Sprintf("%s-%016x", uid, h.Sum64()) // 36 + 17 characters, within the 64 allowed
}

// applyUpdate sends what an update changes to the pod's group, like a
// kubelet restarting a container whose image changed. An error leaves the
// provider's copy as it was, so the core hands the pod over again and the
// update is retried.
func (p *Provider) applyUpdate(ctx context.Context, pod *corev1.Pod) error {
	k := key(pod.Namespace, pod.Name)
	p.mu.RLock()
	e, ok := p.pods[k]
	var (
		u       podUpdate
		groupID string
	)
	if ok && e.slim && e.groupID != "" && e.pod.UID == pod.UID && pod.DeletionTimestamp == nil {
		u, groupID = diffUpdate(&e.pod.Spec, &pod.Spec), e.groupID
	}
	p.mu.RUnlock()
	if !ok {
		return errdefs.NotFoundf("pod %s is not known to the provider", k)
	}
	if len(u.refused) > 0 {
		p.event(pod, corev1.EventTypeWarning, ReasonUpdateNotApplied, "not applied to ECI container group %s: %s", groupID, strings.Join(u.refused, "; "))
	}
	if len(u.images) == 0 {
		return nil
	}
	err := p.opts.Cloud.UpdateContainerGroup(ctx, &eci.UpdateContainerGroupRequest{
		ContainerGroupId: groupID, UpdateType: eci.UpdateIncremental,
		ClientToken: updateToken(string(pod.UID), u.images), Containers: u.images,
	})
	if err != nil {
		klog.FromContext(ctx).Error(err, "updating container images", "pod", k, "group", groupID, "requestId", eci.RequestIDOf(err))
		if !p.permissionEvent(pod, err, "updating container images of group "+groupID) {
			p.event(pod, corev1.EventTypeWarning, ReasonImageUpdateFailed, "updating %s in ECI container group %s: %s; retrying", strings.Join(u.changes, ", "), groupID, eci.StableText(err))
		}
		return fmt.Errorf("update container images of group %s: %w", groupID, err)
	}
	note := ""
	if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		note = " (restartPolicy Never: ECI warns that the containers may fail when the group is updated)"
	}
	p.event(pod, corev1.EventTypeNormal, ReasonImageUpdated, "%s: sent to ECI container group %s with UpdateContainerGroup; ECI restarts the group's containers to apply it%s",
		strings.Join(u.changes, ", "), groupID, note)
	return nil
}
