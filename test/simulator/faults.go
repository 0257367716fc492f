package simulator

import (
	"fmt"
	"net/http"
	"sort"
	"time"
)

// Fault injects errors and/or latency into OpenAPI calls. It is evaluated
// after authentication and throttling, so an injected error looks exactly
// like a server-side failure to the client.
type Fault struct {
	// Action is the OpenAPI action, or "*" for every action. A rule for a
	// specific action takes precedence over "*".
	Action string `json:"action"`
	// ErrorRate is the probability (0..1) that a call fails with Code.
	ErrorRate float64 `json:"errorRate,omitempty"`
	// ThrottleRate is the probability (0..1) that a call is refused with
	// Throttling.User (HTTP 400), as if the account's quota were used up by
	// someone else; with ErrorRate it models an error storm (e.g. 30 %
	// InternalError and 20 % throttling). ErrorRate + ThrottleRate ≤ 1; the
	// two outcomes never hit the same call, and a throttled call never
	// takes effect, even with AfterSuccess.
	ThrottleRate float64 `json:"throttleRate,omitempty"`
	// Times, if > 0, fails exactly the next Times calls (ErrorRate is then
	// ignored); the error part of the rule ends afterwards.
	Times int `json:"times,omitempty"`
	// Code is the error code (default InternalError).
	Code string `json:"code,omitempty"`
	// HTTPStatus defaults to the usual status for Code (500 for InternalError).
	HTTPStatus int `json:"httpStatus,omitempty"`
	// Message defaults to a generic message for Code.
	Message string `json:"message,omitempty"`
	// LatencyMs delays every matching call, failing or not.
	LatencyMs int `json:"latencyMs,omitempty"`
	// AfterSuccess applies the operation first and then returns the error,
	// simulating a response lost after the cloud committed the change.
	AfterSuccess bool `json:"afterSuccess,omitempty"`
}

type faultRule struct {
	Fault
	remaining int
}

type faultDecision struct {
	err          *apiError
	latency      time.Duration
	afterSuccess bool
}

// InjectFault installs (or replaces) the rule for f.Action. A rule with
// no error (ErrorRate, ThrottleRate and Times 0) and no latency removes the
// rule.
func (s *Simulator) InjectFault(f Fault) error {
	if f.Action == "" {
		return fmt.Errorf("fault: action is required (an OpenAPI action or \"*\")")
	}
	if f.Action != "*" {
		if _, ok := operations[f.Action]; !ok {
			return fmt.Errorf("fault: unknown action %q", f.Action)
		}
	}
	if f.ErrorRate < 0 || f.ErrorRate > 1 {
		return fmt.Errorf("fault: errorRate must be within [0, 1]")
	}
	if f.ThrottleRate < 0 || f.ErrorRate+f.ThrottleRate > 1 {
		return fmt.Errorf("fault: throttleRate must be within [0, 1 - errorRate]")
	}
	if f.Times < 0 || f.LatencyMs < 0 {
		return fmt.Errorf("fault: times and latencyMs must not be negative")
	}
	if f.HTTPStatus != 0 && (f.HTTPStatus < 400 || f.HTTPStatus > 599) {
		return fmt.Errorf("fault: httpStatus must be a 4xx or 5xx status")
	}
	if f.Code == "" {
		f.Code = CodeInternalError
	}
	if f.HTTPStatus == 0 {
		f.HTTPStatus = defaultStatusForCode(f.Code)
	}
	if f.Message == "" {
		f.Message = msgInternalError
		if f.Code == CodeThrottling {
			f.Message = msgThrottling
		} else if f.Code != CodeInternalError {
			f.Message = "Injected fault " + f.Code + "."
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.ErrorRate == 0 && f.ThrottleRate == 0 && f.Times == 0 && f.LatencyMs == 0 {
		delete(s.faults, f.Action)
		return nil
	}
	s.faults[f.Action] = &faultRule{Fault: f, remaining: f.Times}
	return nil
}

// RemoveFault deletes the rule for action ("*" included).
func (s *Simulator) RemoveFault(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, action)
}

// ClearFaults removes every fault rule.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]*faultRule{}
}

// Faults lists the active rules, sorted by action; Times shows the
// remaining count.
func (s *Simulator) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faultsLocked()
}

func (s *Simulator) faultsLocked() []Fault {
	out := make([]Fault, 0, len(s.faults))
	for _, r := range s.faults {
		f := r.Fault
		f.Times = r.remaining
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Action < out[j].Action })
	return out
}

// decideFault picks the outcome of the matching rule for one call.
// Caller holds s.mu.
func (s *Simulator) decideFault(action string) faultDecision {
	r := s.faults[action]
	if r == nil {
		r = s.faults["*"]
	}
	if r == nil {
		return faultDecision{}
	}
	d := faultDecision{latency: time.Duration(r.LatencyMs) * time.Millisecond, afterSuccess: r.AfterSuccess}
	fail := false
	switch {
	case r.Times == 0 && r.ThrottleRate > 0:
		u := s.rng.Float64()
		if u < r.ThrottleRate {
			d.err = newError(http.StatusBadRequest, CodeThrottling, "%s", msgThrottling)
			d.afterSuccess = false
			return d
		}
		fail = u < r.ThrottleRate+r.ErrorRate
	case r.Times > 0:
		if r.remaining > 0 {
			r.remaining--
			fail = true
		}
		if r.remaining == 0 && r.LatencyMs == 0 {
			delete(s.faults, r.Action)
		}
	case r.ErrorRate > 0:
		fail = s.rng.Float64() < r.ErrorRate
	}
	if fail {
		d.err = newError(r.HTTPStatus, r.Code, "%s", r.Message)
	}
	return d
}
