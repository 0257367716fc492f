package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/webhook"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// plainPod is a pod as users write it when they rely on the webhook: no
// nodeSelector, no toleration.
func plainPod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "main", Image: "registry.example.com/library/busybox:1.36",
				// Small requests: without eci-use-specs the group would be
				// 0.25 vCPU / 0.5 GiB, so a 2-4Gi group proves the profile.
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi"),
				}},
			}},
		},
	}
}

// routed reports whether the webhook sent p to the virtual node: the
// nodeSelector and exactly one toleration of the virtual-node taint.
func routed(p *corev1.Pod) bool {
	return p.Spec.NodeSelector[webhook.NodeSelectorKey] == webhook.NodeSelectorValue && virtualNodeTolerations(p) == 1
}

func virtualNodeTolerations(p *corev1.Pod) int {
	n := 0
	for _, tol := range p.Spec.Tolerations {
		if tol.Key == webhook.TolerationKey {
			n++
		}
	}
	return n
}

// labelNamespace creates a namespace (waiting for its ServiceAccount) and
// labels it.
func labelNamespace(t *testing.T, kube kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	createNamespace(t, kube, name)
	ns, err := kube.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range labels {
		ns.Labels[k] = v
	}
	if _, err := kube.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitAdmission dry-runs pod until the apiserver's admission chain gives
// the wanted result: configuration and namespace-label changes reach the
// apiserver's informers asynchronously.
func waitAdmission(t *testing.T, kube kubernetes.Interface, ns string, pod *corev1.Pod, what string, want func(*corev1.Pod) bool) {
	t.Helper()
	poll(t, what, 30*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Create(ctx, pod.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		if !want(p) {
			return false, fmt.Errorf("dry-run pod: nodeSelector %v, tolerations %v, annotations %v", p.Spec.NodeSelector, p.Spec.Tolerations, p.Annotations)
		}
		return true, nil
	})
}

// runsOnVirtualNode creates pod in ns and waits until it is Running on the
// virtual node; it returns the pod.
func runsOnVirtualNode(t *testing.T, kube kubernetes.Interface, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	waitAdmission(t, kube, ns, pod, "webhook routes "+ns+"/"+pod.Name, routed)
	created, err := kube.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !routed(created) {
		t.Fatalf("pod %s/%s not routed: nodeSelector %v, tolerations %v", ns, pod.Name, created.Spec.NodeSelector, created.Spec.Tolerations)
	}
	var got *corev1.Pod
	poll(t, ns+"/"+pod.Name+" Running on "+nodeName, 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = p
		return p.Spec.NodeName == nodeName && p.Status.Phase == corev1.PodRunning, nil
	})
	return got
}

// admissionRequests sums the webhook's admission request counter.
func admissionRequests(t *testing.T, srv *webhook.Server) float64 {
	t.Helper()
	mfs, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "vnode_webhook_admission_requests_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestWebhook runs virtual-node-affinity-admission-controller against the
// real apiserver, which calls it over TLS with the CA bundle the webhook
// manages itself: labels on pods and namespaces (current and legacy) send
// pods to the virtual node, the opt-out label keeps a pod off it, an
// eci-profile selector sizes the ECI group, a malformed profile edit is
// reported and the last good one kept, and pods are still admitted when the
// webhook is down.
func TestWebhook(t *testing.T) {
	t.Parallel()
	// A control plane of its own: the webhook's MutatingWebhookConfiguration
	// sees every pod of the cluster, and it reads kube-system/eci-profile.
	env := testenv.Start(t, testenv.Options{})
	env.StartNode(t, env.NodeConfig(t, nodeName))
	kube := env.Kube
	ctx := context.Background()

	cfg, err := webhook.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(testenv.FreePort(t))
	cfg.ListenAddr = "127.0.0.1:" + port
	cfg.URL = "https://127.0.0.1:" + port + webhook.DefaultPath
	cfg.MetricsAddr = ""
	cfg.Kubeconfig = env.ControlPlane.Kubeconfig()
	cfg.ResyncInterval = 2 * time.Second
	srv, err := webhook.New(webhook.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	whCtx, whCancel := context.WithCancel(ctx)
	whDone := make(chan error, 1)
	go func() { whDone <- srv.Run(whCtx) }()
	var stopOnce sync.Once
	stopWebhook := func() {
		stopOnce.Do(func() {
			whCancel()
			select {
			case err := <-whDone:
				if err != nil {
					t.Errorf("webhook: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("webhook did not stop within 20s")
			}
		})
	}
	t.Cleanup(stopWebhook)
	select {
	case <-srv.Ready():
	case err := <-whDone:
		t.Fatalf("webhook exited before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("webhook not ready within 60s")
	}

	t.Run("manages its certificate Secret and configuration", func(t *testing.T) {
		sec, err := kube.CoreV1().Secrets(cfg.Namespace).Get(ctx, cfg.CertSecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mwc, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfg.ConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range mwc.Webhooks {
			if string(h.ClientConfig.CABundle) != string(sec.Data[webhook.SecretKeyCABundle]) || h.ClientConfig.URL == nil || *h.ClientConfig.URL != cfg.URL {
				t.Errorf("entry %s: clientConfig does not point at the webhook with its CA", h.Name)
			}
		}
	})

	t.Run("pod label alibabacloud.com/eci=true", func(t *testing.T) {
		createNamespace(t, kube, "wh-pod")
		runsOnVirtualNode(t, kube, "wh-pod", plainPod("labelled", map[string]string{webhook.LabelECI: "true"}))
	})

	t.Run("namespace label alibabacloud.com/eci=true", func(t *testing.T) {
		labelNamespace(t, kube, "wh-ns", map[string]string{webhook.LabelECI: "true"})
		runsOnVirtualNode(t, kube, "wh-ns", plainPod("plain", nil))
	})

	t.Run("legacy labels eci=true and virtual-node-affinity-injection=enabled", func(t *testing.T) {
		createNamespace(t, kube, "wh-legacy")
		runsOnVirtualNode(t, kube, "wh-legacy", plainPod("legacy", map[string]string{webhook.LabelECILegacy: "true"}))
		labelNamespace(t, kube, "wh-legacy-ns", map[string]string{webhook.LabelInjectionLegacy: "enabled"})
		runsOnVirtualNode(t, kube, "wh-legacy-ns", plainPod("plain", nil))
	})

	t.Run("opt-out and unrelated pods never reach the webhook", func(t *testing.T) {
		before := admissionRequests(t, srv)
		out, err := kube.CoreV1().Pods("wh-ns").Create(ctx, plainPod("opted-out", map[string]string{webhook.LabelECI: "false"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// (DefaultTolerationSeconds adds not-ready/unreachable tolerations.)
		if out.Spec.NodeSelector != nil || virtualNodeTolerations(out) != 0 {
			t.Errorf("opted-out pod mutated: nodeSelector %v, tolerations %v", out.Spec.NodeSelector, out.Spec.Tolerations)
		}
		if _, err := kube.CoreV1().Pods("wh-pod").Create(ctx, plainPod("unrelated", map[string]string{"app": "x"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The scheduler has looked at it and found no node: the virtual
		// node's taint keeps it off, and there is no other node.
		poll(t, "opted-out pod Unschedulable", 30*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods("wh-ns").Get(ctx, "opted-out", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if p.Spec.NodeName != "" {
				return false, fmt.Errorf("opted-out pod bound to %s", p.Spec.NodeName)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					return true, nil
				}
			}
			return false, nil
		})
		if p, _ := kube.CoreV1().Pods("wh-ns").Get(ctx, "opted-out", metav1.GetOptions{}); p.Spec.NodeName != "" {
			t.Errorf("opted-out pod bound to %s", p.Spec.NodeName)
		}
		if after := admissionRequests(t, srv); after != before {
			t.Errorf("webhook called %v times for an opted-out and an unrelated pod, want 0", after-before)
		}
	})

	const bigSelector = `[{"name":"big","objectSelector":{"matchLabels":{"eci-size":"big"}},` +
		`"effect":{"annotations":{"k8s.aliyun.com/eci-use-specs":"2-4Gi"},"labels":{"eci-profile":"big"}}}]`
	bigPod := func(name string) *corev1.Pod { return plainPod(name, map[string]string{"eci-size": "big"}) }
	sized := func(p *corev1.Pod) bool {
		return routed(p) && p.Annotations[translate.AnnotationUseSpecs] == "2-4Gi" && p.Labels["eci-profile"] == "big"
	}

	t.Run("eci-profile selector routes and sizes the group", func(t *testing.T) {
		_, err := kube.CoreV1().ConfigMaps(profile.DefaultNamespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: profile.DefaultName},
			Data:       map[string]string{"vSwitchIds": env.SimulatorConfig.Zones[0].VSwitches[0].VSwitchId, "selectors": bigSelector},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Applied without a restart, and the configuration gains an entry
		// for the selector so its pods reach the webhook.
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := srv.Profile().WaitFor(wctx, func(p *profile.Profile) bool { return len(p.Selectors) == 1 }); err != nil {
			t.Fatal(err)
		}
		createNamespace(t, kube, "wh-profile")
		waitAdmission(t, kube, "wh-profile", bigPod("big"), "selector effect on a dry-run pod", sized)
		p := runsOnVirtualNode(t, kube, "wh-profile", bigPod("big"))
		if !sized(p) {
			t.Errorf("pod lacks the selector effect: annotations %v labels %v", p.Annotations, p.Labels)
		}
		id := p.Annotations[translate.AnnotationInstanceID]
		g, ok := env.Simulator.Group(id)
		if !ok {
			t.Fatalf("no group %q in the simulator", id)
		}
		if g.Cpu != 2 || g.Memory != 4 {
			t.Errorf("group %s is %v vCPU / %v GiB, want 2 / 4 from eci-use-specs", id, g.Cpu, g.Memory)
		}
	})

	t.Run("malformed selectors are reported and the last good profile kept", func(t *testing.T) {
		cm, err := kube.CoreV1().ConfigMaps(profile.DefaultNamespace).Get(ctx, profile.DefaultName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		goodRV := srv.Profile().Current().ResourceVersion
		cm.Data["selectors"] = `[{"name":"big","objectSelector":{"matchLabels":{"eci-size":"big"}}` // not closed
		if _, err := kube.CoreV1().ConfigMaps(profile.DefaultNamespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "Warning event naming selectors on the ConfigMap", 30*time.Second, func(ctx context.Context) (bool, error) {
			evs, err := kube.CoreV1().Events(profile.DefaultNamespace).List(ctx, metav1.ListOptions{
				FieldSelector: "involvedObject.kind=ConfigMap,involvedObject.name=" + profile.DefaultName,
			})
			if err != nil {
				return false, err
			}
			for _, ev := range evs.Items {
				if ev.Type == corev1.EventTypeWarning && ev.Reason == profile.ReasonInvalidProfile &&
					strings.Contains(ev.Message, "selectors") && strings.Contains(ev.Message, "resourceVersion "+goodRV) {
					return true, nil
				}
			}
			return false, fmt.Errorf("events: %+v", evs.Items)
		})
		if cur := srv.Profile().Current(); cur.ResourceVersion != goodRV || len(cur.Selectors) != 1 {
			t.Fatalf("profile in effect changed: %+v", cur)
		}
		p, err := kube.CoreV1().Pods("wh-profile").Create(ctx, bigPod("big-after-bad-edit"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !sized(p) {
			t.Errorf("pod matching the last good selector lacks its effect: nodeSelector %v annotations %v", p.Spec.NodeSelector, p.Annotations)
		}
	})

	t.Run("fail-open when the webhook is down", func(t *testing.T) {
		stopWebhook()
		createNamespace(t, kube, "wh-down")
		for _, pod := range []*corev1.Pod{
			plainPod("unrelated", nil),
			plainPod("labelled", map[string]string{webhook.LabelECI: "true"}),
		} {
			start := time.Now()
			p, err := kube.CoreV1().Pods("wh-down").Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("pod %s not admitted with the webhook down (failurePolicy Ignore): %v", pod.Name, err)
			}
			if p.Spec.NodeSelector != nil || virtualNodeTolerations(p) != 0 {
				t.Errorf("pod %s mutated by a stopped webhook", pod.Name)
			}
			if d := time.Since(start); d > time.Duration(cfg.TimeoutSeconds)*time.Second+2*time.Second {
				t.Errorf("creating %s took %s", pod.Name, d)
			}
		}
		// The labelled pod did call the (stopped) webhook: the apiserver
		// failed open rather than skipping it.
		poll(t, "apiserver log: failing open", 10*time.Second, func(context.Context) (bool, error) {
			tail := env.ControlPlane.LogTail(controlplane.KubeAPIServer, 400)
			return strings.Contains(tail, "failing open") && strings.Contains(tail, "pod-label.vnode-affinity.alibabacloud.com"), nil
		})
	})
}
