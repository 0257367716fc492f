package eci_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
)

// TestPermissionDenied: the simulator's RAM refusal reaches the caller as
// a ClassAuth error that names the action and the policy fix, sent once
// (not retried in the client), and Health lists the action until it
// succeeds.
func TestPermissionDenied(t *testing.T) {
	cfg := simulator.DefaultConfig()
	cfg.Policies = map[string]simulator.Policy{simulator.DefaultAccessKeyID: simulator.PolicyDocumented}
	sim, url := simtest.Start(t, cfg)
	h := eci.NewHealth()
	c := simtest.Client(t, url, eci.Config{Health: h, Backoff: time.Millisecond})
	ctx := context.Background()

	_, err := c.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{})
	action, ok := eci.PermissionDenied(err)
	if !ok || action != "DescribeContainerGroupStatus" {
		t.Fatalf("PermissionDenied(%v) = %q, %v", err, action, ok)
	}
	if eci.ClassOf(err) != eci.ClassAuth || eci.KeyRefused(err) || eci.NoAnswer(err) {
		t.Errorf("class %s, KeyRefused %v, NoAnswer %v: want auth, a refused action, not a refused key", eci.ClassOf(err), eci.KeyRefused(err), eci.NoAnswer(err))
	}
	if msg := err.Error(); !strings.Contains(msg, `"eci:DescribeContainerGroupStatus"`) || !strings.Contains(msg, "vnodectl doctor") {
		t.Errorf("error text %q names neither the action nor the fix", msg)
	}
	if n := simtest.Calls(sim, "DescribeContainerGroupStatus"); n != 1 {
		t.Errorf("the refused call was sent %d times, want once", n)
	}
	if got := h.Refused(); len(got) != 1 || got[0] != "DescribeContainerGroupStatus" {
		t.Errorf("Refused() = %v", got)
	}
	if st := h.State(0); !st.OK {
		t.Errorf("a refused action made the cloud unavailable: %+v", st)
	}
	if err := sim.SetPolicy(simulator.DefaultAccessKeyID, simulator.PolicyFullAccess); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := h.Refused(); len(got) != 0 {
		t.Errorf("Refused() after the policy allowed it = %v", got)
	}
}

// TestHealth: a refused AccessKey and an unreachable endpoint make the
// cloud unavailable once they last the grace period; any answer clears it.
func TestHealth(t *testing.T) {
	sim, url := simtest.Start(t, simulator.DefaultConfig())
	h := eci.NewHealth()
	c := simtest.Client(t, url, eci.Config{Health: h, Backoff: time.Millisecond, MaxAttempts: 1})
	ctx := context.Background()
	describe := func() error {
		_, err := c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{})
		return err
	}
	if err := describe(); err != nil {
		t.Fatal(err)
	}
	if st := h.State(0); !st.OK || st.Reason != eci.HealthReasonAnswering {
		t.Fatalf("state after an answer = %+v", st)
	}

	// A bad key: refused at once, unavailable after the grace.
	if err := sim.InjectFault(simulator.Fault{Action: "*", ErrorRate: 1, Code: "InvalidAccessKeyId.NotFound"}); err != nil {
		t.Fatal(err)
	}
	if err := describe(); !eci.KeyRefused(err) {
		t.Fatalf("KeyRefused(%v) = false", err)
	}
	if st := h.State(time.Hour); !st.OK {
		t.Errorf("unavailable before the grace period: %+v", st)
	}
	st := h.State(0)
	if st.OK || st.Reason != eci.HealthReasonKeyRefused || !strings.Contains(st.Message, "alibaba-addon-secret") || st.Since.IsZero() {
		t.Errorf("state with a refused key = %+v", st)
	}
	// A NotFound answer is an answer: the key works again.
	sim.ClearFaults()
	if _, err := c.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{ContainerGroupIds: []string{"eci-none"}}); err != nil {
		t.Fatal(err)
	}
	if st := h.State(0); !st.OK {
		t.Errorf("state after an answer = %+v", st)
	}

	// An outage: server errors, then no answer at all.
	if err := sim.InjectFault(simulator.Fault{Action: "*", ErrorRate: 1, Code: simulator.CodeServiceUnavailable}); err != nil {
		t.Fatal(err)
	}
	if err := describe(); !eci.NoAnswer(err) {
		t.Fatalf("NoAnswer(%v) = false", err)
	}
	if st := h.State(0); st.OK || st.Reason != eci.HealthReasonUnreachable || !strings.Contains(st.Message, "ECI_ENDPOINT") {
		t.Errorf("state during an outage = %+v", st)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()
	h2 := eci.NewHealth()
	c2 := simtest.Client(t, closed, eci.Config{Health: h2, MaxAttempts: 1, Timeout: time.Second})
	if _, err := c2.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{}); !eci.NoAnswer(err) {
		t.Fatalf("NoAnswer(%v) = false for a closed port", err)
	}
	if st := h2.State(0); st.OK || st.Reason != eci.HealthReasonUnreachable {
		t.Errorf("state with a closed port = %+v", st)
	}
	// A call its caller cancelled says nothing.
	h3 := eci.NewHealth()
	c3 := simtest.Client(t, url, eci.Config{Health: h3})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c3.DescribeContainerGroups(cctx, &eci.DescribeContainerGroupsRequest{})
	if err == nil || eci.NoAnswer(err) {
		t.Errorf("cancelled call: err %v, NoAnswer %v", err, eci.NoAnswer(err))
	}
}
