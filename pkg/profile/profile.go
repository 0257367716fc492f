// Package profile reads the kube-system/eci-profile ConfigMap, the
// cluster-wide defaults users already edit for ack-virtual-node: the
// vSwitches, security group, resource group and tags of new ECI pods,
// whether they reach ClusterIP Services, the virtual nodes' extra labels and
// taints, and the selectors that send matching pods to the virtual node
// with extra annotations and labels. Keys it does not use are listed by
// Ignored and reported by the Store in Warning events.
//
// Parse turns the ConfigMap's data into an immutable Profile and rejects it
// as a whole when any key is bad (a ValidationError names every bad key and
// its fix). Store watches the ConfigMap with an informer, keeps the last good
// Profile when an edit is malformed, and says so in a Warning Event on the
// ConfigMap and in the log.
package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Where the profile lives and the data keys it understands (the names of the
// vendor documentation).
const (
	// DefaultNamespace is the namespace of the eci-profile ConfigMap.
	DefaultNamespace = "kube-system"
	// DefaultName is the name of the eci-profile ConfigMap.
	DefaultName = "eci-profile"

	// KeyVSwitchIDs holds comma-separated vSwitch ids for new pods.
	KeyVSwitchIDs = "vSwitchIds"
	// KeyVSwitchIDsLegacy is the spelling of older documentation.
	KeyVSwitchIDsLegacy = "vswitchIds"
	// KeySecurityGroupID holds the security group id for new pods.
	KeySecurityGroupID = "securityGroupId"
	// KeyVPCID holds the VPC of the vSwitches (informational).
	KeyVPCID = "vpcId"
	// KeyEnableClusterIP says whether pods can reach ClusterIP Services.
	KeyEnableClusterIP = "enableClusterIp"
	// KeyResourceGroupID holds the resource group of new container groups.
	KeyResourceGroupID = "resourceGroupId"
	// KeySelectors holds the JSON list of selectors.
	KeySelectors = "selectors"
	// KeyTags holds tags of every new container group, "key:value,...";
	// they replace the controller's ECI_TAGS.
	KeyTags = "tags"
	// KeyNodeLabels holds extra labels of the virtual nodes, "key=value,...";
	// they replace the controller's VIRTUAL_NODE_LABELS.
	KeyNodeLabels = "nodeLabels"
	// KeyNodeTaints holds extra taints of the virtual nodes in
	// VIRTUAL_NODE_TAINTS's syntax, which they replace.
	KeyNodeTaints = "nodeTaints"
)

// maxVSwitches is what CreateContainerGroup accepts in VSwitchId.
const maxVSwitches = 10

var (
	vswitchRE = regexp.MustCompile(`^vsw-[a-z0-9-]+$`)
	sgRE      = regexp.MustCompile(`^sg-[a-z0-9-]+$`)
	vpcRE     = regexp.MustCompile(`^vpc-[a-z0-9-]+$`)
	rgRE      = regexp.MustCompile(`^rg-[a-z0-9-]+$`)
)

// selectorsExample is quoted in error messages so that the fix is one copy
// and paste away.
const selectorsExample = `[{"name":"big-jobs","objectSelector":{"matchLabels":{"app":"batch"}},` +
	`"effect":{"annotations":{"k8s.aliyun.com/eci-use-specs":"2-4Gi"}}}]`

// Profile is one accepted version of the eci-profile ConfigMap. A Profile
// handed out by Parse or Store is shared and must be treated as read-only;
// use Clone to get a copy that may be modified.
type Profile struct {
	// VSwitchIDs are the vSwitches of new pods (vSwitchIds), in order;
	// empty means "use the controller's ECI_VSWITCH".
	VSwitchIDs []string
	// SecurityGroupID is the security group of new pods; empty means "use
	// the controller's ECI_SECURITY_GROUP".
	SecurityGroupID string
	// VPCID is the VPC of the vSwitches, if given.
	VPCID string
	// ResourceGroupID is the resource group of new container groups.
	ResourceGroupID string
	// EnableClusterIP is enableClusterIp; nil when the key is absent.
	EnableClusterIP *bool
	// Tags are the tags of new container groups (tags); TagsSet says the
	// key is present and not blank, so they replace ECI_TAGS.
	Tags    []eci.Tag
	TagsSet bool
	// NodeLabels are the extra node labels (nodeLabels); nil when the key
	// is absent or blank (VIRTUAL_NODE_LABELS applies).
	NodeLabels map[string]string
	// NodeTaints are the node taints (nodeTaints); nil when the key is
	// absent or blank (VIRTUAL_NODE_TAINTS applies).
	NodeTaints *config.NodeTaints
	// Selectors send matching pods to the virtual node, in order.
	Selectors []Selector
	// ResourceVersion is that of the ConfigMap this profile was read from;
	// empty for the empty profile (no ConfigMap).
	ResourceVersion string
}

// Selector is one entry of the selectors key. A pod matches when every
// label of NamespaceSelector is on its namespace and every label of
// ObjectSelector is on the pod (labels inside one selector are ANDed).
type Selector struct {
	// Name identifies the selector in events, logs and webhook entries.
	Name string `json:"name"`
	// NamespaceSelector matches labels of the pod's namespace.
	NamespaceSelector LabelMatch `json:"namespaceSelector"`
	// ObjectSelector matches labels of the pod.
	ObjectSelector LabelMatch `json:"objectSelector"`
	// Effect is what a matching pod gets besides going to the virtual node.
	Effect Effect `json:"effect"`
}

// LabelMatch is the subset of metav1.LabelSelector the profile supports.
type LabelMatch struct {
	// MatchLabels must all be present with these values.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// Effect holds the annotations and labels a matching pod gets.
type Effect struct {
	// Annotations are added to the pod unless it already has the key.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Labels are added to the pod unless it already has the key.
	Labels map[string]string `json:"labels,omitempty"`
}

// Problem is one bad key of the ConfigMap; Message says what is wrong and
// how to fix it.
type Problem struct {
	// Key is the data key of the ConfigMap, e.g. "selectors".
	Key string
	// Message explains the problem and the fix.
	Message string
}

// ValidationError is returned by Parse when any key is bad; the profile is
// then rejected as a whole, because applying half of an edit would leave
// pods with a combination nobody wrote.
type ValidationError struct {
	// Problems lists every bad key, in key order.
	Problems []Problem
}

// Error lists every problem as "key: message".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Key + ": " + p.Message
	}
	return "invalid eci-profile: " + strings.Join(parts, "; ")
}

// Keys returns the distinct bad keys in order.
func (e *ValidationError) Keys() []string {
	var keys []string
	for _, p := range e.Problems {
		if !slices.Contains(keys, p.Key) {
			keys = append(keys, p.Key)
		}
	}
	return keys
}

// Parse validates the data of an eci-profile ConfigMap and returns the
// profile it describes. Keys it does not use (the vendor's enableHybridMode,
// enablePrivateZone, featureGates, ..., and unknown ones) do not reject the
// profile: rejecting them would break ConfigMaps copied from the vendor
// documentation. Ignored lists them, and the Store reports each in a
// Warning event.
func Parse(data map[string]string) (*Profile, error) {
	p := &Profile{}
	var problems []Problem
	add := func(key, format string, a ...any) {
		problems = append(problems, Problem{Key: key, Message: fmt.Sprintf(format, a...)})
	}

	vswKey, vswRaw := KeyVSwitchIDs, strings.TrimSpace(data[KeyVSwitchIDs])
	if legacy := strings.TrimSpace(data[KeyVSwitchIDsLegacy]); legacy != "" {
		switch {
		case vswRaw == "":
			vswKey, vswRaw = KeyVSwitchIDsLegacy, legacy
		case !slices.Equal(splitList(vswRaw), splitList(legacy)):
			add(KeyVSwitchIDsLegacy, "differs from %s; keep only %s (the older spelling %s is read only when %s is absent)",
				KeyVSwitchIDs, KeyVSwitchIDs, KeyVSwitchIDsLegacy, KeyVSwitchIDs)
		}
	}
	if vswRaw != "" {
		ids := splitList(vswRaw)
		seen := map[string]bool{}
		for _, id := range ids {
			if !vswitchRE.MatchString(id) {
				add(vswKey, "%q is not a vSwitch id; use comma-separated ids that start with vsw-, e.g. vsw-aaa,vsw-bbb", id)
			}
			if seen[id] {
				add(vswKey, "%q is listed twice; list each vSwitch once", id)
			}
			seen[id] = true
		}
		if len(ids) > maxVSwitches {
			add(vswKey, "%d vSwitches listed; ECI accepts at most %d", len(ids), maxVSwitches)
		}
		p.VSwitchIDs = ids
	}

	if sg := strings.TrimSpace(data[KeySecurityGroupID]); sg != "" {
		if !sgRE.MatchString(sg) {
			add(KeySecurityGroupID, "%q is not a security group id; use one id that starts with sg-, e.g. sg-xxx", sg)
		}
		p.SecurityGroupID = sg
	}
	if vpc := strings.TrimSpace(data[KeyVPCID]); vpc != "" {
		if !vpcRE.MatchString(vpc) {
			add(KeyVPCID, "%q is not a VPC id; use the id of the vSwitches' VPC, which starts with vpc-", vpc)
		}
		p.VPCID = vpc
	}
	if rg := strings.TrimSpace(data[KeyResourceGroupID]); rg != "" {
		if !rgRE.MatchString(rg) {
			add(KeyResourceGroupID, "%q is not a resource group id; use an id that starts with rg-, or remove the key", rg)
		}
		p.ResourceGroupID = rg
	}
	if v := strings.TrimSpace(data[KeyEnableClusterIP]); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			add(KeyEnableClusterIP, "%q is not a boolean; use \"true\" or \"false\"", v)
		} else {
			p.EnableClusterIP = &b
		}
	}
	if raw := strings.TrimSpace(data[KeyTags]); raw != "" {
		tags, msgs := translate.ParseConfiguredTags(KeyTags, raw)
		for _, m := range msgs {
			add(KeyTags, "%s", strings.TrimPrefix(m, KeyTags+": "))
		}
		p.Tags, p.TagsSet = tags, true
	}
	if raw := strings.TrimSpace(data[KeyNodeLabels]); raw != "" {
		labels, msgs := config.ParseNodeLabels(KeyNodeLabels, raw)
		for _, m := range msgs {
			add(KeyNodeLabels, "%s", strings.TrimPrefix(m, KeyNodeLabels+": "))
		}
		p.NodeLabels = labels
	}
	if raw := strings.TrimSpace(data[KeyNodeTaints]); raw != "" {
		taints, msgs := config.ParseNodeTaints(KeyNodeTaints, raw)
		for _, m := range msgs {
			add(KeyNodeTaints, "%s", strings.TrimPrefix(m, KeyNodeTaints+": "))
		}
		p.NodeTaints = &taints
	}
	if raw := strings.TrimSpace(data[KeySelectors]); raw != "" {
		sel, msgs := parseSelectors(raw)
		for _, m := range msgs {
			add(KeySelectors, "%s", m)
		}
		p.Selectors = sel
	}

	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
		return nil, &ValidationError{Problems: problems}
	}
	return p, nil
}

// splitList splits a comma-separated value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseSelectors decodes and validates the selectors key. Unknown fields are
// errors: a typo such as "objectSelecter" would otherwise silently turn a
// narrow selector into one that matches every pod of a namespace.
func parseSelectors(raw string) ([]Selector, []string) {
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	var sel []Selector
	if err := dec.Decode(&sel); err != nil {
		return nil, []string{fmt.Sprintf("not a JSON list of selectors (%s); write a JSON array such as %s", describeJSONError(raw, err), selectorsExample)}
	}
	if dec.More() {
		return nil, []string{fmt.Sprintf("extra text after the JSON list; write a single JSON array such as %s", selectorsExample)}
	}
	var msgs []string
	names := map[string]bool{}
	for i, s := range sel {
		where := fmt.Sprintf("selector %d", i)
		if s.Name != "" {
			where = fmt.Sprintf("selector %d (%q)", i, s.Name)
		}
		switch {
		case strings.TrimSpace(s.Name) == "":
			msgs = append(msgs, where+": name is empty; give every selector a unique name")
		case names[s.Name]:
			msgs = append(msgs, where+": name is used twice; give every selector a unique name")
		}
		names[s.Name] = true
		if len(s.NamespaceSelector.MatchLabels) == 0 && len(s.ObjectSelector.MatchLabels) == 0 {
			// An empty selector would send every pod of the cluster to ECI;
			// that is never what a typo-free profile means.
			msgs = append(msgs, where+": matches every pod; add namespaceSelector.matchLabels or objectSelector.matchLabels")
		}
		msgs = append(msgs, checkLabels(where+": namespaceSelector.matchLabels", s.NamespaceSelector.MatchLabels)...)
		msgs = append(msgs, checkLabels(where+": objectSelector.matchLabels", s.ObjectSelector.MatchLabels)...)
		msgs = append(msgs, checkLabels(where+": effect.labels", s.Effect.Labels)...)
		for _, k := range sortedKeys(s.Effect.Annotations) {
			for _, e := range validation.IsQualifiedName(k) {
				msgs = append(msgs, fmt.Sprintf("%s: effect.annotations key %q is invalid (%s); use a key such as k8s.aliyun.com/eci-use-specs", where, k, e))
			}
		}
	}
	return sel, msgs
}

// checkLabels validates label keys and values the way the apiserver will:
// the selectors become webhook label selectors and the effect labels are
// written to pods, so a bad label would fail there, far from its cause.
func checkLabels(where string, m map[string]string) []string {
	var msgs []string
	for _, k := range sortedKeys(m) {
		for _, e := range validation.IsQualifiedName(k) {
			msgs = append(msgs, fmt.Sprintf("%s key %q is invalid (%s); use a Kubernetes label key", where, k, e))
		}
		for _, e := range validation.IsValidLabelValue(m[k]) {
			msgs = append(msgs, fmt.Sprintf("%s[%q] value %q is invalid (%s); use a Kubernetes label value", where, k, m[k], e))
		}
	}
	return msgs
}

// describeJSONError turns a decoding error into text that points at the
// place of the problem.
func describeJSONError(raw string, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%v at byte %d, near %q", syn, syn.Offset, near(raw, syn.Offset))
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %s must be %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("the value must be %s, not a JSON %s", typ.Type, typ.Value)
	case err.Error() == "unexpected EOF":
		return "the JSON ends early: a bracket or quote is not closed"
	default:
		return err.Error()
	}
}

// near returns a few characters around offset for error messages.
func near(raw string, offset int64) string {
	lo, hi := int(offset)-10, int(offset)+10
	lo = max(lo, 0)
	hi = min(hi, len(raw))
	lo = min(lo, hi)
	return raw[lo:hi]
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Matches reports whether the selector matches a pod with podLabels in a
// namespace with nsLabels.
func (s *Selector) Matches(nsLabels, podLabels map[string]string) bool {
	return subset(s.NamespaceSelector.MatchLabels, nsLabels) && subset(s.ObjectSelector.MatchLabels, podLabels)
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Match is the outcome of applying a profile's selectors to one pod.
type Match struct {
	// Selectors are the names of the matching selectors, in order.
	Selectors []string
	// Annotations the pod must get (only keys it does not have yet).
	Annotations map[string]string
	// Labels the pod must get (only keys it does not have yet).
	Labels map[string]string
}

// Match applies every matching selector in order. The pod's own
// annotations and labels always win; among selectors, the first matching
// selector that sets a key wins. First-wins keeps the list readable from the
// top, like a routing table: a specific selector placed above a broad one
// keeps its values.
func (p *Profile) Match(nsLabels, podLabels, podAnnotations map[string]string) Match {
	var m Match
	if p == nil {
		return m
	}
	for i := range p.Selectors {
		s := &p.Selectors[i]
		if !s.Matches(nsLabels, podLabels) {
			continue
		}
		m.Selectors = append(m.Selectors, s.Name)
		m.Annotations = mergeMissing(m.Annotations, s.Effect.Annotations, podAnnotations)
		m.Labels = mergeMissing(m.Labels, s.Effect.Labels, podLabels)
	}
	return m
}

// mergeMissing adds to dst the entries of src whose key is neither in dst
// (an earlier selector) nor in own (the pod).
func mergeMissing(dst, src, own map[string]string) map[string]string {
	for k, v := range src {
		if _, ok := own[k]; ok {
			continue
		}
		if _, ok := dst[k]; ok {
			continue
		}
		if dst == nil {
			dst = map[string]string{}
		}
		dst[k] = v
	}
	return dst
}

// Clone returns a deep copy of p.
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	c := *p
	c.VSwitchIDs = slices.Clone(p.VSwitchIDs)
	c.Tags = slices.Clone(p.Tags)
	c.NodeLabels = cloneMap(p.NodeLabels)
	if p.NodeTaints != nil {
		nt := config.NodeTaints{Extra: slices.Clone(p.NodeTaints.Extra), RemoveDefault: p.NodeTaints.RemoveDefault}
		c.NodeTaints = &nt
	}
	if p.EnableClusterIP != nil {
		b := *p.EnableClusterIP
		c.EnableClusterIP = &b
	}
	c.Selectors = make([]Selector, len(p.Selectors))
	for i, s := range p.Selectors {
		c.Selectors[i] = Selector{
			Name:              s.Name,
			NamespaceSelector: LabelMatch{MatchLabels: cloneMap(s.NamespaceSelector.MatchLabels)},
			ObjectSelector:    LabelMatch{MatchLabels: cloneMap(s.ObjectSelector.MatchLabels)},
			Effect:            Effect{Annotations: cloneMap(s.Effect.Annotations), Labels: cloneMap(s.Effect.Labels)},
		}
	}
	if p.Selectors == nil {
		c.Selectors = nil
	}
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// sameContent reports whether a and b describe the same profile, ignoring
// the ResourceVersion (an edit of an unrelated key, or a no-op update).
func sameContent(a, b *Profile) bool {
	x, y := a.Clone(), b.Clone()
	x.ResourceVersion, y.ResourceVersion = "", ""
	xj, _ := json.Marshal(x)
	yj, _ := json.Marshal(y)
	return bytes.Equal(xj, yj)
}
