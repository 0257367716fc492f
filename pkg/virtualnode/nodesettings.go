package virtualnode

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// AnnotationNodeSettings records on the Node which labels and taints the
// controller set from VIRTUAL_NODE_LABELS and VIRTUAL_NODE_TAINTS, so that
// a later configuration removes what an earlier one added and leaves
// everything else (labels and taints of other tools, a cordon, the
// cloud-unavailable taint) alone.
const AnnotationNodeSettings = "alibabacloud.com/virtual-node-settings"

// nodeSettings is the value of AnnotationNodeSettings.
type nodeSettings struct {
	Labels []string  `json:"labels,omitempty"`
	Taints []taintID `json:"taints,omitempty"`
}

// taintID identifies a taint as the API server does: key and effect.
type taintID struct {
	Key    string             `json:"key"`
	Effect corev1.TaintEffect `json:"effect"`
}

func nodeSettingsValue(labels map[string]string, taints []corev1.Taint) string {
	s := nodeSettings{Labels: slices.Sorted(maps.Keys(labels))}
	for _, t := range taints {
		s.Taints = append(s.Taints, taintID{t.Key, t.Effect})
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// applyNodeSettings brings an existing Node's labels and taints to what
// the configuration says: a node registered by an earlier run, or by a
// replica with other settings, keeps its object, and the node controller
// writes only its status. What an earlier configuration set and this one
// does not is removed; the default taint counts as set by the controller
// (every earlier version set it), so "virtual-kubelet.io/provider-"
// removes it from an existing node too. It reports whether it changed
// the Node.
func applyNodeSettings(ctx context.Context, kube kubernetes.Interface, nodeName string, wantLabels map[string]string, wantTaints []corev1.Taint) (bool, error) {
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		changed = false
		node, err := kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var prev nodeSettings
		if v, ok := node.Annotations[AnnotationNodeSettings]; ok {
			if err := json.Unmarshal([]byte(v), &prev); err != nil {
				prev = nodeSettings{} // unreadable: remove nothing but the default taint
			}
		}
		prev.Taints = append(prev.Taints, taintID{config.DefaultTaintKey, config.DefaultTaintEffect})

		labels := maps.Clone(node.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		for _, k := range prev.Labels {
			if _, keep := wantLabels[k]; !keep && !slices.Contains(config.OwnNodeLabels, k) {
				delete(labels, k)
			}
		}
		maps.Copy(labels, wantLabels)

		want := map[taintID]corev1.Taint{}
		for _, t := range wantTaints {
			want[taintID{t.Key, t.Effect}] = t
		}
		var taints []corev1.Taint
		placed := map[taintID]bool{}
		for _, t := range node.Spec.Taints {
			id := taintID{t.Key, t.Effect}
			if w, ok := want[id]; ok {
				taints = append(taints, w)
				placed[id] = true
				continue
			}
			if slices.Contains(prev.Taints, id) {
				continue // ours before, not any more
			}
			taints = append(taints, t)
		}
		for _, t := range wantTaints {
			if !placed[taintID{t.Key, t.Effect}] {
				taints = append(taints, t)
			}
		}
		ann := maps.Clone(node.Annotations)
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationNodeSettings] = nodeSettingsValue(wantLabels, wantTaints)

		if maps.Equal(labels, node.Labels) && maps.Equal(ann, node.Annotations) && sameTaints(taints, node.Spec.Taints) {
			return nil
		}
		node.Labels, node.Annotations, node.Spec.Taints = labels, ann, taints
		if _, err := kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("apply the node labels and taints (VIRTUAL_NODE_LABELS/VIRTUAL_NODE_TAINTS, eci-profile nodeLabels/nodeTaints) to node %s: %w", nodeName, err)
	}
	return changed, nil
}

// sameTaints compares taints ignoring order and TimeAdded.
func sameTaints(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(t corev1.Taint) string { return t.Key + "\x00" + t.Value + "\x00" + string(t.Effect) }
	x, y := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		x[i], y[i] = key(a[i]), key(b[i])
	}
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(x, y)
}

// nodeSettingsFor returns the node's extra labels and its taints: the
// eci-profile's nodeLabels / nodeTaints where set, else
// VIRTUAL_NODE_LABELS / VIRTUAL_NODE_TAINTS (like vSwitchIds replaces
// ECI_VSWITCH).
func (sh *shared) nodeSettingsFor(cfg *config.Config) (map[string]string, []corev1.Taint) {
	labels, taints := cfg.NodeLabelMap(), cfg.NodeTaintList()
	if sh.profiles != nil {
		pl, lset, pt, tset := sh.profiles.NodeSettings()
		if lset {
			labels = pl
		}
		if tset {
			taints = pt
		}
	}
	return labels, taints
}

// nodeSpec is the Node the node controller registers, with the labels and
// taints in effect.
func (sh *shared) nodeSpec(cfg *config.Config) corev1.Node {
	labels, taints := sh.nodeSettingsFor(cfg)
	return nodeSpec(cfg, sh.sv, labels, taints)
}

// settingsFingerprint identifies labels and taints with their values.
func settingsFingerprint(labels map[string]string, taints []corev1.Taint) string {
	b, _ := json.Marshal(struct {
		L map[string]string
		T []corev1.Taint
	}{labels, taints})
	return string(b)
}

// syncNodeSettings applies the labels and taints in effect to the Node
// unless they are those last applied, and returns the fingerprint now on
// the Node ("" after a failure, which is logged and shown in a Warning
// event on the Node: the node keeps serving with its earlier ones).
func (sh *shared) syncNodeSettings(ctx context.Context, cfg *config.Config, recorder record.EventRecorder, last string) string {
	labels, taints := sh.nodeSettingsFor(cfg)
	fp := settingsFingerprint(labels, taints)
	if fp == last {
		return last
	}
	logger := klog.FromContext(ctx)
	changed, err := applyNodeSettings(ctx, sh.kube, cfg.NodeName, labels, taints)
	if err != nil {
		if ctx.Err() == nil {
			logger.Error(err, "node labels and taints not applied")
			recorder.Eventf(nodeRef(cfg.NodeName), corev1.EventTypeWarning, ReasonNodeSettingsNotApplied,
				"%v; the node keeps its earlier labels and taints, retried in %s", err, nodeSettingsRetry)
		}
		return ""
	}
	if changed {
		logger.Info("node labels and taints updated", "labels", labels, "taints", taints)
	}
	return fp
}

// ReasonNodeSettingsNotApplied is the Warning event of a Node whose labels
// and taints could not be brought to the configuration.
const ReasonNodeSettingsNotApplied = "NodeSettingsNotApplied"

// nodeSettingsRetry is how soon a failed update of the Node's labels and
// taints is tried again.
const nodeSettingsRetry = 30 * time.Second

// keepNodeSettings re-applies the Node's labels and taints whenever the
// eci-profile changes (its nodeLabels / nodeTaints apply to running nodes
// without a restart), and retries a failed update, until ctx ends.
func (sh *shared) keepNodeSettings(ctx context.Context, cfg *config.Config, recorder record.EventRecorder, applied string) {
	if sh.profiles == nil {
		return
	}
	for {
		// The channel is taken before the profile is read, so no change
		// between the two is missed; an unchanged setting costs nothing.
		ch := sh.profiles.Changed()
		applied = sh.syncNodeSettings(ctx, cfg, recorder, applied)
		var again <-chan time.Time
		if applied == "" {
			again = time.After(nodeSettingsRetry)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-again:
		}
	}
}

// profileVPC is the eci-profile's vpcId, which the provider checks each new
// group's VPC against.
func (sh *shared) profileVPC() string { return sh.profiles.Current().VPCID }
