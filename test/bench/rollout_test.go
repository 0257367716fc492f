package bench

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// TestSummariseRSS: a flat series reads 0 MiB/min, a steady leak reads its
// rate; samples outside the churn are kept for the record but left out of
// the figures.
func TestSummariseRSS(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	series := func(f func(min float64) float64) []rssSample {
		var out []rssSample
		for s := -30; s <= 630; s += 5 { // the ramp, ten minutes of churn, the settle
			out = append(out, rssSample{start.Add(time.Duration(s) * time.Second), f(float64(s) / 60)})
		}
		return out
	}
	for _, tc := range []struct {
		name                      string
		f                         func(float64) float64
		start, end, peak, slopeMB float64
	}{
		// Alternating ±2 MiB around 200 (GC sawtooth), and 999 MiB
		// outside the window that must not count.
		{"flat", func(m float64) float64 {
			if m < 0 || m > 10 {
				return 999
			}
			if int(m*12)%2 == 0 {
				return 202
			}
			return 198
		}, 202, 202, 202, 0},
		{"leak", func(m float64) float64 { return 100 + 3*m }, 100, 130, 130, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Churn{start: start, end: start.Add(10 * time.Minute)}
			c.summariseRSS(series(tc.f))
			if c.RSSStartMiB != tc.start || c.RSSEndMiB != tc.end || c.RSSPeakMiB != tc.peak {
				t.Errorf("start %v end %v peak %v, want %v %v %v", c.RSSStartMiB, c.RSSEndMiB, c.RSSPeakMiB, tc.start, tc.end, tc.peak)
			}
			if math.Abs(c.RSSSlopeMiBPerMin-tc.slopeMB) > 0.05 {
				t.Errorf("slope %v MiB/min, want %v", c.RSSSlopeMiBPerMin, tc.slopeMB)
			}
			if c.RSSGrowthMiB != tc.end-tc.start || len(c.RSSSamples) != 133 || c.RSSSamples[0].T != -30 {
				t.Errorf("growth %v, %d samples from t=%v", c.RSSGrowthMiB, len(c.RSSSamples), c.RSSSamples[0].T)
			}
		})
	}
	c := &Churn{start: start, end: start.Add(time.Minute)}
	c.summariseRSS(nil)
	if c.RSSSlopeMiBPerMin != 0 || c.RSSPeakMiB != 0 {
		t.Errorf("no samples: %+v", c)
	}
}

func TestProcRSS(t *testing.T) {
	rss, err := procRSS(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if rss <= 0 {
		t.Errorf("procRSS = %v MiB", rss)
	}
	s := sampleRSS(os.Getpid(), 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	if got := s.finish(); len(got) < 2 {
		t.Errorf("%d samples in 100 ms at 10 ms", len(got))
	}
	if rssEvery(10*time.Minute) != 5*time.Second || rssEvery(20*time.Second) != time.Second || rssEvery(60*time.Second) != 3*time.Second {
		t.Errorf("rssEvery: %v %v %v", rssEvery(10*time.Minute), rssEvery(20*time.Second), rssEvery(60*time.Second))
	}
}

// TestStuckPods: a pod is stuck if, bound, it neither ran nor left within
// the limit; pods that ran or were deleted in time, or never bound, are not.
func TestStuckPods(t *testing.T) {
	now := time.Now()
	rec := newRecorder()
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	rec.pods["ran"] = &podTimes{name: "a/ran", bound: at(10 * time.Minute), running: at(9 * time.Minute)}
	rec.pods["deleted"] = &podTimes{name: "a/deleted", bound: at(10 * time.Minute), deleting: at(9 * time.Minute)}
	rec.pods["unbound"] = &podTimes{name: "a/unbound", created: at(10 * time.Minute)}
	rec.pods["young"] = &podTimes{name: "a/young", bound: at(time.Minute)}
	rec.pods["waiting"] = &podTimes{name: "a/waiting", bound: at(3 * time.Minute)}
	rec.pods["late"] = &podTimes{name: "a/late", bound: at(10 * time.Minute), running: at(5 * time.Minute)}
	rec.pods["gone"] = &podTimes{name: "a/gone", bound: at(10 * time.Minute), gone: at(7 * time.Minute)}
	got := stuckPods(rec, 2*time.Minute, now)
	if len(got) != 3 || !strings.HasPrefix(got[0], "a/gone (") || !strings.HasPrefix(got[1], "a/late (") || !strings.HasPrefix(got[2], "a/waiting (") {
		t.Fatalf("stuck %q, want a/gone, a/late, a/waiting", got)
	}
	if !strings.Contains(got[1], "ran after 5m0s") || !strings.Contains(got[2], "still waiting") || !strings.Contains(got[0], "without running") {
		t.Errorf("fates: %q", got)
	}
}

// TestRandomRunning picks only Running pods not yet leaving, each in time,
// and marks the pick as deleting so it is not picked twice.
func TestRandomRunning(t *testing.T) {
	now := time.Now()
	rec := newRecorder()
	for i := 0; i < 5; i++ {
		rec.pods[typesUID(i)] = &podTimes{name: "ns/run-" + string(rune('a'+i)), running: now}
	}
	rec.pods["pending"] = &podTimes{name: "ns/pending", created: now}
	rec.pods["leaving"] = &podTimes{name: "ns/leaving", running: now, deleting: now}
	rng := rand.New(rand.NewPCG(1, 2))
	picked := map[string]bool{}
	for i := 0; i < 5; i++ {
		ns, name, ok := rec.randomRunning(rng, now)
		if !ok || ns != "ns" || !strings.HasPrefix(name, "run-") || picked[name] {
			t.Fatalf("pick %d: %s/%s %v (picked before: %v)", i, ns, name, ok, picked)
		}
		picked[name] = true
	}
	if _, _, ok := rec.randomRunning(rng, now); ok {
		t.Error("picked a pod with none left Running")
	}
	if w := rec.waiting(); w != 1 {
		t.Errorf("waiting %d, want 1 (ns/pending)", w)
	}
}

func TestChurnCounts(t *testing.T) {
	from := time.Now()
	to := from.Add(time.Minute)
	rec := newRecorder()
	rec.pods["before"] = &podTimes{created: from.Add(-time.Second), deleting: from.Add(time.Second)}
	rec.pods["in"] = &podTimes{created: from.Add(time.Second), gone: from.Add(2 * time.Second)}
	rec.pods["after"] = &podTimes{created: to.Add(time.Second), deleting: to.Add(time.Second)}
	if c, d := rec.churnCounts(from, to); c != 1 || d != 2 {
		t.Errorf("created %d, deleted %d; want 1, 2", c, d)
	}
}

func TestRolledOut(t *testing.T) {
	d := func(gen, observed int64, updated, replicas, available int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(int32(10))},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, Replicas: replicas, AvailableReplicas: available},
		}
	}
	for _, tc := range []struct {
		name string
		d    *appsv1.Deployment
		want bool
	}{
		{"done", d(3, 3, 10, 10, 10), true},
		{"not observed", d(3, 2, 10, 10, 10), false},
		{"old pods left", d(3, 3, 10, 12, 10), false},
		{"new not all updated", d(3, 3, 8, 10, 10), false},
		{"not available", d(3, 3, 10, 10, 9), false},
	} {
		if got := rolledOut(tc.d); got != tc.want {
			t.Errorf("%s: rolledOut %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFillReplaced: a pod deleted before it ran is an error only if its
// deletion came with the clean-up, not when the workload replaced it.
func TestFillReplaced(t *testing.T) {
	base := time.Now()
	rec := newRecorder()
	rec.pods["ran"] = &podTimes{created: base, bound: base, running: base.Add(time.Second)}
	rec.pods["replaced"] = &podTimes{created: base, bound: base, gone: base.Add(time.Second)}
	rec.pods["never"] = &podTimes{created: base, bound: base}
	rec.deletingAll(base.Add(time.Minute))
	r := &Result{}
	r.fill(rec, Options{Workload: WorkloadRollout}, nil)
	if r.Pods != 3 || r.Running != 1 || r.Errors != 1 {
		t.Errorf("pods %d, running %d, errors %d; want 3, 1, 1 (only the pod that never ran nor was replaced)", r.Pods, r.Running, r.Errors)
	}
}

func TestRolloutOptionsAndTable(t *testing.T) {
	o := Options{Workload: WorkloadRollout, BinDir: t.TempDir()}
	o.Defaults()
	if o.ChurnRate != 10 || o.ChurnDuration != 10*time.Minute || o.StuckAfter != 2*time.Minute {
		t.Errorf("rollout defaults: rate %v, duration %v, stuck after %v", o.ChurnRate, o.ChurnDuration, o.StuckAfter)
	}
	o.Pods, o.Namespaces = 10000, 20
	if c := o.podCapacity(); c < 10000+125 {
		t.Errorf("capacity %d leaves no room for a Deployment's surge (125)", c)
	}
	c := Options{Workload: WorkloadChurn}
	c.Defaults()
	if c.ChurnRate != 20 || c.ChurnDuration != time.Minute {
		t.Errorf("churn defaults changed: %v, %v", c.ChurnRate, c.ChurnDuration)
	}
	o.StuckAfter = -time.Second
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "-stuck-after") {
		t.Errorf("negative -stuck-after: %v", err)
	}

	r := &Result{Target: "virtual-node", Churn: &Churn{Seconds: 600, Rolls: 19, GroupsOrphaned: 2, PodsStuck: 1,
		StuckSample: []string{"ns/p (bound 05:00:00, still waiting)"}, LeakSamples: []string{"group eci-1 of gone pod ns/q (Running)"},
		RSSSlopeMiBPerMin: 0.25, ECICallsPerPod: map[string]float64{"CreateContainerGroup": 1}}}
	var buf bytes.Buffer
	(&Report{Options: o, Targets: []*Result{r}}).WriteTable(&buf)
	for _, want := range []string{"groups orphaned at settle", "RSS slope MiB/min", "0.25", "stuck pod: ns/p", "leak at settle: group eci-1", "pods stuck (> -1s)", "Deployment rolls"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	r.Churn.RSSSamples = []RSSPoint{{T: -5, MiB: 90}, {T: 0, MiB: 100}, {T: 300, MiB: 104}, {T: 600, MiB: 101}}
	dir := t.TempDir()
	if err := (&Report{Options: o, Targets: []*Result{r}}).write(dir); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir + "/latest-rss.png"); err != nil || st.Size() == 0 {
		t.Errorf("latest-rss.png: %v", err)
	}
	kw := &Result{Target: "kwok", Churn: &Churn{Seconds: 600, GroupsOrphaned: -1, PodsWithoutGroup: -1}}
	var both bytes.Buffer
	(&Report{Options: o, Targets: []*Result{r, kw}}).WriteTable(&both)
	for _, line := range strings.Split(both.String(), "\n") {
		if f := strings.Fields(line); strings.Contains(line, "groups orphaned at settle") && strings.Join(f[len(f)-3:], " ") != "2 - -" {
			t.Errorf("kwok's orphaned groups are not measured, want '-' and no ratio: %q", line)
		}
	}
	var plain bytes.Buffer
	(&Report{Targets: []*Result{{Target: "virtual-node"}}}).WriteTable(&plain)
	if strings.Contains(plain.String(), "RSS slope") {
		t.Error("a run without churn prints churn rows")
	}
}

// TestCompareGroups: a group whose pod is gone is orphaned, a Running pod
// without a group is lost; other clusters' groups, pending pods and pods
// leaving are neither.
func TestCompareGroups(t *testing.T) {
	group := func(id, cluster, uid, name string) simulator.ContainerGroup {
		return simulator.ContainerGroup{ContainerGroupId: id, Status: "Running", Tags: []simulator.Tag{
			{Key: translate.TagClusterID, Value: cluster}, {Key: translate.TagPodUID, Value: uid},
			{Key: translate.TagPodNamespace, Value: "ns"}, {Key: translate.TagPodName, Value: name},
		}}
	}
	pod := func(uid, name string, phase corev1.PodPhase, leaving bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Namespace: "ns", Name: name}, Status: corev1.PodStatus{Phase: phase}}
		if leaving {
			p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		}
		return p
	}
	groups := []simulator.ContainerGroup{
		group("eci-1", "bench", "u1", "a"),
		group("eci-2", "bench", "u2", "gone"),
		group("eci-3", "other", "u3", "theirs"),
		group("eci-4", "bench", "u1", "a"),
	}
	pods := []corev1.Pod{
		pod("u1", "a", corev1.PodRunning, false),
		pod("u4", "lost", corev1.PodRunning, false),
		pod("u5", "pending", corev1.PodPending, false),
		pod("u6", "leaving", corev1.PodRunning, true),
	}
	orphaned, lost, samples := compareGroups(groups, pods)
	if orphaned != 2 || lost != 1 {
		t.Fatalf("orphaned %d, lost %d; want 2 (a gone pod's, a second one), 1 (%q)", orphaned, lost, samples)
	}
	if len(samples) != 3 || !strings.Contains(samples[0], "eci-2 of gone pod ns/gone") || !strings.Contains(samples[1], "eci-4 beyond the first of pod ns/a") || !strings.Contains(samples[2], "ns/lost") {
		t.Errorf("samples %q", samples)
	}
	if o, l, s := compareGroups(groups[:1], pods[:1]); o != 0 || l != 0 || len(s) != 0 {
		t.Errorf("matching groups and pods: %d orphaned, %d lost, %q", o, l, s)
	}
}
