package webhook

import (
	"sort"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Labels users put on pods and namespaces to send pods to the virtual node
// (the names of the vendor documentation).
const (
	// LabelECI on a pod or namespace: "true" sends pods to the virtual
	// node; "false" on a pod opts it out of a labelled namespace or a
	// profile selector.
	LabelECI = "alibabacloud.com/eci"
	// LabelECILegacy is the older pod (and namespace) label eci=true.
	LabelECILegacy = "eci"
	// LabelInjectionLegacy is the older namespace label
	// virtual-node-affinity-injection=enabled.
	LabelInjectionLegacy = "virtual-node-affinity-injection"

	// NodeSelectorKey is the node label every virtual node carries.
	NodeSelectorKey = "type"
	// NodeSelectorValue is its value on virtual nodes.
	NodeSelectorValue = "virtual-kubelet"
	// TolerationKey is the taint of virtual nodes that routed pods tolerate.
	TolerationKey = "virtual-kubelet.io/provider"
)

// Reasons a pod is routed to the virtual node or left alone; they are the
// "reason" label of the admission metrics and the audit annotation.
const (
	// ReasonPodLabel: the pod has alibabacloud.com/eci=true.
	ReasonPodLabel = "pod-label"
	// ReasonPodLegacyLabel: the pod has eci=true.
	ReasonPodLegacyLabel = "pod-legacy-label"
	// ReasonNamespaceLabel: the namespace has alibabacloud.com/eci=true.
	ReasonNamespaceLabel = "namespace-label"
	// ReasonNamespaceLegacyLabel: the namespace has eci=true or
	// virtual-node-affinity-injection=enabled.
	ReasonNamespaceLegacyLabel = "namespace-legacy-label"
	// ReasonProfileSelector: only an eci-profile selector matched.
	ReasonProfileSelector = "profile-selector"

	// SkipKubeSystem: system pods never go to the virtual node.
	SkipKubeSystem = "kube-system"
	// SkipNodeName: the pod is already placed.
	SkipNodeName = "node-name-set"
	// SkipDaemonSet: DaemonSet pods belong on every real node.
	SkipDaemonSet = "daemonset"
	// SkipOptOut: the pod has alibabacloud.com/eci=false.
	SkipOptOut = "opted-out"
	// SkipNoMatch: no label or selector routes the pod.
	SkipNoMatch = "no-match"
)

// virtualNodeTaint is the taint a routed pod must tolerate; the value is the
// one virtual nodes register with, so tolerations a user already wrote for
// it (Equal or Exists) count.
var virtualNodeTaint = corev1.Taint{Key: TolerationKey, Value: "alibabacloud", Effect: corev1.TaintEffectNoSchedule}

// Input is what a mutation decision depends on.
type Input struct {
	// Namespace is the namespace of the request (pods being created often
	// have an empty metadata.namespace).
	Namespace string
	// NamespaceLabels are the labels of that namespace.
	NamespaceLabels map[string]string
	// Pod is the pod being created.
	Pod *corev1.Pod
	// Profile is the eci-profile in effect; nil means none.
	Profile *profile.Profile
}

// Decision is the outcome for one pod.
type Decision struct {
	// Route says whether the pod goes to the virtual node.
	Route bool
	// Reason is the first rule that routed the pod, or why it was left
	// alone (one of the Reason* and Skip* constants).
	Reason string
	// Selectors are the names of the matching profile selectors.
	Selectors []string
	// Patch is the JSON patch to apply; empty when there is nothing to do.
	Patch []PatchOp
}

// PatchOp is one RFC 6902 JSON patch operation. Every operation Decide
// emits is an "add", which requires a value even when it is "" (an empty
// label value is valid), hence no omitempty.
type PatchOp struct {
	// Op is the operation, always "add" here.
	Op string `json:"op"`
	// Path is the JSON pointer of the target.
	Path string `json:"path"`
	// Value is the value to add.
	Value any `json:"value"`
}

// Decide applies the routing rules to one pod being created:
//
//  1. Pods in kube-system, pods with spec.nodeName (already placed) and
//     DaemonSet pods (one per node by design) are left alone.
//  2. alibabacloud.com/eci=false on the pod opts it out of everything.
//  3. The pod is routed when it has alibabacloud.com/eci=true or eci=true,
//     its namespace has alibabacloud.com/eci=true, eci=true or
//     virtual-node-affinity-injection=enabled, or a profile selector
//     matches.
//
// A routed pod gets nodeSelector type=virtual-kubelet and a toleration of
// the virtual node taint (unless it already tolerates it), plus the
// annotations and labels of the matching selectors that it does not set
// itself. Decide is idempotent: deciding again on its own output yields no
// patch, which matters because several webhook entries may call it for one
// pod.
func Decide(in Input) Decision {
	pod := in.Pod
	switch {
	case in.Namespace == metav1.NamespaceSystem:
		return Decision{Reason: SkipKubeSystem}
	case pod.Spec.NodeName != "":
		return Decision{Reason: SkipNodeName}
	case ownedByDaemonSet(pod):
		return Decision{Reason: SkipDaemonSet}
	case pod.Labels[LabelECI] == "false":
		return Decision{Reason: SkipOptOut}
	}
	m := in.Profile.Match(in.NamespaceLabels, pod.Labels, pod.Annotations)
	d := Decision{Selectors: m.Selectors}
	switch {
	case pod.Labels[LabelECI] == "true":
		d.Reason = ReasonPodLabel
	case pod.Labels[LabelECILegacy] == "true":
		d.Reason = ReasonPodLegacyLabel
	case in.NamespaceLabels[LabelECI] == "true":
		d.Reason = ReasonNamespaceLabel
	case in.NamespaceLabels[LabelECILegacy] == "true", in.NamespaceLabels[LabelInjectionLegacy] == "enabled":
		d.Reason = ReasonNamespaceLegacyLabel
	case len(m.Selectors) > 0:
		d.Reason = ReasonProfileSelector
	default:
		return Decision{Reason: SkipNoMatch}
	}
	d.Route = true

	switch {
	case pod.Spec.NodeSelector == nil:
		d.Patch = append(d.Patch, PatchOp{Op: "add", Path: "/spec/nodeSelector", Value: map[string]string{NodeSelectorKey: NodeSelectorValue}})
	case pod.Spec.NodeSelector[NodeSelectorKey] != NodeSelectorValue:
		// "add" replaces an existing member: a pod labelled for ECI but
		// carrying another type= selector would never schedule anywhere.
		d.Patch = append(d.Patch, PatchOp{Op: "add", Path: "/spec/nodeSelector/" + escape(NodeSelectorKey), Value: NodeSelectorValue})
	}
	if !tolerates(pod.Spec.Tolerations) {
		tol := corev1.Toleration{Key: TolerationKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
		if len(pod.Spec.Tolerations) == 0 {
			d.Patch = append(d.Patch, PatchOp{Op: "add", Path: "/spec/tolerations", Value: []corev1.Toleration{tol}})
		} else {
			d.Patch = append(d.Patch, PatchOp{Op: "add", Path: "/spec/tolerations/-", Value: tol})
		}
	}
	d.Patch = append(d.Patch, mapPatch("/metadata/annotations", pod.Annotations, m.Annotations)...)
	d.Patch = append(d.Patch, mapPatch("/metadata/labels", pod.Labels, m.Labels)...)
	return d
}

// ownedByDaemonSet reports whether a DaemonSet controls the pod. Its pods
// are meant for every real node; the virtual node must not take them.
// Even a DaemonSet opted in to ECI (provider.AnnotationDaemonSetOptIn) is
// left alone: the DaemonSet controller pins each pod to one node, and
// routing would send the pods of real nodes to the virtual node's
// selector, where they never schedule. A DaemonSet pod that tolerates the
// virtual node's taint anyway is refused by the provider unless opted in.
func ownedByDaemonSet(pod *corev1.Pod) bool {
	for _, o := range pod.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

// tolerates reports whether any toleration already covers the virtual-node
// taint, so a hand-written toleration is not duplicated.
func tolerates(tols []corev1.Toleration) bool {
	for i := range tols {
		if tols[i].ToleratesTaint(klog.Background(), &virtualNodeTaint, false) {
			return true
		}
	}
	return false
}

// mapPatch adds the entries of add to the map at path, which holds have.
func mapPatch(path string, have, add map[string]string) []PatchOp {
	if len(add) == 0 {
		return nil
	}
	if have == nil {
		return []PatchOp{{Op: "add", Path: path, Value: add}}
	}
	keys := make([]string, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ops := make([]PatchOp, 0, len(keys))
	for _, k := range keys {
		ops = append(ops, PatchOp{Op: "add", Path: path + "/" + escape(k), Value: add[k]})
	}
	return ops
}

// escape encodes a map key as a JSON pointer token (RFC 6901): label and
// annotation keys contain "/".
func escape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
