package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// Churn is what the rollout workload measured over its churn: what it
// did, what leaked, and how the node's memory moved.
type Churn struct {
	// Seconds is the churn's length; Rolls the rolling updates started;
	// RandomDeletes the Running pods the bench deleted, and
	// DeletesSkipped those it left out while too many pods waited to
	// run (the control plane or the node not keeping up).
	Seconds        float64 `json:"seconds"`
	Rolls          int     `json:"deploymentRolls"`
	RandomDeletes  int     `json:"randomDeletes"`
	DeletesSkipped int     `json:"deletesSkipped"`
	// RollWaitSeconds is how long, in all, a roll waited past its
	// schedule for the previous one to finish.
	RollWaitSeconds float64 `json:"rollWaitSeconds"`
	// Pods created and deleted (deletion begun) within the churn, and
	// their rates.
	PodsCreated   int     `json:"podsCreated"`
	PodsDeleted   int     `json:"podsDeleted"`
	CreatedPerSec float64 `json:"createdPerSecond"`
	DeletedPerSec float64 `json:"deletedPerSecond"`
	// SettleSeconds is churn end → every Deployment rolled out (all
	// replicas of its newest ReplicaSet available, no old pod left).
	SettleSeconds float64 `json:"settleSeconds"`
	// Once settled: groups the cloud holds for no live pod, or beyond
	// one per pod (a leak while the run goes on), and Running pods with
	// no group (a pod lost),
	// after up to a minute for deletions in flight; a few samples. -1:
	// not measured (the rollouts never settled, or no cloud: kwok).
	GroupsOrphaned   int      `json:"groupsOrphaned"`
	PodsWithoutGroup int      `json:"podsWithoutGroup"`
	LeakSamples      []string `json:"leakSamples,omitempty"`
	// PodsStuck: bound pods that neither ran nor were deleted within
	// Options.StuckAfter, over the whole run; their names (at most 20).
	PodsStuck   int      `json:"podsStuck"`
	StuckSample []string `json:"stuckSample,omitempty"`
	// The node's resident memory (VmRSS, first replica) sampled every
	// few seconds: at the churn's start and end, its peak within, the
	// growth (end − start) and the least-squares slope over the churn.
	RSSStartMiB       float64    `json:"rssStartMiB"`
	RSSEndMiB         float64    `json:"rssEndMiB"`
	RSSPeakMiB        float64    `json:"rssPeakMiB"`
	RSSGrowthMiB      float64    `json:"rssGrowthMiB"`
	RSSSlopeMiBPerMin float64    `json:"rssSlopeMiBPerMinute"`
	RSSSamples        []RSSPoint `json:"rssSamples"`
	// ECI calls (by operation) and apiserver requests within the churn,
	// per pod created within it.
	ECICallsPerPod    map[string]float64 `json:"eciCallsPerPod,omitempty"`
	APIRequests       int                `json:"apiRequests"`
	APIRequestsPerPod float64            `json:"apiRequestsPerPod"`

	start, end time.Time
}

// RSSPoint is the node's resident memory T seconds after the churn began
// (negative while the pods come up).
type RSSPoint struct {
	T   float64 `json:"t"`
	MiB float64 `json:"mib"`
}

// rolloutState tells the profiler where the rollout workload is: the CPU
// profile covers the churn, the heap profile is taken at its end.
type rolloutState struct{ churning, churned atomic.Bool }

// procRSS reads a process's resident memory now (VmRSS), in MiB.
func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	var kb float64
	if _, err := fmt.Sscanf(procField(string(b), "VmRSS"), "%f", &kb); err != nil {
		return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
	}
	return kb / 1024, nil
}

type rssSample struct {
	at  time.Time
	mib float64
}

// rssSampler reads a process's RSS every interval until stopped.
type rssSampler struct {
	mu      sync.Mutex
	samples []rssSample
	stop    chan struct{}
	done    chan struct{}
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if mib, err := procRSS(pid); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, rssSample{time.Now(), mib})
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops the sampler and returns its samples.
func (s *rssSampler) finish() []rssSample {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// rssEvery is the sampling interval: every 5 s, or often enough for
// twenty samples over a short churn, but at most once a second.
func rssEvery(churn time.Duration) time.Duration {
	return min(max(churn/20, time.Second), 5*time.Second)
}

// summariseRSS fills the RSS figures from samples, over [c.start, c.end].
func (c *Churn) summariseRSS(samples []rssSample) {
	var xs, ys []float64
	for _, s := range samples {
		t := s.at.Sub(c.start).Seconds()
		c.RSSSamples = append(c.RSSSamples, RSSPoint{T: math.Round(t*10) / 10, MiB: math.Round(s.mib*10) / 10})
		if s.at.Before(c.start) || s.at.After(c.end) {
			continue
		}
		xs, ys = append(xs, t/60), append(ys, s.mib)
		c.RSSPeakMiB = max(c.RSSPeakMiB, s.mib)
	}
	if len(ys) == 0 {
		return
	}
	c.RSSStartMiB, c.RSSEndMiB = ys[0], ys[len(ys)-1]
	c.RSSGrowthMiB = c.RSSEndMiB - c.RSSStartMiB
	c.RSSSlopeMiBPerMin = slope(xs, ys)
}

// slope is the least-squares slope of ys over xs (0 with fewer than two
// distinct xs).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy float64
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// stuckPods names the pods bound for longer than after without running
// or being deleted, as of now.
func stuckPods(rec *recorder, after time.Duration, now time.Time) []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, pt := range rec.pods {
		if pt.bound.IsZero() {
			continue
		}
		settled := now
		for _, t := range []time.Time{pt.running, pt.succeeded, pt.deleting, pt.gone} {
			if !t.IsZero() && t.Before(settled) {
				settled = t
			}
		}
		if settled.Sub(pt.bound) > after {
			out = append(out, fmt.Sprintf("%s (bound %s, %s)", pt.name, pt.bound.Format("15:04:05"), podFate(pt)))
		}
	}
	sort.Strings(out)
	return out
}

func podFate(pt *podTimes) string {
	switch {
	case !pt.running.IsZero():
		return "ran after " + pt.running.Sub(pt.bound).Round(time.Second).String()
	case !pt.deleting.IsZero():
		return "deleted after " + pt.deleting.Sub(pt.bound).Round(time.Second).String() + " without running"
	case !pt.gone.IsZero():
		return "gone after " + pt.gone.Sub(pt.bound).Round(time.Second).String() + " without running"
	case pt.failed != "":
		return "failed: " + pt.failed
	}
	return "still waiting"
}

// waiting counts the pods created that neither run nor are leaving: the
// backlog the control plane and the node have yet to work off.
func (r *recorder) waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, pt := range r.pods {
		if pt.running.IsZero() && pt.deleting.IsZero() && pt.gone.IsZero() && pt.failed == "" {
			n++
		}
	}
	return n
}

// randomRunning picks a Running pod not yet leaving and notes its
// deletion as asked now; ok is false if there is none.
func (r *recorder) randomRunning(rng *rand.Rand, now time.Time) (ns, name string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pick *podTimes
	seen := 0
	for _, pt := range r.pods {
		if pt.running.IsZero() || !pt.deleting.IsZero() || !pt.gone.IsZero() {
			continue
		}
		seen++
		if rng.IntN(seen) == 0 { // reservoir sampling: each equally likely
			pick = pt
		}
	}
	if pick == nil {
		return "", "", false
	}
	pick.deleting = now
	ns, name, _ = strings.Cut(pick.name, "/")
	return ns, name, true
}

// churnCounts counts the pods created, and those whose deletion began,
// within [from, to].
func (r *recorder) churnCounts(from, to time.Time) (created, deleted int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(from) && !t.After(to) }
	for _, pt := range r.pods {
		if in(pt.created) {
			created++
		}
		left := pt.deleting
		if left.IsZero() {
			left = pt.gone
		}
		if in(left) {
			deleted++
		}
	}
	return created, deleted
}

// rolledOut reports whether d's newest ReplicaSet holds every replica,
// all available, and no old pod is left.
func rolledOut(d *appsv1.Deployment) bool {
	want := ptr.Deref(d.Spec.Replicas, 1)
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want
}

// rollout brings opts.Pods up through one Deployment per namespace, then
// churns for opts.ChurnDuration: it rolls the Deployments one after
// another (a new annotation on the pod template), each once the previous
// roll is done and no sooner than its schedule, so that rolls replace
// three quarters of ChurnRate pods a second; and it deletes a random
// Running pod at a quarter of ChurnRate a second, unless too many pods
// already wait to run. It then waits for every rollout to finish, looks
// for leaked groups and lost pods, deletes the namespaces and waits for
// every pod and group to go.
func rollout(ctx context.Context, cl *cluster, t target, opts Options, run string, namespaces []string, rec *recorder, res *Result, state *rolloutState) (map[string]time.Time, error) {
	tpl := podTemplate(t, run, corev1.RestartPolicyAlways, nil)
	if err := createDeployments(ctx, cl, t, opts, namespaces, tpl); err != nil {
		return nil, err
	}
	sampler := sampleRSS(t.pid(), rssEvery(opts.ChurnDuration))
	// -1 until the leak check runs (it needs the rollouts settled, and
	// a cloud: kwok has none).
	c := &Churn{GroupsOrphaned: -1, PodsWithoutGroup: -1}
	res.Churn = c
	defer func() { c.summariseRSS(sampler.finish()) }()
	runningThenSteady(ctx, t, opts, rec, res)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	perDeployment := float64(opts.Pods) / float64(len(namespaces))
	rollEvery := time.Duration(perDeployment / (0.75 * opts.ChurnRate) * float64(time.Second))
	deleteEvery := time.Duration(float64(time.Second) / (0.25 * opts.ChurnRate))
	// A roll puts up to half a Deployment in flight at once (a quarter
	// surge, a quarter unavailable); beyond that and ten seconds of
	// churn, the control plane or the node is behind.
	backlog := int(perDeployment/2) + int(math.Ceil(10*opts.ChurnRate))
	logf(opts.Log, "%s: churning for %s: a Deployment rolled every %s, a random Running pod deleted every %s (paused while more than %d pods wait to run)",
		t.name(), opts.ChurnDuration, rollEvery.Round(100*time.Millisecond), deleteEvery.Round(10*time.Millisecond), backlog)

	var calls0 map[string]map[string]int
	if sim := t.cloud(); sim != nil {
		calls0 = sim.Calls()
	}
	c.start = time.Now()
	state.churning.Store(true)
	rng := rand.New(rand.NewPCG(uint64(c.start.UnixNano()), 15))
	deadline := c.start.Add(opts.ChurnDuration)
	nextRoll, nextDelete := c.start, c.start.Add(deleteEvery)
	rolling := "" // namespace of the last roll, until it is done
	var deletes sync.WaitGroup
	var deleted atomic.Int64
	defer deletes.Wait()
	lastLog := c.start
	for {
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		if now.Sub(lastLog) >= 30*time.Second {
			logf(opts.Log, "  churn: %d rolls, %d random deletes (%d skipped), %d pods waiting to run", c.Rolls, deleted.Load(), c.DeletesSkipped, rec.waiting())
			lastLog = now
		}
		if !now.Before(nextRoll) {
			// An apiserver error (a timeout under load) is logged and
			// the roll tried again a second later: one slow reply
			// must not end a long run.
			done := true
			if rolling != "" {
				d, err := cl.kube.AppsV1().Deployments(rolling).Get(ctx, "bench", metav1.GetOptions{})
				if err != nil {
					logf(opts.Log, "%s: churn: get Deployment %s/bench: %v", t.name(), rolling, err)
				}
				done = err == nil && rolledOut(d)
			}
			ns := namespaces[c.Rolls%len(namespaces)]
			patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"bench.ack-virtual-node.io/roll":%q}}}}}`, strconv.Itoa(c.Rolls+1))
			if done {
				if _, err := cl.kube.AppsV1().Deployments(ns).Patch(ctx, "bench", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
					logf(opts.Log, "%s: churn: roll Deployment %s/bench: %v", t.name(), ns, err)
					done = false
				}
			}
			if done {
				c.RollWaitSeconds += now.Sub(nextRoll).Seconds()
				c.Rolls++
				rolling = ns
				nextRoll = nextRoll.Add(rollEvery)
				if nextRoll.Before(now) {
					nextRoll = now
				}
			}
		}
		if !now.Before(nextDelete) {
			if rec.waiting() > backlog {
				c.DeletesSkipped++
			} else if ns, name, ok := rec.randomRunning(rng, now); ok {
				// In the background, so that a slow reply does not
				// slow the pace.
				deletes.Add(1)
				go func() {
					defer deletes.Done()
					err := cl.kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
					if err != nil && !apierrors.IsNotFound(err) {
						logf(opts.Log, "%s: churn: delete pod %s/%s: %v", t.name(), ns, name, err)
						return
					}
					deleted.Add(1)
				}()
			}
			nextDelete = nextDelete.Add(deleteEvery)
			if nextDelete.Before(now) {
				nextDelete = now.Add(deleteEvery)
			}
		}
		wake := nextRoll
		if !time.Now().Before(nextRoll) {
			// A roll waits for the previous one: look again in a second.
			wake = time.Now().Add(time.Second)
		}
		for _, at := range []time.Time{nextDelete, deadline} {
			if at.Before(wake) {
				wake = at
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Until(wake)):
		}
	}
	c.end = time.Now()
	deletes.Wait()
	c.RandomDeletes = int(deleted.Load())
	state.churning.Store(false)
	state.churned.Store(true)
	c.Seconds = c.end.Sub(c.start).Seconds()
	c.PodsCreated, c.PodsDeleted = rec.churnCounts(c.start, c.end)
	c.CreatedPerSec, c.DeletedPerSec = float64(c.PodsCreated)/c.Seconds, float64(c.PodsDeleted)/c.Seconds
	if sim := t.cloud(); sim != nil {
		c.ECICallsPerPod = map[string]float64{}
		for op, outcomes := range sim.Calls() {
			n := 0
			for outcome, k := range outcomes {
				n += k - calls0[op][outcome]
			}
			if n > 0 && c.PodsCreated > 0 {
				c.ECICallsPerPod[op] = float64(n) / float64(c.PodsCreated)
			}
		}
	}
	logf(opts.Log, "%s: churn done: %d rolls, %d random deletes, %d pods created and %d deleted in %.0f s; waiting for the rollouts",
		t.name(), c.Rolls, c.RandomDeletes, c.PodsCreated, c.PodsDeleted, c.Seconds)

	// Bounded apart from the run's timeout, so that a rollout that never
	// finishes still leaves time to clean up and report.
	settleCtx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	if err := waitRolledOut(settleCtx, cl, opts, namespaces); err != nil {
		logf(opts.Log, "%s: not every Deployment rolled out before the timeout: %v", t.name(), err)
	} else {
		c.SettleSeconds = time.Since(c.end).Seconds()
		if t.cloud() != nil {
			c.leaks(ctx, cl, t, opts, run)
		}
	}

	logf(opts.Log, "%s: deleting the namespaces", t.name())
	groups := runGroups(t)
	rec.deletingAll(time.Now())
	for _, ns := range namespaces {
		if err := cl.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("rollout: delete namespace %s: %w", ns, err)
		}
	}
	gone, err := waitGoneAfter(ctx, cl, t, opts, rec, groups)
	stuck := stuckPods(rec, opts.StuckAfter, time.Now())
	c.PodsStuck = len(stuck)
	c.StuckSample = stuck[:min(len(stuck), 20)]
	return gone, err
}

// createDeployments creates one Deployment named bench in each namespace,
// opts.Pods replicas in all.
func createDeployments(ctx context.Context, cl *cluster, t target, opts Options, namespaces []string, tpl corev1.PodTemplateSpec) error {
	shares := split(opts.Pods, len(namespaces))
	logf(opts.Log, "%s: creating %d pods in %d Deployments", t.name(), opts.Pods, len(namespaces))
	for i, ns := range namespaces {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(shares[i])),
				Selector: &metav1.LabelSelector{MatchLabels: tpl.Labels},
				Template: tpl,
			},
		}
		if _, err := cl.kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Deployment %s/bench: %w", ns, err)
		}
	}
	return nil
}

// settleTimeout bounds the wait for the rollouts once the churn stops.
const settleTimeout = 10 * time.Minute

// waitRolledOut waits until every namespace's Deployment has rolled out.
func waitRolledOut(ctx context.Context, cl *cluster, opts Options, namespaces []string) error {
	last := time.Now()
	return wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		pending := 0
		for _, ns := range namespaces {
			d, err := cl.kube.AppsV1().Deployments(ns).Get(ctx, "bench", metav1.GetOptions{})
			if err != nil {
				logf(opts.Log, "  waiting for rollouts: get Deployment %s/bench: %v", ns, err)
			}
			if err != nil || !rolledOut(d) {
				pending++
			}
		}
		if pending > 0 && time.Since(last) > 10*time.Second {
			logf(opts.Log, "  waiting for rollouts: %d of %d Deployments not rolled out", pending, len(namespaces))
			last = time.Now()
		}
		return pending == 0, nil
	})
}

// compareGroups finds, among the run's groups and live pods, the groups
// whose pod is gone or that a pod holds beyond its first (orphaned), and
// the Running pods with no group (lost), with up to twenty samples.
func compareGroups(groups []simulator.ContainerGroup, pods []corev1.Pod) (orphaned, lost int, samples []string) {
	live, running := map[string]bool{}, map[string]string{}
	for i := range pods {
		p := &pods[i]
		live[string(p.UID)] = true
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running[string(p.UID)] = p.Namespace + "/" + p.Name
		}
	}
	held := map[string]bool{}
	for _, g := range groups {
		uid := tagOf(g.Tags, translate.TagPodUID)
		if uid == "" || tagOf(g.Tags, translate.TagClusterID) != "bench" {
			continue
		}
		why := ""
		switch {
		case !live[uid]:
			why = "of gone pod"
		case held[uid]:
			why = "beyond the first of pod"
		}
		held[uid] = true
		if why != "" {
			orphaned++
			if len(samples) < 10 {
				samples = append(samples, fmt.Sprintf("group %s %s %s/%s (%s)", g.ContainerGroupId, why,
					tagOf(g.Tags, translate.TagPodNamespace), tagOf(g.Tags, translate.TagPodName), g.Status))
			}
		}
	}
	names := make([]string, 0, len(running))
	for uid, name := range running {
		if !held[uid] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		lost++
		if len(samples) < 20 {
			samples = append(samples, "Running pod "+name+" has no group")
		}
	}
	return orphaned, lost, samples
}

// leakGrace is how long deletions in flight when the rollouts settle may
// take before a group without a pod counts as leaked.
const leakGrace = time.Minute

// leaks compares the cloud's groups with the live pods once the rollouts
// have settled: a group whose pod is gone is orphaned, a Running pod with
// no group is lost. Deletions and creates in flight get leakGrace to
// finish.
func (c *Churn) leaks(ctx context.Context, cl *cluster, t target, opts Options, run string) {
	sim := t.cloud()
	deadline := time.Now().Add(leakGrace)
	for {
		pods, err := cl.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: runLabel + "=" + run, ResourceVersion: "0"})
		if err != nil {
			logf(opts.Log, "%s: leak check: list pods: %v", t.name(), err)
			c.LeakSamples = []string{"leak check: list pods: " + err.Error()}
		} else {
			orphaned, lost, samples := compareGroups(sim.Groups(), pods.Items)
			c.GroupsOrphaned, c.PodsWithoutGroup, c.LeakSamples = orphaned, lost, samples
			if orphaned == 0 && lost == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
	}
}
