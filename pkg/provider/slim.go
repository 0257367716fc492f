package provider

import (
	"encoding/json"
	"hash/fnv"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

// The provider keeps, per pod with a group, its status, of its metadata
// only the pod's identity and the annotations the provider writes
// (recordMeta), and of its spec only what it reads once the group exists
// (slimSpec): the informer already holds the whole pod. GetPod and GetPods
// give the spec and the metadata back from the informer (wholePod), and
// the core's status writes take the metadata from it (StatusClient).

// slimSpec is what the provider reads of a spec once the pod's group
// exists: the containers' names and images and the native sidecars' restart
// policy (podStatus, the kubelet API's stats), the service account, and the
// few scalar fields that describe the pod (activeDeadlineSeconds, which
// an update may change and UpdatePod compares). Renewing tokens also reads the
// volumes, which cannot change once a pod exists: it takes them from the
// informer (renewalPod).
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
	if s.ActiveDeadlineSeconds != nil {
		v := *s.ActiveDeadlineSeconds
		out.ActiveDeadlineSeconds = &v
	}
	return out
}

// renewalPod completes pod, the provider's slim copy, with what renewing
// its tokens (translate.RefreshVolumes) reads that the provider does not
// keep: the volumes, and the labels and annotations a projected volume can
// carry next to a token, from the informer's pod. It returns false when
// the informer does not hold that pod (deleted, or replaced by one of the
// same name).
func renewalPod(pod *corev1.Pod, lister corev1listers.PodLister) bool {
	if lister == nil {
		return false
	}
	cur, err := lister.Pods(pod.Namespace).Get(pod.Name)
	if err != nil || cur.UID != pod.UID {
		return false
	}
	withMeta(pod, cur)
	pod.Spec.Volumes = nil
	if len(cur.Spec.Volumes) > 0 {
		pod.Spec.Volumes = make([]corev1.Volume, len(cur.Spec.Volumes))
		for i := range cur.Spec.Volumes {
			cur.Spec.Volumes[i].DeepCopyInto(&pod.Spec.Volumes[i])
		}
	}
	return true
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
// the status copied whole, the metadata and the spec slimmed.
func slimCopy(pod *corev1.Pod) *corev1.Pod {
	return &corev1.Pod{TypeMeta: pod.TypeMeta, ObjectMeta: recordMeta(&pod.ObjectMeta), Spec: slimSpec(&pod.Spec), Status: *pod.Status.DeepCopy()}
}

// recordMeta is the metadata the provider keeps of a pod with a group:
// its identity (events name the pod by it, resourceVersion included), its
// deletion, and the annotations the provider writes; nothing reads the
// others once the group exists. Labels and the other annotations are the
// informer's (wholePod, StatusClient); metaSum fingerprints those the
// provider took.
func recordMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		GenerateName: m.GenerateName, CreationTimestamp: m.CreationTimestamp}
	if m.DeletionTimestamp != nil {
		t := *m.DeletionTimestamp
		out.DeletionTimestamp = &t
	}
	if m.DeletionGracePeriodSeconds != nil {
		v := *m.DeletionGracePeriodSeconds
		out.DeletionGracePeriodSeconds = &v
	}
	out.Annotations = providerAnnotationsOf(m.Annotations)
	return out
}

// metaSum fingerprints the metadata the core compares with the provider's
// copy before calling UpdatePod: the labels and the annotations, but those
// the provider writes (recordMeta keeps them). A nil map and an empty one
// count the same: pods decoded from the apiserver never have empty ones.
func metaSum(m *metav1.ObjectMeta) uint64 {
	others := make(map[string]string, len(m.Annotations))
	for k, v := range m.Annotations {
		if !slices.Contains(providerAnnotations, k) {
			others[k] = v
		}
	}
	labels := m.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	b, _ := json.Marshal([2]map[string]string{labels, others}) // keys sorted
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
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
	e.metaSum = metaSum(&pod.ObjectMeta)
}

// wholePod returns a copy of the pod the provider knows for entry e, whole.
// A slimmed pod takes from the informer, when the informer's pod is the
// same pod (UID):
//   - its spec, when its updatable fields are those the provider took
//     (updatableSum), which makes it the spec the provider would have
//     kept; otherwise the slim spec is returned;
//   - its metadata, when its labels and annotations are those the provider
//     took (metaSum), with the provider's annotations; otherwise the
//     provider's own (identity and annotations, no labels).
//
// A spec or metadata that differs from the informer's makes the core hand
// the pod to UpdatePod, as it would for a changed pod, and so it does
// exactly when the pod changed since the provider took it.
//
// pod is the caller's copy of the stored pod, completed in place.
func wholePod(pod *corev1.Pod, slim bool, specSum, meta uint64, lister corev1listers.PodLister) *corev1.Pod {
	if !slim || lister == nil {
		return pod
	}
	cur, err := lister.Pods(pod.Namespace).Get(pod.Name)
	if err != nil || cur.UID != pod.UID {
		return pod
	}
	if updatableSum(&cur.Spec) == specSum {
		cur.Spec.DeepCopyInto(&pod.Spec)
	}
	if metaSum(&cur.ObjectMeta) == meta {
		withMeta(pod, cur)
	}
	return pod
}

// withMeta gives pod, the provider's slim copy, the metadata of cur, the
// informer's pod, with the provider's annotations and resourceVersion.
func withMeta(pod, cur *corev1.Pod) {
	own, rv := pod.Annotations, pod.ResourceVersion
	cur.ObjectMeta.DeepCopyInto(&pod.ObjectMeta)
	pod.ResourceVersion = rv
	for _, a := range providerAnnotations {
		delete(pod.Annotations, a)
	}
	for k, v := range own {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[k] = v
	}
}

// providerAnnotationsOf returns the provider's own annotations among
// annotations (nil when there are none).
func providerAnnotationsOf(annotations map[string]string) map[string]string {
	var out map[string]string
	for _, a := range providerAnnotations {
		if v, ok := annotations[a]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[a] = v
		}
	}
	return out
}
