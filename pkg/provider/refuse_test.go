package provider_test

import (
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/fake"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"
)

// daemonSetPod creates a pod controlled by DaemonSet "agents" on the
// virtual node, with a service-account token to mint.
func (e *smEnv) daemonSetPod(name string, annotations map[string]string) *corev1.Pod {
	e.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agents",
				UID: "ds-uid", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: nodeName, RestartPolicy: corev1.RestartPolicyAlways, AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}}}},
	}
	created, err := e.kube.CoreV1().Pods(e.ns).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return created
}

// eventsOf lists the events of pod name with reason.
func (e *smEnv) eventsOf(name, reason string) []corev1.Event {
	e.t.Helper()
	list, err := e.kube.CoreV1().Events(e.ns).List(e.ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String()})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []corev1.Event
	for _, ev := range list.Items {
		if ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

// TestDaemonSetPodRefused: a DaemonSet pod is Failed with
// DaemonSetPodRefused and one Warning naming the DaemonSet and the opt-in,
// with no cloud call; with the opt-in it gets its group.
func TestDaemonSetPodRefused(t *testing.T) {
	e := newSMEnv(t)
	pod := e.daemonSetPod("agent", nil)
	if err := e.p.CreatePod(e.ctx, pod); err != nil {
		t.Fatalf("CreatePod: %v; want nil (the pod is refused with a status, not an error)", err)
	}
	got := e.waitPush("agent", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if got.Status.Reason != provider.ReasonDaemonSetPodRefused || !strings.Contains(got.Status.Message, e.ns+"/agents") ||
		!strings.Contains(got.Status.Message, provider.AnnotationDaemonSetOptIn) {
		t.Errorf("status %s %q, want reason %s and a message naming the DaemonSet and %s", got.Status.Reason, got.Status.Message,
			provider.ReasonDaemonSetPodRefused, provider.AnnotationDaemonSetOptIn)
	}
	ev := e.waitEvent("agent", corev1.EventTypeWarning, provider.ReasonDaemonSetPodRefused)
	if !strings.Contains(ev.Message, e.ns+"/agents") {
		t.Errorf("event %q does not name the DaemonSet", ev.Message)
	}
	if n := e.cloud.CallCount(fake.OpCreate); n != 0 {
		t.Errorf("%d CreateContainerGroup calls for a refused DaemonSet pod, want 0", n)
	}
	// The core records ProviderCreateSuccess when CreatePod returns nil:
	// its recorder drops it for a pod without a group.
	e.p.CoreRecorder(e.rec).Event(pod, corev1.EventTypeNormal, "ProviderCreateSuccess", "Create pod in provider successfully")

	opted := e.daemonSetPod("opted", map[string]string{provider.AnnotationDaemonSetOptIn: "true"})
	if err := e.p.CreatePod(e.ctx, opted); err != nil {
		t.Fatal(err)
	}
	e.waitGroups(1)
	e.p.CoreRecorder(e.rec).Event(opted, corev1.EventTypeNormal, "ProviderCreateSuccess", "Create pod in provider successfully")
	e.waitEvent("opted", corev1.EventTypeNormal, "ProviderCreateSuccess")
	if evs := e.eventsOf("agent", "ProviderCreateSuccess"); len(evs) != 0 {
		t.Errorf("ProviderCreateSuccess recorded for the refused pod: %+v", evs)
	}
	if evs := e.eventsOf("agent", provider.ReasonDaemonSetPodRefused); len(evs) != 1 || evs[0].Count != 1 {
		t.Errorf("%d %s events (%+v), want one", len(evs), provider.ReasonDaemonSetPodRefused, evs)
	}
}

// TestMissingSourcesWait: a pod whose ConfigMap, then Secret, is missing
// waits Pending with the virtual-kubelet reason as status and event, no
// group and no ProviderCreateSuccess; it is created once they exist. An
// optional one missing gives an Optional... event and does not hold the
// pod.
func TestMissingSourcesWait(t *testing.T) {
	e := newSMEnv(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "needs"},
		Spec: corev1.PodSpec{NodeName: nodeName, RestartPolicy: corev1.RestartPolicyAlways, AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "app", Image: "busybox",
				EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}}},
			Volumes: []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "extra", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "extra", Optional: ptr.To(true)}}},
			}},
	}
	pod, err := e.kube.CoreV1().Pods(e.ns).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.p.CreatePod(e.ctx, pod); err != nil {
		t.Fatalf("CreatePod: %v; want nil (the pod waits)", err)
	}
	waits := func(reason, object string) {
		t.Helper()
		got := e.waitPush("needs", "waiting with "+reason, func(p *corev1.Pod) bool { return p.Status.Reason == reason })
		if got.Status.Phase != corev1.PodPending || !strings.Contains(got.Status.Message, object) {
			t.Errorf("status %s %q, want Pending naming %s", got.Status.Phase, got.Status.Message, object)
		}
		ev := e.waitEvent("needs", corev1.EventTypeWarning, reason)
		if !strings.Contains(ev.Message, object) {
			t.Errorf("event %q does not name %s", ev.Message, object)
		}
		if n := e.cloud.CallCount(fake.OpCreate); n != 0 {
			t.Errorf("%d CreateContainerGroup calls while %s is missing, want 0", n, object)
		}
		e.p.CoreRecorder(e.rec).Event(pod, corev1.EventTypeNormal, "ProviderCreateSuccess", "Create pod in provider successfully")
	}
	waits(provider.ReasonMandatoryConfigMapNotFound, `configmap "cfg"`)
	if _, err := e.kube.CoreV1().ConfigMaps(e.ns).Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"},
		Data: map[string]string{"a": "1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.p.SourceChanged(translate.KindConfigMap, e.ns, "cfg") // the informer's event
	waits(provider.ReasonMandatorySecretNotFound, `secret "db"`)
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data: map[string][]byte{"PASSWORD": []byte("x")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.p.SourceChanged(translate.KindSecret, e.ns, "db")
	e.waitGroups(1)
	ev := e.waitEvent("needs", corev1.EventTypeWarning, provider.ReasonOptionalSecretNotFound)
	if !strings.Contains(ev.Message, `secret "extra"`) {
		t.Errorf("event %q does not name the optional secret", ev.Message)
	}
	if evs := e.eventsOf("needs", "ProviderCreateSuccess"); len(evs) != 0 {
		t.Errorf("ProviderCreateSuccess recorded while the pod had no group: %+v", evs)
	}
	for _, r := range []string{provider.ReasonMandatoryConfigMapNotFound, provider.ReasonMandatorySecretNotFound} {
		if evs := e.eventsOf("needs", r); len(evs) != 1 {
			t.Errorf("%d %s events, want one (repeats aggregate in its count)", len(evs), r)
		}
	}
}
