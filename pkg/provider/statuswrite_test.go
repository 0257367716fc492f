package provider

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestStatusClientWritesCurrentMetadata plays, on the real apiserver, the
// write virtual-kubelet's pod controller makes of a status pushed before a
// user changed the pod's labels and annotations: the pushed pod at the
// resourceVersion of the informer, which has seen the change. Written as
// pushed, the old metadata would come back (shown with the plain client);
// through StatusClient the user's labels and annotations stay, and the
// status and the provider's annotations are recorded.
func TestStatusClientWritesCurrentMetadata(t *testing.T) {
	kube := shared.Get(t).Clientset()
	ctx := context.Background()
	ns := controlplane.TestNamespace(t, kube, "statuswrite")
	p := &Provider{} // StatusClient needs only the pod lister
	informer := podIndexer(p)
	type statusWriter interface {
		UpdateStatus(context.Context, *corev1.Pod, metav1.UpdateOptions) (*corev1.Pod, error)
	}
	for _, tc := range []struct {
		name     string
		client   statusWriter
		push     func(*corev1.Pod) *corev1.Pod // what the provider pushes
		reverted bool
	}{
		{"plain client, whole metadata pushed", kube.CoreV1().Pods(ns), func(pod *corev1.Pod) *corev1.Pod { return pod.DeepCopy() }, true},
		{"StatusClient, push as the provider makes it", p.StatusClient(kube.CoreV1()).Pods(ns), statusCopy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "web-" + map[bool]string{true: "plain", false: "wrapped"}[tc.reverted]
			created, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web", "old": "yes"},
					Annotations: map[string]string{"example.com/note": "before"}},
				// No scheduler takes it: its status is the test's alone.
				Spec: corev1.PodSpec{SchedulerName: "none", Containers: []corev1.Container{{Name: "main", Image: "registry.example.com/web:1"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}) })

			// The provider's record: the pod as created, its group recorded.
			rec := created.DeepCopy()
			rec.Annotations[translate.AnnotationInstanceID] = "eci-statuswrite"
			rec.Status = corev1.PodStatus{Phase: corev1.PodRunning, Reason: "Started", Message: "pushed before the user's change"}
			pushed := tc.push(rec)

			// The user's change, which the informer sees.
			patch := []byte(`{"metadata":{"labels":{"old":null,"new":"yes"},"annotations":{"example.com/note":"after"}}}`)
			changed, err := kube.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := informer.Add(changed); err != nil {
				t.Fatal(err)
			}
			// virtual-kubelet's updatePodStatus.
			write := pushed.DeepCopy()
			write.ResourceVersion = changed.ResourceVersion
			if _, err := tc.client.UpdateStatus(ctx, write, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("UpdateStatus: %v", err)
			}

			got, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Phase != corev1.PodRunning || got.Status.Message != rec.Status.Message {
				t.Errorf("status not recorded: %+v", got.Status)
			}
			if got.Annotations[translate.AnnotationInstanceID] != "eci-statuswrite" {
				t.Errorf("annotation %s = %q, want the provider's eci-statuswrite", translate.AnnotationInstanceID, got.Annotations[translate.AnnotationInstanceID])
			}
			if len(got.Spec.Containers) != 1 || got.Spec.Containers[0].Image != "registry.example.com/web:1" {
				t.Errorf("stored spec changed by the status write: %+v", got.Spec)
			}
			kept := maps.Equal(got.Labels, map[string]string{"app": "web", "new": "yes"}) && got.Annotations["example.com/note"] == "after"
			if tc.reverted && kept {
				t.Fatalf("the plain client kept the user's change (labels %v): the scenario no longer shows the revert StatusClient prevents", got.Labels)
			}
			if !tc.reverted && !kept {
				t.Errorf("labels %v, annotations %v after the status write: the user's change (old removed, new=yes, note=after) was reverted", got.Labels, got.Annotations)
			}
		})
	}
}

// TestPushCarriesIdentityAndProviderAnnotations: a push keeps of the
// metadata only what the core and StatusClient read.
func TestPushCarriesIdentityAndProviderAnnotations(t *testing.T) {
	now := metav1.Now()
	grace := int64(30)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1", ResourceVersion: "7",
		Labels: map[string]string{"app": "web"}, DeletionTimestamp: &now, DeletionGracePeriodSeconds: &grace,
		OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-1"}},
		Annotations:     map[string]string{"example.com/note": "x", translate.AnnotationZoneID: "zone-a"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	got := statusCopy(pod)
	want := metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1", DeletionTimestamp: &now, DeletionGracePeriodSeconds: &grace,
		Annotations: map[string]string{translate.AnnotationZoneID: "zone-a"}}
	if got.Name != want.Name || got.Namespace != want.Namespace || got.UID != want.UID || got.DeletionTimestamp != want.DeletionTimestamp ||
		got.DeletionGracePeriodSeconds != want.DeletionGracePeriodSeconds || !maps.Equal(got.Annotations, want.Annotations) ||
		got.Labels != nil || got.OwnerReferences != nil || got.ResourceVersion != "" || got.Status.Phase != corev1.PodRunning {
		t.Errorf("push metadata %+v, want %+v", got.ObjectMeta, want)
	}
}

// TestPushLatestSkipsRepeats: pushLatest does not hand the core a push
// identical to its last one (the core would write the status again at the
// pod's next informer event), and pushes again once the status changes.
func TestPushLatestSkipsRepeats(t *testing.T) {
	var pushes []*corev1.Pod
	p := &Provider{pods: map[string]*entry{}, notify: func(pod *corev1.Pod) { pushes = append(pushes, pod) }}
	e := &entry{groupID: "eci-1", marked: true}
	e.keep(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1",
		Annotations: map[string]string{translate.AnnotationInstanceID: "eci-1"}},
		Status: corev1.PodStatus{Phase: corev1.PodPending}})
	k := key("ns", "web")
	p.pods[k] = e
	p.pushLatest(k, e)
	p.pushLatest(k, e)
	if len(pushes) != 1 {
		t.Fatalf("%d pushes of an unchanged pod, want 1", len(pushes))
	}
	e.pod.Status.Phase = corev1.PodRunning
	p.pushLatest(k, e)
	if len(pushes) != 2 || pushes[1].Status.Phase != corev1.PodRunning {
		t.Fatalf("pushes %d after the status changed, want 2, the last Running", len(pushes))
	}
	e.pushed.Store(0) // another path pushed (lose)
	p.pushLatest(k, e)
	if len(pushes) != 3 {
		t.Errorf("pushes %d after another path pushed, want 3", len(pushes))
	}
}

// TestRetryRepeatNotPushed: a create retry that fails as the last did
// shows the same status, which is not pushed again; another failure is.
func TestRetryRepeatNotPushed(t *testing.T) {
	var pushes []*corev1.Pod
	p := &Provider{pods: map[string]*entry{}, notify: func(pod *corev1.Pod) { pushes = append(pushes, pod) }}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	k := key("ns", "web")
	// The retries scheduled here find the pod gone and do nothing.
	t.Cleanup(func() { p.mu.Lock(); delete(p.pods, k); p.mu.Unlock() })
	since := time.Now()
	for i, cause := range []string{"throttled", "throttled", "no stock"} {
		if err := p.scheduleRetry(createAttempt{pod: pod, since: since, n: 1}, ReasonCreateRetrying, errors.New(cause)); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	if len(pushes) != 2 || pushes[0].Status.Message != "throttled" || pushes[1].Status.Message != "no stock" {
		var msgs []string
		for _, p := range pushes {
			msgs = append(msgs, p.Status.Message)
		}
		t.Errorf("pushes %q, want the first failure and the different third", msgs)
	}
}
