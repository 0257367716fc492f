package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		n, k int
		want []int
	}{
		{10, 3, []int{4, 3, 3}},
		{3000, 10, []int{300, 300, 300, 300, 300, 300, 300, 300, 300, 300}},
		{1, 1, []int{1}},
		{5, 5, []int{1, 1, 1, 1, 1}},
	} {
		got := split(tc.n, tc.k)
		sum := 0
		for i := range got {
			sum += got[i]
			if got[i] != tc.want[i] {
				t.Errorf("split(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
				break
			}
		}
		if sum != tc.n {
			t.Errorf("split(%d, %d) sums to %d", tc.n, tc.k, sum)
		}
	}
}

func TestDist(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Second)
	}
	d := dist(ds)
	if d.N != 100 || d.P50 != 50 || d.P90 != 90 || d.P99 != 99 || d.Max != 100 || d.Mean != 50.5 {
		t.Errorf("dist = %+v", d)
	}
	if (dist(nil) != Dist{}) {
		t.Error("dist(nil) not zero")
	}
	if d := dist([]time.Duration{3 * time.Second}); d.P50 != 3 || d.P99 != 3 {
		t.Errorf("single value: %+v", d)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"virtual-node", "kwok", "kwok-stages.yaml"} {
		if err := os.WriteFile(dir+"/"+name, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string // empty: valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"workload", func(o *Options) { o.Workload = "soak" }, "-workload"},
		{"namespaces", func(o *Options) { o.Pods, o.Namespaces = 5, 10 }, "-namespaces"},
		{"quota", func(o *Options) { o.QuotaScale = -1 }, "-quota-scale"},
		{"binary", func(o *Options) { o.BinDir = t.TempDir() }, "make build"},
		{"vnode env", func(o *Options) { o.VnodeEnv = []string{"KUBE_API_QPS"} }, "-vnode-env"},
		{"vnode env ok", func(o *Options) { o.VnodeEnv = []string{"KUBE_API_QPS=300"} }, ""},
		{"profile", func(o *Options) { o.ProfileSeconds = -1 }, "-profile-seconds"},
		{"paced", func(o *Options) { o.Workload, o.Rate = WorkloadPaced, 40 }, ""},
		{"rate", func(o *Options) { o.Workload, o.Rate = WorkloadPaced, -1 }, "-rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{BinDir: dir, Baseline: true}
			tc.edit(&o)
			o.Defaults()
			err := o.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestProcUsage(t *testing.T) {
	rss, cpu, err := procUsage(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if rss <= 0 || cpu < 0 {
		t.Errorf("procUsage = %v MiB, %v s", rss, cpu)
	}
}

func TestFillAndTable(t *testing.T) {
	rec := newRecorder()
	base := time.Now()
	for i := 0; i < 10; i++ {
		rec.pods[typesUID(i)] = &podTimes{
			created: base, bound: base.Add(time.Second),
			running: base.Add(time.Duration(2+i) * time.Second),
		}
	}
	rec.pods["never"] = &podTimes{created: base}
	r := &Result{Target: "virtual-node"}
	r.fill(rec, Options{Workload: WorkloadBurst, SimLatency: time.Second}, nil)
	if r.Pods != 11 || r.Running != 10 || r.Errors != 1 {
		t.Errorf("counts %d/%d/%d, want 11/10/1", r.Pods, r.Running, r.Errors)
	}
	if r.Elapsed != 11 || r.BoundToRunning.Max != 10 || r.Overhead.Max != 9 {
		t.Errorf("elapsed %v, bound→running max %v, overhead max %v", r.Elapsed, r.BoundToRunning.Max, r.Overhead.Max)
	}
	if last := r.Series[len(r.Series)-1]; last.Running != 10 || last.T != 11 {
		t.Errorf("last point %+v", last)
	}
	var buf bytes.Buffer
	(&Report{Targets: []*Result{r, {Target: "kwok", Throughput: r.Throughput * 2}}}).WriteTable(&buf)
	if !strings.Contains(buf.String(), "vnode/kwok") || !strings.Contains(buf.String(), "0.50") {
		t.Errorf("table lacks the ratio:\n%s", buf.String())
	}
}

func typesUID(i int) types.UID { return types.UID(strings.Repeat("u", i+1)) }

// TestSplitOverhead: bound→Running splits where the first create reached
// the cloud; pods without one (kwok, never created) are left out.
func TestSplitOverhead(t *testing.T) {
	rec := newRecorder()
	base := time.Now()
	creates := map[string]time.Time{}
	for i := 0; i < 10; i++ {
		uid := typesUID(i)
		rec.pods[uid] = &podTimes{created: base, bound: base, running: base.Add(time.Duration(3+i) * time.Second)}
		creates[string(uid)] = base.Add(time.Duration(i) * time.Second) // queue grows, the cloud part stays 3 s
	}
	rec.pods["no-create"] = &podTimes{created: base, bound: base, running: base.Add(time.Second)}
	r := &Result{}
	r.splitOverhead(rec, Options{SimLatency: time.Second}, creates)
	if r.BoundToCreateSent.N != 10 || r.BoundToCreateSent.Max != 9 || r.BoundToCreateSent.P50 != 4 {
		t.Errorf("bound→create sent %+v, want 10 pods, p50 4 s, max 9 s", r.BoundToCreateSent)
	}
	if r.CreateSentToRunning.N != 10 || r.CreateSentToRunning.Max != 2 || r.CreateSentToRunning.P50 != 2 {
		t.Errorf("create sent→running %+v, want 10 pods at 3 s minus the 1 s simulator latency", r.CreateSentToRunning)
	}
}

// TestNodeQueue reads the node's queue and create histograms from its
// Prometheus text.
func TestNodeQueue(t *testing.T) {
	file := t.TempDir() + "/metrics.txt"
	text := `# HELP vnode_pod_sync_delay_seconds From a pod's binding ...
# TYPE vnode_pod_sync_delay_seconds histogram
vnode_pod_sync_delay_seconds_bucket{node="vk",le="0.05"} 50
vnode_pod_sync_delay_seconds_bucket{node="vk",le="0.1"} 90
vnode_pod_sync_delay_seconds_bucket{node="vk",le="0.25"} 98
vnode_pod_sync_delay_seconds_bucket{node="vk",le="0.5"} 99
vnode_pod_sync_delay_seconds_bucket{node="vk",le="+Inf"} 100
vnode_pod_sync_delay_seconds_sum{node="vk"} 8
vnode_pod_sync_delay_seconds_count{node="vk"} 100
vnode_pod_create_duration_seconds_sum{node="vk"} 30
vnode_pod_create_duration_seconds_count{node="vk"} 100
`
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := r.nodeQueue(file); err != nil {
		t.Fatal(err)
	}
	if r.NodeQueueMean != 0.08 || r.NodeQueueP99Bucket != 0.5 || r.NodeCreateMean != 0.3 {
		t.Errorf("queue mean %v, p99 bucket %v, create mean %v; want 0.08, 0.5, 0.3", r.NodeQueueMean, r.NodeQueueP99Bucket, r.NodeCreateMean)
	}
	if err := (&Result{}).nodeQueue(t.TempDir() + "/none"); err == nil {
		t.Error("no metrics file: no error")
	}
	// Past the last finite bucket: that bound, flagged, never +Inf
	// (which JSON cannot hold).
	beyond := strings.ReplaceAll(text, `le="0.5"} 99`, `le="0.5"} 98`)
	if err := os.WriteFile(file, []byte(beyond), 0o644); err != nil {
		t.Fatal(err)
	}
	var b Result
	if err := b.nodeQueue(file); err != nil {
		t.Fatal(err)
	}
	if b.NodeQueueP99Bucket != 0.5 || !b.NodeQueueP99Beyond {
		t.Errorf("p99 beyond the last bucket: %v (beyond %v), want 0.5 flagged", b.NodeQueueP99Bucket, b.NodeQueueP99Beyond)
	}
	if _, err := json.Marshal(b); err != nil {
		t.Errorf("result not encodable: %v", err)
	}
}

// TestCreateRate: the rate from the first create to the last, and the
// fewest creates in any 30 s window between them.
func TestCreateRate(t *testing.T) {
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	creates := map[string]time.Time{}
	add := func(from time.Duration, n int, every time.Duration) {
		for i := range n {
			creates[fmt.Sprintf("p%d", len(creates))] = base.Add(from + time.Duration(i)*every)
		}
	}
	// 20/s for 60 s, nothing for 10 s (a replica killed), 20/s for 60 s.
	add(0, 1200, 50*time.Millisecond)
	add(70*time.Second, 1200, 50*time.Millisecond)
	var r Result
	r.createRate(creates)
	if want := 2399.0 / (129.95); math.Abs(r.CreateRate-want) > 0.01 {
		t.Errorf("create rate %.3f/s, want %.3f", r.CreateRate, want)
	}
	// The worst 30 s window holds the 10 s gap: 20 s of creates.
	if want := 400.0 / 30; math.Abs(r.CreateRateLowest30s-want) > 0.05 {
		t.Errorf("lowest 30 s window %.3f/s, want %.3f", r.CreateRateLowest30s, want)
	}
	var short Result
	short.createRate(map[string]time.Time{"a": base, "b": base.Add(time.Second)})
	if short.CreateRate != 1 || short.CreateRateLowest30s != 0 {
		t.Errorf("two creates 1 s apart: %+v, want rate 1 and no 30 s window", short)
	}
}
