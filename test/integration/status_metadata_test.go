package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestStatusWriteKeepsMetadata checks the node's status writes on the real
// apiserver. The node pushes each pod's status to virtual-kubelet's pod
// controller with no spec and, of the metadata, only the pod's identity
// and the annotations the node records; the controller writes it to
// pods/status (provider.StatusClient). The test shows that such a write
// records the status and the node's annotations, leaves the stored spec
// as it was, and keeps the labels and annotations a user changed just
// before it: the write takes them from the informer, so a status pushed
// before the user's change does not put the old ones back.
func TestStatusWriteKeepsMetadata(t *testing.T) {
	t.Parallel()
	env, nodeName, ns := sharedNodeAndNamespace(t, "vk-statusmeta", "statusmeta")
	kube, ctx := env.Kube, context.Background()

	const n = 3
	for i := range n {
		tpl := onVirtualNode(nodeName, map[string]string{"app": "statusmeta", "removed-by-user": "yes"}, corev1.RestartPolicyAlways)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Labels: tpl.Labels,
			Annotations: map[string]string{"example.com/note": "before"}}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	running := map[string]*corev1.Pod{}
	poll(t, "pods Running with their group and placement recorded", 2*time.Minute, func(ctx context.Context) (bool, error) {
		for i := range n {
			name := fmt.Sprintf("web-%d", i)
			p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			a := p.Annotations
			if p.Status.Phase != corev1.PodRunning || a[translate.AnnotationInstanceID] == "" || a[translate.AnnotationZoneID] == "" {
				return false, nil
			}
			running[name] = p
		}
		return true, nil
	})

	// A user changes each pod's labels and annotations, and its group
	// fails at once: the node pushes the Failed status while (or before)
	// virtual-kubelet sees the change.
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      map[string]any{"removed-by-user": nil, "added-by-user": "yes"},
		"annotations": map[string]any{"example.com/note": "after", "example.com/added": "yes"},
	}})
	for name, p := range running {
		if _, err := kube.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("patch pod %s: %v", name, err)
		}
		if err := env.Simulator.FailGroup(p.Annotations[translate.AnnotationInstanceID], ""); err != nil {
			t.Fatalf("fail the group of pod %s: %v", name, err)
		}
	}

	poll(t, "pods Failed after their groups failed", 2*time.Minute, func(ctx context.Context) (bool, error) {
		for name := range running {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if p.Status.Phase != corev1.PodFailed {
				return false, nil
			}
		}
		return true, nil
	})
	// Any write still queued for a pod would land within a few seconds.
	time.Sleep(3 * time.Second)

	for name, before := range running {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantLabels := map[string]string{"app": "statusmeta", "added-by-user": "yes"}
		if !maps.Equal(p.Labels, wantLabels) {
			t.Errorf("pod %s: labels %v after the node's status write, want the user's %v", name, p.Labels, wantLabels)
		}
		if p.Annotations["example.com/note"] != "after" || p.Annotations["example.com/added"] != "yes" {
			t.Errorf("pod %s: annotations %v after the node's status write, want the user's example.com/note=after and example.com/added=yes", name, p.Annotations)
		}
		for _, a := range []string{translate.AnnotationInstanceID, translate.AnnotationRequestID, translate.AnnotationInstanceSpec,
			translate.AnnotationZoneID, translate.AnnotationVSwitchID, translate.AnnotationVPC} {
			if p.Annotations[a] != before.Annotations[a] || p.Annotations[a] == "" {
				t.Errorf("pod %s: annotation %s = %q after the status write, want the node's %q", name, a, p.Annotations[a], before.Annotations[a])
			}
		}
		if !equality.Semantic.DeepEqual(p.Spec, before.Spec) {
			t.Errorf("pod %s: spec changed by the node's status writes (they carry none):\nbefore %+v\nafter  %+v", name, before.Spec, p.Spec)
		}
		if !equality.Semantic.DeepEqual(p.OwnerReferences, before.OwnerReferences) || !equality.Semantic.DeepEqual(p.Finalizers, before.Finalizers) {
			t.Errorf("pod %s: owner references or finalizers changed by the status write", name)
		}
		if p.Status.Reason == "" && len(p.Status.ContainerStatuses) == 0 {
			t.Errorf("pod %s: Failed without the group's reason or container statuses: %+v", name, p.Status)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated == nil {
				t.Errorf("pod %s: container %s not terminated in the recorded status: %+v", name, cs.Name, cs.State)
			}
		}
	}
}
