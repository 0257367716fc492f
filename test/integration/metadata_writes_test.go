package integration

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// TestOneMetadataWritePerStart counts, per pod, the changes of labels or
// annotations the apiserver records between the pod's binding and Running.
// Each one makes virtual-kubelet's pod controller sync the pod again:
// podsEffectivelyEqual (go-cmp over the whole pod, building a path string
// per field: 13 % of the heap profile at 10,000 pods), then GetPod and a
// second comparison. The only writer here is the node, and it records the
// group (instance id, request id, spec) and its placement (zone, vSwitch,
// VPC) on the pod in a single write.
func TestOneMetadataWritePerStart(t *testing.T) {
	t.Parallel()
	env, nodeName, ns := sharedNodeAndNamespace(t, "vk-metadata", "metadata")
	kube, ctx := env.Kube, context.Background()

	w, err := kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	const n = 5
	for i := range n {
		tpl := onVirtualNode(nodeName, map[string]string{"app": "metadata"}, corev1.RestartPolicyAlways)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Labels: tpl.Labels}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	type seen struct {
		meta    map[string]string // labels and annotations of the last version
		changes int               // after binding
		running bool
		last    *corev1.Pod
	}
	pods := map[string]*seen{}
	timeout := time.After(2 * time.Minute)
	for done := 0; done < n; {
		select {
		case <-timeout:
			t.Fatalf("%d of %d pods Running after 2 minutes", done, n)
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("pod watch closed")
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			p := ev.Object.(*corev1.Pod)
			meta := map[string]string{}
			for k, v := range p.Labels {
				meta["label "+k] = v
			}
			for k, v := range p.Annotations {
				meta["annotation "+k] = v
			}
			s := pods[p.Name]
			if s == nil {
				s = &seen{meta: meta}
				pods[p.Name] = s
			}
			if p.Spec.NodeName != "" && !maps.Equal(meta, s.meta) {
				s.changes++
			}
			s.meta, s.last = meta, p
			if !s.running && p.Status.Phase == corev1.PodRunning {
				s.running = true
				done++
			}
		}
	}
	for name, s := range pods {
		a := s.last.Annotations
		if a[translate.AnnotationInstanceID] == "" || a[translate.AnnotationZoneID] == "" || a[translate.AnnotationVSwitchID] == "" {
			t.Errorf("pod %s Running without the group and its placement recorded: %v", name, a)
		}
		if s.changes != 1 {
			t.Errorf("pod %s: %d changes of its metadata from binding to Running, want 1 (the group and its placement in one write)", name, s.changes)
		}
	}
}
