package ownership

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSplitShare(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mine   int
		others []peer
		want   float64
	}{
		{"alone, no node yet", 0, nil, 1},
		{"alone with nodes", 3, nil, 1},
		{"newcomer: the other still holds everything", 0, []peer{{1, 0}}, 0},
		{"two replicas, no node yet, the other shrank", 0, []peer{{0.5, 0}}, 0.5},
		{"one node each, the other shrank", 1, []peer{{0.5, 1}}, 0.5},
		{"3 of 5 nodes, the other at its 2/5", 3, []peer{{0.4, 2}}, 0.6},
		{"3 of 5 nodes, the other not shrunk yet", 3, []peer{{0.5, 2}}, 0.5},
		{"2 of 5 nodes", 2, []peer{{0.6, 3}}, 0.4},
		{"a standby replica needs nothing", 0, []peer{{0.5, 2}, {0.5, 2}}, 0},
		{"third replica, the others not shrunk yet", 1, []peer{{0.5, 1}, {0.5, 1}}, 0},
		{"third replica, one shrunk", 1, []peer{{0.3333, 1}, {0.5, 1}}, 0.1667},
		{"third replica, both shrunk", 1, []peer{{0.3333, 1}, {0.3333, 1}}, 0.3333},
		{"a peer that published nothing counts at its target (one node)", 1, []peer{{-1, -1}}, 0.5},
		{"after a death: the survivor grows to its part, not more", 1, []peer{{0.3333, 1}}, 0.5},
		{"never negative", 1, []peer{{0.7, 1}, {0.7, 1}}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitShare(tt.mine, tt.others); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("splitShare(%d, %v) = %v, want %v", tt.mine, tt.others, got, tt.want)
			}
		})
	}
	// Replicas each at their target never add up to more than 1, however
	// the nodes are spread.
	for n := 1; n <= 12; n++ {
		for nodes := 0; nodes <= 30; nodes++ {
			counts := make([]int, n)
			for i := 0; i < nodes; i++ {
				counts[(i*7)%n]++ // an uneven spread
			}
			targets := make([]float64, n)
			for i := range counts {
				var others []peer
				for j := range counts {
					if j != i {
						others = append(others, peer{share: -1, nodes: counts[j]})
					}
				}
				targets[i] = splitShare(counts[i], others)
			}
			sum := 0.0
			for i, s := range targets {
				sum += s
				if nodes > 0 && counts[i] == 0 && s != 0 {
					t.Errorf("%d replicas, %d nodes %v: a replica running none gets %v", n, nodes, counts, s)
				}
			}
			if sum > 1+1e-12 || sum < 0.99 {
				t.Errorf("%d replicas, %d nodes %v: targets %v add up to %v", n, nodes, counts, targets, sum)
			}
		}
	}
}

// shareMonitor records every replica's share as it is applied and checks
// at each change that the shares in use add up to at most 1: the order of
// shrinking and growing the replicas keep, seen from outside.
type shareMonitor struct {
	t      testing.TB
	mu     sync.Mutex
	shares map[string]float64
	worst  float64
	when   string
}

func (m *shareMonitor) set(id string) func(float64) {
	return func(s float64) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.shares[id] = s
		sum := 0.0
		for _, v := range m.shares {
			sum += v
		}
		if sum > m.worst {
			m.worst, m.when = sum, m.describeLocked()
		}
	}
}

func (m *shareMonitor) describeLocked() string {
	var parts []string
	for id, s := range m.shares {
		parts = append(parts, fmt.Sprintf("%s=%v", id, s))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (m *shareMonitor) is(want map[string]float64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, w := range want {
		if math.Abs(m.shares[id]-w) > 1e-9 {
			return false
		}
	}
	return true
}

// TestQuotaSharedAmongReplicas runs three ownership members of six nodes
// on the real control plane with short Lease timings: the quota share of
// each follows the nodes it runs as replicas join, as one stops renewing
// (it gives its share up itself before the others take it), as it comes
// back and as one leaves; at no moment do the shares in use add up to
// more than 1.
func TestQuotaSharedAmongReplicas(t *testing.T) {
	cp := shared.Get(t)
	kube := cp.Clientset()
	ns := controlplane.TestNamespace(t, kube, "ownership-test")
	names := nodeNames("quota", 6)
	tr := newTracker(t)
	mon := &shareMonitor{t: t, shares: map[string]float64{}}
	start := func(id string) *replica {
		return startReplicaWith(t, cp, ns, id, names, tr, testLease, testRenew, testRetry, mon.set(id))
	}
	const third = 0.3333
	r0 := start("q0")
	waitFor(t, "q0 alone holds the whole quota", 30*time.Second, func() bool { return mon.is(map[string]float64{"q0": 1}) })
	start("q1")
	waitFor(t, "q0 and q1 run three nodes and hold half the quota each", 60*time.Second, func() bool { return mon.is(map[string]float64{"q0": 0.5, "q1": 0.5}) })
	q2 := start("q2")
	waitFor(t, "two nodes and a third of the quota each", 60*time.Second, func() bool {
		return mon.is(map[string]float64{"q0": third, "q1": third, "q2": third})
	})
	l, err := kube.CoordinationV1().Leases(ns).Get(context.Background(), ReplicaLeaseName("q2"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Annotations[AnnotationQuotaShare]; got != "0.3333" {
		t.Errorf("q2's membership Lease publishes share %q, want 0.3333", got)
	}

	// q2 stops renewing: it uses nothing once its renew deadline passed,
	// and the others grow once its Lease has expired.
	q2.client.cut.Store(true)
	waitFor(t, "q2 gives its share up and q0, q1 take half each", 60*time.Second, func() bool {
		return mon.is(map[string]float64{"q0": 0.5, "q1": 0.5, "q2": 0})
	})
	q2.client.cut.Store(false)
	waitFor(t, "q2 back: a third each", 60*time.Second, func() bool {
		return mon.is(map[string]float64{"q0": third, "q1": third, "q2": third})
	})

	// q0 leaves: it gives its share up, the others grow at once.
	r0.stop(t)
	waitFor(t, "q1 and q2 hold half each after q0 left", 30*time.Second, func() bool {
		return mon.is(map[string]float64{"q0": 0, "q1": 0.5, "q2": 0.5})
	})
	mon.mu.Lock()
	defer mon.mu.Unlock()
	if mon.worst > 1+1e-9 {
		t.Errorf("the shares in use added up to %v (%s), more than the account's quota", mon.worst, mon.when)
	}
}
