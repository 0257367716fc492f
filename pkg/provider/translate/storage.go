package translate

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// AnnotationExtraEphemeralStorage adds temporary storage to the group
// beyond the free FreeEphemeralStorage, e.g. "50Gi" (the vendor's
// annotation: the value is the increase).
const AnnotationExtraEphemeralStorage = "k8s.aliyun.com/eci-extra-ephemeral-storage"

// FreeEphemeralStorage is the temporary storage every ECI group has at no
// cost (the vendor's documentation: 30 GiB, which the images use too).
var FreeEphemeralStorage = resource.MustParse("30Gi")

const gib = 1 << 30

// ephemeralStorage sizes the group's temporary storage as the vendor
// documents: the pod's ephemeral-storage request (its containers' requests
// added up, or the largest init container's if that is more, as the
// scheduler counts it) beyond the free 30 GiB is added with
// EphemeralStorage, in whole GiB; the annotation adds its value; with
// both, the larger. ECI does not enforce a container's ephemeral-storage
// limit, which a note says.
func ephemeralStorage(pod *corev1.Pod, tr *Translation) error {
	var sum, initMax resource.Quantity
	limited := false
	for _, c := range pod.Spec.Containers {
		if q, ok := c.Resources.Requests[corev1.ResourceEphemeralStorage]; ok {
			sum.Add(q)
		}
		_, hasLimit := c.Resources.Limits[corev1.ResourceEphemeralStorage]
		limited = limited || hasLimit
	}
	for _, c := range pod.Spec.InitContainers {
		q, ok := c.Resources.Requests[corev1.ResourceEphemeralStorage]
		if !ok {
			continue
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sum.Add(q) // a native sidecar runs beside the app containers
		} else if q.Cmp(initMax) > 0 {
			initMax = q
		}
	}
	if initMax.Cmp(sum) > 0 {
		sum = initMax
	}
	extra := int64(0)
	if sum.Cmp(FreeEphemeralStorage) > 0 {
		over := sum.DeepCopy()
		over.Sub(FreeEphemeralStorage)
		extra = ceilGiB(over)
	}
	if v, ok := pod.Annotations[AnnotationExtraEphemeralStorage]; ok {
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() <= 0 {
			return invalidAnnotation(AnnotationExtraEphemeralStorage, fmt.Sprintf("%q is not a positive size", v), `set the storage to add, e.g. "50Gi"`)
		}
		extra = max(extra, ceilGiB(q))
	}
	if extra > 0 {
		tr.Req.EphemeralStorage = int(extra)
		tr.Notes = append(tr.Notes, fmt.Sprintf("ephemeral-storage: the group has %s free plus %d GiB added (EphemeralStorage), shared by its containers", FreeEphemeralStorage.String(), extra))
	}
	if limited {
		tr.Notes = append(tr.Notes, "ephemeral-storage limits: ECI does not enforce them per container; the containers share the group's temporary storage")
	}
	return nil
}

func ceilGiB(q resource.Quantity) int64 {
	return (q.Value() + gib - 1) / gib
}
