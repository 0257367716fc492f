package provider

import (
	"context"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTerminatingPodNeverLost: a pod whose deletion is under way and whose
// group is gone (its delete answered by nothing in a cloud outage, or the
// group deleted before the core's DeletePod ran) finishes its deletion: it
// is removed from the apiserver, never reported Failed with
// ContainerInstanceNotFound. A running pod whose group is gone still is.
func TestTerminatingPodNeverLost(t *testing.T) {
	env := newSimEnv(t)
	kube, ns, informer := env.onAPIServer(t, "terminating")
	ctx := context.Background()
	listStart := time.Now()

	tests := []struct {
		name string
		// deletePodFailed: DeletePod ran and failed (the cloud was out);
		// graceful: the pod was deleted gracefully and the informer has
		// its deletion timestamp, which the core has not acted on yet.
		deletePodFailed, graceful bool
		wantFailed                bool
	}{
		{name: "running", wantFailed: true},
		{name: "DeletePod failed in an outage", deletePodFailed: true},
		{name: "deletion timestamp not acted on yet", graceful: true},
	}
	groups := map[string]string{}
	names := map[string]string{}
	for i, tt := range tests {
		name := "pod-" + string(rune('a'+i))
		names[tt.name] = name
		pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.PodSpec{NodeName: env.p.opts.NodeName, Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := env.cloud.CreateContainerGroup(ctx, &eci.CreateContainerGroupRequest{
			SecurityGroupId: "sg-sim", VSwitchId: "vsw-sim-h", ContainerGroupName: name,
			Containers: []eci.Container{{Name: "app", Image: "busybox", Cpu: 1, Memory: 2}},
		})
		if err != nil {
			t.Fatal(err)
		}
		stored := pod.DeepCopy()
		stored.Status.Phase = corev1.PodRunning
		e := &entry{pod: stored, groupID: resp.ContainerGroupId, created: listStart.Add(-time.Hour)}
		env.p.mu.Lock()
		env.p.pods[key(ns, name)] = e
		env.p.byGroup[resp.ContainerGroupId] = key(ns, name)
		env.p.mu.Unlock()
		groups[tt.name] = resp.ContainerGroupId

		if tt.deletePodFailed {
			e.terminating.Store(true) // as DeletePod does before its cloud call
		}
		seen := pod
		if tt.graceful {
			grace := int64(3600) // bound to a node with no kubelet: stays Terminating
			if err := kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
				t.Fatal(err)
			}
			if seen, err = kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Fatal(err)
			}
			if seen.DeletionTimestamp == nil {
				t.Fatalf("pod %s: no deletion timestamp after a graceful delete", name)
			}
		}
		if err := informer.Add(seen); err != nil {
			t.Fatal(err)
		}
		// The group is gone: the outage's delete went through after all.
		if err := env.cloud.DeleteContainerGroup(ctx, resp.ContainerGroupId); err != nil {
			t.Fatal(err)
		}
	}

	env.p.markLost(ctx, map[string]bool{}, listStart)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := key(ns, names[tt.name])
			env.p.mu.RLock()
			e, tracked := env.p.pods[k]
			var st corev1.PodStatus
			if tracked {
				st = e.pod.Status
			}
			env.p.mu.RUnlock()
			failed := tracked && st.Phase == corev1.PodFailed
			if failed != tt.wantFailed {
				t.Errorf("failed = %v (tracked %v, phase %s, reason %q), want %v", failed, tracked, st.Phase, st.Reason, tt.wantFailed)
			}
			if tt.wantFailed {
				if st.Reason != "ContainerInstanceNotFound" {
					t.Errorf("reason = %q, want ContainerInstanceNotFound", st.Reason)
				}
				return
			}
			if tracked {
				t.Errorf("pod %s still tracked after its group was found gone during its deletion", k)
			}
			_, err := kube.CoreV1().Pods(ns).Get(ctx, names[tt.name], metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("pod %s in the apiserver: err = %v, want NotFound (deletion finished with grace 0)", k, err)
			}
		})
	}

	// A create retry that gives up on a pod being deleted fails nothing.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waiting", UID: "waiting-uid"}}
	e := &entry{pod: pod.DeepCopy()}
	e.terminating.Store(true)
	env.p.mu.Lock()
	env.p.pods[key(ns, "waiting")] = e
	env.p.mu.Unlock()
	env.p.fail(pod, true, ReasonScheduleFailed, ReasonNoStock, "no stock")
	env.p.mu.RLock()
	got := env.p.pods[key(ns, "waiting")]
	env.p.mu.RUnlock()
	if got != e || got.pod.Status.Phase == corev1.PodFailed {
		t.Errorf("a terminating pod waiting for its group was failed by fail(): phase %s", got.pod.Status.Phase)
	}
}
