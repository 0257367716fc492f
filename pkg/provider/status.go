package provider

import (
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionContainerInstanceCreated is the pod condition that says the
// container group exists in the cloud, as on the vendor's product.
const ConditionContainerInstanceCreated corev1.PodConditionType = "ContainerInstanceCreated"

// phaseOf maps a group status to a pod phase. Expired and ScheduleFailed are
// failures the pod's controller must see; the transient states are still
// Pending or Running.
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
	if t := eci.ParseTime(s); !t.IsZero() {
		return metav1.NewTime(t)
	}
	return metav1.Time{}
}

// initialStatus is the status of a pod whose group was just created.
func initialStatus(pod *corev1.Pod, groupID string, created time.Time) corev1.PodStatus {
	return podStatus(pod, &eci.ContainerGroup{ContainerGroupId: groupID, Status: eci.StatusPending}, created)
}

// podStatus builds the pod status from the cloud's description of its
// group. Containers keep their spec order, so kubectl shows them as
// declared; containers the cloud has not mentioned yet are waiting.
func podStatus(pod *corev1.Pod, g *eci.ContainerGroup, created time.Time) corev1.PodStatus {
	st := corev1.PodStatus{Phase: phaseOf(g.Status), PodIP: g.IntranetIp, HostIP: g.IntranetIp}
	switch g.Status {
	case eci.StatusExpired, eci.StatusScheduleFailed:
		st.Reason = "ContainerInstance" + g.Status
		st.Message = "the ECI container group " + g.ContainerGroupId + " is " + g.Status
	}
	if st.PodIP != "" {
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	}
	start := metav1.NewTime(created)
	if t := parseTime(g.CreationTime); !t.IsZero() {
		start = t
	}
	st.StartTime = &start

	// Native sidecars run in the group as regular containers
	// (translate.IsSidecar) but are init containers of the pod: their
	// statuses are looked up among the group's containers and reported
	// as init container statuses. Init is done when every ordinary init
	// container has succeeded; a sidecar's readiness counts toward the
	// pod's, as with the kubelet.
	initDone, sidecarsReady := true, true
	initCloud := append(append([]eci.ContainerStatus(nil), g.InitContainers...), g.Containers...)
	st.InitContainerStatuses, _ = containerStatuses(pod.Spec.InitContainers, initCloud, g.ContainerGroupId)
	for i, cs := range st.InitContainerStatuses {
		if translate.IsSidecar(&pod.Spec.InitContainers[i]) {
			sidecarsReady = sidecarsReady && cs.Ready
			continue
		}
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initDone = false
		}
	}
	var allReady bool
	st.ContainerStatuses, allReady = containerStatuses(pod.Spec.Containers, g.Containers, g.ContainerGroupId)
	allReady = allReady && sidecarsReady

	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool, reason string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, LastTransitionTime: now, Reason: reason}
		if ok {
			c.Status = corev1.ConditionTrue
			c.Reason = ""
		}
		return c
	}
	ready := st.Phase == corev1.PodRunning && allReady
	notReady := ""
	if !ready {
		notReady = "ContainersNotReady"
	}
	created2 := g.ContainerGroupId != ""
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodScheduled, true, ""),
		cond(ConditionContainerInstanceCreated, created2, "ContainerInstanceCreating"),
		cond(corev1.PodInitialized, initDone || st.Phase != corev1.PodPending, "ContainersNotInitialized"),
		cond(corev1.ContainersReady, ready, notReady),
		cond(corev1.PodReady, ready, notReady),
	}
	if st.Phase == corev1.PodPending && st.Reason == "" {
		// Say why the group waits (e.g. an image pull), as a kubelet
		// would through the waiting container's reason.
		for _, cs := range append(append([]corev1.ContainerStatus{}, st.InitContainerStatuses...), st.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
				st.Message = cs.Name + ": " + w.Reason
				if w.Message != "" {
					st.Message += ": " + w.Message
				}
				break
			}
		}
		if st.Message == "" {
			st.Message = kubeProxyWaiting(g)
		}
	}
	return st
}

// containerStatuses maps the cloud's containers onto the spec's, in spec
// order, and reports whether every one is ready.
func containerStatuses(spec []corev1.Container, cloud []eci.ContainerStatus, groupID string) ([]corev1.ContainerStatus, bool) {
	if len(spec) == 0 {
		return nil, false
	}
	byName := map[string]eci.ContainerStatus{}
	for _, c := range cloud {
		byName[c.Name] = c
	}
	allReady := true
	out := make([]corev1.ContainerStatus, 0, len(spec))
	for _, c := range spec {
		cs, ok := byName[c.Name]
		st := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image}
		if !ok {
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			allReady = false
			out = append(out, st)
			continue
		}
		st.ContainerID = "eci://" + groupID + "/" + c.Name
		st.Ready = cs.Ready
		st.RestartCount = cs.RestartCount
		st.State = containerState(cs.CurrentState)
		st.LastTerminationState = containerState(cs.PreviousState)
		if st.State.Waiting == nil && st.State.Running == nil && st.State.Terminated == nil {
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		started := st.State.Running != nil
		st.Started = &started
		if !st.Ready {
			allReady = false
		}
		out = append(out, st)
	}
	return out, allReady
}

// containerState maps the cloud's container state (State Waiting, Running
// or Terminated) to Kubernetes'.
func containerState(s eci.ContainerState) corev1.ContainerState {
	var out corev1.ContainerState
	switch s.State {
	case "Terminated":
		t := &corev1.ContainerStateTerminated{
			ExitCode: s.ExitCode, Signal: s.Signal, Reason: s.Reason, Message: s.Message,
			StartedAt: parseTime(s.StartTime), FinishedAt: parseTime(s.FinishTime),
		}
		if t.Reason == "" {
			t.Reason = "Completed"
			if t.ExitCode != 0 {
				t.Reason = "Error"
			}
		}
		out.Terminated = t
	case "Running":
		out.Running = &corev1.ContainerStateRunning{StartedAt: parseTime(s.StartTime)}
	case "Waiting":
		reason := s.Reason
		if reason == "" {
			reason = s.DetailStatus
		}
		out.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: s.Message}
	}
	return out
}
