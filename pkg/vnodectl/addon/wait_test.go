package addon

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodBlocker covers the pod states that stop a wait early and those
// that must not: a pod on its way (not scheduled yet, containers
// creating, crash-looping) keeps the wait going.
func TestPodBlocker(t *testing.T) {
	waiting := func(reason, msg string) corev1.PodStatus {
		return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "drain", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}}
	}
	now := metav1.Now()
	tests := []struct {
		name       string
		pod        corev1.Pod
		wantReason string
		wantMsg    string
		wantState  string
	}{
		{
			name: "unschedulable",
			pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
				Message: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."}}}},
			wantReason: "Unschedulable", wantMsg: "0/3 nodes are available",
			wantState: "Pending (Unschedulable: 0/3 nodes are available",
		},
		{
			name: "image pull back-off", pod: corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: waiting("ImagePullBackOff", `Back-off pulling image "x"`)},
			wantReason: "ImagePullBackOff", wantMsg: `container drain: Back-off pulling image "x"`,
		},
		{
			name: "image pull error in an init container", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{
				Name: "init", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}}},
			wantReason: "ErrImagePull", wantMsg: "container init",
		},
		{
			name: "missing secret key", pod: corev1.Pod{Status: waiting("CreateContainerConfigError", `secret "alibaba-addon-secret" not found`)},
			wantReason: "CreateContainerConfigError", wantMsg: "alibaba-addon-secret",
		},
		{name: "not scheduled yet", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}}, wantState: "Pending (not scheduled yet)"},
		{
			name: "scheduling in progress", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated"}}}},
			wantState: "Pending (not scheduled yet)",
		},
		{name: "containers creating", pod: corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: waiting("ContainerCreating", "")},
			wantState: "Pending (container drain ContainerCreating)"},
		{
			name: "crash loop", pod: corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "virtual-node", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}}}}},
			wantState: "Running (container virtual-node CrashLoopBackOff: back-off 10s (last exit code 2, Error))",
		},
		{
			name: "terminating pods never block", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: waiting("ImagePullBackOff", "")},
			wantState: "Terminating",
		},
		{
			name: "ready", pod: corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}}},
			wantState: "Running, ready",
		},
	}
	for _, tt := range tests {
		reason, msg, ok := PodBlocker(&tt.pod)
		if ok != (tt.wantReason != "") || reason != tt.wantReason || !strings.Contains(msg, tt.wantMsg) {
			t.Errorf("%s: PodBlocker = %q, %q, %v; want %q containing %q", tt.name, reason, msg, ok, tt.wantReason, tt.wantMsg)
		}
		if tt.wantState != "" {
			if got := PodState(&tt.pod); !strings.HasPrefix(got, tt.wantState) {
				t.Errorf("%s: PodState = %q, want it to start with %q", tt.name, got, tt.wantState)
			}
		}
	}
}

// TestReleaseWorkloads finds the Deployments and StatefulSets a wait
// follows in a release manifest, and nothing else.
func TestReleaseWorkloads(t *testing.T) {
	r, err := Render(map[string]any{"region": "cn-hangzhou", "vSwitches": []any{"vsw-a"}, "securityGroup": "sg-a"}, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range releaseWorkloads(r.Manifest) {
		got = append(got, w.String())
	}
	joined := strings.Join(got, ",")
	if !strings.Contains(joined, "deployment/"+ControllerDeployment) || !strings.Contains(joined, "deployment/ack-virtual-node-webhook") {
		t.Errorf("workloads %v: want the controller and the webhook Deployments", got)
	}
	for _, w := range got {
		if !strings.HasPrefix(w, "deployment/") && !strings.HasPrefix(w, "statefulset/") {
			t.Errorf("workload %s is neither a Deployment nor a StatefulSet", w)
		}
	}
}
