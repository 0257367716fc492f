package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The console's VNode settings (seeds 000 and 004: tags, taints, resource
// group), as environment variables: extra node labels and taints, tags on
// every container group, and the resource group of new groups.

// The default taint every virtual node carries unless VIRTUAL_NODE_TAINTS
// removes it explicitly ("virtual-kubelet.io/provider-").
const (
	DefaultTaintKey    = "virtual-kubelet.io/provider"
	DefaultTaintValue  = "alibabacloud"
	DefaultTaintEffect = corev1.TaintEffectNoSchedule
)

// OwnNodeLabels are the labels the controller sets on its nodes; routing
// (nodeSelector type=virtual-kubelet, `vnodectl exclude-daemonsets`) and the
// scheduler rely on them, so VIRTUAL_NODE_LABELS cannot replace them.
var OwnNodeLabels = []string{
	"type", "kubernetes.io/role", "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
	"topology.kubernetes.io/region",
}

// reservedTaint says whether a taint key is another component's to set:
// the node lifecycle controller's node.kubernetes.io/* taints and the
// controller's own cloud-unavailable taint (provider.TaintCloudUnavailable).
func reservedTaint(key string) bool {
	return strings.HasPrefix(key, "node.kubernetes.io/") || key == "virtual-kubelet.io/cloud-unavailable"
}

var rgRE = regexp.MustCompile(`^rg-[a-z0-9-]+$`)

// ParseNodeLabels reads "key=value,key=value" (blanks around items are
// dropped). Problems name setting (VIRTUAL_NODE_LABELS, or the eci-profile
// key nodeLabels) and the fix.
func ParseNodeLabels(setting, s string) (map[string]string, []string) {
	var problems []string
	labels := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			problems = append(problems, fmt.Sprintf(setting+": %q is not key=value; write labels as key=value,key=value", item))
			continue
		}
		bad := false
		for _, e := range validation.IsQualifiedName(k) {
			problems = append(problems, fmt.Sprintf(setting+": label key %q is invalid (%s); use a Kubernetes label key", k, e))
			bad = true
		}
		for _, e := range validation.IsValidLabelValue(v) {
			problems = append(problems, fmt.Sprintf(setting+": the value %q of label %q is invalid (%s); use a Kubernetes label value", v, k, e))
			bad = true
		}
		if slices.Contains(OwnNodeLabels, k) {
			problems = append(problems, fmt.Sprintf(setting+": label %q is set by the controller (%s) and cannot be replaced; choose another key",
				k, strings.Join(OwnNodeLabels, ", ")))
			bad = true
		}
		if _, dup := labels[k]; dup {
			problems = append(problems, fmt.Sprintf(setting+": label %q is listed twice; list each key once", k))
			bad = true
		}
		if !bad {
			labels[k] = v
		}
	}
	return labels, problems
}

// NodeTaints is what VIRTUAL_NODE_TAINTS says: the extra taints, and
// whether the default taint is kept.
type NodeTaints struct {
	// Extra are the listed taints, in order.
	Extra []corev1.Taint
	// RemoveDefault is set by "virtual-kubelet.io/provider-" (every
	// effect) or "virtual-kubelet.io/provider:NoSchedule-".
	RemoveDefault bool
}

// All returns the node's taints: the default taint first (unless removed;
// a listed taint with its key and effect replaces its value), then the
// extra ones.
func (t NodeTaints) All() []corev1.Taint {
	var out []corev1.Taint
	replaced := false
	for _, x := range t.Extra {
		if x.Key == DefaultTaintKey && x.Effect == DefaultTaintEffect {
			replaced = true
		}
	}
	if !t.RemoveDefault && !replaced {
		out = append(out, corev1.Taint{Key: DefaultTaintKey, Value: DefaultTaintValue, Effect: DefaultTaintEffect})
	}
	return append(out, t.Extra...)
}

var taintEffects = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}

// ParseNodeTaints reads kubectl taint's syntax, comma-separated:
// "key=value:Effect" or "key:Effect" adds a taint; "virtual-kubelet.io/provider-"
// (or with ":NoSchedule-") removes the default taint, the only one that can
// be removed this way. Problems name setting (VIRTUAL_NODE_TAINTS, or the
// eci-profile key nodeTaints) and the fix.
func ParseNodeTaints(setting, s string) (NodeTaints, []string) {
	var out NodeTaints
	var problems []string
	add := func(format string, a ...any) {
		problems = append(problems, setting+": "+fmt.Sprintf(format, a...))
	}
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.HasSuffix(item, "-") {
			k, eff, hasEff := strings.Cut(strings.TrimSuffix(item, "-"), ":")
			switch {
			case k != DefaultTaintKey:
				add("%q removes a taint, but only the default taint %s can be removed (write %s-); to drop a taint of your own, delete its entry", item, DefaultTaintKey, DefaultTaintKey)
			case hasEff && corev1.TaintEffect(eff) != DefaultTaintEffect:
				add("%q: the default taint has effect %s; write %s- to remove it", item, DefaultTaintEffect, DefaultTaintKey)
			default:
				out.RemoveDefault = true
			}
			continue
		}
		kv, eff, ok := strings.Cut(item, ":")
		if !ok || eff == "" {
			add("%q has no effect; write key=value:Effect or key:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute", item)
			continue
		}
		if !slices.Contains(taintEffects, corev1.TaintEffect(eff)) {
			add("%q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", item, eff)
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		bad := false
		for _, e := range validation.IsQualifiedName(k) {
			add("taint key %q is invalid (%s); use a Kubernetes label key", k, e)
			bad = true
		}
		for _, e := range validation.IsValidLabelValue(v) {
			add("the value %q of taint %q is invalid (%s); use a Kubernetes label value", v, k, e)
			bad = true
		}
		if reservedTaint(k) {
			add("taint %q is set by Kubernetes or by the controller itself when needed; remove it from the list", k)
			bad = true
		}
		if seen[k+":"+eff] {
			add("taint %s:%s is listed twice; list each key and effect once", k, eff)
			bad = true
		}
		seen[k+":"+eff] = true
		if !bad {
			out.Extra = append(out.Extra, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(eff)})
		}
	}
	if out.RemoveDefault && seen[DefaultTaintKey+":"+string(DefaultTaintEffect)] {
		add("%s is both removed (%s-) and listed; keep one", DefaultTaintKey, DefaultTaintKey)
	}
	return out, problems
}

// NodeLabelMap returns the extra labels of VIRTUAL_NODE_LABELS; call it on
// a validated Config.
func (c *Config) NodeLabelMap() map[string]string {
	l, _ := ParseNodeLabels("VIRTUAL_NODE_LABELS", c.NodeLabels)
	return l
}

// NodeTaintList returns the node's taints (VIRTUAL_NODE_TAINTS applied to
// the default); call it on a validated Config.
func (c *Config) NodeTaintList() []corev1.Taint {
	t, _ := ParseNodeTaints("VIRTUAL_NODE_TAINTS", c.NodeTaints)
	return t.All()
}

// GroupTags returns the tags of ECI_TAGS; call it on a validated Config.
func (c *Config) GroupTags() []eci.Tag {
	t, _ := translate.ParseConfiguredTags("ECI_TAGS", c.Tags)
	return t
}

// consoleProblems validates the console's settings.
func (c *Config) consoleProblems() []string {
	_, problems := ParseNodeLabels("VIRTUAL_NODE_LABELS", c.NodeLabels)
	_, p := ParseNodeTaints("VIRTUAL_NODE_TAINTS", c.NodeTaints)
	problems = append(problems, p...)
	_, p = translate.ParseConfiguredTags("ECI_TAGS", c.Tags)
	problems = append(problems, p...)
	if c.ResourceGroupID != "" && !rgRE.MatchString(c.ResourceGroupID) {
		problems = append(problems, fmt.Sprintf("ECI_RESOURCE_GROUP_ID: %q is not a resource group id: set an id that starts with rg-, e.g. rg-aek2abc, or leave it empty for the account's default resource group", c.ResourceGroupID))
	}
	return problems
}
