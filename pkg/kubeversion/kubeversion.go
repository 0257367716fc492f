// Package kubeversion is the one statement of the Kubernetes versions
// ack-virtual-node supports, and of the API group/versions each of those
// versions serves. The chart's kubeVersion, `vnodectl doctor`, `vnodectl
// addon install`, the chart's render tests and the README all follow it.
//
// The vendor's documentation supports Kubernetes 1.16 to 1.30.
package kubeversion

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The supported minors of Kubernetes 1.x, both included.
const (
	MinMinor = 16
	MaxMinor = 30
)

// Range is the supported range as people write it, e.g. in messages.
var Range = fmt.Sprintf("1.%d to 1.%d", MinMinor, MaxMinor)

// ChartConstraint is the chart's kubeVersion (Chart.yaml): the supported
// range as a semver constraint, "-0" admitting pre-release and vendor
// builds (v1.30.1-aliyun.1).
var ChartConstraint = fmt.Sprintf(">=1.%d.0-0 <1.%d.0-0", MinMinor, MaxMinor+1)

// Minors returns every supported minor, oldest first.
func Minors() []int {
	var out []int
	for m := MinMinor; m <= MaxMinor; m++ {
		out = append(out, m)
	}
	return out
}

// ParseMinor reads the major and minor of a /version answer (fields Major
// and Minor, which some providers suffix with "+", e.g. "30+"), falling
// back to gitVersion (v1.30.14, v1.30.1-aliyun.1) when they are empty.
func ParseMinor(major, minor, gitVersion string) (int, int, error) {
	if major == "" || minor == "" {
		v := strings.TrimPrefix(gitVersion, "v")
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 2 {
			return 0, 0, fmt.Errorf("version %q is not v<major>.<minor>[.<patch>]", gitVersion)
		}
		major, minor = parts[0], parts[1]
	}
	ma, err := strconv.Atoi(strings.TrimRight(major, "+"))
	if err != nil {
		return 0, 0, fmt.Errorf("major version %q (gitVersion %q) is not a number", major, gitVersion)
	}
	mi, err := strconv.Atoi(strings.TrimRight(minor, "+"))
	if err != nil {
		return 0, 0, fmt.Errorf("minor version %q (gitVersion %q) is not a number", minor, gitVersion)
	}
	return ma, mi, nil
}

// Check says whether a cluster of the given /version fields is supported;
// the error names the version and the range.
func Check(major, minor, gitVersion string) error {
	ma, mi, err := ParseMinor(major, minor, gitVersion)
	if err != nil {
		return fmt.Errorf("cannot tell whether Kubernetes %s is supported (%s): %w", gitVersion, Range, err)
	}
	if ma != 1 || mi < MinMinor || mi > MaxMinor {
		return fmt.Errorf("Kubernetes %s is outside the supported range %s", gitVersion, Range)
	}
	return nil
}

// span is the minors of 1.x in which an API group/version serves a kind:
// from Since to Until, both included; Until 0 means still served.
type span struct{ Since, Until int }

// served is which kinds each group/version serves in which minors, for the
// kinds this project creates or reads, and their neighbours a template
// might reach for. Sources: the Kubernetes "Deprecated API Migration
// Guide" (https://kubernetes.io/docs/reference/using-api/deprecation-guide/)
// for the removals (v1.22, v1.25, v1.26, v1.27, v1.29) and the release
// notes of the version that made each group/version GA for the additions
// (policy/v1 1.21, certificates.k8s.io/v1 1.19, admissionregistration and
// apiextensions v1 1.16, ...).
var served = map[schema.GroupVersionKind]span{
	gvk("", "v1", "ConfigMap"):             {1, 0},
	gvk("", "v1", "Secret"):                {1, 0},
	gvk("", "v1", "Service"):               {1, 0},
	gvk("", "v1", "ServiceAccount"):        {1, 0},
	gvk("", "v1", "Namespace"):             {1, 0},
	gvk("", "v1", "Pod"):                   {1, 0},
	gvk("", "v1", "Node"):                  {1, 0},
	gvk("", "v1", "Event"):                 {1, 0},
	gvk("", "v1", "PersistentVolumeClaim"): {1, 0},

	gvk("apps", "v1", "Deployment"):  {9, 0},
	gvk("apps", "v1", "StatefulSet"): {9, 0},
	gvk("apps", "v1", "DaemonSet"):   {9, 0},

	gvk("batch", "v1", "Job"):                       {2, 0},
	gvk("batch", "v1", "CronJob"):                   {21, 0},
	gvk("batch", "v1beta1", "CronJob"):              {8, 24},
	gvk("policy", "v1", "PodDisruptionBudget"):      {21, 0},
	gvk("policy", "v1beta1", "PodDisruptionBudget"): {5, 24},

	gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"):             {8, 0},
	gvk("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"):      {8, 0},
	gvk("rbac.authorization.k8s.io", "v1", "Role"):                    {8, 0},
	gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"):             {8, 0},
	gvk("rbac.authorization.k8s.io", "v1beta1", "ClusterRole"):        {6, 21},
	gvk("rbac.authorization.k8s.io", "v1beta1", "ClusterRoleBinding"): {6, 21},
	gvk("rbac.authorization.k8s.io", "v1beta1", "Role"):               {6, 21},
	gvk("rbac.authorization.k8s.io", "v1beta1", "RoleBinding"):        {6, 21},

	gvk("networking.k8s.io", "v1", "NetworkPolicy"):                                  {7, 0},
	gvk("networking.k8s.io", "v1", "Ingress"):                                        {19, 0},
	gvk("networking.k8s.io", "v1beta1", "Ingress"):                                   {14, 21},
	gvk("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration"):        {16, 0},
	gvk("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration"):      {16, 0},
	gvk("admissionregistration.k8s.io", "v1beta1", "MutatingWebhookConfiguration"):   {9, 21},
	gvk("admissionregistration.k8s.io", "v1beta1", "ValidatingWebhookConfiguration"): {9, 21},
	gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"):                    {16, 0},
	gvk("apiextensions.k8s.io", "v1beta1", "CustomResourceDefinition"):               {7, 21},
	gvk("certificates.k8s.io", "v1", "CertificateSigningRequest"):                    {19, 0},
	gvk("certificates.k8s.io", "v1beta1", "CertificateSigningRequest"):               {4, 21},
	gvk("coordination.k8s.io", "v1", "Lease"):                                        {14, 0},
	gvk("coordination.k8s.io", "v1beta1", "Lease"):                                   {12, 21},
	gvk("scheduling.k8s.io", "v1", "PriorityClass"):                                  {14, 0},
	gvk("scheduling.k8s.io", "v1beta1", "PriorityClass"):                             {11, 21},
	gvk("discovery.k8s.io", "v1", "EndpointSlice"):                                   {21, 0},
	gvk("discovery.k8s.io", "v1beta1", "EndpointSlice"):                              {17, 24},
	gvk("events.k8s.io", "v1", "Event"):                                              {19, 0},
	gvk("events.k8s.io", "v1beta1", "Event"):                                         {8, 24},
	gvk("autoscaling", "v2", "HorizontalPodAutoscaler"):                              {23, 0},
	gvk("autoscaling", "v2beta2", "HorizontalPodAutoscaler"):                         {12, 25},
	gvk("flowcontrol.apiserver.k8s.io", "v1beta3", "FlowSchema"):                     {26, 31},
}

func gvk(group, version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
}

// Served says whether Kubernetes 1.minor serves kind in group/version.
// known is false for a kind the table does not list: a caller should treat
// that as a question to answer (add the kind, citing the guide), not as a
// yes.
func Served(k schema.GroupVersionKind, minor int) (ok, known bool) {
	s, known := served[k]
	if !known {
		return false, false
	}
	return minor >= s.Since && (s.Until == 0 || minor <= s.Until), true
}
