package provider

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// The virtual-kubelet core writes a pod's status with the pod the provider
// last pushed (UpdateStatus on pods/status), at the resourceVersion of its
// informer's copy. The pods/status endpoint takes the pod's labels,
// annotations and finalizers from that request (only the spec, the owner
// references and the deletion fields come from the stored pod), so the
// metadata of a push decides the pod's metadata after the write.
//
// A push made before a user changed the pod's labels or annotations, and
// written after, would put the old ones back: the core takes the
// resourceVersion from its informer, which has seen the change, so the
// write does not even conflict. StatusClient closes that window: the
// metadata written is the informer's, at the write, with the annotations
// the provider records (providerAnnotations) taken from the push. So a
// push needs no metadata but the pod's identity and those annotations
// (pushMeta): the core keeps the last one of every pod of the node, and
// compares each push with it.

// StatusClient wraps the pod client the virtual-kubelet core writes pod
// status with: UpdateStatus sends the pod's current metadata (the pod
// informer's, SetPodLister, else the apiserver's) with the provider's
// annotations and the pushed status. Every other call goes to c as is.
func (p *Provider) StatusClient(c corev1client.PodsGetter) corev1client.PodsGetter {
	return statusPods{PodsGetter: c, p: p}
}

type statusPods struct {
	corev1client.PodsGetter
	p *Provider
}

func (s statusPods) Pods(namespace string) corev1client.PodInterface {
	return statusPodInterface{PodInterface: s.PodsGetter.Pods(namespace), p: s.p}
}

type statusPodInterface struct {
	corev1client.PodInterface
	p *Provider
}

// UpdateStatus writes pod's status with the pod's current metadata
// (statusWrite).
func (s statusPodInterface) UpdateStatus(ctx context.Context, pod *corev1.Pod, opts metav1.UpdateOptions) (*corev1.Pod, error) {
	out, err := s.p.statusWrite(ctx, s.PodInterface, pod)
	if err != nil {
		return nil, err
	}
	return s.PodInterface.UpdateStatus(ctx, out, opts)
}

// statusWrite returns what a status write of pod sends: the metadata of
// the pod as the informer holds it now (else as the apiserver has it),
// with the resourceVersion the core chose and the provider's annotations
// that pod carries, and pod's status. The spec is left out: pods/status
// takes it from the stored pod. A pod the informer and the apiserver do
// not have with pod's UID (deleted, or replaced by a pod of the same name)
// is written as it is, which the apiserver refuses or finds gone, as
// before.
func (p *Provider) statusWrite(ctx context.Context, c corev1client.PodInterface, pod *corev1.Pod) (*corev1.Pod, error) {
	p.mu.RLock()
	lister := p.podLister
	p.mu.RUnlock()
	var cur *corev1.Pod
	if lister != nil {
		if got, err := lister.Pods(pod.Namespace).Get(pod.Name); err == nil && (pod.UID == "" || got.UID == pod.UID) {
			cur = got
		}
	}
	if cur == nil {
		got, err := c.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err // NotFound: the core ignores it, as for the write
		}
		if pod.UID != "" && got.UID != pod.UID {
			return pod, nil
		}
		cur = got
	}
	out := &corev1.Pod{TypeMeta: pod.TypeMeta, Status: pod.Status}
	cur.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.ResourceVersion = pod.ResourceVersion
	out.ManagedFields = nil // a write without them keeps the apiserver's
	for _, a := range providerAnnotations {
		if v, ok := pod.Annotations[a]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[a] = v
		}
	}
	return out, nil
}

// pushMeta is the metadata a push carries: the pod's identity, its
// deletion (the core reads it), and the provider's annotations; the rest
// comes from the informer when the status is written (StatusClient).
func pushMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID,
		DeletionTimestamp: m.DeletionTimestamp, DeletionGracePeriodSeconds: m.DeletionGracePeriodSeconds}
	out.Annotations = providerAnnotationsOf(m.Annotations)
	return out
}
