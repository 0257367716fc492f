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
