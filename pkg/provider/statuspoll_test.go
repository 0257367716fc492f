package provider_test

// Unit tests of the status loop's pace: how many
// DescribeContainerGroupStatus calls it makes over simulated time, on a
// fake clock, against the fake cloud.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/fake"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// pollEnv is a provider whose status loop runs on a fake clock, with the
// production intervals (2 s, 250 ms fast) and a resync far away, so every
// DescribeContainerGroupStatus call is a changed-status poll.
type pollEnv struct {
	t     *testing.T
	ctx   context.Context
	clock *clocktesting.FakeClock
	cloud *fake.Cloud
	p     *provider.Provider
	n     int
}

func newPollEnv(t *testing.T) *pollEnv {
	t.Helper()
	e := &pollEnv{t: t, clock: clocktesting.NewFakeClock(time.Now()), cloud: fake.New()}
	e.cloud.AddVSwitch("vsw-a", "zone-a")
	e.cloud.SetClock(e.clock.Now)
	// No apiserver: these pods mount no token and read nothing.
	p, err := provider.New(provider.Options{
		NodeName: nodeName, ClusterID: clusterID, VSwitches: []string{"vsw-a"}, SecurityGroup: "sg-fake",
		Cloud: e.cloud, Kube: controlplane.NoAPIServer(t),
		StatusInterval: 2 * time.Second, FastStatusInterval: 250 * time.Millisecond, ResyncInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	provider.SetClock(p, e.clock)
	e.p = p
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx = ctx
	p.NotifyPods(ctx, func(*corev1.Pod) {})
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// createPod creates a pod whose group stays Pending until the test starts
// it, and returns its group id.
func (e *pollEnv) createPod() string {
	e.t.Helper()
	e.n++
	no := false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "poll", Name: fmt.Sprintf("p%d", e.n), UID: types.UID(fmt.Sprintf("uid-%d", e.n))},
		Spec: corev1.PodSpec{NodeName: nodeName, DNSPolicy: corev1.DNSDefault, AutomountServiceAccountToken: &no,
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	if err := e.p.CreatePod(e.ctx, pod); err != nil {
		e.t.Fatal(err)
	}
	for _, g := range e.cloud.Groups() {
		for _, tag := range g.Tags {
			if tag.Key == tagPodUID && tag.Value == string(pod.UID) {
				return g.ContainerGroupId
			}
		}
	}
	e.t.Fatalf("no group for pod %s", pod.Name)
	return ""
}

// advance moves the fake clock forward by d in steps of 50 ms, each once
// the status loop waits on its timer, so every poll that falls due runs
// at its simulated time.
func (e *pollEnv) advance(d time.Duration) {
	e.t.Helper()
	const step = 50 * time.Millisecond
	for end := e.clock.Now().Add(d); e.clock.Now().Before(end); {
		eventually(e.t, "the status loop to wait for its next poll", e.clock.HasWaiters)
		e.clock.Step(step)
	}
	eventually(e.t, "the status loop to wait for its next poll", e.clock.HasWaiters)
}

func (e *pollEnv) statusCalls() int { return e.cloud.CallCount(fake.OpDescribeStatus) }

// TestFastPollEnds: two pods whose groups never start keep the node
// polling fast for provider.DefaultFastStatusWindow only, never above
// provider.DefaultStatusCallRate on average, then at the normal interval.
// Before, the fast poll (4 calls/s) never ended: 579 calls in 148 s.
func TestFastPollEnds(t *testing.T) {
	e := newPollEnv(t)
	e.advance(10 * time.Second)
	idle := e.statusCalls()
	// 10 s at the normal 2 s interval, the first poll at once.
	if idle < 5 || idle > 6 {
		t.Fatalf("idle node: %d status calls in 10 s, want 5-6 (every 2 s)", idle)
	}

	e.createPod()
	e.createPod()
	window := provider.DefaultFastStatusWindow
	e.advance(window)
	fast := e.statusCalls() - idle
	// The budget: 1 call/s plus the few saved up while idle; more than the
	// normal rate (window/2 s), or the fast poll did not happen at all.
	maxFast := int(window.Seconds()*provider.DefaultStatusCallRate) + 4 + 1
	if fast > maxFast || fast <= int(window/(2*time.Second))+2 {
		t.Errorf("two unstarted pods, first %s: %d status calls, want more than the normal %d and at most %d (%.0f/s plus the saved-up burst)",
			window, fast, int(window/(2*time.Second)), maxFast, provider.DefaultStatusCallRate)
	}

	e.advance(100 * time.Second)
	after := e.statusCalls() - idle - fast
	// Past the window the pods no longer make the poll fast: every 2 s.
	if after < 49 || after > 51 {
		t.Errorf("two unstarted pods past the fast window: %d status calls in 100 s, want about 50 (every 2 s)", after)
	}
	total := e.statusCalls() - idle
	t.Logf("status calls: %d idle in 10 s, %d in the fast window, %d in the 100 s after", idle, fast, after)
	if span := window.Seconds() + 100; float64(total) > span*provider.DefaultStatusCallRate+5 {
		t.Errorf("%d status calls in %.0f s with two unstarted pods, want at most %.0f/s", total, span, provider.DefaultStatusCallRate)
	}
}

// TestFastPollBudget: pods arriving all the time (one every 2 s, each
// starting 10 s after it was created) keep a pod waiting at every moment,
// yet the node averages at most provider.DefaultStatusCallRate calls a
// second plus provider.FastCallsPerStart per pod created; and the fast
// poll still does what it is for: a group that starts is seen sooner than
// the normal interval.
func TestFastPollBudget(t *testing.T) {
	e := newPollEnv(t)
	e.advance(time.Second)
	before := e.statusCalls()
	const span = 120 * time.Second
	var waiting []string
	created := 0
	for i := 0; i < int(span/(2*time.Second)); i++ {
		waiting = append(waiting, e.createPod())
		created++
		if len(waiting) > 5 {
			if err := e.cloud.SetStatus(waiting[0], eci.StatusRunning); err != nil {
				t.Fatal(err)
			}
			waiting = waiting[1:]
		}
		e.advance(2 * time.Second)
	}
	calls := e.statusCalls() - before
	budget := span.Seconds()*provider.DefaultStatusCallRate + float64(created)*provider.FastCallsPerStart
	t.Logf("%d status calls in %s, %d pods created: budget %.0f", calls, span, created, budget)
	if max := int(budget) + 4 + 1; calls > max {
		t.Errorf("pods arriving every 2 s for %s: %d status calls, want at most %d (%.0f/s, %.0f per pod created and the saved-up burst)",
			span, calls, max, provider.DefaultStatusCallRate, provider.FastCallsPerStart)
	}
	if min := int(budget) - 5; calls < min {
		t.Errorf("pods arriving every 2 s for %s: %d status calls, want at least %d: the fast poll should use its budget while pods wait", span, calls, min)
	}

	// With the budget spent, a group that starts is still seen within a
	// second (1/rate), not the normal 2 s.
	if err := e.cloud.SetStatus(waiting[len(waiting)-1], eci.StatusRunning); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Duration(float64(time.Second)/provider.DefaultStatusCallRate) + 100*time.Millisecond)
	name := fmt.Sprintf("p%d", e.n)
	eventually(t, "pod "+name+" Running 1.1 s after its group started", func() bool {
		st, err := e.p.GetPodStatus(e.ctx, "poll", name)
		return err == nil && st.Phase == corev1.PodRunning
	})
}

// TestFastPollFollowsCreates: while the node creates pods quickly (10 a
// second, none starting, as when the cloud is slow), the poll runs at the
// fast interval (4/s), not at the 1/s that limited how soon a start was
// seen; once the creates stop, the loop is back within
// provider.DefaultStatusCallRate although every pod still waits, and past
// the fast window at the normal interval.
func TestFastPollFollowsCreates(t *testing.T) {
	e := newPollEnv(t)
	e.advance(10 * time.Second)
	before := e.statusCalls()
	const span = 20 * time.Second
	for i := 0; i < int(span/(100*time.Millisecond)); i++ {
		e.createPod()
		e.advance(100 * time.Millisecond)
	}
	during := e.statusCalls() - before
	// 4/s at the 250 ms fast interval; a poll may slip by a 50 ms step.
	if min, max := int(span.Seconds()*4*0.8), int(span.Seconds()*4)+2; during < min || during > max {
		t.Errorf("10 pods created a second for %s: %d status calls, want %d-%d (the 250 ms fast interval)", span, during, min, max)
	}

	before = e.statusCalls()
	const quiet = 30 * time.Second
	e.advance(quiet)
	after := e.statusCalls() - before
	if max := int(quiet.Seconds()*provider.DefaultStatusCallRate) + 4 + 1; after > max {
		t.Errorf("no pod created for %s, 200 waiting: %d status calls, want at most %d (%.0f/s plus the saved-up burst)",
			quiet, after, max, provider.DefaultStatusCallRate)
	}
	t.Logf("status calls: %d in %s of creates, %d in the %s after", during, span, after, quiet)
}

// TestFastPollWakes: a pod that gets its group on an idle node (polling
// every 2 s) brings the next poll forward to the fast interval, so a group
// that starts at once is seen within 300 ms, not at the next normal poll.
func TestFastPollWakes(t *testing.T) {
	e := newPollEnv(t)
	e.advance(11 * time.Second) // a poll at 10 s; the next is due at 12 s
	id := e.createPod()
	if err := e.cloud.SetStatus(id, eci.StatusRunning); err != nil {
		t.Fatal(err)
	}
	e.advance(300 * time.Millisecond)
	// The clock stays at 11.3 s from here: only a poll brought forward
	// can see the group Running (the loop may still be finishing it).
	name := fmt.Sprintf("p%d", e.n)
	eventually(t, "pod "+name+" Running 300 ms after its group started on an idle node, before the normal poll at 12 s", func() bool {
		st, err := e.p.GetPodStatus(e.ctx, "poll", name)
		return err == nil && st.Phase == corev1.PodRunning
	})
}
