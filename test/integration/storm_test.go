package integration

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// stormDuration is how long the simulator fails calls ("for a minute").
const stormDuration = 60 * time.Second

// createAttemptsWithin is the most create attempts the provider can make
// for one pod in d: the first at once, the next after at least
// MinCreateRetryDelay(1), and so on.
func createAttemptsWithin(d time.Duration) int {
	n, elapsed := 1, time.Duration(0)
	for {
		elapsed += provider.MinCreateRetryDelay(n)
		if elapsed > d {
			return n
		}
		n++
	}
}

// TestErrorStorm runs a minute of 30 % 5xx plus 20 % throttling on every
// action (creates' 5xx answers are lost responses: the group was made)
// while pods are created and deleted. Afterwards every pod is Running with
// exactly one group, deleted pods have none, and the simulator's request
// log shows backoff rather than a retry flood: each pod's creates stay
// within what the retry policy allows, and no call follows a Throttling
// answer for the same pod or group sooner than the throttling pause.
func TestErrorStorm(t *testing.T) {
	t.Parallel()
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) {
		c.StartDelay = 200 * time.Millisecond
		c.RequestLog = 500000
		c.Seed = 4
	}})
	cfg := env.NodeConfig(t, uniqueName("vk-storm"))
	env.StartNode(t, cfg)
	kube, ctx, ns := env.Kube, context.Background(), uniqueName("storm")
	createNamespace(t, kube, ns)
	env.Simulator.ResetCalls()

	storm := []simulator.Fault{
		{Action: "*", ErrorRate: 0.3, ThrottleRate: 0.2, Code: "ServiceUnavailable"},
		{Action: "CreateContainerGroup", ErrorRate: 0.3, ThrottleRate: 0.2, Code: "InternalError", AfterSuccess: true},
		{Action: "DeleteContainerGroup", ErrorRate: 0.3, ThrottleRate: 0.2, Code: "InternalError", AfterSuccess: true},
	}
	for _, f := range storm {
		if err := env.Simulator.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}
	stormStart := time.Now()
	at := func(d time.Duration) { time.Sleep(time.Until(stormStart.Add(d))) }
	createPodsOn(t, kube, ns, "a", 20, cfg.NodeName)
	at(15 * time.Second)
	deletePods(t, kube, ns, "a", 0, 10)
	at(25 * time.Second)
	createPodsOn(t, kube, ns, "b", 10, cfg.NodeName)
	at(40 * time.Second)
	deletePods(t, kube, ns, "b", 0, 5)
	at(stormDuration)
	env.Simulator.ClearFaults()
	stormEnd := time.Now()

	took := pollConverged(t, kube, env.Simulator, cfg.ClusterID, cfg.NodeName, ns, 15, 3*time.Minute)
	t.Logf("converged %v after the storm ended", took.Round(time.Millisecond))

	calls := env.Simulator.Calls()
	total, failed := 0, 0
	for action, outcomes := range calls {
		for outcome, n := range outcomes {
			total += n
			if outcome != "OK" {
				failed += n
			}
			t.Logf("calls %s %s: %d", action, outcome, n)
		}
	}
	t.Logf("%d calls in all (%d failed) over %v of storm and %v of recovery", total, failed, stormEnd.Sub(stormStart).Round(time.Second), took.Round(time.Second))
	// Status polling is one call (plus retries) per StatusInterval, not
	// one per pod and not a tight loop when calls fail.
	polls := 0
	for _, n := range calls["DescribeContainerGroupStatus"] {
		polls += n
	}
	elapsed := time.Since(stormStart)
	if bound := (int(elapsed/cfg.StatusInterval) + 1) * eci.DefaultMaxAttempts; polls > bound {
		t.Errorf("%d DescribeContainerGroupStatus calls in %v, the poll interval %v and %d attempts allow %d", polls, elapsed, cfg.StatusInterval, eci.DefaultMaxAttempts, bound)
	}
	t.Logf("%d status calls in %v (poll interval %v)", polls, elapsed.Round(time.Second), cfg.StatusInterval)
	if calls["CreateContainerGroup"][simulator.CodeThrottling] == 0 || calls["CreateContainerGroup"]["InternalError"] == 0 {
		t.Fatalf("the storm did not reach the creates: %v", calls["CreateContainerGroup"])
	}

	// Group the log by pod (creates, by ClientToken) and by group
	// (deletes, by ContainerGroupId), in time order.
	byKey := map[string][]simulator.RecordedRequest{}
	for _, r := range env.Simulator.Requests("") {
		switch r.Action {
		case "CreateContainerGroup":
			byKey["create "+r.Params["ClientToken"]] = append(byKey["create "+r.Params["ClientToken"]], r)
		case "DeleteContainerGroup":
			byKey["delete "+r.Params["ContainerGroupId"]] = append(byKey["delete "+r.Params["ContainerGroupId"]], r)
		}
	}
	maxCreates, sumCreates, pods := 0, 0, 0
	for k, reqs := range byKey {
		sort.Slice(reqs, func(i, j int) bool { return reqs[i].Time.Before(reqs[j].Time) })
		if k[:7] == "create " {
			// Every attempt sends at most eci.DefaultMaxAttempts calls.
			window := reqs[len(reqs)-1].Time.Sub(reqs[0].Time)
			bound := createAttemptsWithin(window) * eci.DefaultMaxAttempts
			if len(reqs) > bound {
				t.Errorf("%s: %d create calls in %v, the retry policy allows at most %d", k, len(reqs), window, bound)
			}
			pods++
			sumCreates += len(reqs)
			maxCreates = max(maxCreates, len(reqs))
		}
		for i := 1; i < len(reqs); i++ {
			if reqs[i-1].Code != simulator.CodeThrottling {
				continue
			}
			// The pause after a Throttling answer is jittered within
			// [ThrottleBackoff/2, ThrottleBackoff].
			if gap := reqs[i].Time.Sub(reqs[i-1].Time); gap < eci.DefaultThrottleBackoff/2 {
				t.Errorf("%s: call sent %v after a Throttling answer, before the %v pause", k, gap, eci.DefaultThrottleBackoff/2)
			}
		}
	}
	if pods != 30 {
		t.Errorf("creates were sent for %d pods, want 30", pods)
	}
	t.Logf("create calls per pod: max %d, mean %.1f over %d pods", maxCreates, float64(sumCreates)/float64(max(pods, 1)), pods)

	// The deleted pods are gone from the apiserver too.
	for _, name := range []string{"a-0", "a-9", "b-0", "b-4"} {
		if _, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			t.Errorf("deleted pod %s still exists", name)
		}
	}
}
