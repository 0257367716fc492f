package ownership

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// shared is the one real control plane of this package's tests, started by
// the first test that needs it and stopped by TestMain.
var shared controlplane.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// Test timings: short, with the renew deadline well below the Lease
// duration so a cut-off replica stops before anyone may take over.
const (
	testLease = 4 * time.Second
	testRenew = 2 * time.Second
	testRetry = 300 * time.Millisecond
)

// tracker stands in for the virtual nodes: it records which replica runs
// which node and fails the test if two ever run one node at once.
type tracker struct {
	t       testing.TB
	mu      sync.Mutex
	running map[string]string // node -> replica
	starts  map[string]int    // node -> times started
	fail    map[string]string // node -> replica on which Run fails
}

func newTracker(t testing.TB) *tracker {
	return &tracker{t: t, running: map[string]string{}, starts: map[string]int{}, fail: map[string]string{}}
}

func (tr *tracker) run(id string) func(context.Context, string) error {
	return func(ctx context.Context, name string) error {
		tr.mu.Lock()
		if o := tr.running[name]; o != "" {
			tr.t.Errorf("node %s started on %s while %s runs it", name, id, o)
		}
		if tr.fail[name] == id {
			tr.mu.Unlock()
			return errors.New("cannot start here")
		}
		tr.running[name] = id
		tr.starts[name]++
		tr.mu.Unlock()
		<-ctx.Done()
		// Stopping takes a moment, like a real node's controllers.
		time.Sleep(50 * time.Millisecond)
		tr.mu.Lock()
		if tr.running[name] == id {
			delete(tr.running, name)
		}
		tr.mu.Unlock()
		return nil
	}
}

// perReplica counts running nodes by replica.
func (tr *tracker) perReplica() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{}
	for _, r := range tr.running {
		out[r]++
	}
	return out
}

func (tr *tracker) owner(name string) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.running[name]
}

// cuttable is a client whose connection to the apiserver can be cut, as a
// network partition would.
type cuttable struct {
	kube kubernetes.Interface
	cut  atomic.Bool
}

func newCuttable(t testing.TB, cp *controlplane.ControlPlane) *cuttable {
	c := &cuttable{}
	cfg := cp.RESTConfig()
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return controlplane.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if c.cut.Load() {
				return nil, errors.New("network cut by the test")
			}
			return rt.RoundTrip(r)
		})
	})
	cfg.Timeout = 5 * time.Second
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.kube = kube
	return c
}

// replica runs one manager until stopped or the test ends.
type replica struct {
	id      string
	client  *cuttable
	metrics *Metrics
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
}

func startReplica(t *testing.T, cp *controlplane.ControlPlane, ns, id string, names []string, tr *tracker) *replica {
	t.Helper()
	return startReplicaTimed(t, cp, ns, id, names, tr, testLease, testRenew, testRetry)
}

func startReplicaTimed(t testing.TB, cp *controlplane.ControlPlane, ns, id string, names []string, tr *tracker, lease, renew, retry time.Duration) *replica {
	t.Helper()
	return startReplicaWith(t, cp, ns, id, names, tr, lease, renew, retry, nil)
}

// startReplicaWith starts a replica whose quota share goes to share (nil:
// not sharing).
func startReplicaWith(t testing.TB, cp *controlplane.ControlPlane, ns, id string, names []string, tr *tracker, lease, renew, retry time.Duration, share func(float64)) *replica {
	t.Helper()
	r := &replica{id: id, client: newCuttable(t, cp), done: make(chan error, 1), metrics: NewMetrics(nil)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- Run(ctx, Options{
			Kube: r.client.kube, Namespace: ns, Identity: id, Names: names,
			LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry,
			Run: tr.run(id), Share: share, Metrics: r.metrics,
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *replica) stop(t testing.TB) {
	t.Helper()
	r.once.Do(func() {
		r.client.cut.Store(false)
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("replica %s: %v", r.id, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("replica %s did not stop within 20s", r.id)
		}
	})
}

func nodeNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

func holder(t *testing.T, kube kubernetes.Interface, ns, node string) string {
	t.Helper()
	l, err := kube.CoordinationV1().Leases(ns).Get(context.Background(), NodeLeaseName(node), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func TestLeaseNames(t *testing.T) {
	long := strings.Repeat("a", 250)
	tests := []struct {
		name, got, want string
	}{
		{"node", NodeLeaseName("virtual-node-eci-0"), "ack-virtual-node-virtual-node-eci-0"},
		{"replica", ReplicaLeaseName("ack-virtual-node-controller-7d9f8-x2x4k"), "ack-virtual-node-replica-ack-virtual-node-controller-7d9f8-x2x4k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	for _, in := range []string{long, "My_Host", long + "b"} {
		n := NodeLeaseName(in)
		if len(n) > 253 || strings.ToLower(n) != n || strings.ContainsAny(n, "_") || strings.HasSuffix(n, "-") {
			t.Errorf("NodeLeaseName(%q) = %q is not a valid name", in, n)
		}
	}
	if NodeLeaseName(long) == NodeLeaseName(long+"b") {
		t.Error("two long names map to one Lease")
	}
	if SetID([]string{"a", "b"}) != SetID([]string{"b", "a"}) || SetID([]string{"a"}) == SetID([]string{"a", "b"}) {
		t.Error("SetID must depend on the set of names only")
	}
}

// TestSpread: replicas that start together share the nodes evenly.
func TestSpread(t *testing.T) {
	cp := shared.Get(t)
	ns := controlplane.TestNamespace(t, cp.Clientset(), "ownership-test")
	names := nodeNames("spread", 6)
	tr := newTracker(t)
	for _, id := range []string{"r0", "r1", "r2"} {
		startReplica(t, cp, ns, id, names, tr)
	}
	waitFor(t, "two nodes on each of three replicas", 60*time.Second, func() bool {
		p := tr.perReplica()
		return p["r0"] == 2 && p["r1"] == 2 && p["r2"] == 2
	})
}

// TestLateReplicaGetsItsShare: a replica alone runs every node; a second
// one joins and gets its fair share handed over.
func TestLateReplicaGetsItsShare(t *testing.T) {
	cp := shared.Get(t)
	ns := controlplane.TestNamespace(t, cp.Clientset(), "ownership-test")
	names := nodeNames("late", 4)
	tr := newTracker(t)
	startReplica(t, cp, ns, "first", names, tr)
	waitFor(t, "the first replica runs all four nodes", 30*time.Second, func() bool { return tr.perReplica()["first"] == 4 })
	startReplica(t, cp, ns, "second", names, tr)
	waitFor(t, "two nodes on each replica", 60*time.Second, func() bool {
		p := tr.perReplica()
		return p["first"] == 2 && p["second"] == 2
	})
}

// TestPartitionedReplica: a replica cut off from the apiserver stops its
// nodes before the other takes them (never two owners), and gets its share
// back once it can reach the apiserver again.
func TestPartitionedReplica(t *testing.T) {
	cp := shared.Get(t)
	kube := cp.Clientset()
	ns := controlplane.TestNamespace(t, kube, "ownership-test")
	names := nodeNames("part", 2)
	tr := newTracker(t)
	a := startReplica(t, cp, ns, "a", names, tr)
	startReplica(t, cp, ns, "b", names, tr)
	waitFor(t, "one node on each replica", 60*time.Second, func() bool {
		p := tr.perReplica()
		return p["a"] == 1 && p["b"] == 1
	})
	var aNode string
	for _, n := range names {
		if tr.owner(n) == "a" {
			aNode = n
		}
	}
	a.client.cut.Store(true)
	waitFor(t, "b runs both nodes", 60*time.Second, func() bool { return tr.perReplica()["b"] == 2 })
	if h := holder(t, kube, ns, aNode); h != "b" {
		t.Errorf("Lease of %s held by %q, want b", aNode, h)
	}
	a.client.cut.Store(false)
	waitFor(t, "a gets one node back", 60*time.Second, func() bool {
		p := tr.perReplica()
		return p["a"] == 1 && p["b"] == 1
	})
}

// transitions reads a replica's count of one ownership event of a node.
func (r *replica) transitions(node, event string) float64 {
	return promtestutil.ToFloat64(r.metrics.transitions.WithLabelValues(node, event))
}

// TestStallAlone: a replica alone whose apiserver does not answer for
// longer than the renew deadline (and the Lease duration) keeps its node
// running and its quota share, and renews the same Lease once the
// apiserver answers: the node is never stopped and started again (which
// would re-adopt every group).
func TestStallAlone(t *testing.T) {
	cp := shared.Get(t)
	kube := cp.Clientset()
	ns := controlplane.TestNamespace(t, kube, "ownership-test")
	const node = "stall-alone"
	tr := newTracker(t)
	var share atomic.Value
	share.Store(0.0)
	r := startReplicaWith(t, cp, ns, "solo", []string{node}, tr, testLease, testRenew, testRetry, func(s float64) { share.Store(s) })
	waitFor(t, "the node runs with the whole quota", 30*time.Second, func() bool { return tr.owner(node) == "solo" && share.Load().(float64) == 1 })
	r.client.cut.Store(true)
	waitFor(t, "the Lease not renewed within the renew deadline: the node held over", 30*time.Second, func() bool {
		return r.transitions(node, "held_over") == 1
	})
	time.Sleep(testLease) // past the Lease duration too
	if o := tr.owner(node); o != "solo" {
		t.Errorf("node run by %q during the stall, want solo still", o)
	}
	if s := share.Load().(float64); s != 1 {
		t.Errorf("quota share %v during the stall, want 1 (no peer to take it)", s)
	}
	if v := promtestutil.ToFloat64(r.metrics.nodesUnrenewed); v != 1 {
		t.Errorf("nodes_unrenewed = %v during the stall, want 1", v)
	}
	cut := time.Now()
	r.client.cut.Store(false)
	waitFor(t, "the Lease renewed after the stall", 30*time.Second, func() bool {
		l, err := kube.CoordinationV1().Leases(ns).Get(context.Background(), NodeLeaseName(node), metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == "solo" && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(cut)
	})
	waitFor(t, "the run resumed", 10*time.Second, func() bool { return r.transitions(node, "resumed") == 1 })
	tr.mu.Lock()
	starts := tr.starts[node]
	tr.mu.Unlock()
	if starts != 1 || tr.owner(node) != "solo" {
		t.Errorf("node started %d times, run by %q; want started once and running on solo throughout", starts, tr.owner(node))
	}
	if v := r.transitions(node, "lost"); v != 0 {
		t.Errorf("lost transitions = %v, want 0", v)
	}
	if v := promtestutil.ToFloat64(r.metrics.nodesUnrenewed); v != 0 {
		t.Errorf("nodes_unrenewed = %v after the stall, want 0", v)
	}
	r.stop(t)
	if o := tr.owner(node); o != "" {
		t.Errorf("node run by %q after shutdown", o)
	}
	if h := holder(t, kube, ns, node); h != "" {
		t.Errorf("Lease held by %q after shutdown, want released", h)
	}
}

// TestStallTakenOver: a replica holding its node over a stall stops it as
// soon as it sees that another replica (started meanwhile) holds the
// node's Lease, and does not take it back.
func TestStallTakenOver(t *testing.T) {
	cp := shared.Get(t)
	kube := cp.Clientset()
	ns := controlplane.TestNamespace(t, kube, "ownership-test")
	const node = "stall-taken"
	// One tracker each: during the stall both replicas run the node (the
	// trade-off holdOver documents); the test is that it ends.
	trA, trB := newTracker(t), newTracker(t)
	a := startReplica(t, cp, ns, "a", []string{node}, trA)
	waitFor(t, "a runs the node", 30*time.Second, func() bool { return trA.owner(node) == "a" })
	a.client.cut.Store(true)
	waitFor(t, "a holds the node over", 30*time.Second, func() bool { return a.transitions(node, "held_over") == 1 })
	startReplica(t, cp, ns, "b", []string{node}, trB)
	waitFor(t, "b takes the expired Lease", 30*time.Second, func() bool { return trB.owner(node) == "b" })
	if o := trA.owner(node); o != "a" {
		t.Errorf("a's node run by %q while a cannot see the apiserver, want still a", o)
	}
	a.client.cut.Store(false)
	waitFor(t, "a stops the node on seeing b's Lease", 10*time.Second, func() bool { return trA.owner(node) == "" })
	if v := a.transitions(node, "lost"); v != 1 {
		t.Errorf("a: lost transitions = %v, want 1", v)
	}
	time.Sleep(2 * testLease)
	if h := holder(t, kube, ns, node); h != "b" || trB.owner(node) != "b" || trA.owner(node) != "" {
		t.Errorf("Lease held by %q, node on b: %q, on a: %q; want b only", h, trB.owner(node), trA.owner(node))
	}
}

// TestFailingNodeMovesOn: a node that cannot start on one replica is
// released there and runs on another.
func TestFailingNodeMovesOn(t *testing.T) {
	cp := shared.Get(t)
	ns := controlplane.TestNamespace(t, cp.Clientset(), "ownership-test")
	names := nodeNames("fail", 2)
	tr := newTracker(t)
	tr.fail["fail-0"] = "bad"
	startReplica(t, cp, ns, "bad", names, tr)
	waitFor(t, "bad runs fail-1 only", 30*time.Second, func() bool { return tr.owner("fail-1") == "bad" })
	startReplica(t, cp, ns, "good", names, tr)
	waitFor(t, "fail-0 runs on good", 60*time.Second, func() bool { return tr.owner("fail-0") == "good" })
}

// TestShutdownReleases: a replica stopped (SIGTERM) releases its node
// Leases and deletes its membership Lease, so the others need not wait.
func TestShutdownReleases(t *testing.T) {
	cp := shared.Get(t)
	kube := cp.Clientset()
	ns := controlplane.TestNamespace(t, kube, "ownership-test")
	names := nodeNames("stop", 3)
	tr := newTracker(t)
	r := startReplica(t, cp, ns, "only", names, tr)
	waitFor(t, "all nodes run", 30*time.Second, func() bool { return tr.perReplica()["only"] == 3 })
	r.stop(t)
	if p := tr.perReplica(); len(p) != 0 {
		t.Errorf("nodes still running after stop: %v", p)
	}
	for _, n := range names {
		if h := holder(t, kube, ns, n); h != "" {
			t.Errorf("Lease of %s still held by %q", n, h)
		}
	}
	_, err := kube.CoordinationV1().Leases(ns).Get(context.Background(), ReplicaLeaseName("only"), metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("membership Lease after stop: %v, want NotFound", err)
	}
	leases, err := kube.CoordinationV1().Leases(ns).List(context.Background(), metav1.ListOptions{LabelSelector: LabelNodeSet + "=" + SetID(names) + "," + LabelLeaseKind + "=node"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range leases.Items {
		got = append(got, l.Name)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "ack-virtual-node-stop-0,ack-virtual-node-stop-1,ack-virtual-node-stop-2" {
		t.Errorf("labelled node Leases = %v", got)
	}
}

// TestShutdownHandsOver: with a long Lease (60s), a replica shut down (a
// rolling update's SIGTERM) hands its nodes to the other at once, far
// sooner than the Lease would expire.
func TestShutdownHandsOver(t *testing.T) {
	cp := shared.Get(t)
	ns := controlplane.TestNamespace(t, cp.Clientset(), "ownership-test")
	names := nodeNames("roll", 2)
	tr := newTracker(t)
	const lease, renew, retry = 60 * time.Second, 40 * time.Second, 500 * time.Millisecond
	old := startReplicaTimed(t, cp, ns, "old", names, tr, lease, renew, retry)
	startReplicaTimed(t, cp, ns, "new", names, tr, lease, renew, retry)
	waitFor(t, "one node on each replica", 60*time.Second, func() bool {
		p := tr.perReplica()
		return p["old"] == 1 && p["new"] == 1
	})
	old.stop(t)
	// Half the Lease: only a released Lease can be taken this soon.
	waitFor(t, "new runs both nodes", lease/2, func() bool { return tr.perReplica()["new"] == 2 })
}

// BenchmarkTakeover measures how long after a replica stops renewing (cut
// off from the apiserver, as kill -9 looks to the cluster) the other runs
// its node, with a 4s Lease, 2s renew deadline and 300ms retry period.
// Expected: about the Lease duration plus up to 2.2 retry periods.
func BenchmarkTakeover(b *testing.B) {
	cp := shared.Get(b)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := controlplane.TestNamespace(b, cp.Clientset(), "ownership-bench")
		names := nodeNames(fmt.Sprintf("bench%d", i), 1)
		tr := newTracker(b)
		reps := map[string]*replica{
			"x": startReplicaTimed(b, cp, ns, "x", names, tr, testLease, testRenew, testRetry),
			"y": startReplicaTimed(b, cp, ns, "y", names, tr, testLease, testRenew, testRetry),
		}
		waitFor(b, "the node runs", 30*time.Second, func() bool { return tr.owner(names[0]) != "" })
		// Let the holder renew a few times, as in steady state.
		time.Sleep(2 * testRetry)
		from := tr.owner(names[0])
		b.StartTimer()
		start := time.Now()
		reps[from].client.cut.Store(true)
		waitFor(b, "the other replica runs the node", 30*time.Second, func() bool {
			o := tr.owner(names[0])
			return o != "" && o != from
		})
		total += time.Since(start)
		b.StopTimer()
		for _, r := range reps {
			r.stop(b)
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "takeover-s/op")
	b.ReportMetric(testLease.Seconds(), "lease-s")
}
