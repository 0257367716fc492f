package provider

import (
	"encoding/json"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

// The provider keeps, per pod with a group, its metadata (the core writes
// status with it), its status, and of its spec only what it reads once the
// group exists (slimSpec): the informer already holds the whole pod, and
// the spec was the larger part of the provider's copy. GetPod and GetPods
// give the spec back from the informer (wholePod).

// slimSpec is what the provider reads of a spec once the pod's group
// exists: the containers' names and images and the native sidecars' restart
// policy (podStatus, the kubelet API's stats), the volumes and service
// account (renewing tokens, translate.RefreshVolumes), and the few scalar
// fields that describe the pod.
func slimSpec(s *corev1.PodSpec) corev1.PodSpec {
	out := corev1.PodSpec{
		NodeName: s.NodeName, RestartPolicy: s.RestartPolicy, ServiceAccountName: s.ServiceAccountName,
		Hostname: s.Hostname, Subdomain: s.Subdomain,
		Containers: slimContainers(s.Containers), InitContainers: slimContainers(s.InitContainers),
	}
	if s.AutomountServiceAccountToken != nil {
		v := *s.AutomountServiceAccountToken
		out.AutomountServiceAccountToken = &v
	}
	if len(s.Volumes) > 0 {
		out.Volumes = make([]corev1.Volume, len(s.Volumes))
		for i := range s.Volumes {
			s.Volumes[i].DeepCopyInto(&out.Volumes[i])
		}
	}
	return out
}

func slimContainers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Image: c.Image}
		if c.RestartPolicy != nil {
			v := *c.RestartPolicy
			out[i].RestartPolicy = &v
		}
	}
	return out
}

// slimCopy is the pod as the provider stores it once its group exists:
// metadata and status copied whole, the spec slimmed.
func slimCopy(pod *corev1.Pod) *corev1.Pod {
	return &corev1.Pod{TypeMeta: pod.TypeMeta, ObjectMeta: *pod.ObjectMeta.DeepCopy(), Spec: slimSpec(&pod.Spec), Status: *pod.Status.DeepCopy()}
}

// updatableSum fingerprints the spec fields a pod update may change and
// the core compares with the provider's copy before calling UpdatePod
// (containers and init containers, with their images; ephemeral
// containers; activeDeadlineSeconds; tolerations). The other spec fields
// cannot change once a pod exists.
func updatableSum(s *corev1.PodSpec) uint64 {
	b, _ := json.Marshal(struct {
		C, I        []corev1.Container
		E           []corev1.EphemeralContainer
		D           *int64
		Tolerations []corev1.Toleration
	}{s.Containers, s.InitContainers, s.EphemeralContainers, s.ActiveDeadlineSeconds, s.Tolerations})
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

// keep stores pod in e as the provider keeps a pod with a group; the
// caller holds p.mu or owns e.
func (e *entry) keep(pod *corev1.Pod) {
	e.pod = slimCopy(pod)
	e.slim = true
	e.specSum = updatableSum(&pod.Spec)
}

// wholePod returns a copy of the pod the provider knows for entry e, whole:
// a slimmed pod takes its spec from the informer when the informer's pod
// is the same pod (UID) with the same updatable fields as the provider
// took (updatableSum), which makes it the spec the provider would have
// kept. Otherwise the slim spec is returned; it differs from the
// informer's, so the core hands the pod to UpdatePod, as it would for a
// changed spec.
//
// pod is the caller's copy of the stored pod, completed in place.
func wholePod(pod *corev1.Pod, slim bool, sum uint64, lister corev1listers.PodLister) *corev1.Pod {
	if !slim || lister == nil {
		return pod
	}
	cur, err := lister.Pods(pod.Namespace).Get(pod.Name)
	if err != nil || cur.UID != pod.UID || updatableSum(&cur.Spec) != sum {
		return pod
	}
	cur.Spec.DeepCopyInto(&pod.Spec)
	return pod
}
