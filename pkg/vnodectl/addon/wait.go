package addon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

// PodBlockedError is returned by the waits when a pod they wait for cannot
// start by itself: the scheduler finds no node for it, or its image cannot
// be pulled. Waiting longer would only run out the timeout.
type PodBlockedError struct {
	// Namespace and Pod name the pod.
	Namespace, Pod string
	// Owner is what the pod belongs to, e.g. "deployment/ack-virtual-node-controller"
	// or "job/ack-virtual-node-drain".
	Owner string
	// Reason is the scheduler's or the kubelet's reason, e.g.
	// Unschedulable or ImagePullBackOff.
	Reason string
	// Message is the reason's message, e.g. "0/3 nodes are available: ...".
	Message string
}

// Error names the pod and the reason.
func (e *PodBlockedError) Error() string {
	msg := fmt.Sprintf("pod %s/%s of %s cannot start: %s", e.Namespace, e.Pod, e.Owner, e.Reason)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// WaitTimeoutError is returned when a wait ran out its timeout.
type WaitTimeoutError struct {
	// What was waited for.
	What string
	// Timeout is the bound (--timeout).
	Timeout time.Duration
	// Last is the last state seen.
	Last string
}

// Error says what did not happen in time and the last state.
func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("%s: not done within --timeout %s; last state: %s", e.What, e.Timeout, e.Last)
}

// errWaitTimeout is the cancel cause of a wait's own deadline, to tell it
// from a cancellation by the caller (Ctrl-C).
var errWaitTimeout = errors.New("wait timeout")

// stoppedError wraps the reason a wait stopped early: the caller's
// context (a signal, whose cause is kept) or the wait's own timeout.
func stoppedError(ctx context.Context, what string, timeout time.Duration, last string) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, errWaitTimeout) {
		return &WaitTimeoutError{What: what, Timeout: timeout, Last: last}
	}
	if cause == nil {
		cause = ctx.Err()
	}
	return fmt.Errorf("%s: stopped: %w", what, cause)
}

// imagePullReasons are the kubelet's waiting reasons that mean the
// container's image cannot be pulled (or its configuration cannot be
// built): the pod will not start until someone changes something.
var imagePullReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"ErrImageNeverPull": true, "CreateContainerConfigError": true,
}

// PodBlocker reports why p cannot start by itself: the scheduler marked it
// Unschedulable (PodScheduled=False), or a container waits on an image
// pull failure or a configuration error. ok is false for a pod that is
// merely on its way (being scheduled, containers creating, running).
func PodBlocker(p *corev1.Pod) (reason, message string, ok bool) {
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return "", "", false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Reason, c.Message, true
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, s := range statuses {
		if w := s.State.Waiting; w != nil && imagePullReasons[w.Reason] {
			msg := "container " + s.Name
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return w.Reason, msg, true
		}
	}
	return "", "", false
}

// PodState is a one-line description of p for people: its phase and the
// reason it is not ready yet, e.g. "Pending (Unschedulable: 0/1 nodes are
// available: ...)" or "Running, not ready (CrashLoopBackOff: ...)".
func PodState(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	phase := string(p.Status.Phase)
	if phase == "" {
		phase = string(corev1.PodPending)
	}
	if reason, msg, ok := PodBlocker(p); ok {
		return fmt.Sprintf("%s (%s: %s)", phase, reason, msg)
	}
	var why []string
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, s := range statuses {
		switch {
		case s.State.Waiting != nil && s.State.Waiting.Reason != "":
			w := s.State.Waiting.Reason
			if s.State.Waiting.Message != "" {
				w += ": " + s.State.Waiting.Message
			}
			if t := s.LastTerminationState.Terminated; t != nil {
				w += fmt.Sprintf(" (last exit code %d", t.ExitCode)
				if t.Reason != "" {
					w += ", " + t.Reason
				}
				w += ")"
			}
			why = append(why, "container "+s.Name+" "+w)
		case s.State.Terminated != nil && s.State.Terminated.ExitCode != 0:
			why = append(why, fmt.Sprintf("container %s exited %d %s", s.Name, s.State.Terminated.ExitCode, s.State.Terminated.Reason))
		}
	}
	scheduled := false
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
			scheduled = true
		}
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Status.Phase == corev1.PodRunning {
			return "Running, ready"
		}
	}
	switch {
	case len(why) > 0:
	case p.Spec.NodeName == "":
		why = append(why, "not scheduled yet")
	case p.Status.Phase == corev1.PodPending || p.Status.Phase == "":
		why = append(why, "on node "+p.Spec.NodeName+", containers not started (no report from its kubelet yet)")
	case scheduled && p.Status.Phase == corev1.PodRunning:
		why = append(why, "not ready")
	}
	if len(why) == 0 {
		return phase
	}
	return phase + " (" + strings.Join(why, "; ") + ")"
}

// workload is a Deployment or StatefulSet of the release.
type workload struct {
	Kind, Name string
}

func (w workload) String() string { return strings.ToLower(w.Kind) + "/" + w.Name }

// releaseWorkloads lists the Deployments and StatefulSets of a release
// manifest, in a stable order.
func releaseWorkloads(manifest string) []workload {
	var out []workload
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			continue
		}
		if head.Kind == "Deployment" || head.Kind == "StatefulSet" {
			out = append(out, workload{Kind: head.Kind, Name: head.Metadata.Name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// workloadState is the live state of one workload: whether it is rolled
// out and ready, "ready/desired", and its pods.
type workloadState struct {
	workload
	Ready  bool
	Counts string
	Pods   []corev1.Pod
	// Old are the pods of an earlier revision (a rollout in progress):
	// they are replaced, not waited for, so they never stop a wait.
	Old map[string]bool
	// Unsettled is set while the workload's controller has not seen its
	// latest spec: which pods are current is not known yet.
	Unsettled bool
	Missing   bool
	// Conditions are the workload's conditions that explain a missing
	// pod (ReplicaFailure, Progressing=False).
	Conditions []string
}

func (c *Client) workloadState(ctx context.Context, w workload) (*workloadState, error) {
	st := &workloadState{workload: w, Old: map[string]bool{}}
	var sel *metav1.LabelSelector
	// current tells the pods of the workload's current revision.
	current := func(*corev1.Pod) bool { return true }
	switch w.Kind {
	case "Deployment":
		d, err := c.kube.AppsV1().Deployments(c.opts.Namespace).Get(ctx, w.Name, getOpts)
		if apierrors.IsNotFound(err) {
			st.Missing, st.Counts = true, "missing"
			return st, nil
		}
		if err != nil {
			return nil, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		st.Counts = fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want)
		st.Ready = d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
			d.Status.ReadyReplicas >= want && d.Status.Replicas == want
		sel = d.Spec.Selector
		st.Unsettled = d.Status.ObservedGeneration < d.Generation
		if hash := c.currentTemplateHash(ctx, d); hash != "" {
			current = func(p *corev1.Pod) bool { return p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == hash }
		}
		for _, cond := range d.Status.Conditions {
			if (cond.Type == appsv1.DeploymentReplicaFailure && cond.Status == corev1.ConditionTrue) ||
				(cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse) {
				st.Conditions = append(st.Conditions, fmt.Sprintf("%s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message))
			}
		}
	case "StatefulSet":
		s, err := c.kube.AppsV1().StatefulSets(c.opts.Namespace).Get(ctx, w.Name, getOpts)
		if apierrors.IsNotFound(err) {
			st.Missing, st.Counts = true, "missing"
			return st, nil
		}
		if err != nil {
			return nil, err
		}
		want := int32(1)
		if s.Spec.Replicas != nil {
			want = *s.Spec.Replicas
		}
		st.Counts = fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, want)
		st.Ready = s.Status.ObservedGeneration >= s.Generation && s.Status.ReadyReplicas >= want && s.Status.UpdatedReplicas == want
		sel = s.Spec.Selector
		st.Unsettled = s.Status.ObservedGeneration < s.Generation
		if rev := s.Status.UpdateRevision; rev != "" {
			current = func(p *corev1.Pod) bool { return p.Labels[appsv1.ControllerRevisionHashLabelKey] == rev }
		}
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("%s: selector: %w", w, err)
	}
	pods, err := c.kube.CoreV1().Pods(c.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, err
	}
	st.Pods = pods.Items
	sort.Slice(st.Pods, func(i, j int) bool { return st.Pods[i].Name < st.Pods[j].Name })
	for i := range st.Pods {
		if !current(&st.Pods[i]) {
			st.Old[st.Pods[i].Name] = true
		}
	}
	return st, nil
}

// currentTemplateHash is the pod-template-hash of the Deployment's
// current ReplicaSet (the one of its revision), "" when not known yet.
func (c *Client) currentTemplateHash(ctx context.Context, d *appsv1.Deployment) string {
	rev := d.Annotations["deployment.kubernetes.io/revision"]
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if rev == "" || err != nil {
		return ""
	}
	list, err := c.kube.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return ""
	}
	for _, rs := range list.Items {
		owned := false
		for _, o := range rs.OwnerReferences {
			owned = owned || o.UID == d.UID
		}
		if owned && rs.Annotations["deployment.kubernetes.io/revision"] == rev {
			return rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
	}
	return ""
}

// nodeNames are the virtual nodes the controller registers, from the
// live controller Deployment's environment (so kubectl edits count), else
// from the release manifest. A controller run as a StatefulSet without
// VIRTUAL_NODE_NAME registers one node per pod, named like the pod
// (<statefulset>-<ordinal>).
func (c *Client) nodeNames(ctx context.Context, rel *release.Release) []string {
	env := map[string]*corev1.EnvVar{}
	if d, err := c.kube.AppsV1().Deployments(c.opts.Namespace).Get(ctx, ControllerDeployment, getOpts); err == nil {
		env = controllerEnv(d)
	} else if rel != nil {
		if names := c.statefulSetNodeNames(ctx, rel); len(names) > 0 {
			return names
		}
		env, _ = renderedControllerEnv(rel.Manifest)
	}
	cfg := &config.Config{NodeName: config.DefaultNodeName, NodeCount: 1}
	if e := env["VIRTUAL_NODE_NAME"]; e != nil && e.Value != "" {
		cfg.NodeName = e.Value
	}
	if e := env["VIRTUAL_NODE_COUNT"]; e != nil {
		if n, err := strconv.Atoi(e.Value); err == nil && n > 0 {
			cfg.NodeCount = n
		}
	}
	return cfg.NodeNames()
}

// statefulSetNodeNames are the nodes of a controller StatefulSet of the
// release (one whose pods run the controller container): its VIRTUAL_NODE_NAME
// when set, else one node per ordinal pod.
func (c *Client) statefulSetNodeNames(ctx context.Context, rel *release.Release) []string {
	for _, w := range releaseWorkloads(rel.Manifest) {
		if w.Kind != "StatefulSet" {
			continue
		}
		s, err := c.kube.AppsV1().StatefulSets(c.opts.Namespace).Get(ctx, w.Name, getOpts)
		if err != nil {
			continue
		}
		for _, ct := range s.Spec.Template.Spec.Containers {
			if ct.Name != ControllerContainer {
				continue
			}
			for _, e := range ct.Env {
				if e.Name == "VIRTUAL_NODE_NAME" && e.Value != "" {
					return []string{e.Value}
				}
			}
			n := 1
			if s.Spec.Replicas != nil {
				n = int(*s.Spec.Replicas)
			}
			names := make([]string, n)
			for i := range names {
				names[i] = s.Name + "-" + strconv.Itoa(i)
			}
			// Ordinal 0 also serves the Deployment form's nodes it kept.
			for _, e := range ct.Env {
				if e.Name == "VIRTUAL_NODE_LEGACY_NAMES" && n > 0 {
					names = append(names, splitList(e.Value)...)
				}
			}
			return names
		}
	}
	return nil
}

// nodeReady is "True", "False", "Unknown" or "" (not registered).
func (c *Client) nodeReady(ctx context.Context, name string) (string, error) {
	n, err := c.kube.CoreV1().Nodes().Get(ctx, name, getOpts)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return string(cond.Status), nil
		}
	}
	return string(corev1.ConditionUnknown), nil
}

// progress prints a state line when it changed, or every heartbeat while
// it stays the same, so a long wait is never silent.
type progress struct {
	out       func(string)
	last      string
	lastPrint time.Time
	heartbeat time.Duration
}

func (p *progress) report(line string) {
	if line == p.last && time.Since(p.lastPrint) < p.heartbeat {
		return
	}
	if line == p.last {
		p.out("still waiting: " + line)
	} else {
		p.out(line)
	}
	p.last, p.lastPrint = line, time.Now()
}

func (c *Client) newProgress() *progress {
	out := c.opts.Progress
	if out == nil {
		out = func(s string) { klog.Info(s) }
	}
	return &progress{out: out, heartbeat: 15 * time.Second}
}

// WaitReady waits, bounded by the Timeout option, until every Deployment
// and StatefulSet of rel is rolled out and ready and every virtual node the
// controller runs is Ready, printing progress through the Progress option.
// It stops early with a *PodBlockedError when one of their pods cannot
// start by itself (unschedulable, image pull), with a *WaitTimeoutError on
// the timeout, and with the context's cause when ctx is cancelled.
func (c *Client) WaitReady(ctx context.Context, rel *release.Release) error {
	workloads := releaseWorkloads(rel.Manifest)
	return c.poll(ctx, fmt.Sprintf("wait for release %s to be ready", rel.Name), func(ctx context.Context) (bool, string, error) {
		return c.readyOnce(ctx, rel, workloads)
	})
}

// poll calls once every Poll option, bounded by the Timeout option, until
// it is done or fails, printing each state it reports through the
// Progress option; on the timeout or a cancelled ctx it returns
// stoppedError with the last state seen.
func (c *Client) poll(ctx context.Context, what string, once func(ctx context.Context) (done bool, line string, err error)) error {
	ctx, cancel := context.WithTimeoutCause(ctx, c.opts.Timeout, errWaitTimeout)
	defer cancel()
	prog := c.newProgress()
	last := "nothing observed yet"
	for {
		done, line, err := once(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil {
			last = line
			prog.report(line)
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return stoppedError(ctx, what, c.opts.Timeout, last)
		case <-time.After(c.opts.Poll):
		}
	}
}

// readyOnce checks the workloads and nodes once: done when all are ready,
// a state line, or a *PodBlockedError.
func (c *Client) readyOnce(ctx context.Context, rel *release.Release, workloads []workload) (bool, string, error) {
	done := true
	var parts []string
	for _, w := range workloads {
		st, err := c.workloadState(ctx, w)
		if err != nil {
			return false, "", fmt.Errorf("read %s: %w", w, err)
		}
		for i := range st.Pods {
			p := &st.Pods[i]
			if st.Old[p.Name] || st.Unsettled {
				continue
			}
			if reason, msg, ok := PodBlocker(p); ok {
				return false, "", &PodBlockedError{Namespace: p.Namespace, Pod: p.Name, Owner: w.String(), Reason: reason, Message: msg}
			}
		}
		part := fmt.Sprintf("%s ready %s", w, st.Counts)
		if !st.Ready {
			done = false
			var why []string
			for i := range st.Pods {
				if s := PodState(&st.Pods[i]); s != "Running, ready" {
					if st.Old[st.Pods[i].Name] {
						s += " [old revision, being replaced]"
					}
					why = append(why, "pod "+st.Pods[i].Name+" "+s)
				}
			}
			if len(st.Pods) == 0 {
				why = append(why, "no pod yet")
				why = append(why, st.Conditions...)
			}
			part += " (" + strings.Join(why, "; ") + ")"
		}
		parts = append(parts, part)
	}
	for _, n := range c.nodeNames(ctx, rel) {
		ready, err := c.nodeReady(ctx, n)
		if err != nil {
			return false, "", fmt.Errorf("read node %s: %w", n, err)
		}
		switch ready {
		case "True":
			parts = append(parts, "node "+n+" Ready")
		case "":
			done = false
			parts = append(parts, "node "+n+" not registered yet")
		default:
			done = false
			parts = append(parts, "node "+n+" Ready="+ready)
		}
	}
	return done, strings.Join(parts, ", "), nil
}
