package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// The Node tells the truth about the cloud. Two conditions of its own, set
// from the ECI client's Health (every call's outcome):
//
//   - ContainerInstanceAPI: False (reason AccessKeyRefused or
//     EndpointUnreachable) once the cloud has refused the AccessKey, or
//     not answered, for the grace period (ECI_API_UNAVAILABLE_GRACE);
//     the node then also gets the NoSchedule taint TaintCloudUnavailable
//     so new pods are not piled onto a node that cannot create them.
//     Ready is never touched and no pod is evicted or deleted for it:
//     running groups keep running in the cloud. Both clear when the
//     cloud answers again.
//   - ContainerInstancePermissions: False (reason ActionsNotAllowed) while
//     the RAM policy refuses actions the controller needs, naming them,
//     what breaks and the fix; True with reason StatusFallback when only
//     DescribeContainerGroupStatus is refused (the documented policy) and
//     status is polled with DescribeContainerGroups instead.
const (
	ConditionContainerInstanceAPI         corev1.NodeConditionType = "ContainerInstanceAPI"
	ConditionContainerInstancePermissions corev1.NodeConditionType = "ContainerInstancePermissions"
	// TaintCloudUnavailable keeps new pods off the node while the cloud
	// refuses the AccessKey or does not answer; its value is the reason.
	TaintCloudUnavailable = "virtual-kubelet.io/cloud-unavailable"
)

// Reasons of ContainerInstancePermissions.
const (
	ReasonAllActionsAllowed = "AllActionsAllowed"
	ReasonStatusFallback    = "StatusFallback"
	ReasonActionsNotAllowed = "ActionsNotAllowed"
)

// DefaultCloudUnavailableGrace is Options.CloudUnavailableGrace's default.
const DefaultCloudUnavailableGrace = time.Minute

// nodeStatusPeriod is how often RunNodeStatus looks at the client's Health;
// it only computes, and writes only what changed.
const nodeStatusPeriod = time.Second

// refusedReprobeInterval is how often RunNodeStatus probes the actions the
// RAM policy refused (a harmless call each, eci.ProbeParams), so a fixed
// policy clears the Node's condition even if nobody calls them again.
const refusedReprobeInterval = 5 * time.Minute

// prober is the part of *eci.Client that probes one action harmlessly;
// a Cloud without it leaves refused actions to their next real call.
type prober interface {
	Probe(ctx context.Context, action string) error
}

// CloudConditions are the node's two cloud conditions as Health shows them
// now (without transition times; the node sets those).
func (p *Provider) CloudConditions() []corev1.NodeCondition {
	st := p.opts.Health.State(p.opts.CloudUnavailableGrace)
	api := corev1.NodeCondition{Type: ConditionContainerInstanceAPI, Status: corev1.ConditionTrue, Reason: st.Reason, Message: st.Message}
	if !st.OK {
		api.Status = corev1.ConditionFalse
	}
	return []corev1.NodeCondition{api, p.permissionsCondition(p.opts.Health.Refused())}
}

func (p *Provider) permissionsCondition(refused []string) corev1.NodeCondition {
	c := corev1.NodeCondition{Type: ConditionContainerInstancePermissions, Status: corev1.ConditionTrue,
		Reason: ReasonAllActionsAllowed, Message: "the RAM policy of the AccessKey allowed every ECI action the controller used"}
	fallback := p.InStatusFallback()
	var missing []string
	for _, a := range refused {
		if a == statusAction && fallback {
			continue
		}
		missing = append(missing, a)
	}
	note := ""
	if fallback {
		note = "eci:DescribeContainerGroupStatus is not allowed (it is not in the documented policy): pod status is polled with DescribeContainerGroups instead; adding it saves API calls"
		c.Reason, c.Message = ReasonStatusFallback, note
	}
	if len(missing) == 0 {
		return c
	}
	names := make([]string, len(missing))
	for i, a := range missing {
		names[i] = "eci:" + a
		if e := eci.WithoutAction(a); e != "" {
			names[i] += " (" + e + ")"
		}
	}
	c.Status, c.Reason = corev1.ConditionFalse, ReasonActionsNotAllowed
	them := "them"
	if len(names) == 1 {
		them = "it"
	}
	c.Message = "the RAM policy of the AccessKey does not allow " + strings.Join(names, ", ") +
		": add " + them + " to the policy's Action list (`vnodectl doctor` lists every action the controller needs) or grant AliyunECIFullAccess"
	if note != "" {
		c.Message += "; " + note
	}
	return c
}

// RunNodeStatus keeps the node's cloud conditions, its cloud-unavailable
// taint and the metrics vnode_cloud_api_available and
// vnode_cloud_action_refused in line with the ECI client's Health until
// ctx ends. set publishes conditions through the node controller, whose
// status writes must carry them. It does nothing without Options.Health.
func (p *Provider) RunNodeStatus(ctx context.Context, set func(context.Context, []corev1.NodeCondition) error) {
	if p.opts.Health == nil {
		return
	}
	logger := klog.FromContext(ctx).WithName("cloud")
	var published []corev1.NodeCondition
	taintSynced, lastAvailable := false, true
	refusedShown := map[string]bool{}
	ticker := time.NewTicker(nodeStatusPeriod)
	defer ticker.Stop()
	reprobe := p.refusedReprobe
	if reprobe <= 0 {
		reprobe = refusedReprobeInterval
	}
	nextProbe := time.Now().Add(reprobe)
	for {
		if pr, ok := p.opts.Cloud.(prober); ok && time.Now().After(nextProbe) {
			nextProbe = time.Now().Add(reprobe)
			for _, a := range p.opts.Health.Refused() {
				// The status fallback probes its own action.
				if a != statusAction {
					_ = pr.Probe(ctx, a)
				}
			}
		}
		conds := p.CloudConditions()
		available := conds[0].Status == corev1.ConditionTrue
		// The metrics first: they say what the node knows now, whether or
		// not the apiserver takes the conditions (a test that saw the
		// condition could read the metric before it was set).
		if available {
			p.metrics.cloudAvailable.Set(1)
		} else {
			p.metrics.cloudAvailable.Set(0)
		}
		if !available && conds[0].Reason == eci.HealthReasonKeyRefused {
			p.metrics.keyRefused.Set(1)
		} else {
			p.metrics.keyRefused.Set(0)
		}
		now := map[string]bool{}
		for _, a := range p.opts.Health.Refused() {
			now[a] = true
			p.metrics.actionRefused(a).Set(1)
		}
		for a := range refusedShown {
			if !now[a] {
				p.metrics.actionRefused(a).Set(0)
			}
		}
		refusedShown = now
		if !sameConditions(conds, published) {
			if err := set(ctx, conds); err != nil {
				logger.Error(err, "cannot publish the node's cloud conditions; retrying")
			} else {
				if published == nil || available != lastAvailable {
					p.cloudTransition(logger, conds[0], published == nil)
				}
				if published != nil && conds[1].Message != published[1].Message {
					logger.Info("RAM permissions changed", "status", conds[1].Status, "reason", conds[1].Reason, "message", conds[1].Message)
				}
				published, lastAvailable = conds, available
				taintSynced = false
			}
		}
		if !taintSynced && published != nil {
			if err := p.syncTaint(ctx, !available, conds[0].Reason); err != nil {
				logger.Error(err, "cannot update the node's taint; retrying", "taint", TaintCloudUnavailable, "want", !available)
			} else {
				taintSynced = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// cloudTransition logs a change of ContainerInstanceAPI, with an event on
// the Node when the cloud becomes unavailable or available again.
func (p *Provider) cloudTransition(logger klog.Logger, api corev1.NodeCondition, first bool) {
	ref := &corev1.ObjectReference{Kind: "Node", Name: p.opts.NodeName, UID: types.UID(p.opts.NodeName)}
	switch {
	case api.Status == corev1.ConditionFalse:
		logger.Info("the ECI API is unavailable; new pods are kept off the node (taint), running pods are left alone",
			"reason", api.Reason, "message", api.Message, "taint", TaintCloudUnavailable)
		if p.opts.Recorder != nil {
			p.opts.Recorder.Eventf(ref, corev1.EventTypeWarning, "ContainerInstanceAPIUnavailable", "%s", api.Message)
		}
	case !first:
		logger.Info("the ECI API answers again; the node takes new pods")
		if p.opts.Recorder != nil {
			p.opts.Recorder.Eventf(ref, corev1.EventTypeNormal, "ContainerInstanceAPIAvailable", "%s", api.Message)
		}
	}
}

// sameConditions compares what the node shows of two condition lists.
func sameConditions(a, b []corev1.NodeCondition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Status != b[i].Status || a[i].Reason != b[i].Reason || a[i].Message != b[i].Message {
			return false
		}
	}
	return true
}

// syncTaint adds (want) or removes the TaintCloudUnavailable taint on the
// node, leaving every other taint (the registration taint
// virtual-kubelet.io/provider, a cordon's) alone. The node controller
// writes only the status subresource, so it never undoes this.
func (p *Provider) syncTaint(ctx context.Context, want bool, reason string) error {
	nodes := p.opts.Kube.CoreV1().Nodes()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := nodes.Get(ctx, p.opts.NodeName, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) && !want {
				return nil
			}
			return err
		}
		var taints []corev1.Taint
		has := false
		for _, t := range node.Spec.Taints {
			if t.Key == TaintCloudUnavailable {
				has = true
				if want && t.Value == reason && t.Effect == corev1.TaintEffectNoSchedule {
					return nil
				}
				continue
			}
			taints = append(taints, t)
		}
		if !want && !has {
			return nil
		}
		if want {
			taints = append(taints, corev1.Taint{Key: TaintCloudUnavailable, Value: reason, Effect: corev1.TaintEffectNoSchedule})
		}
		node.Spec.Taints = taints
		if _, err := nodes.Update(ctx, node, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("node %s: %w", p.opts.NodeName, err)
		}
		return nil
	})
}

// ReasonPermissionDenied is the pod event of an ECI action the RAM policy
// refused for the pod (create, delete, token renewal, kubectl exec/logs).
const ReasonPermissionDenied = "ContainerInstancePermissionDenied"

// permissionEvent records, once per pod and action, a Warning event that
// names the refused action, what it did for the pod and the policy fix.
// It reports whether err was such a refusal.
func (p *Provider) permissionEvent(pod *corev1.Pod, err error, what string) bool {
	action, ok := eci.PermissionDenied(err)
	if !ok || pod == nil {
		return ok
	}
	k := string(pod.UID) + "\x00" + action
	p.refusedMu.Lock()
	if p.refusedEvents == nil {
		p.refusedEvents = map[string]bool{}
	}
	seen := p.refusedEvents[k]
	p.refusedEvents[k] = true
	p.refusedMu.Unlock()
	if !seen {
		p.event(pod, corev1.EventTypeWarning, ReasonPermissionDenied, "%s: %s", what, eci.PolicyFix(action))
	}
	return true
}

// forgetPermissionEvents drops the memory of a deleted pod's events.
func (p *Provider) forgetPermissionEvents(uid types.UID) {
	p.refusedMu.Lock()
	defer p.refusedMu.Unlock()
	for k := range p.refusedEvents {
		if strings.HasPrefix(k, string(uid)+"\x00") {
			delete(p.refusedEvents, k)
		}
	}
}
