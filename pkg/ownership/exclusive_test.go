package ownership

import (
	"context"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestExclusiveStatefulSetOrdinals runs three members the way the ordinal
// pods of one StatefulSet run: each with its own node names (ordinal 0 also
// a legacy node), Exclusive, and one Set for all. Each takes its nodes at
// once and keeps them (ordinal 0 runs two nodes while its fair share among
// three would be one: no handover, no flapping), and the quota is split by
// the nodes each runs, as for the replicas of one Deployment.
func TestExclusiveStatefulSetOrdinals(t *testing.T) {
	cp := shared.Get(t)
	kube := cp.Clientset()
	ns := controlplane.TestNamespace(t, kube, "ownership-test")
	tr := newTracker(t)
	mon := &shareMonitor{t: t, shares: map[string]float64{}}
	set := SetID([]string{"statefulset/" + ns + "/vn"})
	members := map[string][]string{"vn-0": {"vn-0", "legacy"}, "vn-1": {"vn-1"}, "vn-2": {"vn-2"}}
	metrics := map[string]*Metrics{}
	reps := map[string]*replica{}
	for id, names := range members {
		metrics[id] = NewMetrics(nil)
		r := &replica{id: id, client: newCuttable(t, cp), done: make(chan error, 1), metrics: metrics[id]}
		reps[id] = r
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go func() {
			r.done <- Run(ctx, Options{
				Kube: r.client.kube, Namespace: ns, Identity: id, Names: names,
				LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry,
				Run: tr.run(id), Share: mon.set(id), Set: set, Exclusive: true, Metrics: metrics[id],
			})
		}()
		t.Cleanup(func() { r.stop(t) })
	}
	waitFor(t, "every member runs its own nodes", 30*time.Second, func() bool {
		for id, names := range members {
			for _, n := range names {
				if tr.owner(n) != id {
					return false
				}
			}
		}
		return true
	})
	waitFor(t, "the quota split by nodes run: 2/4, 1/4, 1/4", 30*time.Second, func() bool {
		return mon.is(map[string]float64{"vn-0": 0.5, "vn-1": 0.25, "vn-2": 0.25})
	})
	// Three Lease durations with the membership stable: a member of a
	// shared node list would have handed a node over by now. (A Lease
	// lost to a slow apiserver is retaken by its member: counted apart.)
	time.Sleep(3 * testLease)
	tr.mu.Lock()
	for id, names := range members {
		for _, n := range names {
			if tr.running[n] != id {
				t.Errorf("node %s: run by %q, want %s", n, tr.running[n], id)
			}
			if h := testutil.ToFloat64(metrics[id].transitions.WithLabelValues(n, "handed_over")); h != 0 {
				t.Errorf("node %s handed over %v times by %s, want never", n, h, id)
			}
		}
	}
	tr.mu.Unlock()

	// An apiserver stall on vn-1: nobody else can run its node, so it is
	// held over although peers are alive; its quota share goes to them.
	reps["vn-1"].client.cut.Store(true)
	waitFor(t, "vn-1 holds its node over the stall", 30*time.Second, func() bool {
		return reps["vn-1"].transitions("vn-1", "held_over") == 1
	})
	waitFor(t, "vn-1 gives its quota share up to its live peers", 30*time.Second, func() bool { return mon.is(map[string]float64{"vn-1": 0}) })
	if o := tr.owner("vn-1"); o != "vn-1" {
		t.Errorf("node vn-1 run by %q during the stall, want vn-1 still", o)
	}
	reps["vn-1"].client.cut.Store(false)
	waitFor(t, "vn-1 resumes its node", 30*time.Second, func() bool { return reps["vn-1"].transitions("vn-1", "resumed") == 1 })
	tr.mu.Lock()
	if n := tr.starts["vn-1"]; n != 1 {
		t.Errorf("node vn-1 started %d times, want once (held over, not restarted)", n)
	}
	tr.mu.Unlock()
	mon.mu.Lock()
	defer mon.mu.Unlock()
	if mon.worst > 1+1e-9 {
		t.Errorf("the shares in use added up to %v (%s)", mon.worst, mon.when)
	}
}
