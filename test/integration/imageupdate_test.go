package integration

import (
	"context"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// TestImageUpdate: `kubectl set image` on a bare pod reaches its group
// (UpdateContainerGroup, IncrementalUpdate, the new image for that
// container only), the pod's container status shows the new image running
// again after the restart, and an event says so; a change the group
// cannot take (activeDeadlineSeconds) gets a PodUpdateNotApplied Warning.
func TestImageUpdate(t *testing.T) {
	t.Parallel()
	env, node, ns := sharedNodeAndNamespace(t, "imgupd", "imgupd")
	kube := env.Kube
	ctx := context.Background()
	tpl := onVirtualNode(node, nil, corev1.RestartPolicyAlways, "sleep", "3600")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: tpl.Spec}
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "side", Image: "registry.example.com/library/side:1", Command: []string{"sleep", "3600"}})
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "pod Running", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 2 {
			return false, err
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "main" && (cs.State.Running == nil || cs.RestartCount != 0) {
				return false, nil
			}
		}
		return true, nil
	})
	g := podGroup(t, kube, env.Simulator, ns, pod.Name)

	// kubectl set image pod/web main=...:2 is a strategic merge patch of the image.
	const newImage = "registry.example.com/library/busybox:1.37"
	patch := []byte(`{"spec":{"containers":[{"name":"main","image":"` + newImage + `"}]}}`)
	if _, err := kube.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the new image running in the pod's status", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "main" {
				// The restart shows as a kubelet's would: the count, and the
				// old container's end as the last state.
				return cs.Image == newImage && cs.State.Running != nil && cs.Ready &&
					cs.RestartCount >= 1 && cs.LastTerminationState.Terminated != nil, nil
			}
		}
		return false, nil
	})
	waitEvent(t, kube, ns, pod.Name, corev1.EventTypeNormal, provider.ReasonImageUpdated, "main: registry.example.com/library/busybox:1.36 → "+newImage, g.ContainerGroupId)
	var sent map[string]string
	for _, r := range env.Simulator.Requests("UpdateContainerGroup") {
		if r.Params["ContainerGroupId"] == g.ContainerGroupId && r.Params["Container.1.Image"] != "" {
			sent = r.Params
		}
	}
	want := map[string]string{"UpdateType": "IncrementalUpdate", "Container.1.Name": "main", "Container.1.Image": newImage}
	for k, v := range want {
		if sent[k] != v {
			t.Errorf("UpdateContainerGroup %s = %q, want %q (sent %v)", k, sent[k], v, sent)
		}
	}
	if _, ok := sent["Container.2.Name"]; ok {
		t.Errorf("UpdateContainerGroup named a second container: %v", sent)
	}
	now := podGroup(t, kube, env.Simulator, ns, pod.Name)
	for _, c := range now.Containers {
		if (c.Name == "main" && c.Image != newImage) || (c.Name == "side" && c.Image != "registry.example.com/library/side:1") {
			t.Errorf("group container %s has image %s after the update", c.Name, c.Image)
		}
	}
	if now.ContainerGroupId != g.ContainerGroupId {
		t.Errorf("group %s after the update, want the same group %s", now.ContainerGroupId, g.ContainerGroupId)
	}

	// activeDeadlineSeconds may be set on a running pod; ECI cannot.
	p, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.ActiveDeadlineSeconds = ptr.To[int64](600)
	if _, err := kube.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, kube, ns, pod.Name, corev1.EventTypeWarning, provider.ReasonUpdateNotApplied, "spec.activeDeadlineSeconds (none → 600s)", "delete the pod to apply it")
	if n := env.Simulator.Calls()["CreateContainerGroup"]["OK"]; n == 0 {
		t.Error("no group created")
	}
	if a := p.Annotations[translate.AnnotationInstanceID]; a != g.ContainerGroupId {
		t.Errorf("pod annotation %s = %q, want %s", translate.AnnotationInstanceID, a, g.ContainerGroupId)
	}
}
