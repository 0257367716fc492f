package bench

import (
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Dist summarises durations, in seconds.
type Dist struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func dist(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	ds = sortedDurations(ds)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(i, 0)].Seconds()
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Dist{N: len(ds), P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: ds[len(ds)-1].Seconds(),
		Mean: (sum / time.Duration(len(ds))).Seconds()}
}

// Point is the number of pods running at T seconds after the first pod was
// created.
type Point struct {
	T       float64 `json:"t"`
	Running int     `json:"running"`
}

// Result is what one target measured.
type Result struct {
	Target   string `json:"target"`
	Workload string `json:"workload"`
	// Pods seen, pods that reached Running (or Succeeded for jobs), pods
	// that failed or never got there.
	Pods    int      `json:"pods"`
	Running int      `json:"running"`
	Errors  int      `json:"errors"`
	Failed  []string `json:"failedSamples,omitempty"`
	// Elapsed is first pod created → last pod running; Throughput is pods
	// running per second over it.
	Elapsed    float64 `json:"elapsedSeconds"`
	Throughput float64 `json:"podsPerSecond"`
	// CreateToRunning, BoundToRunning and Overhead (bound→Running minus
	// the simulator's configured latency) per pod.
	CreateToRunning Dist `json:"createToRunning"`
	BoundToRunning  Dist `json:"boundToRunning"`
	Overhead        Dist `json:"nodeOverhead"`
	// The overhead split where the node's first CreateContainerGroup
	// reached the cloud (virtual node only): BoundToCreateSent is the
	// node's side, its queue and its preparation (tokens, volumes);
	// CreateSentToRunning is the rest minus the simulator's latency, the
	// create call's answer and the status report.
	BoundToCreateSent   Dist `json:"boundToCreateSent"`
	CreateSentToRunning Dist `json:"createSentToRunningOverhead"`
	// CreateRate is the pods whose first CreateContainerGroup reached the
	// cloud a second, from the first such create to the last (virtual node
	// only); CreateRateLowest30s is the fewest in any 30 s window between
	// them, a second: what the node sustained, e.g. while a replica was
	// killed and its nodes taken over.
	CreateRate          float64 `json:"createRate"`
	CreateRateLowest30s float64 `json:"createRateLowest30s"`
	// Once every pod runs: groups beyond one per pod (a pod created
	// twice) and running pods without a group (virtual node only).
	DuplicateGroups  int `json:"duplicateGroups"`
	PodsWithoutGroup int `json:"podsWithoutGroup"`
	// From the node's own metrics: the mean wait in its pod queue
	// (vnode_pod_sync_delay_seconds, binding → create started), the upper
	// bound of the histogram bucket holding its 99th percentile, and the
	// mean length of a create (vnode_pod_create_duration_seconds). The
	// queue wait starts at the PodScheduled condition's time, which the
	// apiserver keeps to the second: it reads up to a second high (half a
	// second on average); BoundToCreateSent is the exact figure.
	NodeQueueMean      float64 `json:"nodeQueueWaitMeanSeconds"`
	NodeQueueP99Bucket float64 `json:"nodeQueueWaitP99BucketSeconds"`
	// NodeQueueP99Beyond says the 99th percentile is past the histogram's
	// last finite bound, NodeQueueP99Bucket.
	NodeQueueP99Beyond bool    `json:"nodeQueueWaitP99BeyondLastBucket,omitempty"`
	NodeCreateMean     float64 `json:"nodeCreateMeanSeconds"`
	// DeleteToGone is deletion requested → pod object gone;
	// DeleteToGroupGone is deletion requested → container group gone.
	DeleteToGone      Dist `json:"deleteToGone"`
	DeleteToGroupGone Dist `json:"deleteToGroupGone"`
	GroupsLeft        int  `json:"groupsLeft"`
	// ECI calls: per pod by operation (all outcomes), throttled replies,
	// and per second by operation over the steady window.
	ECICallsPerPod    map[string]float64 `json:"eciCallsPerPod,omitempty"`
	ECIThrottled      int                `json:"eciThrottled"`
	SteadyCallsPerSec map[string]float64 `json:"steadyCallsPerSecond,omitempty"`
	// PeakRSSMiB and CPUSeconds of the target's process.
	PeakRSSMiB float64 `json:"peakRssMiB"`
	CPUSeconds float64 `json:"cpuSeconds"`
	// Apiserver requests the target made (from the audit log).
	APIRequests       int            `json:"apiRequests"`
	APIRequestsPerPod float64        `json:"apiRequestsPerPod"`
	APIRequestsByVerb map[string]int `json:"apiRequestsByVerb"`
	Series            []Point        `json:"series"`
	// Files are the target's own records of the run: CPU and heap
	// profiles and its Prometheus metrics.
	Files []string `json:"files,omitempty"`
	// Churn holds the rollout workload's own figures.
	Churn *Churn `json:"churn,omitempty"`
}

func (r *Result) fill(rec *recorder, opts Options, groupsGone map[string]time.Time) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var c2r, b2r, over, del, delGroup []time.Duration
	var first, last time.Time
	var reached []time.Time
	for uid, pt := range rec.pods {
		r.Pods++
		if first.IsZero() || pt.created.Before(first) {
			first = pt.created
		}
		end := pt.running
		if opts.Workload == WorkloadJobs {
			end = pt.succeeded
		}
		if pt.failed != "" {
			r.Errors++
			if len(r.Failed) < 5 {
				r.Failed = append(r.Failed, pt.failed)
			}
		}
		if end.IsZero() {
			// A pod the workload (or its controllers, in a rollout)
			// deleted before it ran, before the final clean-up, was
			// replaced, not failed.
			// (A pod deleted with no grace period may leave without a
			// watch event showing its deletion timestamp.)
			left := pt.deleting
			if left.IsZero() {
				left = pt.gone
			}
			replaced := !left.IsZero() && !rec.cleanup.IsZero() && left.Before(rec.cleanup)
			if pt.failed == "" && !replaced {
				r.Errors++
			}
			continue
		}
		r.Running++
		reached = append(reached, end)
		if end.After(last) {
			last = end
		}
		c2r = append(c2r, end.Sub(pt.created))
		if !pt.bound.IsZero() {
			b2r = append(b2r, end.Sub(pt.bound))
			over = append(over, max(end.Sub(pt.bound)-opts.SimLatency, 0))
		}
		if !pt.deleting.IsZero() && !pt.gone.IsZero() {
			del = append(del, pt.gone.Sub(pt.deleting))
		}
		if g, ok := groupsGone[string(uid)]; ok && !pt.deleting.IsZero() {
			delGroup = append(delGroup, max(g.Sub(pt.deleting), 0))
		}
	}
	r.CreateToRunning, r.BoundToRunning, r.Overhead = dist(c2r), dist(b2r), dist(over)
	r.DeleteToGone, r.DeleteToGroupGone = dist(del), dist(delGroup)
	if r.Running > 0 {
		r.Elapsed = last.Sub(first).Seconds()
		if r.Elapsed > 0 {
			r.Throughput = float64(r.Running) / r.Elapsed
		}
	}
	sort.Slice(reached, func(i, j int) bool { return reached[i].Before(reached[j]) })
	// One point per 1% of pods (and the last), enough for the plot.
	step := max(len(reached)/100, 1)
	for i, t := range reached {
		if i%step == 0 || i == len(reached)-1 {
			r.Series = append(r.Series, Point{T: t.Sub(first).Seconds(), Running: i + 1})
		}
	}
}

// splitOverhead splits bound→Running where the pod's first create reached
// the cloud (creates, by pod UID).
func (r *Result) splitOverhead(rec *recorder, opts Options, creates map[string]time.Time) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var node, cloud []time.Duration
	for uid, pt := range rec.pods {
		sent, ok := creates[string(uid)]
		if !ok || pt.bound.IsZero() || pt.running.IsZero() {
			continue
		}
		node = append(node, max(sent.Sub(pt.bound), 0))
		cloud = append(cloud, max(pt.running.Sub(sent)-opts.SimLatency, 0))
	}
	r.BoundToCreateSent, r.CreateSentToRunning = dist(node), dist(cloud)
}

// createRate fills CreateRate and CreateRateLowest30s from when each
// pod's first create reached the cloud.
func (r *Result) createRate(creates map[string]time.Time) {
	if len(creates) < 2 {
		return
	}
	at := make([]time.Time, 0, len(creates))
	for _, t := range creates {
		at = append(at, t)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	first, last := at[0], at[len(at)-1]
	if span := last.Sub(first).Seconds(); span > 0 {
		r.CreateRate = float64(len(at)-1) / span
	}
	const window = 30 * time.Second
	if last.Sub(first) < window {
		return
	}
	lowest := len(at)
	// Windows start at every create; j is the first create past the window.
	for i, j := 0, 0; i < len(at) && !at[i].Add(window).After(last); i++ {
		for j < len(at) && at[j].Before(at[i].Add(window)) {
			j++
		}
		lowest = min(lowest, j-i)
	}
	r.CreateRateLowest30s = float64(lowest) / window.Seconds()
}

// groupsPerPod fills DuplicateGroups and PodsWithoutGroup from the groups
// the simulator holds for the run's pods (by their pod UID tag) and the
// pods running now.
func (r *Result) groupsPerPod(t target, rec *recorder) {
	sim := t.cloud()
	if sim == nil {
		return
	}
	perPod := map[string]int{}
	for _, g := range sim.Groups() {
		if uid := tagOf(g.Tags, translate.TagPodUID); uid != "" && tagOf(g.Tags, translate.TagClusterID) == "bench" {
			perPod[uid]++
		}
	}
	r.DuplicateGroups, r.PodsWithoutGroup = 0, 0
	for _, n := range perPod {
		r.DuplicateGroups += n - 1
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for uid, pt := range rec.pods {
		if !pt.running.IsZero() && pt.gone.IsZero() && perPod[string(uid)] == 0 {
			r.PodsWithoutGroup++
		}
	}
}

// nodeQueue reads the node's queue wait and create length from its
// Prometheus metrics (the text format, in file).
func (r *Result) nodeQueue(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	type hist struct {
		sum, count float64
		buckets    map[float64]float64 // cumulative, by upper bound
	}
	read := func(name string) hist {
		h := hist{buckets: map[float64]float64{}}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, name) {
				continue
			}
			fields := strings.Fields(line)
			if len(fields) < 2 {
				continue
			}
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err != nil {
				continue
			}
			switch rest := strings.TrimPrefix(fields[0], name); {
			case strings.HasPrefix(rest, "_sum"):
				h.sum += v
			case strings.HasPrefix(rest, "_count"):
				h.count += v
			case strings.HasPrefix(rest, "_bucket"):
				if _, le, ok := strings.Cut(rest, `le="`); ok {
					le, _, _ = strings.Cut(le, `"`)
					if ub, err := strconv.ParseFloat(le, 64); err == nil {
						h.buckets[ub] += v
					}
				}
			}
		}
		return h
	}
	q := read("vnode_pod_sync_delay_seconds")
	c := read("vnode_pod_create_duration_seconds")
	if q.count == 0 || c.count == 0 {
		return fmt.Errorf("%s has no vnode_pod_sync_delay_seconds or vnode_pod_create_duration_seconds observations", file)
	}
	r.NodeQueueMean, r.NodeCreateMean = q.sum/q.count, c.sum/c.count
	bounds := make([]float64, 0, len(q.buckets))
	for ub := range q.buckets {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	for _, ub := range bounds {
		if math.IsInf(ub, 1) {
			// Beyond the last finite bound: JSON has no +Inf, and the
			// last bound is what the histogram can say (p99 ≥ it).
			r.NodeQueueP99Bucket, r.NodeQueueP99Beyond = bounds[max(len(bounds)-2, 0)], true
			break
		}
		if q.buckets[ub] >= 0.99*q.count {
			r.NodeQueueP99Bucket = ub
			break
		}
	}
	return nil
}

func (r *Result) eciCalls(calls map[string]map[string]int, pods int) {
	r.ECICallsPerPod = map[string]float64{}
	for op, outcomes := range calls {
		n := 0
		for outcome, c := range outcomes {
			n += c
			if strings.HasPrefix(outcome, "Throttling") {
				r.ECIThrottled += c
			}
		}
		if pods > 0 {
			r.ECICallsPerPod[op] = float64(n) / float64(pods)
		}
	}
}

func (r *Result) steadyCalls(before, after map[string]map[string]int, window time.Duration) {
	r.SteadyCallsPerSec = map[string]float64{}
	for op, outcomes := range after {
		n := 0
		for outcome, c := range outcomes {
			n += c - before[op][outcome]
		}
		if n > 0 {
			r.SteadyCallsPerSec[op] = float64(n) / window.Seconds()
		}
	}
}

// WriteTable prints the targets side by side, with kwok's figure over ours
// as the ratio where both exist.
func (rep *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := "metric\t"
	for _, t := range rep.Targets {
		head += t.Target + "\t"
	}
	if len(rep.Targets) == 2 {
		head += "vnode/kwok\t"
	}
	fmt.Fprintln(tw, head)
	row := func(name string, f func(*Result) float64, format string) {
		line := name + "\t"
		vals := []float64{}
		for _, t := range rep.Targets {
			v := f(t)
			vals = append(vals, v)
			if math.IsNaN(v) { // not measured for this target
				line += "-\t"
				continue
			}
			line += fmt.Sprintf(format, v) + "\t"
		}
		if len(vals) == 2 {
			if vals[1] != 0 && !math.IsNaN(vals[0]) && !math.IsNaN(vals[1]) {
				line += fmt.Sprintf("%.2f", vals[0]/vals[1]) + "\t"
			} else {
				line += "-\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	o := rep.Options
	workload := o.Workload
	switch o.Workload {
	case WorkloadPaced:
		workload = fmt.Sprintf("%s (%g pods/s)", o.Workload, o.Rate)
	case WorkloadRollout:
		workload = fmt.Sprintf("%s (%g pods/s replaced for %s)", o.Workload, o.ChurnRate, o.ChurnDuration)
	}
	fmt.Fprintf(w, "workload %s: %d pods over %d namespaces, simulator latency %s, quota scale %g; %d virtual node(s) on %d replica(s); %d CPUs (%s), %d GiB\n\n",
		workload, o.Pods, o.Namespaces, o.SimLatency, o.QuotaScale, max(o.Nodes, 1), max(o.Replicas, 1), rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.MemoryGi)
	row("pods seen", func(r *Result) float64 { return float64(r.Pods) }, "%.0f")
	row("pods running/done", func(r *Result) float64 { return float64(r.Running) }, "%.0f")
	row("errors", func(r *Result) float64 { return float64(r.Errors) }, "%.0f")
	row("elapsed s", func(r *Result) float64 { return r.Elapsed }, "%.1f")
	row("throughput pods/s", func(r *Result) float64 { return r.Throughput }, "%.1f")
	row("create→running p50 s", func(r *Result) float64 { return r.CreateToRunning.P50 }, "%.2f")
	row("create→running p99 s", func(r *Result) float64 { return r.CreateToRunning.P99 }, "%.2f")
	row("bound→running p50 s", func(r *Result) float64 { return r.BoundToRunning.P50 }, "%.3f")
	row("bound→running p90 s", func(r *Result) float64 { return r.BoundToRunning.P90 }, "%.3f")
	row("bound→running p99 s", func(r *Result) float64 { return r.BoundToRunning.P99 }, "%.3f")
	row("bound→running max s", func(r *Result) float64 { return r.BoundToRunning.Max }, "%.3f")
	row("node overhead p99 s", func(r *Result) float64 { return r.Overhead.P99 }, "%.3f")
	// The overhead's two parts; the node's queue-wait histogram is in the
	// JSON only, as its one-second start makes small waits unreadable.
	row("  queue+prepare (bound→create sent) p50 s", func(r *Result) float64 { return r.BoundToCreateSent.P50 }, "%.3f")
	row("  queue+prepare (bound→create sent) p99 s", func(r *Result) float64 { return r.BoundToCreateSent.P99 }, "%.3f")
	row("  create sent→running p99 s", func(r *Result) float64 { return r.CreateSentToRunning.P99 }, "%.3f")
	row("  node create mean s", func(r *Result) float64 { return r.NodeCreateMean }, "%.3f")
	row("create rate (first→last create) /s", func(r *Result) float64 { return r.CreateRate }, "%.1f")
	row("  lowest 30 s window /s", func(r *Result) float64 { return r.CreateRateLowest30s }, "%.1f")
	row("pods created twice (groups beyond 1/pod)", func(r *Result) float64 { return float64(r.DuplicateGroups) }, "%.0f")
	row("running pods without a group", func(r *Result) float64 { return float64(r.PodsWithoutGroup) }, "%.0f")
	row("delete→pod gone p50 s", func(r *Result) float64 { return r.DeleteToGone.P50 }, "%.2f")
	row("delete→pod gone p99 s", func(r *Result) float64 { return r.DeleteToGone.P99 }, "%.2f")
	row("delete→group gone p99 s", func(r *Result) float64 { return r.DeleteToGroupGone.P99 }, "%.2f")
	row("groups left", func(r *Result) float64 { return float64(r.GroupsLeft) }, "%.0f")
	row("peak RSS MiB", func(r *Result) float64 { return r.PeakRSSMiB }, "%.0f")
	row("CPU s", func(r *Result) float64 { return r.CPUSeconds }, "%.1f")
	row("apiserver requests/pod", func(r *Result) float64 { return r.APIRequestsPerPod }, "%.2f")
	if rep.churned() {
		churn := func(name string, f func(*Churn) float64, format string) {
			row(name, func(r *Result) float64 {
				if r.Churn == nil {
					return 0
				}
				return f(r.Churn)
			}, format)
		}
		churn("churn s", func(c *Churn) float64 { return c.Seconds }, "%.0f")
		churn("  Deployment rolls", func(c *Churn) float64 { return float64(c.Rolls) }, "%.0f")
		churn("  roll wait s", func(c *Churn) float64 { return c.RollWaitSeconds }, "%.1f")
		churn("  random pod deletes", func(c *Churn) float64 { return float64(c.RandomDeletes) }, "%.0f")
		churn("  deletes skipped (backlog)", func(c *Churn) float64 { return float64(c.DeletesSkipped) }, "%.0f")
		churn("  pods created", func(c *Churn) float64 { return float64(c.PodsCreated) }, "%.0f")
		churn("  pods created/s", func(c *Churn) float64 { return c.CreatedPerSec }, "%.2f")
		churn("  pods deleted", func(c *Churn) float64 { return float64(c.PodsDeleted) }, "%.0f")
		churn("  pods deleted/s", func(c *Churn) float64 { return c.DeletedPerSec }, "%.2f")
		churn("  ECI calls/pod created", func(c *Churn) float64 { return sumValues(c.ECICallsPerPod) }, "%.2f")
		churn("  apiserver requests/pod created", func(c *Churn) float64 { return c.APIRequestsPerPod }, "%.2f")
		churn("settle (rollouts done) s", func(c *Churn) float64 { return c.SettleSeconds }, "%.1f")
		measured := func(n int) float64 {
			if n < 0 {
				return math.NaN()
			}
			return float64(n)
		}
		churn("groups orphaned at settle (no pod, or 2nd)", func(c *Churn) float64 { return measured(c.GroupsOrphaned) }, "%.0f")
		churn("  running pods without a group at settle", func(c *Churn) float64 { return measured(c.PodsWithoutGroup) }, "%.0f")
		churn(fmt.Sprintf("pods stuck (> %s)", o.StuckAfter), func(c *Churn) float64 { return float64(c.PodsStuck) }, "%.0f")
		churn("RSS at churn start MiB", func(c *Churn) float64 { return c.RSSStartMiB }, "%.0f")
		churn("RSS at churn end MiB", func(c *Churn) float64 { return c.RSSEndMiB }, "%.0f")
		churn("RSS peak in churn MiB", func(c *Churn) float64 { return c.RSSPeakMiB }, "%.0f")
		churn("RSS growth (end − start) MiB", func(c *Churn) float64 { return c.RSSGrowthMiB }, "%.1f")
		churn("RSS slope MiB/min", func(c *Churn) float64 { return c.RSSSlopeMiBPerMin }, "%.2f")
	}
	_ = tw.Flush()
	for _, t := range rep.Targets {
		for _, f := range t.Files {
			fmt.Fprintf(w, "%s record: %s\n", t.Target, f)
		}
		if c := t.Churn; c != nil {
			if len(c.ECICallsPerPod) > 0 {
				fmt.Fprintf(w, "%s ECI calls per pod created in the churn: %s\n", t.Target, formatMap(c.ECICallsPerPod, "%.2f"))
			}
			for _, s := range c.LeakSamples {
				fmt.Fprintf(w, "%s leak at settle: %s\n", t.Target, s)
			}
			for _, s := range c.StuckSample {
				fmt.Fprintf(w, "%s stuck pod: %s\n", t.Target, s)
			}
		}
		if len(t.ECICallsPerPod) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s ECI calls per pod: %s (throttled replies: %d)\n", t.Target, formatMap(t.ECICallsPerPod, "%.2f"), t.ECIThrottled)
		fmt.Fprintf(w, "%s steady-state ECI calls per second: %s\n", t.Target, formatMap(t.SteadyCallsPerSec, "%.2f"))
		for _, f := range t.Failed {
			fmt.Fprintf(w, "%s failure sample: %s\n", t.Target, f)
		}
	}
}

// churned reports whether a target ran the rollout workload's churn.
func (rep *Report) churned() bool {
	for _, t := range rep.Targets {
		if t.Churn != nil {
			return true
		}
	}
	return false
}

func sumValues(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

func formatMap(m map[string]float64, format string) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+fmt.Sprintf(format, m[k]))
	}
	return strings.Join(parts, " ")
}

// write stores results.json and running.png in dir, named by start time
// and also as latest-*.
func (rep *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stamp := rep.Started.Format("20060102-150405")
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	p, err := rep.plot()
	if err != nil {
		return err
	}
	var rss *plot.Plot
	if rep.churned() {
		if rss, err = rep.plotRSS(); err != nil {
			return err
		}
	}
	for _, name := range []string{stamp, "latest"} {
		if err := os.WriteFile(filepath.Join(dir, name+"-results.json"), b, 0o644); err != nil {
			return err
		}
		if err := p.Save(8*vg.Inch, 5*vg.Inch, filepath.Join(dir, name+"-running.png")); err != nil {
			return err
		}
		if rss != nil {
			if err := rss.Save(8*vg.Inch, 5*vg.Inch, filepath.Join(dir, name+"-rss.png")); err != nil {
				return err
			}
		}
	}
	return nil
}

// plotRSS draws each target's RSS over the rollout run, with the churn
// between the two vertical lines.
func (rep *Report) plotRSS() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("rollout: %d pods, %g pods/s replaced for %s: resident memory", rep.Options.Pods, rep.Options.ChurnRate, rep.Options.ChurnDuration)
	p.X.Label.Text = "seconds since the churn began"
	p.Y.Label.Text = "RSS MiB"
	p.Add(plotter.NewGrid())
	colors := []color.Color{color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}}
	var top float64
	for i, t := range rep.Targets {
		if t.Churn == nil || len(t.Churn.RSSSamples) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(t.Churn.RSSSamples))
		for j, pt := range t.Churn.RSSSamples {
			pts[j].X, pts[j].Y = pt.T, pt.MiB
			top = max(top, pt.MiB)
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		line.Color = colors[i%len(colors)]
		line.Width = vg.Points(2)
		p.Add(line)
		p.Legend.Add(t.Target, line)
	}
	for _, x := range []float64{0, rep.Options.ChurnDuration.Seconds()} {
		edge, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: top}})
		if err != nil {
			return nil, err
		}
		edge.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
		p.Add(edge)
	}
	p.Y.Min = 0
	p.Legend.Top = false
	p.Legend.Left = false
	return p, nil
}

func (rep *Report) plot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %d pods, pods running over time", rep.Options.Workload, rep.Options.Pods)
	p.X.Label.Text = "seconds since the first pod was created"
	p.Y.Label.Text = "pods running"
	p.Add(plotter.NewGrid())
	colors := []color.Color{color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}}
	for i, t := range rep.Targets {
		pts := make(plotter.XYs, len(t.Series))
		for j, pt := range t.Series {
			pts[j].X, pts[j].Y = pt.T, float64(pt.Running)
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		line.Color = colors[i%len(colors)]
		line.Width = vg.Points(2)
		p.Add(line)
		p.Legend.Add(t.Target, line)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	return p, nil
}
