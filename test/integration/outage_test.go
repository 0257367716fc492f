package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// TestOutageDuringScaleDown: pods deleted while the cloud is out, whose
// deletes the cloud carries out but whose answers are lost, are never
// shown Failed or ContainerInstanceNotFound: once the cloud answers again
// their groups are found gone and their deletion finishes. (A 60 s outage
// during a scale-down did that to 26 Terminating pods.)
func TestOutageDuringScaleDown(t *testing.T) {
	t.Parallel()
	env, nodeName, ns := sharedNodeAndNamespace(t, "vk-outage", "outage")
	kube := env.Kube
	ctx := context.Background()
	const pods = 4

	groups := map[string]string{}
	created := time.Now()
	for i := range pods {
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		name := fmt.Sprintf("web-%d", i)
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "every pod Running with its group", 60*time.Second, func(ctx context.Context) (bool, error) {
		l, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range l.Items {
			if id := p.Annotations[translate.AnnotationInstanceID]; p.Status.Phase == corev1.PodRunning && id != "" {
				groups[p.Name] = id
				n++
			}
		}
		return n == pods, nil
	})

	// Only groups older than the provider's lost-group grace (30 s) at the
	// first full listing after the outage can be taken for lost: the
	// outage below ends past that age.
	time.Sleep(time.Until(created.Add(25 * time.Second)))

	// Everything a pod shows from here on is recorded.
	w, err := kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bad []string
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Error {
				continue
			}
			if p.Status.Phase == corev1.PodFailed || p.Status.Reason == "ContainerInstanceNotFound" {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s: phase %s reason %s (%s)", p.Name, p.Status.Phase, p.Status.Reason, p.Status.Message))
				mu.Unlock()
			}
		}
	}()
	defer func() { w.Stop(); <-watched }()

	// The outage: every call fails. Each pod's first delete is carried
	// out and its answer lost (a rule for one call, taken before the next
	// pod is deleted); its retries fail like every other call. A retry of
	// an earlier pod's delete can take the one-call rule first (its group
	// is gone: NotFound, and that pod's deletion finishes); the rule is
	// then put back until this pod's group is gone.
	if err := env.Simulator.InjectFault(simulator.Fault{Action: "*", ErrorRate: 1, Code: "ServiceUnavailable"}); err != nil {
		t.Fatal(err)
	}
	defer env.Simulator.ClearFaults()
	lostAnswer := simulator.Fault{Action: "DeleteContainerGroup", Times: 1, Code: "ServiceUnavailable", AfterSuccess: true}
	deleteRulePending := func() bool {
		for _, f := range env.Simulator.Faults() {
			if f.Action == lostAnswer.Action {
				return true
			}
		}
		return false
	}
	for name, id := range groups {
		if err := env.Simulator.InjectFault(lostAnswer); err != nil {
			t.Fatal(err)
		}
		if err := kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "the cloud carried out the delete of "+name+"'s group", 30*time.Second, func(context.Context) (bool, error) {
			if _, ok := env.Simulator.Group(id); !ok {
				return true, nil
			}
			if !deleteRulePending() {
				t.Logf("another pod's delete retry took the lost-answer rule meant for %s; putting it back", name)
				return false, env.Simulator.InjectFault(lostAnswer)
			}
			return false, nil
		})
	}
	// The outage goes on long enough for status polls and delete retries to
	// fail (the status loop polls every second or faster) and for virtual-
	// kubelet's delete retries to back off to seconds.
	time.Sleep(10 * time.Second)
	if n := env.Simulator.Calls()["DeleteContainerGroup"]["ServiceUnavailable"]; n < 2*pods {
		t.Errorf("%d deletes answered ServiceUnavailable, want at least %d (each pod's lost answer and a retry)", n, 2*pods)
	}
	env.Simulator.ClearFaults()

	poll(t, "every pod's deletion finished", 90*time.Second, func(ctx context.Context) (bool, error) {
		for name := range groups {
			if _, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bad {
		t.Errorf("a Terminating pod was shown as lost: %s", b)
	}
	evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Reason == "ContainerInstanceNotFound" {
			t.Errorf("event %s on %s: %s", e.Reason, e.InvolvedObject.Name, e.Message)
		}
	}
}
