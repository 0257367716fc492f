// Package api is the typed Go API of the cluster-scoped ImageCache custom
// resource (eci.alibabacloud.com/v1), with the field names of the vendor's
// ImageCache CRD: spec.images, spec.imagePullSecrets ("namespace:name"),
// spec.imageCacheSize (GiB), spec.retentionDays; status.phase,
// status.progress, status.imageCacheId, status.events... The
// CustomResourceDefinition ships in the chart
// (charts/ack-virtual-node/crds/imagecaches.yaml). Objects travel through
// the dynamic client and are converted with FromUnstructured /
// ToUnstructured, so no generated clientset is needed.
package api

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The resource's names, as the vendor's CRD spells them.
const (
	Group    = "eci.alibabacloud.com"
	Version  = "v1"
	Kind     = "ImageCache"
	Resource = "imagecaches"
)

// GVR is the resource the dynamic client reads and writes.
var GVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// Annotations of an ImageCache object, as the vendor spells them: the
// vSwitch(es) and security group its build instance runs in (default:
// the controller's VSWITCH_IDS and SECURITY_GROUP_ID), and the reuse of
// layers of existing caches (AutoMatchImageCache).
const (
	AnnotationVSwitch       = "k8s.aliyun.com/eci-vswitch"
	AnnotationSecurityGroup = "k8s.aliyun.com/eci-security-group"
	AnnotationEnableReuse   = "k8s.aliyun.com/imc-enable-reuse"
)

// Limits of the spec (the vendor's ImageCache CRD and CreateImageCache).
const (
	MinImageCacheSize = 20
	MaxImageCacheSize = 32768
	MaxRetentionDays  = 65536
	MaxImages         = 20
)

// Phases of status.phase: the cloud cache's status (Preparing, Creating,
// Ready, Failed, Updating, UpdateFailed), and Pending before any cloud
// cache exists (bad spec, missing pull secret, cloud refused the create).
const (
	PhasePending = "Pending"
	PhaseReady   = "Ready"
	PhaseFailed  = "Failed"
)

// Condition types and reasons in status.conditions.
const (
	// ConditionReady is True when the cache can be used by pods.
	ConditionReady = "Ready"
	// ConditionPullSecretsResolved is False when a secret of
	// spec.imagePullSecrets is missing or unreadable (the message names it).
	ConditionPullSecretsResolved = "PullSecretsResolved"
)

// ImageCache is one image cache.
type ImageCache struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ImageCacheSpec   `json:"spec"`
	Status            ImageCacheStatus `json:"status,omitempty"`
}

// ImageCacheSpec is what to cache.
type ImageCacheSpec struct {
	// Images are the container images to cache (1 to 20).
	Images []string `json:"images"`
	// ImagePullSecrets are "namespace:secretName" references to
	// kubernetes.io/dockerconfigjson (or dockercfg) Secrets, sent as the
	// cache's registry credentials.
	ImagePullSecrets []string `json:"imagePullSecrets,omitempty"`
	// ImageCacheSize is the cache size in GiB (20 to 32768; the cloud's
	// default, 20, when unset).
	ImageCacheSize int `json:"imageCacheSize,omitempty"`
	// RetentionDays is how long the cloud keeps the cache (1 to 65536;
	// unset: never expires).
	RetentionDays int `json:"retentionDays,omitempty"`
}

// ImageCacheStatus is what the controller saw.
type ImageCacheStatus struct {
	// Phase is Pending, or the cloud cache's status.
	Phase string `json:"phase,omitempty"`
	// Progress is the cloud's build progress, e.g. "50%".
	Progress string `json:"progress,omitempty"`
	// ImageCacheId is the cloud cache pods use (k8s.aliyun.com/eci-imc-id).
	ImageCacheId string `json:"imageCacheId,omitempty"`
	// ReadyImageCacheId is the Ready cache pods that name the object use:
	// ImageCacheId once it is Ready, and during a rebuild the older
	// generation's cache until the new one is Ready or Failed (it is then
	// deleted). Empty while no cache of the object is Ready.
	ReadyImageCacheId string `json:"readyImageCacheId,omitempty"`
	// ObservedGeneration is the spec generation ImageCacheId was built for.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Reason and Message say why the phase is what it is.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// StartTime is when the cloud cache was created; ExpireDateTime when
	// it expires (RetentionDays); LastUpdatedTime when the status changed.
	StartTime       *metav1.Time `json:"startTime,omitempty"`
	ExpireDateTime  *metav1.Time `json:"expireDateTime,omitempty"`
	LastUpdatedTime *metav1.Time `json:"lastUpdatedTime,omitempty"`
	// Events are the cloud cache's own events.
	Events []Event `json:"events,omitempty"`
	// Conditions: Ready, PullSecretsResolved.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Event is one event of the cloud cache.
type Event struct {
	Type           string `json:"type,omitempty"`
	Reason         string `json:"reason,omitempty"`
	Message        string `json:"message,omitempty"`
	Count          int    `json:"count,omitempty"`
	FirstTimestamp string `json:"firstTimestamp,omitempty"`
	LastTimestamp  string `json:"lastTimestamp,omitempty"`
}

// FromUnstructured converts an object read with the dynamic client.
func FromUnstructured(u *unstructured.Unstructured) (*ImageCache, error) {
	ic := &ImageCache{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, ic); err != nil {
		return nil, fmt.Errorf("ImageCache %s: %w", u.GetName(), err)
	}
	return ic, nil
}

// ToUnstructured converts ic for the dynamic client.
func ToUnstructured(ic *ImageCache) (*unstructured.Unstructured, error) {
	ic.APIVersion, ic.Kind = Group+"/"+Version, Kind
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ic)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// Validate returns what is wrong with the spec, each problem naming its
// field and the fix, or nil.
func (s *ImageCacheSpec) Validate() []string {
	var out []string
	if len(s.Images) == 0 {
		out = append(out, "spec.images is empty: list the images to cache")
	}
	if len(s.Images) > MaxImages {
		out = append(out, fmt.Sprintf("spec.images has %d images: at most %d per cache", len(s.Images), MaxImages))
	}
	for i, img := range s.Images {
		if img == "" {
			out = append(out, fmt.Sprintf("spec.images[%d] is empty", i))
		}
	}
	if s.ImageCacheSize != 0 && (s.ImageCacheSize < MinImageCacheSize || s.ImageCacheSize > MaxImageCacheSize) {
		out = append(out, fmt.Sprintf("spec.imageCacheSize %d is out of range: use %d to %d (GiB)", s.ImageCacheSize, MinImageCacheSize, MaxImageCacheSize))
	}
	if s.RetentionDays < 0 || s.RetentionDays > MaxRetentionDays {
		out = append(out, fmt.Sprintf("spec.retentionDays %d is out of range: use 1 to %d, or leave it unset to keep the cache", s.RetentionDays, MaxRetentionDays))
	}
	for i, ref := range s.ImagePullSecrets {
		if _, _, err := SplitSecretRef(ref); err != nil {
			out = append(out, fmt.Sprintf("spec.imagePullSecrets[%d]: %v", i, err))
		}
	}
	return out
}

// SplitSecretRef splits a "namespace:secretName" reference.
func SplitSecretRef(ref string) (namespace, name string, err error) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == ':' {
			namespace, name = ref[:i], ref[i+1:]
			break
		}
	}
	if namespace == "" || name == "" {
		return "", "", fmt.Errorf("%q is not namespace:secretName", ref)
	}
	return namespace, name, nil
}

// DeepCopy returns a copy of s that shares nothing with it.
func (s *ImageCacheStatus) DeepCopy() *ImageCacheStatus {
	out := *s
	out.StartTime, out.ExpireDateTime, out.LastUpdatedTime = s.StartTime.DeepCopy(), s.ExpireDateTime.DeepCopy(), s.LastUpdatedTime.DeepCopy()
	out.Events = append([]Event(nil), s.Events...)
	out.Conditions = nil
	for _, c := range s.Conditions {
		out.Conditions = append(out.Conditions, *c.DeepCopy())
	}
	return &out
}
