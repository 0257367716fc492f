package provider

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
)

func group(t *testing.T, js string) *eci.ContainerGroup {
	t.Helper()
	var g eci.ContainerGroup
	if err := json.Unmarshal([]byte(js), &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

func TestPodStatus(t *testing.T) {
	pod := testPod(nil)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		group string
		check func(t *testing.T, s corev1.PodStatus)
	}{
		{
			name:  "pending group without container statuses",
			group: `{"ContainerGroupId":"eci-1","Status":"Pending"}`,
			check: func(t *testing.T, s corev1.PodStatus) {
				if s.Phase != corev1.PodPending || s.ContainerStatuses[0].State.Waiting == nil {
					t.Errorf("status = %+v", s)
				}
				if !s.StartTime.Time.Equal(created) {
					t.Errorf("StartTime = %v", s.StartTime)
				}
			},
		},
		{
			name: "running and ready",
			group: `{"ContainerGroupId":"eci-1","Status":"Running","IntranetIp":"192.168.1.5","CreationTime":"2026-01-02T03:04:07Z",
				"Containers":[{"Name":"app","Ready":true,"RestartCount":1,"CurrentState":{"State":"Running","StartTime":"2026-01-02T03:04:08Z"},
				"PreviousState":{"State":"Terminated","ExitCode":1,"StartTime":"2026-01-02T03:04:07Z","FinishTime":"2026-01-02T03:04:08Z"}}]}`,
			check: func(t *testing.T, s corev1.PodStatus) {
				if s.Phase != corev1.PodRunning || s.PodIP != "192.168.1.5" || len(s.PodIPs) != 1 {
					t.Errorf("status = %+v", s)
				}
				cs := s.ContainerStatuses[0]
				if !cs.Ready || cs.RestartCount != 1 || cs.State.Running == nil || cs.ContainerID != "eci://eci-1/app" {
					t.Errorf("container = %+v", cs)
				}
				if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != "Error" {
					t.Errorf("last termination = %+v", cs.LastTerminationState)
				}
				want := map[corev1.PodConditionType]corev1.ConditionStatus{
					corev1.PodReady: corev1.ConditionTrue, corev1.ContainersReady: corev1.ConditionTrue, corev1.PodInitialized: corev1.ConditionTrue,
					ConditionContainerInstanceCreated: corev1.ConditionTrue, corev1.PodScheduled: corev1.ConditionTrue,
				}
				for _, c := range s.Conditions {
					if w, ok := want[c.Type]; ok && c.Status != w {
						t.Errorf("condition %s = %s", c.Type, c.Status)
					}
				}
			},
		},
		{
			name: "failed with exit code",
			group: `{"ContainerGroupId":"eci-1","Status":"Failed","Containers":[{"Name":"app",
				"CurrentState":{"State":"Terminated","ExitCode":3,"StartTime":"2026-01-02T03:04:08Z","FinishTime":"2026-01-02T03:04:09Z"}}]}`,
			check: func(t *testing.T, s corev1.PodStatus) {
				term := s.ContainerStatuses[0].State.Terminated
				if s.Phase != corev1.PodFailed || term == nil || term.ExitCode != 3 || term.Reason != "Error" {
					t.Errorf("status = %+v", s)
				}
			},
		},
		{
			name: "image pull failure explains the pending pod",
			group: `{"ContainerGroupId":"eci-1","Status":"Pending","Containers":[{"Name":"app",
				"CurrentState":{"State":"Waiting","Reason":"ErrImagePull","Message":"pull access denied"}}]}`,
			check: func(t *testing.T, s corev1.PodStatus) {
				if s.Phase != corev1.PodPending || s.Message != "app: ErrImagePull: pull access denied" {
					t.Errorf("phase %s message %q", s.Phase, s.Message)
				}
			},
		},
		{
			name:  "expired group fails the pod with a reason",
			group: `{"ContainerGroupId":"eci-9","Status":"Expired"}`,
			check: func(t *testing.T, s corev1.PodStatus) {
				if s.Phase != corev1.PodFailed || s.Reason != "ContainerInstanceExpired" {
					t.Errorf("phase %s reason %s", s.Phase, s.Reason)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, podStatus(pod, group(t, tt.group), created))
		})
	}
}

func TestKeepTransitions(t *testing.T) {
	pod := testPod(nil)
	g := group(t, `{"ContainerGroupId":"eci-1","Status":"Pending"}`)
	first := podStatus(pod, g, time.Now())
	time.Sleep(1100 * time.Millisecond) // metav1.Time has second precision
	second := podStatus(pod, g, time.Now())
	keepTransitions(&second, &first)
	for i := range second.Conditions {
		if !second.Conditions[i].LastTransitionTime.Equal(&first.Conditions[i].LastTransitionTime) {
			t.Errorf("condition %s transition time changed without a status change", second.Conditions[i].Type)
		}
	}
}
