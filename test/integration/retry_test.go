package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// TestCreateRetries shows that a pod the cloud cannot take right now is
// never left without a reason: it waits with a condition and an Event and
// starts once the cloud recovers, or fails at once under fail-fast.
func TestCreateRetries(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-retry")
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) { c.StartDelay = 200 * time.Millisecond }})
	env.StartNode(t, env.NodeConfig(t, nodeName))
	kube := env.Kube
	ctx := context.Background()
	ns := uniqueName("retries")
	createNamespace(t, kube, ns)
	setStock := func(t *testing.T, cpu float64) {
		t.Helper()
		for _, z := range env.SimulatorConfig.Zones {
			if err := env.Simulator.SetStock(z.ZoneId, cpu, cpu*4); err != nil {
				t.Fatal(err)
			}
		}
	}
	getPod := func(ctx context.Context, name string) (*corev1.Pod, error) {
		return kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	}

	t.Run("no stock anywhere: Pending with a reason, Running once stock returns", func(t *testing.T) {
		setStock(t, 0)
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "waits"}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "Pending with ContainerInstanceCreated=False reason ContainerGroup.NoStock", 30*time.Second, func(ctx context.Context) (bool, error) {
			p, err := getPod(ctx, "waits")
			if err != nil {
				return false, err
			}
			c := condition(p, provider.ConditionContainerInstanceCreated)
			return p.Status.Phase == corev1.PodPending && c != nil && c.Status == corev1.ConditionFalse &&
				c.Reason == provider.ReasonNoStock && strings.Contains(c.Message, "NoStock"), nil
		})
		// Every attempt is refused with a new request id, yet the pod shows
		// one NoStock Warning whose count grows (the first two retries come
		// within 2.5–5 s and 5–10 s): the id is not in the message.
		var stock []corev1.Event
		poll(t, "one NoStock event counting three attempts", 40*time.Second, func(ctx context.Context) (bool, error) {
			evs, err := podEvents(ctx, kube, ns, "waits")
			stock = stock[:0]
			total := int32(0)
			for _, e := range evs {
				if e.Reason == "NoStock" {
					stock = append(stock, e)
					total += max(e.Count, 1)
				}
			}
			return total >= 3, err
		})
		if len(stock) != 1 || stock[0].Type != corev1.EventTypeWarning {
			t.Errorf("%d NoStock events, want one Warning whose count grows: %+v", len(stock), stock)
		}
		for _, e := range stock {
			if strings.Contains(e.Message, "RequestId") {
				t.Errorf("NoStock event %q carries a request id, which keeps repeats from aggregating", e.Message)
			}
		}
		if creates := env.Simulator.Calls()["CreateContainerGroup"][simulator.CodeNoStock]; creates < 3 {
			t.Errorf("simulator refused %d creates for stock, want at least 3 behind the event's count", creates)
		}
		setStock(t, 1000)
		poll(t, "Running after stock returns", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := getPod(ctx, "waits")
			return err == nil && p.Status.Phase == corev1.PodRunning && p.Annotations[translate.AnnotationInstanceID] != "", err
		})
	})

	t.Run("fail-fast: Failed at once with ContainerInstanceScheduleFailed", func(t *testing.T) {
		setStock(t, 0)
		defer setStock(t, 1000)
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fails", Annotations: map[string]string{translate.AnnotationFailStrategy: "fail-fast"}}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "Failed with reason", 30*time.Second, func(ctx context.Context) (bool, error) {
			p, err := getPod(ctx, "fails")
			if err != nil {
				return false, err
			}
			c := condition(p, provider.ConditionContainerInstanceCreated)
			return p.Status.Phase == corev1.PodFailed && p.Status.Reason == provider.ReasonScheduleFailed && c != nil && c.Reason == provider.ReasonNoStock, nil
		})
	})

	t.Run("cloud errors beyond the client's retries are retried by the provider", func(t *testing.T) {
		if err := env.Simulator.InjectFault(simulator.Fault{Action: "CreateContainerGroup", Times: 6, Code: "ServiceUnavailable"}); err != nil {
			t.Fatal(err)
		}
		defer env.Simulator.ClearFaults()
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "flaky"}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "Running after the faults pass", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := getPod(ctx, "flaky")
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
		if n := env.Simulator.Calls()["CreateContainerGroup"]["ServiceUnavailable"]; n != 6 {
			t.Errorf("simulator failed %d creates, want 6", n)
		}
	})

	t.Run("deleting a waiting pod stops its retries and leaves no group", func(t *testing.T) {
		setStock(t, 0)
		defer setStock(t, 1000)
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "abandoned"}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "pod waiting", 30*time.Second, func(ctx context.Context) (bool, error) {
			p, err := getPod(ctx, "abandoned")
			return err == nil && p.Status.Reason == provider.ReasonNoStock, err
		})
		if err := kube.CoreV1().Pods(ns).Delete(ctx, "abandoned", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "pod gone", 30*time.Second, func(ctx context.Context) (bool, error) {
			_, err := getPod(ctx, "abandoned")
			return err != nil, nil
		})
		setStock(t, 1000)
		time.Sleep(6 * time.Second) // longer than the first retry delay
		for _, g := range env.Simulator.Groups() {
			for _, tg := range g.Tags {
				if tg.Key == translate.TagPodName && tg.Value == "abandoned" {
					t.Errorf("group %s was created for a deleted pod", g.ContainerGroupId)
				}
			}
		}
	})
}
