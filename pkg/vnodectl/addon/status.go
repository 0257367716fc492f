package addon

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// Status is the release and the live state of what it runs.
type Status struct {
	Release *release.Release
	// Deployments maps each Deployment (and StatefulSet) of the release to
	// "ready/desired".
	Deployments map[string]string
	// Kinds maps each of them to its kind, Deployment or StatefulSet.
	Kinds map[string]string
	// Problems explains each workload that is not ready, one line per
	// pod: its state from its conditions and container statuses, then its
	// Warning events aggregated by reason, e.g.
	// "pod X Pending (Unschedulable: 0/1 nodes are available: ...)".
	Problems map[string][]string
	// NodeReady reports the Ready condition of the first virtual node (""
	// when the node is not registered).
	NodeReady string
	// Nodes maps every virtual node to its Ready condition ("" when not
	// registered).
	Nodes map[string]string
	// Hooks describe hook Jobs of the release that exist now (a drain
	// Job left by an uninstall that failed or was stopped by another
	// tool), with their pods' states.
	Hooks []string
	// Hint says what to run next when the release is not deployed (a
	// failed or stopped install, upgrade or uninstall).
	Hint string
}

// Status reports the release and its workloads, and explains every
// workload that is not ready from its pods' conditions and events.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	rel, err := action.NewStatus(c.cfg).Run(c.opts.ReleaseName)
	if err != nil {
		return nil, fmt.Errorf("status of %s in %s: %w", c.opts.ReleaseName, c.opts.Namespace, err)
	}
	st := &Status{Release: rel, Deployments: map[string]string{}, Kinds: map[string]string{}, Problems: map[string][]string{}, Nodes: map[string]string{}}
	for _, w := range releaseWorkloads(rel.Manifest) {
		ws, err := c.workloadState(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", w, err)
		}
		st.Deployments[w.Name] = ws.Counts
		st.Kinds[w.Name] = w.Kind
		if ws.Ready {
			continue
		}
		var lines []string
		if ws.Missing {
			lines = append(lines, fmt.Sprintf("%s does not exist (deleted by hand?): run vnodectl addon upgrade to recreate it", w))
		}
		lines = append(lines, ws.Conditions...)
		if len(ws.Pods) == 0 && !ws.Missing {
			line := "no pod exists (kubectl -n " + c.opts.Namespace + " describe " + w.String() + " shows why)"
			if ev := c.eventsOf(ctx, w.Kind, w.Name, ""); ev != "" {
				line += "; events: " + ev
			}
			lines = append(lines, line)
		}
		for i := range ws.Pods {
			p := &ws.Pods[i]
			state := PodState(p)
			if state == "Running, ready" {
				continue
			}
			line := "pod " + p.Name + " " + state
			if ws.Old[p.Name] {
				line += " [old revision, being replaced]"
			}
			if ev := c.eventsOf(ctx, "Pod", p.Name, string(p.UID)); ev != "" {
				line += "; events: " + ev
			}
			lines = append(lines, line)
		}
		st.Problems[w.Name] = lines
	}
	for i, n := range c.nodeNames(ctx, rel) {
		ready, err := c.nodeReady(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("status of node %s: %w", n, err)
		}
		st.Nodes[n] = ready
		if i == 0 {
			st.NodeReady = ready
		}
	}
	for _, h := range hooksOf(rel, release.HookPreDelete) {
		if h.Kind != "Job" {
			continue
		}
		if line := c.hookJobState(ctx, h.Name); line != "" {
			st.Hooks = append(st.Hooks, line)
		}
	}
	switch rel.Info.Status {
	case release.StatusUninstalling:
		st.Hint = "an uninstall stopped half-way (" + rel.Info.Description + "): run vnodectl addon uninstall again; if its drain cannot run, see vnodectl addon uninstall --help (--skip-drain)"
	case release.StatusFailed:
		st.Hint = "the last install or upgrade failed (" + rel.Info.Description + "): fix the cause and run vnodectl addon upgrade"
	case release.StatusPendingInstall, release.StatusPendingUpgrade, release.StatusPendingRollback:
		st.Hint = "an install or upgrade was interrupted (" + rel.Info.Description + "): run vnodectl addon upgrade"
	}
	return st, nil
}

// eventsOf summarises the Warning events of one object, aggregated by
// reason: "FailedScheduling x3 (12s ago): 0/1 nodes are available: ...".
// uid narrows them to one incarnation of the object when set.
func (c *Client) eventsOf(ctx context.Context, kind, name, uid string) string {
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name, "type": corev1.EventTypeWarning}
	if uid != "" {
		sel["involvedObject.uid"] = uid
	}
	list, err := c.kube.CoreV1().Events(c.opts.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return "events unavailable (" + err.Error() + ")"
	}
	type agg struct {
		count   int32
		last    time.Time
		message string
	}
	byReason := map[string]*agg{}
	for _, e := range list.Items {
		last := e.LastTimestamp.Time
		if last.IsZero() {
			last = e.EventTime.Time
		}
		if last.IsZero() {
			last = e.CreationTimestamp.Time
		}
		count := e.Count
		if count == 0 {
			count = 1
		}
		if e.Series != nil && e.Series.Count > count {
			count = e.Series.Count
		}
		a := byReason[e.Reason]
		if a == nil {
			a = &agg{}
			byReason[e.Reason] = a
		}
		a.count += count
		if !last.Before(a.last) {
			a.last, a.message = last, strings.TrimSpace(e.Message)
		}
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	var parts []string
	for _, r := range reasons {
		a := byReason[r]
		parts = append(parts, fmt.Sprintf("%s x%d (last %s ago): %s", r, a.count, time.Since(a.last).Round(time.Second), a.message))
	}
	return strings.Join(parts, "; ")
}

// hookJobState describes a hook Job that exists ("" when it does not).
func (c *Client) hookJobState(ctx context.Context, name string) string {
	job, err := c.kube.BatchV1().Jobs(c.opts.Namespace).Get(ctx, name, getOpts)
	if err != nil {
		return ""
	}
	line := fmt.Sprintf("job/%s exists (created by an uninstall that did not finish; it drains the virtual nodes when it runs): active %d, succeeded %d, failed %d",
		name, job.Status.Active, job.Status.Succeeded, job.Status.Failed)
	for _, cond := range job.Status.Conditions {
		if cond.Status == corev1.ConditionTrue {
			line += fmt.Sprintf(", %s: %s %s", cond.Type, cond.Reason, cond.Message)
		}
	}
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return line
	}
	pods, err := c.kube.CoreV1().Pods(c.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return line
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		line += "; pod " + p.Name + " " + PodState(p)
		if ev := c.eventsOf(ctx, "Pod", p.Name, string(p.UID)); ev != "" {
			line += "; events: " + ev
		}
	}
	return line
}
