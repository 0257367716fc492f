package provider

import (
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
)

// TestKubeProxyNotInStatus: the hidden kube-proxy container never shows in
// the pod's status, and a running pod is ready on its own containers; a
// pod held up by kube-proxy's image says so in its message.
func TestKubeProxyNotInStatus(t *testing.T) {
	pod := testPod(nil)
	created := time.Now()
	running := group(t, `{"ContainerGroupId":"eci-1","Status":"Running","IntranetIp":"192.168.1.5",
		"Containers":[{"Name":"app","Ready":true,"CurrentState":{"State":"Running"}},
		{"Name":"`+translate.KubeProxyContainer+`","Image":"kp:1","Ready":true,"CurrentState":{"State":"Running"}}]}`)
	s := podStatus(pod, running, created)
	if len(s.ContainerStatuses) != len(pod.Spec.Containers) {
		t.Fatalf("%d container statuses for %d containers: %+v", len(s.ContainerStatuses), len(pod.Spec.Containers), s.ContainerStatuses)
	}
	for _, cs := range append(s.ContainerStatuses, s.InitContainerStatuses...) {
		if cs.Name == translate.KubeProxyContainer {
			t.Errorf("the kube-proxy container shows in the pod's status: %+v", cs)
		}
	}
	if s.Phase != corev1.PodRunning || !s.ContainerStatuses[0].Ready {
		t.Errorf("status %+v", s)
	}

	pulling := group(t, `{"ContainerGroupId":"eci-1","Status":"Pending",
		"Containers":[{"Name":"app","CurrentState":{"State":"Waiting","Reason":"ContainerCreating"}},
		{"Name":"`+translate.KubeProxyContainer+`","Image":"kp:1","CurrentState":{"State":"Waiting","Reason":"ErrImagePull","Message":"not found"}}]}`)
	s = podStatus(pod, pulling, created)
	for _, want := range []string{"kube-proxy", "kp:1", "ErrImagePull: not found", "ECI_KUBE_PROXY_IMAGE", translate.AnnotationKubeProxyEnabled} {
		if !strings.Contains(s.Message, want) {
			t.Errorf("message %q lacks %q", s.Message, want)
		}
	}
	for _, cs := range s.ContainerStatuses {
		if cs.Name == translate.KubeProxyContainer {
			t.Errorf("the kube-proxy container shows in a pending pod's status")
		}
	}
}

// TestKubeProxyEventsHidden: the routine events of the kube-proxy container
// are not forwarded to the pod; its warnings and the pod's own events are.
func TestKubeProxyEventsHidden(t *testing.T) {
	g := group(t, `{"ContainerGroupId":"eci-1","Status":"Running",
		"Containers":[{"Name":"app","Image":"nginx:1"},{"Name":"`+translate.KubeProxyContainer+`","Image":"kp:1"}],
		"Events":[{"Type":"Normal","Reason":"Pulling","Message":"pulling image \"nginx:1\""},
		{"Type":"Normal","Reason":"Pulling","Message":"pulling image \"kp:1\""},
		{"Type":"Normal","Reason":"Created","Message":"Created container `+translate.KubeProxyContainer+`"},
		{"Type":"Normal","Reason":"Started","Message":"Started container app"},
		{"Type":"Normal","Reason":"Started","Message":"Started container `+translate.KubeProxyContainer+`-mine"},
		{"Type":"Warning","Reason":"BackOff","Message":"Back-off restarting failed container `+translate.KubeProxyContainer+`"}]}`)
	var got []string
	for _, ev := range kubeProxyEventsHidden(g) {
		got = append(got, ev.Reason+": "+ev.Message)
	}
	want := []string{`Pulling: pulling image "nginx:1"`, "Started: Started container app", "Started: Started container " + translate.KubeProxyContainer + "-mine", "BackOff: Back-off restarting failed container " + translate.KubeProxyContainer}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("forwarded events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A group without kube-proxy keeps every event.
	plain := group(t, `{"ContainerGroupId":"eci-2","Containers":[{"Name":"app","Image":"nginx:1"}],
		"Events":[{"Type":"Normal","Reason":"Created","Message":"Created container `+translate.KubeProxyContainer+`"}]}`)
	if len(kubeProxyEventsHidden(plain)) != 1 {
		t.Error("events of a group without kube-proxy were dropped")
	}
}
