package doctor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
)

// TestECIPermissions probes the simulator under three RAM policies: full
// access passes; the documented policy passes with a note on the status
// fallback; a narrower one fails, listing exactly the refused actions and
// the minimal policy. The probes create, change and delete nothing.
func TestECIPermissions(t *testing.T) {
	cfg := simulator.DefaultConfig()
	cfg.QuotaScale = 0
	sim, url := simtest.Start(t, cfg)
	o := Options{Region: simulator.DefaultRegionID, Endpoint: url, AccessKeyID: simulator.DefaultAccessKeyID,
		AccessKeySecret: simulator.DefaultAccessKeySecret, Timeout: 5 * time.Second}
	ctx := context.Background()

	res := checkECIPermissions(ctx, o)
	if res.Status != Pass || !strings.Contains(res.Message, fmt.Sprintf("all %d", len(eci.ControllerActions))) {
		t.Errorf("full access: %+v", res)
	}
	for _, a := range eci.ControllerActions {
		if simtest.Calls(sim, a.Action) != 1 {
			t.Errorf("%s probed %d times, want once", a.Action, simtest.Calls(sim, a.Action))
		}
	}

	if err := sim.SetPolicy(simulator.DefaultAccessKeyID, simulator.PolicyDocumented); err != nil {
		t.Fatal(err)
	}
	res = checkECIPermissions(ctx, o)
	if res.Status != Pass || !strings.Contains(res.Message, "eci:DescribeContainerGroupStatus is not") {
		t.Errorf("documented policy: %+v", res)
	}

	narrow := simulator.Policy{Name: "narrow", Actions: []string{"CreateContainerGroup", "DeleteContainerGroup", "DescribeContainerGroups", "UpdateContainerGroup"}}
	if err := sim.SetPolicy(simulator.DefaultAccessKeyID, narrow); err != nil {
		t.Fatal(err)
	}
	res = checkECIPermissions(ctx, o)
	if res.Status != Fail {
		t.Fatalf("narrow policy passed: %+v", res)
	}
	for _, a := range eci.ControllerActions {
		refused := strings.Contains(res.Message, "eci:"+a.Action)
		allowed := false
		for _, n := range narrow.Actions {
			allowed = allowed || n == a.Action
		}
		if refused == allowed {
			t.Errorf("%s: listed as refused %v, allowed by the policy %v: %s", a.Action, refused, allowed, res.Message)
		}
	}
	if !strings.Contains(res.Fix, eci.MinimalPolicy()) {
		t.Errorf("fix lacks the minimal policy: %s", res.Fix)
	}
	if n := len(sim.Groups()); n != 0 {
		t.Errorf("the probes left %d container groups", n)
	}
}

// TestMinimalPolicy: the policy printed by doctor and the chart's NOTES
// allows every action the controller uses, and each of them is one the
// product documentation's custom policy lists, but the optional status call.
func TestMinimalPolicy(t *testing.T) {
	doc := map[string]bool{}
	for _, a := range simulator.PolicyDocumented.Actions {
		doc[a] = true
	}
	pol := eci.MinimalPolicy()
	for _, a := range eci.ControllerActions {
		if !strings.Contains(pol, `"eci:`+a.Action+`"`) {
			t.Errorf("minimal policy lacks %s", a.Action)
		}
		if a.Required != doc[a.Action] {
			t.Errorf("%s: required %v, in the documented policy %v", a.Action, a.Required, doc[a.Action])
		}
		if _, ok := eci.ProbeParams[a.Action]; !ok {
			t.Errorf("doctor has no probe for %s", a.Action)
		}
	}
}
