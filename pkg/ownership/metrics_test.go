package ownership

import (
	"context"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestNodeRunningMetric: vnode_ownership_node_running{node} is 1 on the
// replica that runs the node and 0 on the others, so its sum over the
// replicas is 1 for every node that is run (the "controller does not own
// its nodes" alert fires on 0); a replica that stops drops to 0 and the
// one that takes its node over goes to 1.
func TestNodeRunningMetric(t *testing.T) {
	cp := shared.Get(t)
	ns := controlplane.TestNamespace(t, cp.Clientset(), "ownership-test")
	names := nodeNames("metric", 2)
	tr := newTracker(t)
	metrics := map[string]*Metrics{}
	replicas := map[string]*replica{}
	for _, id := range []string{"r0", "r1"} {
		reg := prometheus.NewRegistry()
		metrics[id] = NewMetrics(reg)
		r := &replica{id: id, client: newCuttable(t, cp), done: make(chan error, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go func() {
			r.done <- Run(ctx, Options{
				Kube: r.client.kube, Namespace: ns, Identity: id, Names: names,
				LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry,
				Run: tr.run(id), Metrics: metrics[id],
			})
		}()
		t.Cleanup(func() { r.stop(t) })
		replicas[id] = r
	}
	running := func(id, node string) float64 {
		return testutil.ToFloat64(metrics[id].nodeRunning.WithLabelValues(node))
	}
	// agrees says every node's gauge is 1 on its owner (tracker) and 0 on
	// the other replicas.
	agrees := func(ids ...string) bool {
		for _, n := range names {
			owner := tr.owner(n)
			if owner == "" {
				return false
			}
			for _, id := range ids {
				want := 0.0
				if id == owner {
					want = 1
				}
				if running(id, n) != want {
					return false
				}
			}
		}
		return true
	}
	waitFor(t, "one node on each replica, shown by vnode_ownership_node_running", 60*time.Second, func() bool {
		p := tr.perReplica()
		return p["r0"] == 1 && p["r1"] == 1 && agrees("r0", "r1")
	})
	for _, n := range names {
		if sum := running("r0", n) + running("r1", n); sum != 1 {
			t.Errorf("vnode_ownership_node_running{node=%q} summed over the replicas = %v, want 1", n, sum)
		}
	}

	replicas["r1"].stop(t)
	waitFor(t, "r0 runs both nodes and says so", 30*time.Second, func() bool { return tr.perReplica()["r0"] == 2 && agrees("r0") })
	for _, n := range names {
		if v := running("r1", n); v != 0 {
			t.Errorf("stopped replica r1: vnode_ownership_node_running{node=%q} = %v, want 0", n, v)
		}
	}
}
