package provider

import (
	"encoding/json"
	"fmt"
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

// TestPodStatusNativeSidecar: a native sidecar runs in the group as a
// regular container (translate places it before the app containers) but
// is reported as the init container it is in the pod, and its readiness
// counts toward the pod's.
func TestPodStatusNativeSidecar(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := testPod(func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyAlways
		p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox"}, {Name: "proxy", Image: "envoy", RestartPolicy: &always}}
	})
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	running := func(name string, ready bool) string {
		return fmt.Sprintf(`{"Name":%q,"Ready":%v,"CurrentState":{"State":"Running","StartTime":"2026-01-02T03:04:09Z"}}`, name, ready)
	}
	setupDone := `{"Name":"setup","CurrentState":{"State":"Terminated","ExitCode":0,"FinishTime":"2026-01-02T03:04:08Z"}}`
	tests := []struct {
		name                      string
		group                     string
		initialized, ready        corev1.ConditionStatus
		sidecarStarted, sideReady bool
	}{
		{
			name: "init container running: the sidecar waits with the app",
			group: `{"ContainerGroupId":"eci-1","Status":"Pending","InitContainers":[{"Name":"setup","CurrentState":{"State":"Running"}}],
				"Containers":[{"Name":"proxy","CurrentState":{"State":"Waiting","Reason":"PodInitializing"}},{"Name":"app","CurrentState":{"State":"Waiting","Reason":"PodInitializing"}}]}`,
			initialized: corev1.ConditionFalse, ready: corev1.ConditionFalse,
		},
		{
			name:        "all running and ready",
			group:       `{"ContainerGroupId":"eci-1","Status":"Running","InitContainers":[` + setupDone + `],"Containers":[` + running("proxy", true) + `,` + running("app", true) + `]}`,
			initialized: corev1.ConditionTrue, ready: corev1.ConditionTrue, sidecarStarted: true, sideReady: true,
		},
		{
			name:        "sidecar not ready keeps the pod not ready",
			group:       `{"ContainerGroupId":"eci-1","Status":"Running","InitContainers":[` + setupDone + `],"Containers":[` + running("proxy", false) + `,` + running("app", true) + `]}`,
			initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse, sidecarStarted: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := podStatus(pod, group(t, tt.group), created)
			if len(s.ContainerStatuses) != 1 || s.ContainerStatuses[0].Name != "app" {
				t.Fatalf("container statuses = %+v, want only app", s.ContainerStatuses)
			}
			if len(s.InitContainerStatuses) != 2 || s.InitContainerStatuses[1].Name != "proxy" {
				t.Fatalf("init container statuses = %+v, want setup and proxy", s.InitContainerStatuses)
			}
			side := s.InitContainerStatuses[1]
			if side.Started == nil || *side.Started != tt.sidecarStarted || side.Ready != tt.sideReady {
				t.Errorf("sidecar status started %v ready %v, want %v %v (state %+v)", side.Started, side.Ready, tt.sidecarStarted, tt.sideReady, side.State)
			}
			if tt.sidecarStarted && side.ContainerID != "eci://eci-1/proxy" {
				t.Errorf("sidecar container id %q", side.ContainerID)
			}
			for _, c := range s.Conditions {
				if c.Type == corev1.PodInitialized && c.Status != tt.initialized {
					t.Errorf("Initialized = %s, want %s", c.Status, tt.initialized)
				}
				if c.Type == corev1.PodReady && c.Status != tt.ready {
					t.Errorf("Ready = %s, want %s", c.Status, tt.ready)
				}
			}
		})
	}
}
