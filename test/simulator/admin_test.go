package simulator

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestAdminFaults(t *testing.T) {
	e := newEnv(t, nil)
	var faults struct{ Faults []Fault }
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"unknown action", `{"action":"Nope","errorRate":1}`, 400},
		{"bad rate", `{"action":"*","errorRate":2}`, 400},
		{"unknown field", `{"action":"*","rate":1}`, 400},
		{"bad status", `{"action":"*","errorRate":1,"httpStatus":200}`, 400},
		{"negative throttle rate", `{"action":"*","throttleRate":-0.1}`, 400},
		{"rates above one", `{"action":"*","errorRate":0.6,"throttleRate":0.5}`, 400},
	}
	for _, tc := range tests {
		if got := e.admin("POST", "/admin/faults", tc.body, nil); got != tc.status {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.status)
		}
	}

	// errorRate 1 fails every create with the chosen code and status.
	if st := e.admin("POST", "/admin/faults", `{"action":"CreateContainerGroup","errorRate":1,"code":"InternalError","httpStatus":500}`, &faults); st != 200 || len(faults.Faults) != 1 {
		t.Fatalf("inject: %d %+v", st, faults)
	}
	wantCode(t, e.call("CreateContainerGroup", createParams("ff", nil), nil), CodeInternalError, http.StatusInternalServerError)
	e.mustCall("DescribeContainerGroups", nil, nil) // other actions unaffected
	// errorRate 0 removes the rule.
	e.admin("POST", "/admin/faults", `{"action":"CreateContainerGroup","errorRate":0}`, &faults)
	if len(faults.Faults) != 0 {
		t.Fatalf("rule not removed: %+v", faults)
	}
	e.create("ff", nil)

	// Count-limited faults on every action.
	e.admin("POST", "/admin/faults", `{"action":"*","times":2,"code":"ServiceUnavailable"}`, nil)
	for i := 0; i < 2; i++ {
		wantCode(t, e.call("DescribeContainerGroups", nil, nil), CodeServiceUnavailable, http.StatusServiceUnavailable)
	}
	e.mustCall("DescribeContainerGroups", nil, nil)

	// afterSuccess: the create happens but the client sees an error.
	e.admin("POST", "/admin/faults", `{"action":"CreateContainerGroup","times":1,"afterSuccess":true}`, nil)
	wantCode(t, e.call("CreateContainerGroup", createParams("lost", nil), nil), CodeInternalError, http.StatusInternalServerError)
	if n := len(e.sim.Groups()); n != 2 {
		t.Fatalf("afterSuccess should still create the group: %d groups", n)
	}

	// Latency delays calls.
	e.admin("POST", "/admin/faults", `{"action":"DescribeContainerGroups","latencyMs":60}`, nil)
	start := time.Now()
	e.mustCall("DescribeContainerGroups", nil, nil)
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("latency fault took only %v", d)
	}
	if st := e.admin("DELETE", "/admin/faults", "", &faults); st != 200 || len(faults.Faults) != 0 {
		t.Fatalf("delete faults: %d %+v", st, faults)
	}

	var calls struct{ Calls map[string]map[string]int }
	e.admin("GET", "/admin/calls", "", &calls)
	if c := calls.Calls["CreateContainerGroup"]; c["OK"] != 1 || c[CodeInternalError] != 2 {
		t.Errorf("create calls %v", c)
	}
	if c := calls.Calls["DescribeContainerGroups"]; c[CodeServiceUnavailable] != 2 || c["OK"] != 3 {
		t.Errorf("describe calls %v", c)
	}
	var reqs struct{ Requests []RecordedRequest }
	e.admin("GET", "/admin/requests?action=CreateContainerGroup", "", &reqs)
	if len(reqs.Requests) != 3 || reqs.Requests[0].Params["ContainerGroupName"] != "ff" || reqs.Requests[0].Params["Signature"] != "" {
		t.Errorf("requests %+v", reqs.Requests)
	}
	var after struct{ Calls map[string]map[string]int }
	e.admin("POST", "/admin/reset-calls", "", &after)
	if len(after.Calls) != 0 || len(e.sim.Requests("")) != 0 {
		t.Errorf("reset-calls left %v", after.Calls)
	}
}

func TestAdminFailAndStock(t *testing.T) {
	e := newEnv(t, nil)
	a := e.create("victim", script("Container.1", "echo hi; sleep infinity"))
	b := e.create("spot", nil)
	e.clock.Advance(time.Minute)

	var g ContainerGroup
	if st := e.admin("POST", "/admin/groups/"+a+"/fail", "", &g); st != 200 || g.Status != StatusFailed {
		t.Fatalf("fail: %d %s", st, g.Status)
	}
	g = e.describe(a)
	cs := g.Containers[0].CurrentState
	if g.Status != StatusFailed || cs.State != StateTerminated || cs.ExitCode != 137 || g.FailedTime != "2024-05-06T07:09:09Z" {
		t.Fatalf("failed group: %s %+v %s", g.Status, cs, g.FailedTime)
	}
	warned := false
	for _, ev := range g.Events {
		warned = warned || (ev.Type == "Warning" && ev.Reason == "HostFailure")
	}
	if !warned {
		t.Errorf("no Warning event: %+v", g.Events)
	}
	if st := e.admin("POST", "/admin/groups/"+b+"/fail?status=Expired", "", &g); st != 200 || g.Status != StatusExpired || g.ExpiredTime == "" {
		t.Fatalf("expire: %d %s", st, g.Status)
	}
	for path, want := range map[string]int{
		"/admin/groups/" + a + "/fail":                409, // already terminal
		"/admin/groups/eci-nope/fail":                 404,
		"/admin/groups/" + a + "/fail?status=Running": 400,
	} {
		if st := e.admin("POST", path, "", nil); st != want {
			t.Errorf("POST %s: %d, want %d", path, st, want)
		}
	}

	var z ZoneState
	if st := e.admin("PUT", "/admin/zones/cn-hangzhou-h/stock", `{"cpu":3,"memory":6}`, &z); st != 200 || z.Stock.Cpu != 3 {
		t.Fatalf("set stock: %d %+v", st, z)
	}
	// Failed and Expired groups released their stock: one 2-vCPU group fits, a second does not.
	e.create("one", nil)
	wantCode(t, e.call("CreateContainerGroup", createParams("two", nil), nil), CodeNoStock, http.StatusForbidden)
}

func TestAdminStateAndReset(t *testing.T) {
	e := newEnv(t, nil)
	e.create("s1", map[string]string{"Tag.1.Key": TagPodName, "Tag.1.Value": "pod-1"})
	var st State
	if code := e.admin("GET", "/admin/state", "", &st); code != 200 {
		t.Fatalf("state: %d", code)
	}
	if len(st.Zones) != 3 || st.Zones[0].Used.Cpu != 2 || st.Zones[0].Free.Cpu != 998 ||
		st.Zones[0].VSwitches[0].IpsInUse != 1 || len(st.Groups) != 1 || st.Groups[0].PodName != "pod-1" {
		t.Fatalf("state %+v", st)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"PUT", "/admin/zones/nope/stock", `{"cpu":1,"memory":1}`, 404},
		{"PUT", "/admin/zones/cn-hangzhou-h/stock", `{"cpu":-1,"memory":1}`, 400},
		{"PUT", "/admin/zones/cn-hangzhou-h/stock", ``, 400},
		{"GET", "/admin/nothing", "", 404},
		{"GET", "/admin/groups/eci-nope", "", 404},
		{"GET", "/admin/groups", "", 200},
	} {
		if got := e.admin(tc.method, tc.path, tc.body, nil); got != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.status)
		}
	}
	e.admin("POST", "/admin/reset", "", &st)
	if len(st.Groups) != 0 || st.Zones[0].Used.Cpu != 0 || st.Zones[0].VSwitches[0].IpsInUse != 0 {
		t.Fatalf("after reset %+v", st)
	}
}

// TestErrorStormFault shows that one rule expresses "30 % 5xx plus
// throttling": both outcomes occur in about their share, throttled calls
// never take effect even with afterSuccess, and failed creates do.
func TestErrorStormFault(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Seed = 7; c.QuotaScale = 0 })
	if err := e.sim.InjectFault(Fault{Action: "*", ErrorRate: 0.3, ThrottleRate: 0.2, AfterSuccess: true}); err != nil {
		t.Fatal(err)
	}
	const n = 200 // fewer than the IPs of one vSwitch
	for i := 0; i < n; i++ {
		_ = e.call("CreateContainerGroup", createParams(fmt.Sprintf("storm-%d", i), nil), nil)
	}
	calls := e.sim.Calls()["CreateContainerGroup"]
	t.Logf("outcomes: %v", calls)
	tests := []struct {
		outcome  string
		min, max int
	}{
		{CodeThrottling, n * 12 / 100, n * 28 / 100},
		{CodeInternalError, n * 22 / 100, n * 38 / 100},
		{"OK", n * 42 / 100, n * 58 / 100},
	}
	for _, tt := range tests {
		if got := calls[tt.outcome]; got < tt.min || got > tt.max {
			t.Errorf("%s: %d of %d calls, want %d..%d", tt.outcome, got, n, tt.min, tt.max)
		}
	}
	if got, want := len(e.sim.Groups()), calls["OK"]+calls[CodeInternalError]; got != want {
		t.Errorf("%d groups exist, want %d (every call but the throttled ones takes effect)", got, want)
	}
}
