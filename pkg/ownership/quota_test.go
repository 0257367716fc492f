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
		others []float64
		want   float64
	}{
		{"alone", nil, 1},
		{"newcomer: the other still holds everything", []float64{1}, 0},
		{"the other shrank to a half", []float64{0.5}, 0.5},
		{"third replica, the others not shrunk yet", []float64{0.5, 0.5}, 0},
		{"third replica, one shrunk", []float64{0.3333, 0.5}, 0.1667},
		{"third replica, both shrunk", []float64{0.3333, 0.3333}, 0.3333},
		{"a peer that published nothing counts at its target", []float64{-1}, 0.5},
		{"after a death: the survivor grows to a half, not more", []float64{0.3333}, 0.5},
		{"never negative", []float64{0.7, 0.7}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitShare(tt.others); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("splitShare(%v) = %v, want %v", tt.others, got, tt.want)
			}
		})
	}
	// n replicas each at their target never add up to more than 1.
	for n := 1; n <= 50; n++ {
		s := floorShare(1 / float64(n))
		if sum := s * float64(n); sum > 1 {
			t.Errorf("%d replicas at %v each: %v", n, s, sum)
		}
		others := make([]float64, n-1)
		for i := range others {
			others[i] = s
		}
		if got := splitShare(others); got != s {
			t.Errorf("%d replicas: the last one's share %v, want %v like the others", n, got, s)
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

// TestQuotaSharedAmongReplicas runs three ownership members on the real
// control plane with short Lease timings: the quota share of each follows
// the live replicas as they join, as one stops renewing (it gives its
// share up itself before the others take it), as it comes back and as one
// leaves; at no moment do the shares in use add up to more than 1.
func TestQuotaSharedAmongReplicas(t *testing.T) {
	cp := shared.Get(t)
	kube := cp.Clientset()
	ns := controlplane.TestNamespace(t, kube, "ownership-test")
	names := nodeNames("quota", 3)
	tr := newTracker(t)
	mon := &shareMonitor{t: t, shares: map[string]float64{}}
	start := func(id string) *replica {
		return startReplicaWith(t, cp, ns, id, names, tr, testLease, testRenew, testRetry, mon.set(id))
	}
	const third = 0.3333
	r0 := start("q0")
	waitFor(t, "q0 alone holds the whole quota", 30*time.Second, func() bool { return mon.is(map[string]float64{"q0": 1}) })
	start("q1")
	waitFor(t, "q0 and q1 hold half each", 30*time.Second, func() bool { return mon.is(map[string]float64{"q0": 0.5, "q1": 0.5}) })
	q2 := start("q2")
	waitFor(t, "a third each", 30*time.Second, func() bool {
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
