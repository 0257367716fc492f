package provider

import (
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionContainerInstanceCreated is the pod condition that says the
// container group exists in the cloud, as on the vendor's product.
const ConditionContainerInstanceCreated corev1.PodConditionType = "ContainerInstanceCreated"

// phaseOf maps a group status to a pod phase when the cloud did not compute
// one. Expired and ScheduleFailed are failures the pod's controller must
// see; the transient states are still Pending or Running.
func phaseOf(status string) corev1.PodPhase {
	switch status {
	case eci.StatusRunning, eci.StatusRestarting, eci.StatusUpdating, eci.StatusTerminating:
		return corev1.PodRunning
	case eci.StatusSucceeded:
		return corev1.PodSucceeded
	case eci.StatusFailed, eci.StatusExpired, eci.StatusScheduleFailed:
		return corev1.PodFailed
	default:
		return corev1.PodPending
	}
}

func parseTime(s string) metav1.Time {
	if s == "" {
		return metav1.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04Z"} {
		if t, err := time.Parse(layout, s); err == nil {
			return metav1.NewTime(t)
		}
	}
	return metav1.Time{}
}

// podStatus builds the pod status from the cloud's view of its group. It
// keeps the containers in spec order, so kubectl shows them as declared, and
// reports containers the cloud has not mentioned yet as waiting.
func podStatus(pod *corev1.Pod, g *eci.GroupStatus, created time.Time) corev1.PodStatus {
	ps := g.PodStatus
	st := corev1.PodStatus{
		Phase:   corev1.PodPhase(ps.Phase),
		PodIP:   ps.PodIp,
		HostIP:  ps.HostIp,
		Reason:  "",
		Message: "",
	}
	if st.Phase == "" {
		st.Phase = phaseOf(g.Status)
	}
	// The group's own status wins on the failures that end a pod.
	if g.Status == eci.StatusExpired || g.Status == eci.StatusScheduleFailed {
		st.Phase = corev1.PodFailed
		st.Reason = "ContainerInstance" + g.Status
		st.Message = "the ECI container group " + g.ContainerGroupId + " is " + g.Status
	}
	if st.PodIP != "" {
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	}
	if st.HostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	}
	if t := parseTime(ps.StartTime); !t.IsZero() {
		st.StartTime = &t
	} else {
		t := metav1.NewTime(created)
		st.StartTime = &t
	}

	byName := map[string]eci.PodContainerStatus{}
	for _, cs := range ps.ContainerStatuses {
		byName[cs.Name] = cs
	}
	allReady := len(pod.Spec.Containers) > 0
	for _, c := range pod.Spec.Containers {
		cs, ok := byName[c.Name]
		out := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image}
		if !ok {
			out.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			allReady = false
			st.ContainerStatuses = append(st.ContainerStatuses, out)
			continue
		}
		if cs.ImageID != "" {
			out.ImageID = cs.ImageID
		}
		out.ContainerID = "eci://" + g.ContainerGroupId + "/" + c.Name
		out.Ready = cs.Ready
		out.Started = cs.Started
		out.RestartCount = cs.RestartCount
		out.State = containerState(cs.State)
		out.LastTerminationState = containerState(cs.LastState)
		if out.State.Waiting == nil && out.State.Running == nil && out.State.Terminated == nil {
			out.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		if !out.Ready {
			allReady = false
		}
		st.ContainerStatuses = append(st.ContainerStatuses, out)
	}

	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool, reason string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, LastTransitionTime: now, Reason: reason}
		if ok {
			c.Status = corev1.ConditionTrue
			c.Reason = ""
		}
		return c
	}
	running := st.Phase == corev1.PodRunning
	ready := running && allReady
	notReady := ""
	if !ready {
		notReady = "ContainersNotReady"
	}
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodScheduled, true, ""),
		cond(ConditionContainerInstanceCreated, true, ""),
		cond(corev1.PodInitialized, st.Phase != corev1.PodPending, "PodInitializing"),
		cond(corev1.ContainersReady, ready, notReady),
		cond(corev1.PodReady, ready, notReady),
	}
	for _, c := range ps.Conditions {
		if c.Status == "False" && c.Reason != "" && st.Phase == corev1.PodPending {
			// Surface why the cloud holds the group (e.g. image pull).
			st.Reason = c.Reason
			st.Message = c.Message
		}
	}
	return st
}

func containerState(s eci.K8sState) corev1.ContainerState {
	var out corev1.ContainerState
	switch {
	case s.Terminated != nil:
		out.Terminated = &corev1.ContainerStateTerminated{
			ExitCode: s.Terminated.ExitCode, Signal: s.Terminated.Signal,
			Reason: s.Terminated.Reason, Message: s.Terminated.Message,
			StartedAt: parseTime(s.Terminated.StartedAt), FinishedAt: parseTime(s.Terminated.FinishedAt),
		}
		if out.Terminated.Reason == "" {
			out.Terminated.Reason = "Completed"
			if out.Terminated.ExitCode != 0 {
				out.Terminated.Reason = "Error"
			}
		}
	case s.Running != nil:
		out.Running = &corev1.ContainerStateRunning{StartedAt: parseTime(s.Running.StartedAt)}
	case s.Waiting != nil:
		out.Waiting = &corev1.ContainerStateWaiting{Reason: s.Waiting.Reason, Message: s.Waiting.Message}
	}
	return out
}
