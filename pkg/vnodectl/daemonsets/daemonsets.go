// Package daemonsets keeps DaemonSets off virtual nodes. A virtual node is
// not a machine: a DaemonSet pod scheduled there would become an ECI
// container group that does nothing useful (kube-proxy cannot program a
// host it does not have). The vendor's documentation has users hand-edit
// kube-proxy; Exclude does it for them, merging with the affinity already
// there.
package daemonsets

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

// The label every virtual node carries and its value, and the taint that
// keeps ordinary pods off it (pkg/virtualnode).
const (
	NodeLabelKey   = "type"
	NodeLabelValue = "virtual-kubelet"
	TaintKey       = "virtual-kubelet.io/provider"
	TaintValue     = "alibabacloud"
)

// Requirement is the expression the vendor's documentation adds.
func Requirement() corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: NodeLabelKey, Operator: corev1.NodeSelectorOpNotIn, Values: []string{NodeLabelValue}}
}

// Taint is the virtual node's taint.
func Taint() corev1.Taint {
	return corev1.Taint{Key: TaintKey, Value: TaintValue, Effect: corev1.TaintEffectNoSchedule}
}

// TermExcludes reports whether a nodeSelectorTerm can never match a
// virtual node, judged on its type label alone: the term requires type
// NotIn [..virtual-kubelet..], type In a list without virtual-kubelet, or
// type DoesNotExist.
func TermExcludes(term corev1.NodeSelectorTerm) bool {
	for _, e := range term.MatchExpressions {
		if e.Key != NodeLabelKey {
			continue
		}
		switch e.Operator {
		case corev1.NodeSelectorOpNotIn:
			if slices.Contains(e.Values, NodeLabelValue) {
				return true
			}
		case corev1.NodeSelectorOpIn:
			if !slices.Contains(e.Values, NodeLabelValue) {
				return true
			}
		case corev1.NodeSelectorOpDoesNotExist:
			return true
		}
	}
	return false
}

// Excludes reports whether pods of spec can never be scheduled to a
// virtual node: its nodeSelector asks for another type, or every required
// nodeSelectorTerm (they are ORed) excludes it.
func Excludes(spec *corev1.PodSpec) bool {
	if v, ok := spec.NodeSelector[NodeLabelKey]; ok && v != NodeLabelValue {
		return true
	}
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return false
	}
	for _, t := range terms {
		if !TermExcludes(t) {
			return false
		}
	}
	return true
}

// ToleratesVirtualNode reports whether pods of spec tolerate the virtual
// node's taint, i.e. nothing but affinity keeps them off it.
func ToleratesVirtualNode(spec *corev1.PodSpec) bool {
	taint := Taint()
	for i := range spec.Tolerations {
		if spec.Tolerations[i].ToleratesTaint(klog.Background(), &taint, false) {
			return true
		}
	}
	return false
}

// AddExclusion adds Requirement to every required nodeSelectorTerm of spec
// that does not exclude virtual nodes yet (terms are ORed, so each needs
// it), creating the affinity when there is none. Preferred terms, pod
// affinity and the other expressions are kept. It reports whether spec
// changed.
func AddExclusion(spec *corev1.PodSpec) bool {
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
	}
	req := na.RequiredDuringSchedulingIgnoredDuringExecution
	if len(req.NodeSelectorTerms) == 0 {
		req.NodeSelectorTerms = []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{Requirement()}}}
		return true
	}
	changed := false
	for i := range req.NodeSelectorTerms {
		if !TermExcludes(req.NodeSelectorTerms[i]) {
			req.NodeSelectorTerms[i].MatchExpressions = append(req.NodeSelectorTerms[i].MatchExpressions, Requirement())
			changed = true
		}
	}
	return changed
}

// Change is what Exclude did (or would do) to one DaemonSet.
type Change struct {
	Namespace, Name string
	// Changed is false when the DaemonSet already excluded virtual nodes.
	Changed bool
	// Diff is a unified diff of spec.template.spec.affinity.
	Diff string
}

// Options select the DaemonSets.
type Options struct {
	// All adds every DaemonSet that tolerates the virtual node's taint to
	// kube-system/kube-proxy.
	All bool
	// DryRun computes and validates the change (server-side dry run) but
	// persists nothing.
	DryRun bool
}

// KubeProxy is the DaemonSet the vendor's documentation edits.
var KubeProxy = [2]string{metav1.NamespaceSystem, "kube-proxy"}

// Exclude adds the exclusion to kube-system/kube-proxy and, with All, to
// every DaemonSet tolerating the taint. A missing kube-proxy is not an
// error (some clusters run it otherwise, or not at all); it is simply not
// in the result.
func Exclude(ctx context.Context, kube kubernetes.Interface, o Options) ([]Change, error) {
	targets := [][2]string{}
	if _, err := kube.AppsV1().DaemonSets(KubeProxy[0]).Get(ctx, KubeProxy[1], metav1.GetOptions{}); err == nil {
		targets = append(targets, KubeProxy)
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get DaemonSet %s/%s: %w", KubeProxy[0], KubeProxy[1], err)
	}
	if o.All {
		list, err := kube.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list DaemonSets: %w", err)
		}
		for _, ds := range list.Items {
			key := [2]string{ds.Namespace, ds.Name}
			if key != KubeProxy && ToleratesVirtualNode(&ds.Spec.Template.Spec) {
				targets = append(targets, key)
			}
		}
	}
	var out []Change
	for _, t := range targets {
		c, err := excludeOne(ctx, kube, t[0], t[1], o.DryRun)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

func excludeOne(ctx context.Context, kube kubernetes.Interface, ns, name string, dryRun bool) (Change, error) {
	c := Change{Namespace: ns, Name: name}
	dss := kube.AppsV1().DaemonSets(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ds, err := dss.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		before := affinityYAML(ds)
		if !AddExclusion(&ds.Spec.Template.Spec) {
			c.Changed, c.Diff = false, ""
			return nil
		}
		c.Changed, c.Diff = true, Diff("a/"+ns+"/"+name+" affinity", "b/"+ns+"/"+name+" affinity", before, affinityYAML(ds))
		opts := metav1.UpdateOptions{}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		_, err = dss.Update(ctx, ds, opts)
		return err
	})
	if err != nil {
		return c, fmt.Errorf("DaemonSet %s/%s: %w", ns, name, err)
	}
	return c, nil
}

func affinityYAML(ds *appsv1.DaemonSet) string {
	a := ds.Spec.Template.Spec.Affinity
	if a == nil {
		return ""
	}
	b, err := yaml.Marshal(map[string]any{"affinity": a})
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// Diff is a minimal unified diff (one hunk, whole text as context) of two
// short texts, enough to show a user what an edit changes.
func Diff(nameA, nameB, a, b string) string {
	la, lb := splitLines(a), splitLines(b)
	// Longest common subsequence table.
	n, m := len(la), len(lb)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if la[i] == lb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n@@ -1,%d +1,%d @@\n", nameA, nameB, n, m)
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && la[i] == lb[j]:
			sb.WriteString(" " + la[i] + "\n")
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			sb.WriteString("+" + lb[j] + "\n")
			j++
		default:
			sb.WriteString("-" + la[i] + "\n")
			i++
		}
	}
	return sb.String()
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
