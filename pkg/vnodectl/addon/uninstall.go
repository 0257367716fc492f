package addon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/cli-runtime/pkg/resource"
)

// ErrNotInstalled is wrapped by the errors of operations that need the
// release when it is not installed.
var ErrNotInstalled = errors.New("release not installed")

// current reads the latest revision of the release (whatever its status);
// a missing release is ErrNotInstalled.
func (c *Client) current(op string) (*release.Release, error) {
	rel, err := action.NewGet(c.cfg).Run(c.opts.ReleaseName)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		return nil, fmt.Errorf("%s: %w: %s in %s", op, ErrNotInstalled, c.opts.ReleaseName, c.opts.Namespace)
	case err != nil:
		return nil, fmt.Errorf("%s: read release %s in %s: %w", op, c.opts.ReleaseName, c.opts.Namespace, err)
	}
	return rel, nil
}

// UninstallOptions adjust UninstallWith.
type UninstallOptions struct {
	// SkipDrain uninstalls without running the pre-delete drain hook: the
	// way out of an uninstall whose drain cannot run. Container groups of
	// pods still on the virtual nodes are left running (and billed); call
	// Leftovers first to name them.
	SkipDrain bool
}

// UninstallResult says what uninstall left behind on purpose.
type UninstallResult struct {
	// Info is Helm's summary, including resources kept by policy
	// (kube-system/eci-profile).
	Info string
	// Left are the pods and container groups left on the virtual nodes
	// (SkipDrain only).
	Left []Leftover
	// StaleHooks are hook objects of an earlier, unfinished uninstall that
	// were deleted (SkipDrain only), e.g. "job/ack-virtual-node-drain".
	StaleHooks []string
}

// Leftover is a pod on a virtual node and the container group it runs in.
type Leftover struct {
	Node string `json:"node"`
	// Pod is namespace/name.
	Pod string `json:"pod"`
	// Group is the ECI container group id from the pod's
	// k8s.aliyun.com/eci-instance-id annotation ("" when the controller
	// has not recorded one).
	Group string `json:"group,omitempty"`
}

// HookFailedError is a hook Job that ran and failed (the drain reported
// groups it could not delete, or hit its own deadline).
type HookFailedError struct {
	// Hook is e.g. "job/ack-virtual-node-drain".
	Hook string
	// Reason and Message are the Job's Failed condition.
	Reason, Message string
	// Log is the end of its last pod's log, when it could be read.
	Log string
}

// Error names the hook and the Job's reason.
func (e *HookFailedError) Error() string {
	msg := fmt.Sprintf("%s failed: %s", e.Hook, e.Reason)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Uninstall runs the pre-delete drain hook (which fails the uninstall if
// container groups remain) and deletes the release's objects.
func (c *Client) Uninstall(ctx context.Context) (*UninstallResult, error) {
	return c.UninstallWith(ctx, UninstallOptions{})
}

// UninstallWith uninstalls the release. Unless opts.SkipDrain is set it
// first runs the release's pre-delete hooks (the drain Job) itself, with
// progress, and stops early with a *PodBlockedError when a hook pod cannot
// start, a *WaitTimeoutError on the Timeout option, or the context's cause
// when ctx is cancelled. In each of those cases nothing of the release has
// been deleted, the release keeps its status (it is never left in
// "uninstalling") and the hook objects this call created are deleted, so a
// drain cannot start later on its own. A hook Job that ran and failed is
// kept for its log (*HookFailedError).
func (c *Client) UninstallWith(ctx context.Context, opts UninstallOptions) (*UninstallResult, error) {
	rel, err := c.current("uninstall")
	if err != nil {
		return nil, err
	}
	out := &UninstallResult{}
	if opts.SkipDrain {
		if out.Left, err = c.Leftovers(ctx, rel); err != nil {
			return nil, err
		}
		// A drain Job of an earlier attempt would start whenever it can
		// be scheduled: remove it with the release.
		for _, h := range hooksOf(rel, release.HookPreDelete) {
			deleted, err := c.deleteHook(ctx, h)
			if err != nil {
				return nil, fmt.Errorf("delete the hook %s of an earlier uninstall: %w", h.Path, err)
			}
			out.StaleHooks = append(out.StaleHooks, deleted...)
		}
	} else {
		if hooks := hooksOf(rel, release.HookPreDelete); len(hooks) > 0 {
			c.newProgress().out(fmt.Sprintf("uninstalling %s (revision %d, %s): running its pre-delete hook %s first (up to --timeout %s)",
				rel.Name, rel.Version, rel.Info.Status, hooks[0].Name, c.opts.Timeout))
		}
		if err := c.runHooks(ctx, rel, release.HookPreDelete); err != nil {
			return nil, err
		}
	}
	un := action.NewUninstall(c.cfg)
	un.Timeout = c.opts.Timeout
	un.Wait = c.opts.Wait
	un.DisableHooks = true // run above, with progress and cancellation
	if opts.SkipDrain {
		un.Description = fmt.Sprintf("Uninstalled without the drain (--skip-drain): %d pods left on the virtual nodes", len(out.Left))
	}
	res, err := un.Run(c.opts.ReleaseName)
	if err != nil {
		return nil, fmt.Errorf("uninstall %s from %s: %w", c.opts.ReleaseName, c.opts.Namespace, err)
	}
	if err := c.runHooks(ctx, rel, release.HookPostDelete); err != nil {
		return nil, err
	}
	if res != nil {
		out.Info = res.Info
	}
	return out, nil
}

// hooksOf returns rel's hooks for event in Helm's order (weight, name).
func hooksOf(rel *release.Release, event release.HookEvent) []*release.Hook {
	var out []*release.Hook
	for _, h := range rel.Hooks {
		for _, e := range h.Events {
			if e == event {
				out = append(out, h)
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Weight != out[j].Weight {
			return out[i].Weight < out[j].Weight
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func hasPolicy(h *release.Hook, p release.HookDeletePolicy) bool {
	if len(h.DeletePolicies) == 0 {
		return p == release.HookBeforeHookCreation // Helm's default
	}
	for _, v := range h.DeletePolicies {
		if v == p {
			return true
		}
	}
	return false
}

func describe(info *resource.Info) string {
	return strings.ToLower(info.Mapping.GroupVersionKind.Kind) + "/" + info.Name
}

// deleteHook deletes h's objects and waits until they are gone; it
// returns the ones that existed.
func (c *Client) deleteHook(ctx context.Context, h *release.Hook) ([]string, error) {
	resources, err := c.cfg.KubeClient.Build(bytes.NewBufferString(h.Manifest), false)
	if err != nil {
		return nil, fmt.Errorf("hook %s: %w", h.Path, err)
	}
	var existed kube.ResourceList
	for _, info := range resources {
		if err := info.Get(); err == nil {
			existed = append(existed, info)
		} else if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("hook %s: %w", describe(info), err)
		}
	}
	if len(existed) == 0 {
		return nil, nil
	}
	if _, errs := c.cfg.KubeClient.Delete(existed); len(errs) > 0 {
		return nil, fmt.Errorf("delete hook %s: %w", h.Path, errors.Join(errs...))
	}
	var names []string
	for _, info := range existed {
		names = append(names, describe(info))
		for {
			err := info.Get()
			if apierrors.IsNotFound(err) {
				break
			}
			select {
			case <-ctx.Done():
				return names, fmt.Errorf("wait for %s to be deleted: %w", describe(info), context.Cause(ctx))
			case <-time.After(c.opts.Poll):
			}
		}
	}
	return names, nil
}

// runHooks creates the hooks of event one by one, as Helm does, and waits
// for each Job or Pod among them to finish, reporting progress (the Job's
// state, the pods and container groups left on the virtual nodes).
func (c *Client) runHooks(ctx context.Context, rel *release.Release, event release.HookEvent) error {
	for _, h := range hooksOf(rel, event) {
		if hasPolicy(h, release.HookBeforeHookCreation) {
			if _, err := c.deleteHook(ctx, h); err != nil {
				return err
			}
		}
		resources, err := c.cfg.KubeClient.Build(bytes.NewBufferString(h.Manifest), true)
		if err != nil {
			return fmt.Errorf("%s hook %s: %w", event, h.Path, err)
		}
		if _, err := c.cfg.KubeClient.Create(resources); err != nil {
			return fmt.Errorf("%s hook %s: create: %w", event, h.Path, err)
		}
		for _, info := range resources {
			var err error
			switch info.Mapping.GroupVersionKind.Kind {
			case "Job":
				err = c.waitHookJob(ctx, rel, info.Namespace, info.Name)
			case "Pod":
				err = c.waitHookPod(ctx, info.Namespace, info.Name)
			}
			if err == nil {
				continue
			}
			var failed *HookFailedError
			if !errors.As(err, &failed) {
				// Stopped by us (a blocked pod, the timeout, a signal):
				// remove what this call created so that no drain starts
				// later, behind the user's back. A fresh context: ctx may
				// be cancelled already.
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				if _, derr := c.deleteHook(cctx, h); derr != nil {
					err = fmt.Errorf("%w (and deleting the hook %s failed: %v; delete it with kubectl -n %s delete %s)", err, h.Path, derr, c.opts.Namespace, describe(info))
				}
				cancel()
			}
			return err
		}
		if hasPolicy(h, release.HookSucceeded) {
			if _, err := c.deleteHook(ctx, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitHookJob waits for a hook Job to complete.
func (c *Client) waitHookJob(ctx context.Context, rel *release.Release, ns, name string) error {
	what := "wait for the drain Job " + ns + "/" + name
	ctx, cancel := context.WithTimeoutCause(ctx, c.opts.Timeout, errWaitTimeout)
	defer cancel()
	prog := c.newProgress()
	last := "nothing observed yet"
	for {
		done, line, err := c.hookJobOnce(ctx, rel, ns, name)
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

func (c *Client) hookJobOnce(ctx context.Context, rel *release.Release, ns, name string) (bool, string, error) {
	job, err := c.kube.BatchV1().Jobs(ns).Get(ctx, name, getOpts)
	if err != nil {
		return false, "", fmt.Errorf("read job %s/%s: %w", ns, name, err)
	}
	owner := "job/" + name
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return false, "", fmt.Errorf("job %s: selector: %w", name, err)
	}
	pods, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return false, "", err
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].CreationTimestamp.Before(&pods.Items[j].CreationTimestamp) })
	for _, cond := range job.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete:
			return true, fmt.Sprintf("%s: succeeded, %s", owner, c.leftSummary(ctx, rel)), nil
		case batchv1.JobFailed:
			e := &HookFailedError{Hook: owner, Reason: cond.Reason, Message: cond.Message}
			if n := len(pods.Items); n > 0 {
				e.Log = c.podLogTail(ctx, ns, pods.Items[n-1].Name)
			}
			return false, "", e
		}
	}
	var podStates []string
	for i := range pods.Items {
		p := &pods.Items[i]
		if reason, msg, ok := PodBlocker(p); ok {
			return false, "", &PodBlockedError{Namespace: p.Namespace, Pod: p.Name, Owner: owner, Reason: reason, Message: msg}
		}
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded {
			podStates = append(podStates, "pod "+p.Name+" "+PodState(p))
		}
	}
	line := fmt.Sprintf("%s: active %d, failed %d", owner, job.Status.Active, job.Status.Failed)
	if len(podStates) > 0 {
		line += " (" + strings.Join(podStates, "; ") + ")"
	}
	return false, line + "; " + c.leftSummary(ctx, rel), nil
}

// waitHookPod waits for a hook Pod to succeed (the chart has none; kept
// for Helm's semantics).
func (c *Client) waitHookPod(ctx context.Context, ns, name string) error {
	what := "wait for the hook pod " + ns + "/" + name
	ctx, cancel := context.WithTimeoutCause(ctx, c.opts.Timeout, errWaitTimeout)
	defer cancel()
	prog := c.newProgress()
	last := "nothing observed yet"
	for {
		p, err := c.kube.CoreV1().Pods(ns).Get(ctx, name, getOpts)
		if err == nil {
			if reason, msg, ok := PodBlocker(p); ok {
				return &PodBlockedError{Namespace: ns, Pod: name, Owner: "hook", Reason: reason, Message: msg}
			}
			switch p.Status.Phase {
			case corev1.PodSucceeded:
				return nil
			case corev1.PodFailed:
				return &HookFailedError{Hook: "pod/" + name, Reason: p.Status.Reason, Message: p.Status.Message, Log: c.podLogTail(ctx, ns, name)}
			}
			last = "pod/" + name + " " + PodState(p)
			prog.report(last)
		} else if ctx.Err() == nil {
			return fmt.Errorf("read pod %s/%s: %w", ns, name, err)
		}
		select {
		case <-ctx.Done():
			return stoppedError(ctx, what, c.opts.Timeout, last)
		case <-time.After(c.opts.Poll):
		}
	}
}

// podLogTail reads the end of a pod's log, best effort ("" when no
// kubelet serves it).
func (c *Client) podLogTail(ctx context.Context, ns, name string) string {
	lines := int64(40)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := c.kube.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{TailLines: &lines}).Stream(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	return string(b)
}

// Leftovers lists the pods on the release's virtual nodes with the
// container groups they run in (their k8s.aliyun.com/eci-instance-id
// annotation, which the controller sets): what an uninstall without the
// drain would leave running.
func (c *Client) Leftovers(ctx context.Context, rel *release.Release) ([]Leftover, error) {
	var out []Leftover
	for _, n := range c.nodeNames(ctx, rel) {
		pods, err := c.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", n).String()})
		if err != nil {
			return nil, fmt.Errorf("list the pods on virtual node %s: %w", n, err)
		}
		for _, p := range pods.Items {
			out = append(out, Leftover{Node: n, Pod: p.Namespace + "/" + p.Name, Group: p.Annotations[translate.AnnotationInstanceID]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node+out[i].Pod < out[j].Node+out[j].Pod })
	return out, nil
}

// leftSummary is the progress part about the virtual nodes: how many pods
// and container groups are still on them.
func (c *Client) leftSummary(ctx context.Context, rel *release.Release) string {
	left, err := c.Leftovers(ctx, rel)
	if err != nil {
		return "pods left unknown (" + err.Error() + ")"
	}
	pods, groups := map[string]int{}, map[string]int{}
	for _, l := range left {
		pods[l.Node]++
		if l.Group != "" {
			groups[l.Node]++
		}
	}
	var parts []string
	for _, n := range c.nodeNames(ctx, rel) {
		parts = append(parts, fmt.Sprintf("node %s: %d pods, %d container groups left", n, pods[n], groups[n]))
	}
	return strings.Join(parts, ", ")
}

// ReleaseState describes the release now, for the line a stopped command
// prints last: "release X in ns: deployed (revision 3)", or that it is
// not installed.
func (c *Client) ReleaseState(ctx context.Context) string {
	rel, err := action.NewGet(c.cfg).Run(c.opts.ReleaseName)
	if err != nil {
		return fmt.Sprintf("release %s in %s: not installed (%v)", c.opts.ReleaseName, c.opts.Namespace, err)
	}
	return fmt.Sprintf("release %s in %s: %s (revision %d)", rel.Name, rel.Namespace, rel.Info.Status, rel.Version)
}

// PlanSkipDrain is what UninstallWith(SkipDrain) would leave: the pods on
// the release's virtual nodes and their container groups.
func (c *Client) PlanSkipDrain(ctx context.Context) ([]Leftover, error) {
	rel, err := c.current("uninstall")
	if err != nil {
		return nil, err
	}
	return c.Leftovers(ctx, rel)
}
