package integration

import (
	"context"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestEphemeralStorageAndPublishedFields: a pod asking for 50Gi of
// ephemeral-storage is scheduled onto the virtual node by the real
// scheduler (the node advertises ephemeral-storage) and its group gets the
// 20 GiB beyond the free 30 GiB (EphemeralStorage); a shared process
// namespace, termination message settings, hook HTTP headers and mount
// propagation reach their published parameters, and the pod runs.
func TestEphemeralStorageAndPublishedFields(t *testing.T) {
	t.Parallel()
	env, node, ns := sharedNodeAndNamespace(t, "fields", "fields")
	kube := env.Kube
	tpl := onVirtualNode(node, nil, corev1.RestartPolicyAlways, "sleep", "3600")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: ns}, Spec: tpl.Spec}
	pod.Spec.ShareProcessNamespace = ptr.To(true)
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	c := &pod.Spec.Containers[0]
	c.Resources.Requests = corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("50Gi")}
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", MountPropagation: ptr.To(corev1.MountPropagationHostToContainer)}}
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/drain", Port: intstr.FromInt32(8080), HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Drain", Value: "now"}}}}}
	if _, err := kube.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "pod scheduled and Running", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Spec.NodeName == node && p.Status.Phase == corev1.PodRunning, err
	})
	g := podGroup(t, kube, env.Simulator, ns, pod.Name)
	if g.EphemeralStorage != 20 {
		t.Errorf("group EphemeralStorage = %d, want 20 (50Gi requested, 30Gi free)", g.EphemeralStorage)
	}
	var sent map[string]string
	for _, r := range env.Simulator.Requests("CreateContainerGroup") {
		if r.Params["ContainerGroupName"] == g.ContainerGroupName {
			sent = r.Params
		}
	}
	for k, want := range map[string]string{
		"EphemeralStorage":                                             "20",
		"ShareProcessNamespace":                                        "true",
		"Container.1.TerminationMessagePolicy":                         "FallbackToLogsOnError",
		"Container.1.VolumeMount.1.MountPropagation":                   "HostToContainer",
		"Container.1.LifecyclePreStopHandlerHttpGetHttpHeader.1.Name":  "X-Drain",
		"Container.1.LifecyclePreStopHandlerHttpGetHttpHeader.1.Value": "now",
	} {
		if sent[k] != want {
			t.Errorf("CreateContainerGroup %s = %q, want %q", k, sent[k], want)
		}
	}
	waitEvent(t, kube, ns, pod.Name, corev1.EventTypeNormal, provider.ReasonPodSpecAdapted, "plus 20 GiB added (EphemeralStorage)")
}
