package bench

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// runLabel marks every object of a run, so the watch sees only those.
const runLabel = "bench.ack-virtual-node.io/run"

// podTimes are the moments one pod's watch events arrived.
type podTimes struct {
	created, bound, running, succeeded, deleting, gone time.Time
	failed                                             string
	// name is namespace/name, to name a stuck pod.
	name string
}

// recorder timestamps pod transitions as the watch delivers them.
type recorder struct {
	mu   sync.Mutex
	pods map[types.UID]*podTimes
	// cleanup is when the workload asked to delete every pod left
	// (deletingAll); a pod whose deletion began before, and that never
	// ran, was replaced on purpose rather than failed.
	cleanup time.Time
	onRun   func(*corev1.Pod)
	running int
	done    int
	gone    int
}

func newRecorder() *recorder { return &recorder{pods: map[types.UID]*podTimes{}} }

func (r *recorder) observe(pod *corev1.Pod, deleted bool) {
	now := time.Now()
	r.mu.Lock()
	pt := r.pods[pod.UID]
	if pt == nil {
		pt = &podTimes{created: now, name: pod.Namespace + "/" + pod.Name}
		r.pods[pod.UID] = pt
	}
	firstRun := false
	if pod.Spec.NodeName != "" && pt.bound.IsZero() {
		pt.bound = now
	}
	switch pod.Status.Phase {
	case corev1.PodRunning:
		if pt.running.IsZero() {
			pt.running = now
			r.running++
			firstRun = true
		}
	case corev1.PodSucceeded:
		if pt.succeeded.IsZero() {
			pt.succeeded = now
			r.done++
		}
	case corev1.PodFailed:
		if pt.failed == "" {
			pt.failed = pod.Status.Reason + ": " + pod.Status.Message
		}
	}
	if pod.DeletionTimestamp != nil && pt.deleting.IsZero() {
		pt.deleting = now
	}
	if deleted && pt.gone.IsZero() {
		pt.gone = now
		r.gone++
	}
	onRun := r.onRun
	r.mu.Unlock()
	if firstRun && onRun != nil {
		onRun(pod)
	}
}

// deletingAll notes that the deletion of every pod not yet deleting nor
// gone was requested at now.
func (r *recorder) deletingAll(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanup = now
	for _, pt := range r.pods {
		if pt.deleting.IsZero() && pt.gone.IsZero() {
			pt.deleting = now
		}
	}
}

func (r *recorder) counts() (pods, running, done, gone int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pods), r.running, r.done, r.gone
}

// watch feeds the recorder from an informer on the run's pods until ctx
// ends; it returns once the informer has synced.
func (r *recorder) watch(ctx context.Context, cl *cluster, run string) {
	f := informers.NewSharedInformerFactoryWithOptions(cl.kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = runLabel + "=" + run
	}))
	inf := f.Core().V1().Pods().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.observe(o.(*corev1.Pod), false) },
		UpdateFunc: func(_, o any) { r.observe(o.(*corev1.Pod), false) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				r.observe(p, true)
			}
		},
	})
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
}

// runTarget drives the workload against one target and measures it.
func runTarget(ctx context.Context, cl *cluster, t target, opts Options) (*Result, error) {
	logf(opts.Log, "%s: starting", t.name())
	if err := t.start(ctx); err != nil {
		return nil, err
	}
	defer t.stop()
	if sim := t.cloud(); sim != nil {
		sim.ResetCalls()
	}
	run := t.name() + "-" + strconv.FormatInt(time.Now().Unix(), 36)
	namespaces, err := makeNamespaces(ctx, cl, run, opts.Namespaces)
	if err != nil {
		return nil, err
	}
	defer deleteNamespaces(cl, namespaces)

	wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	rec := newRecorder()
	rec.watch(wctx, cl, run)
	res := &Result{Target: t.name(), Workload: opts.Workload}
	var prof *profiler
	state := &rolloutState{}
	if vt, ok := t.(*vnodeTarget); ok {
		prof = newProfiler(vt.metricsAddr, opts.OutDir, run, opts.ProfileSeconds, opts.Log)
		if opts.Workload == WorkloadRollout {
			// The churn is what this workload measures: profile its
			// CPU, and the heap at its end, when a leak is largest.
			prof.cpuWhen(wctx, state.churning.Load)
			prof.heapWhen(wctx, state.churned.Load)
		} else {
			prof.cpuWhen(wctx, func() bool { n, _, _, _ := rec.counts(); return n > 0 })
			prof.heapWhen(wctx, func() bool { _, running, done, _ := rec.counts(); return running >= opts.Pods || done >= opts.Pods })
		}
	}
	var groupsGone map[string]time.Time
	switch opts.Workload {
	case WorkloadBurst:
		groupsGone, err = burst(wctx, cl, t, opts, run, namespaces, rec, res)
	case WorkloadJobs:
		groupsGone, err = jobs(wctx, cl, t, opts, run, namespaces, rec)
	case WorkloadChurn:
		groupsGone, err = churn(wctx, cl, t, opts, run, namespaces, rec)
	case WorkloadPaced:
		groupsGone, err = paced(wctx, cl, t, opts, run, namespaces, rec, res)
	case WorkloadRollout:
		groupsGone, err = rollout(wctx, cl, t, opts, run, namespaces, rec, res, state)
	}
	if err != nil {
		return nil, err
	}
	res.fill(rec, opts, groupsGone)
	if t.cloud() != nil {
		creates := cl.creates.snapshot()
		res.splitOverhead(rec, opts, creates)
		res.createRate(creates)
	}
	if prof != nil {
		prof.finish(ctx)
		res.Files = prof.files
		if m := prof.path("metrics.txt"); m != "" {
			if err := res.nodeQueue(m); err != nil {
				logf(opts.Log, "%s: node queue figures: %v", t.name(), err)
			}
		}
	}
	if res.PeakRSSMiB, res.CPUSeconds, err = procUsage(t.pid()); err != nil {
		return nil, err
	}
	if sim := t.cloud(); sim != nil {
		res.eciCalls(sim.Calls(), len(rec.pods))
		for _, g := range sim.Groups() {
			if tagOf(g.Tags, translate.TagClusterID) == "bench" {
				res.GroupsLeft++
			}
		}
	}
	// Batch audit mode flushes within a second or so.
	time.Sleep(3 * time.Second)
	byVerb, total, err := cl.auditCounts(t.user(), time.Time{}, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	res.APIRequests, res.APIRequestsByVerb = total, byVerb
	if len(rec.pods) > 0 {
		res.APIRequestsPerPod = float64(total) / float64(len(rec.pods))
	}
	if c := res.Churn; c != nil && !c.end.IsZero() {
		if _, c.APIRequests, err = cl.auditCounts(t.user(), c.start, c.end); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		if c.PodsCreated > 0 {
			c.APIRequestsPerPod = float64(c.APIRequests) / float64(c.PodsCreated)
		}
	}
	logf(opts.Log, "%s: done: %d pods, %d running, %d errors, %.1f pods/s", t.name(), res.Pods, res.Running, res.Errors, res.Throughput)
	return res, nil
}

func makeNamespaces(ctx context.Context, cl *cluster, run string, n int) ([]string, error) {
	var out []string
	for i := 0; i < n; i++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", run, i), Labels: map[string]string{runLabel: run}}}
		if _, err := cl.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return out, err
		}
		out = append(out, ns.Name)
	}
	for _, ns := range out {
		if err := cl.cp.WaitForNamespace(ctx, ns); err != nil {
			return out, err
		}
	}
	return out, nil
}

func deleteNamespaces(cl *cluster, namespaces []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ns := range namespaces {
		_ = cl.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	}
}

// podTemplate is the pod every workload runs: one small container, a
// service-account token like most production pods, placed on the target.
func podTemplate(t target, run string, restart corev1.RestartPolicy, command []string) corev1.PodTemplateSpec {
	spec := corev1.PodSpec{
		RestartPolicy:                 restart,
		TerminationGracePeriodSeconds: ptr.To[int64](0),
		Containers: []corev1.Container{{
			Name: "app", Image: "registry.example.com/bench/app:1", Command: command,
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi"),
			}},
		}},
	}
	t.placement(&spec)
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{runLabel: run, "app": "bench"}}, Spec: spec}
}

// split divides n pods over k buckets as evenly as possible.
func split(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// waitFor polls cond every 200ms, logging progress every 10s.
func waitFor(ctx context.Context, opts Options, what string, cond func() (bool, string)) error {
	last := time.Now()
	return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		ok, progress := cond()
		if !ok && time.Since(last) > 10*time.Second {
			logf(opts.Log, "  waiting for %s: %s", what, progress)
			last = time.Now()
		}
		return ok, nil
	})
}

func burst(ctx context.Context, cl *cluster, t target, opts Options, run string, namespaces []string, rec *recorder, res *Result) (map[string]time.Time, error) {
	tpl := podTemplate(t, run, corev1.RestartPolicyAlways, nil)
	if err := createDeployments(ctx, cl, t, opts, namespaces, tpl); err != nil {
		return nil, err
	}
	runningThenSteady(ctx, t, opts, rec, res)

	logf(opts.Log, "%s: scaling to zero", t.name())
	for _, ns := range namespaces {
		if _, err := cl.kube.AppsV1().Deployments(ns).Patch(ctx, "bench", types.MergePatchType,
			[]byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{}); err != nil {
			return nil, err
		}
	}
	return waitGone(ctx, cl, t, opts, rec)
}

// runningThenSteady waits until every pod runs, then counts the node's
// calls over the steady window.
func runningThenSteady(ctx context.Context, t target, opts Options, rec *recorder, res *Result) {
	err := waitFor(ctx, opts, "pods Running", func() (bool, string) {
		n, running, _, _ := rec.counts()
		return running >= opts.Pods, fmt.Sprintf("%d created, %d running", n, running)
	})
	if err != nil {
		logf(opts.Log, "%s: not every pod ran before the timeout: %v", t.name(), err)
	}
	res.groupsPerPod(t, rec)

	// Steady state: with nothing changing, status polling is all the
	// node does; count it over a window.
	if sim := t.cloud(); sim != nil && err == nil {
		before := sim.Calls()
		time.Sleep(opts.SteadyWindow)
		res.steadyCalls(before, sim.Calls(), opts.SteadyWindow)
	}
}

// paced creates the pods one at a time, opts.Rate a second, round-robin
// over the namespaces; the scheduler binds each as it comes, so the node
// sees pods bound at that rate. Once all run and the steady window is
// counted, they are deleted.
func paced(ctx context.Context, cl *cluster, t target, opts Options, run string, namespaces []string, rec *recorder, res *Result) (map[string]time.Time, error) {
	tpl := podTemplate(t, run, corev1.RestartPolicyAlways, nil)
	logf(opts.Log, "%s: creating %d pods at %g a second", t.name(), opts.Pods, opts.Rate)
	tick := time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var createErr error
	for i := 0; i < opts.Pods; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		case <-tick.C:
		}
		ns := namespaces[i%len(namespaces)]
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("paced-%d", i), Namespace: ns, Labels: tpl.Labels}, Spec: tpl.Spec}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				mu.Lock()
				createErr = fmt.Errorf("create pod %s/%s: %w", ns, pod.Name, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if createErr != nil {
		return nil, createErr
	}
	runningThenSteady(ctx, t, opts, rec, res)

	logf(opts.Log, "%s: deleting the pods", t.name())
	// Pods deleted with no grace period leave at once, and their watch
	// events may never show a deletion timestamp: the request's time is
	// when their deletion began.
	// The node may delete a group before waitGone first looks.
	groups := runGroups(t)
	rec.deletingAll(time.Now())
	for _, ns := range namespaces {
		if err := cl.kube.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: runLabel + "=" + run}); err != nil {
			return nil, err
		}
	}
	return waitGoneAfter(ctx, cl, t, opts, rec, groups)
}

// waitGone waits until every recorded pod is deleted and, for a target
// with a cloud, until the run's container groups are gone, noting when
// each group disappeared.
func waitGone(ctx context.Context, cl *cluster, t target, opts Options, rec *recorder) (map[string]time.Time, error) {
	return waitGoneAfter(ctx, cl, t, opts, rec, map[string]bool{})
}

// runGroups returns the pod UIDs of the run's container groups now.
func runGroups(t target) map[string]bool {
	out := map[string]bool{}
	if sim := t.cloud(); sim != nil {
		for _, grp := range sim.Groups() {
			if uid := tagOf(grp.Tags, translate.TagPodUID); uid != "" && tagOf(grp.Tags, translate.TagClusterID) == "bench" {
				out[uid] = true
			}
		}
	}
	return out
}

// waitGoneAfter is waitGone for deletions that may finish before its first
// look: seen holds the pod UIDs whose groups existed before they began.
func waitGoneAfter(ctx context.Context, cl *cluster, t target, opts Options, rec *recorder, seen map[string]bool) (map[string]time.Time, error) {
	var gone map[string]time.Time
	sim := t.cloud()
	if sim != nil {
		gone = map[string]time.Time{}
	}
	err := waitFor(ctx, opts, "pods and groups gone", func() (bool, string) {
		n, _, _, g := rec.counts()
		left := 0
		if sim != nil {
			now := time.Now()
			present := map[string]bool{}
			for _, grp := range sim.Groups() {
				if uid := tagOf(grp.Tags, translate.TagPodUID); uid != "" && tagOf(grp.Tags, translate.TagClusterID) == "bench" {
					present[uid] = true
					seen[uid] = true
					left++
				}
			}
			for uid := range seen {
				if !present[uid] {
					if _, ok := gone[uid]; !ok {
						gone[uid] = now
					}
				}
			}
		}
		return g >= n && left == 0, fmt.Sprintf("%d of %d pods gone, %d groups left", g, n, left)
	})
	if err != nil {
		logf(opts.Log, "%s: deletion did not finish before the timeout: %v", t.name(), err)
	}
	return gone, nil
}

func jobs(ctx context.Context, cl *cluster, t target, opts Options, run string, namespaces []string, rec *recorder) (map[string]time.Time, error) {
	tpl := podTemplate(t, run, corev1.RestartPolicyNever, []string{"sh", "-c", "exit 0"})
	shares := split(opts.Pods, len(namespaces))
	logf(opts.Log, "%s: fanning out %d Job pods in %d Jobs", t.name(), opts.Pods, len(namespaces))
	for i, ns := range namespaces {
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: ns},
			Spec: batchv1.JobSpec{
				Completions: ptr.To(int32(shares[i])), Parallelism: ptr.To(int32(shares[i])),
				BackoffLimit: ptr.To(int32(0)), Template: tpl,
			},
		}
		if _, err := cl.kube.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	err := waitFor(ctx, opts, "Job pods Succeeded", func() (bool, string) {
		n, _, done, _ := rec.counts()
		return done >= opts.Pods, fmt.Sprintf("%d created, %d succeeded", n, done)
	})
	if err != nil {
		logf(opts.Log, "%s: not every Job pod succeeded before the timeout: %v", t.name(), err)
	}
	// A completed pod keeps its group (as a kubelet keeps its stopped
	// containers) until the pod is deleted: delete the Jobs and their
	// pods, and wait for the groups to go too.
	logf(opts.Log, "%s: deleting the Jobs", t.name())
	bg := metav1.DeletePropagationBackground
	for _, ns := range namespaces {
		if err := cl.kube.BatchV1().Jobs(ns).Delete(ctx, "bench", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
			return nil, err
		}
	}
	return waitGone(ctx, cl, t, opts, rec)
}

func churn(ctx context.Context, cl *cluster, t target, opts Options, run string, namespaces []string, rec *recorder) (map[string]time.Time, error) {
	tpl := podTemplate(t, run, corev1.RestartPolicyAlways, nil)
	// Each pod is deleted as soon as it runs.
	rec.onRun = func(p *corev1.Pod) {
		go func() {
			_ = cl.kube.CoreV1().Pods(p.Namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{})
		}()
	}
	total := int(opts.ChurnRate * opts.ChurnDuration.Seconds())
	logf(opts.Log, "%s: churning %.0f pods/s for %s (%d pods)", t.name(), opts.ChurnRate, opts.ChurnDuration, total)
	tick := time.NewTicker(time.Duration(float64(time.Second) / opts.ChurnRate))
	defer tick.Stop()
	for i := 0; i < total; i++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		ns := namespaces[i%len(namespaces)]
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%d", i), Namespace: ns, Labels: tpl.Labels}, Spec: tpl.Spec}
		go func() { _, _ = cl.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}) }()
	}
	return waitGone(ctx, cl, t, opts, rec)
}

func tagOf(tags []simulator.Tag, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// sortedDurations returns ds sorted ascending.
func sortedDurations(ds []time.Duration) []time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}
