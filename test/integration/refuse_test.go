package integration

import (
	"context"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// groupsOfNamespace counts the simulator's groups of pods in namespace ns.
func groupsOfNamespace(sim *simulator.Simulator, ns string) int {
	n := 0
	for _, g := range sim.Groups() {
		if simTag(g, translate.TagPodNamespace) == ns {
			n++
		}
	}
	return n
}

// eventsWithReason lists the events of namespace ns with reason.
func eventsWithReason(ctx context.Context, kube kubernetes.Interface, ns, reason string) ([]corev1.Event, error) {
	l, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + reason})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// daemonSet is a DaemonSet that tolerates the virtual node's taint and is
// kept to node by its hostname label (the shared control plane has other
// tests' virtual nodes).
func daemonSet(name, node string, annotations map[string]string) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	tpl := onVirtualNode(node, labels, corev1.RestartPolicyAlways)
	tpl.Annotations = annotations
	tpl.Spec.NodeSelector = map[string]string{corev1.LabelHostname: node}
	tpl.Spec.AutomountServiceAccountToken = ptr.To(false)
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: tpl,
		},
	}
}

// TestDaemonSetPodsRefused: with the real DaemonSet controller, a
// DaemonSet that tolerates the virtual node's taint gets Failed pods with
// DaemonSetPodRefused and no group; the controller replaces them only
// after its backoff, so pods and events stay few; with
// alibabacloud.com/eci-daemonset: "true" its pod runs.
func TestDaemonSetPodsRefused(t *testing.T) {
	t.Parallel()
	env, nodeName, ns := sharedNodeAndNamespace(t, "vk-ds", "daemonsets")
	kube := env.Kube
	ctx := context.Background()

	ds, err := kube.AppsV1().DaemonSets(ns).Create(ctx, daemonSet("agents", nodeName, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.AppsV1().DaemonSets(ns).Delete(context.Background(), ds.Name, metav1.DeleteOptions{}) })
	start := time.Now()
	poll(t, "a DaemonSet pod Failed with "+provider.ReasonDaemonSetPodRefused, 60*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=agents"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == nodeName && p.Status.Phase == corev1.PodFailed && p.Status.Reason == provider.ReasonDaemonSetPodRefused {
				return true, nil
			}
		}
		return false, nil
	})
	// Let the DaemonSet controller delete and recreate the failed pod
	// for a while: it backs off per node (1 s doubling to 15 minutes).
	const watch = 40 * time.Second
	time.Sleep(watch - time.Since(start))
	refused, err := eventsWithReason(ctx, kube, ns, provider.ReasonDaemonSetPodRefused)
	if err != nil {
		t.Fatal(err)
	}
	pods := map[string]bool{}
	for _, e := range refused {
		if e.Count != 1 || pods[e.InvolvedObject.Name] {
			t.Errorf("event %s on pod %s has count %d; want one event per refused pod", e.Name, e.InvolvedObject.Name, e.Count)
		}
		pods[e.InvolvedObject.Name] = true
	}
	failedDaemonPod, _ := eventsWithReason(ctx, kube, ns, "FailedDaemonPod")
	n := 0
	for _, e := range failedDaemonPod {
		n += int(e.Count)
	}
	t.Logf("in %s the DaemonSet controller made %d refused pods (%d %s events) and deleted %d failed ones (FailedDaemonPod)",
		time.Since(start).Round(time.Second), len(pods), len(refused), provider.ReasonDaemonSetPodRefused, n)
	// Backoff 1, 2, 4, 8, 16 s: about 6 pods in 40 s; a hot loop makes
	// hundreds.
	if len(pods) == 0 || len(pods) > 12 {
		t.Errorf("%d refused pods in %s, want between 1 and 12 (the DaemonSet controller's backoff)", len(pods), watch)
	}
	if g := groupsOfNamespace(env.Simulator, ns); g != 0 {
		t.Errorf("%d groups for refused DaemonSet pods, want 0", g)
	}
	if evs, _ := eventsWithReason(ctx, kube, ns, "ProviderCreateSuccess"); len(evs) != 0 {
		t.Errorf("%d ProviderCreateSuccess events for refused pods, want 0", len(evs))
	}
	if err := kube.AppsV1().DaemonSets(ns).Delete(ctx, ds.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	opted, err := kube.AppsV1().DaemonSets(ns).Create(ctx, daemonSet("opted", nodeName,
		map[string]string{provider.AnnotationDaemonSetOptIn: "true"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.AppsV1().DaemonSets(ns).Delete(context.Background(), opted.Name, metav1.DeleteOptions{})
	})
	poll(t, "the opted-in DaemonSet's pod Running with a group", 60*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=opted"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.Annotations[translate.AnnotationInstanceID] != "" {
				return true, nil
			}
		}
		return false, nil
	})
}

// TestMissingConfigMapAndSecret: a pod whose ConfigMap or Secret is
// missing waits Pending with virtual-kubelet's reason, one event and no
// group nor ProviderCreateSuccess, and runs soon after the object is
// created; a missing optional one gives an Optional... event and the pod
// runs without it.
func TestMissingConfigMapAndSecret(t *testing.T) {
	t.Parallel()
	env, nodeName, ns := sharedNodeAndNamespace(t, "vk-sources", "sources")
	kube := env.Kube
	ctx := context.Background()

	podWith := func(name string, mut func(*corev1.PodSpec)) {
		t.Helper()
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		mut(&tpl.Spec)
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventsOf := func(ctx context.Context, pod, reason string) ([]corev1.Event, error) {
		evs, err := podEvents(ctx, kube, ns, pod)
		var out []corev1.Event
		for _, e := range evs {
			if e.Reason == reason {
				out = append(out, e)
			}
		}
		return out, err
	}
	running := func(name string) {
		t.Helper()
		poll(t, name+" Running", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
	}
	groupOf := func(name string) int {
		n := 0
		for _, g := range env.Simulator.Groups() {
			if simTag(g, translate.TagPodNamespace) == ns && simTag(g, translate.TagPodName) == name {
				n++
			}
		}
		return n
	}
	waitsFor := func(t *testing.T, name, reason string, create func() error) {
		poll(t, name+" Pending with "+reason, 30*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodPending && p.Status.Reason == reason, err
		})
		poll(t, reason+" event", 30*time.Second, func(ctx context.Context) (bool, error) {
			evs, err := eventsOf(ctx, name, reason)
			return len(evs) == 1 && evs[0].Type == corev1.EventTypeWarning, err
		})
		// The pod waits: a few retries' worth, with no group.
		time.Sleep(6 * time.Second)
		if n := groupOf(name); n != 0 {
			t.Fatalf("%d groups for %s while its object is missing, want 0", n, name)
		}
		created := time.Now()
		if err := create(); err != nil {
			t.Fatal(err)
		}
		running(name)
		t.Logf("%s Running %s after its object was created", name, time.Since(created).Round(100*time.Millisecond))
		if n := groupOf(name); n != 1 {
			t.Errorf("%d groups for %s, want 1", n, name)
		}
		if evs, _ := eventsOf(ctx, name, "ProviderCreateSuccess"); len(evs) != 0 {
			t.Errorf("ProviderCreateSuccess for %s, whose group the first CreatePod did not create: %+v", name, evs)
		}
		if evs, _ := eventsOf(ctx, name, reason); len(evs) != 1 {
			t.Errorf("%d %s events for %s, want one (repeats aggregate in its count)", len(evs), reason, name)
		} else {
			t.Logf("%s: one %s event, count %d: %s", name, reason, evs[0].Count, evs[0].Message)
		}
	}

	t.Run("mandatory ConfigMap", func(t *testing.T) {
		podWith("needs-cm", func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}}
			s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}}
		})
		waitsFor(t, "needs-cm", provider.ReasonMandatoryConfigMapNotFound, func() error {
			_, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"},
				Data: map[string]string{"app.conf": "x=1"}}, metav1.CreateOptions{})
			return err
		})
	})
	t.Run("mandatory Secret", func(t *testing.T) {
		podWith("needs-secret", func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
		})
		waitsFor(t, "needs-secret", provider.ReasonMandatorySecretNotFound, func() error {
			_, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
				Data: map[string][]byte{"password": []byte("s3cret")}}, metav1.CreateOptions{})
			return err
		})
	})
	t.Run("optional ConfigMap and Secret missing", func(t *testing.T) {
		podWith("optional", func(s *corev1.PodSpec) {
			s.Containers[0].EnvFrom = []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}},
			}
		})
		running("optional")
		for _, r := range []string{provider.ReasonOptionalConfigMapNotFound, provider.ReasonOptionalSecretNotFound} {
			poll(t, r+" event", 30*time.Second, func(ctx context.Context) (bool, error) {
				evs, err := eventsOf(ctx, "optional", r)
				return len(evs) == 1 && evs[0].Type == corev1.EventTypeWarning, err
			})
		}
	})
}
