package provider

import (
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
)

// The names below live in package translate, which writes them; they are
// repeated here so the provider's users (the webhook, vnodectl, tests)
// keep one import for the pod annotations and group tags.

// Tags on every container group (see translate.TagManagedBy).
const (
	TagManagedBy    = translate.TagManagedBy
	TagClusterID    = translate.TagClusterID
	TagNodeName     = translate.TagNodeName
	TagPodNamespace = translate.TagPodNamespace
	TagPodName      = translate.TagPodName
	TagPodUID       = translate.TagPodUID
	ManagedByValue  = translate.ManagedByValue
)

// Pod annotations (see translate.AnnotationUseSpecs).
const (
	AnnotationAutoIMC          = translate.AnnotationAutoIMC
	AnnotationComputeCategory  = translate.AnnotationComputeCategory
	AnnotationCustomDNSConfig  = translate.AnnotationCustomDNSConfig
	AnnotationCustomHosts      = translate.AnnotationCustomHosts
	AnnotationCustomTags       = translate.AnnotationCustomTags
	AnnotationEIPInstanceID    = translate.AnnotationEIPInstanceID
	AnnotationFailStrategy     = translate.AnnotationFailStrategy
	AnnotationIMCID            = translate.AnnotationIMCID
	AnnotationImageCache       = translate.AnnotationImageCache
	AnnotationInstanceFamily   = translate.AnnotationInstanceFamily
	AnnotationInstanceID       = translate.AnnotationInstanceID
	AnnotationInstanceSpec     = translate.AnnotationInstanceSpec
	AnnotationInstanceType     = translate.AnnotationInstanceType
	AnnotationMaxPendingMinute = translate.AnnotationMaxPendingMinute
	AnnotationNTPServer        = translate.AnnotationNTPServer
	AnnotationRAMRoleName      = translate.AnnotationRAMRoleName
	AnnotationRequestID        = translate.AnnotationRequestID
	AnnotationScheduleStrategy = translate.AnnotationScheduleStrategy
	AnnotationSecurityGroup    = translate.AnnotationSecurityGroup
	AnnotationSpotDuration     = translate.AnnotationSpotDuration
	AnnotationSpotPriceLimit   = translate.AnnotationSpotPriceLimit
	AnnotationSpotStrategy     = translate.AnnotationSpotStrategy
	AnnotationUseSpecs         = translate.AnnotationUseSpecs
	AnnotationVPC              = translate.AnnotationVPC
	AnnotationVSwitch          = translate.AnnotationVSwitch
	AnnotationVSwitchID        = translate.AnnotationVSwitchID
	AnnotationWithEIP          = translate.AnnotationWithEIP
	AnnotationZoneID           = translate.AnnotationZoneID
	FailStrategyFailBack       = translate.FailStrategyFailBack
	FailStrategyFailFast       = translate.FailStrategyFailFast
)

// Other names of package translate.
const (
	GPUResource                 = translate.GPUResource
	ClusterDomain               = translate.ClusterDomain
	DefaultTokenRefreshFraction = translate.DefaultTokenRefreshFraction
)

// InvalidPodError says which pod field ECI cannot honour and what to do.
type InvalidPodError = translate.InvalidPodError

// FailStrategy returns the pod's eci-fail-strategy: fail-back (default,
// stay Pending and retry) or fail-fast.
func FailStrategy(pod *corev1.Pod) (string, error) { return translate.FailStrategy(pod) }
