package provider

import (
	corev1 "k8s.io/api/core/v1"
)

// TrimPod is the pod informer's transform (cache.TransformFunc): it drops what the node never
// reads from the pods it holds, as every pod is held several times over
// (the informer, the core's copies, the provider's) and compared whole by
// the core on each change of its metadata.
//
// Only what no part of the node reads may go, and nothing that flows back
// to the apiserver:
//   - managedFields: often the largest part of a pod; a status write
//     without them keeps the apiserver's.
//   - the scheduler's inputs (affinity, tolerations, node selector,
//     topology spread, scheduling gates, scheduler name, priority): the
//     pod is already bound, translation (pkg/provider/translate) reads
//     none of them, and the pods/status endpoint the core writes through
//     takes the spec from the stored pod, so the apiserver keeps them.
//
// Metadata stays whole: the core writes status with the pod's metadata
// and the pods/status endpoint takes labels and annotations from the
// request, so an annotation dropped here (kubectl's
// last-applied-configuration, say) would be deleted from the pod by the
// next status write. Status stays whole too: the core compares it with
// the provider's.
func TrimPod(obj any) (any, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		trimPod(pod)
	}
	return obj, nil
}

// trimPod drops from pod what TrimPod does, in place. Pods read from the
// apiserver (Adopt) are trimmed the same way, so they compare equal with
// the informer's copies.
func trimPod(pod *corev1.Pod) {
	pod.ManagedFields = nil
	s := &pod.Spec
	s.Affinity = nil
	s.Tolerations = nil
	s.NodeSelector = nil
	s.TopologySpreadConstraints = nil
	s.SchedulingGates = nil
	s.SchedulerName = ""
	s.PriorityClassName = ""
	s.Priority = nil
	s.PreemptionPolicy = nil
}
