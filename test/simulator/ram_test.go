package simulator

import (
	"net/http"
	"strings"
	"testing"
)

// TestRAMPolicy: an action the AccessKey's policy does not allow is answered
// as RAM does (403 Forbidden.RAM, the action in AccessDeniedDetail) before
// the operation runs; the documented policy allows exactly its 15 actions,
// and the admin API changes a key's policy at run time.
func TestRAMPolicy(t *testing.T) {
	const otherID, otherSecret = "other-key", "other-secret"
	e := newEnv(t, func(c *Config) {
		c.AccessKeys[otherID] = otherSecret
		c.Policies = map[string]Policy{DefaultAccessKeyID: PolicyDocumented}
	})
	other := e.newClient(otherID, otherSecret)

	// DescribeContainerGroupStatus is not in the documented policy.
	err := e.call("DescribeContainerGroupStatus", nil, nil)
	se := wantCode(t, err, CodeForbiddenRAM, http.StatusForbidden)
	// The SDK reads AccessDeniedDetail from the cloud's answers.
	if se.Message() != msgForbiddenRAM || se.AccessDeniedDetail()["AuthAction"] != "eci:DescribeContainerGroupStatus" {
		t.Errorf("refusal = %q %v, want the RAM message and AuthAction eci:DescribeContainerGroupStatus", se.Message(), se.AccessDeniedDetail())
	}
	// Every served action of the documented policy is allowed.
	for _, a := range PolicyDocumented.Actions {
		if _, served := operations[a]; !served {
			continue
		}
		if err := e.call(a, nil, nil); err != nil && serverError(t, err).ErrorCode() == CodeForbiddenRAM {
			t.Errorf("%s refused under the documented policy", a)
		}
	}
	if len(PolicyDocumented.Actions) != 15 {
		t.Errorf("documented policy has %d actions, the documentation lists 15", len(PolicyDocumented.Actions))
	}
	// A key without a policy has full access.
	if err := e.callWith(other, "DescribeContainerGroupStatus", nil, nil); err != nil {
		t.Errorf("full-access key refused: %v", err)
	}
	// A refused create creates nothing.
	if st := e.admin("PUT", "/admin/policies/"+otherID, `{"actions":["DescribeContainerGroups"]}`, nil); st != 200 {
		t.Fatalf("PUT policy: HTTP %d", st)
	}
	wantCode(t, e.callWith(other, "CreateContainerGroup", createParams("refused", nil), nil), CodeForbiddenRAM, http.StatusForbidden)
	if n := len(e.sim.Groups()); n != 0 {
		t.Errorf("a refused create left %d groups", n)
	}
	var pols struct{ Policies map[string]Policy }
	if st := e.admin("PUT", "/admin/policies/"+DefaultAccessKeyID, `{"preset":"full"}`, &pols); st != 200 {
		t.Fatalf("PUT preset: HTTP %d", st)
	}
	if p := pols.Policies[DefaultAccessKeyID]; p.Name != PolicyFullAccess.Name || p.Actions != nil {
		t.Errorf("policy after preset full = %+v", p)
	}
	e.mustCall("DescribeContainerGroupStatus", nil, nil)
	for body, want := range map[string]int{`{"preset":"nope"}`: 400, `{}`: 400, `{"preset":"full","actions":[]}`: 400} {
		if st := e.admin("PUT", "/admin/policies/"+otherID, body, nil); st != want {
			t.Errorf("PUT %s: HTTP %d, want %d", body, st, want)
		}
	}
	if st := e.admin("PUT", "/admin/policies/nobody", `{"preset":"full"}`, nil); st != 404 {
		t.Errorf("PUT unknown key: HTTP %d, want 404", st)
	}
	// Reset restores the configured policies.
	e.sim.Reset()
	wantCode(t, e.call("DescribeContainerGroupStatus", nil, nil), CodeForbiddenRAM, http.StatusForbidden)
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]string{"full": "AliyunECIFullAccess", "documented": "documented",
		"eci:CreateContainerGroup, DeleteContainerGroup": "custom"} {
		p, err := ParsePolicy(in)
		if err != nil || p.Name != want {
			t.Errorf("ParsePolicy(%q) = %+v, %v; want %s", in, p, err, want)
		}
	}
	p, _ := ParsePolicy("eci:CreateContainerGroup,DeleteContainerGroup")
	if strings.Join(p.Actions, ",") != "CreateContainerGroup,DeleteContainerGroup" {
		t.Errorf("actions = %v", p.Actions)
	}
	if _, err := ParsePolicy("fulll"); err == nil || !strings.Contains(err.Error(), "documented") {
		t.Errorf("ParsePolicy(fulll) = %v, want an error naming the presets", err)
	}
	if _, err := New(func() Config { c := DefaultConfig(); c.Policies = map[string]Policy{"x": PolicyDocumented}; return c }()); err == nil {
		t.Error("New accepted a policy for an unknown access key")
	}
}
