package eci

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Health follows, from the outcome of every attempt the client sends
// (Config.Health), whether the cloud accepts the AccessKey and answers at
// all, and which actions the RAM policy refuses. One Health serves one
// client, i.e. one AccessKey and endpoint, whatever the number of nodes
// that share it. It is safe for concurrent use.
type Health struct {
	mu  sync.Mutex
	now func() time.Time
	// failingSince is the first failed attempt (key refused or no answer)
	// since the cloud last answered; zero while it answers.
	failingSince time.Time
	last         *Error
	// refused are the actions the RAM policy refused, with when they were
	// last refused; an action leaves once it succeeds.
	refused map[string]time.Time
}

// NewHealth returns a Health that has seen nothing yet (healthy).
func NewHealth() *Health { return &Health{now: time.Now, refused: map[string]time.Time{}} }

// observe records one attempt's outcome (err nil: success).
func (h *Health) observe(action string, err *Error) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if err != nil && err.HTTPStatus == 0 && err.Code == "" && !KeyRefused(err) && !NoAnswer(err) {
		return // a call its caller gave up on: no answer, and not the cloud's fault
	}
	if err != nil && (KeyRefused(err) || NoAnswer(err)) {
		if h.failingSince.IsZero() {
			h.failingSince = now
		}
		h.last = err
		return
	}
	// Any other outcome is an answer of the cloud with the key accepted:
	// a success, a refused action, or an error past the RAM check
	// (NotFound, InvalidParameter...), which means the action itself is
	// allowed.
	h.failingSince, h.last = time.Time{}, nil
	switch {
	case err != nil && permissionCodes[err.Code]:
		h.refused[action] = now
	case err != nil && err.Class == ClassThrottled:
		// Flow control may come before the RAM check: it proves nothing.
	default:
		delete(h.refused, action)
	}
}

// Reasons of HealthState.
const (
	HealthReasonAnswering   = "CloudAnswering"
	HealthReasonKeyRefused  = "AccessKeyRefused"
	HealthReasonUnreachable = "EndpointUnreachable"
)

// HealthState is the cloud's state as the Node shows it.
type HealthState struct {
	// OK is false once the cloud has refused the AccessKey, or not
	// answered, for at least the grace period.
	OK bool
	// Since is when the current failure began (zero when OK).
	Since   time.Time
	Reason  string
	Message string
}

// State reports the cloud as unavailable once every attempt for grace has
// failed with a refused AccessKey or without an answer.
func (h *Health) State(grace time.Duration) HealthState {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failingSince.IsZero() || h.now().Sub(h.failingSince) < grace {
		return HealthState{OK: true, Reason: HealthReasonAnswering, Message: "the ECI API answers and accepts the AccessKey"}
	}
	e := h.last
	st := HealthState{Since: h.failingSince}
	since := h.failingSince.UTC().Format(time.RFC3339)
	if KeyRefused(e) {
		st.Reason = HealthReasonKeyRefused
		what := e.Code
		if what == "" {
			what = "the credentials cannot be resolved"
		}
		st.Message = fmt.Sprintf("the ECI API refuses the AccessKey since %s (%s, action %s); new pods are not scheduled here until it accepts it: "+
			"check the AccessKey in Secret kube-system/alibaba-addon-secret (access-key-id, access-key-secret), that it is enabled, "+
			"or the RRSA/instance role", since, what, e.Action)
		return st
	}
	st.Reason = HealthReasonUnreachable
	what := e.Code
	if what == "" {
		what = "no answer"
	}
	st.Message = fmt.Sprintf("the ECI API has not answered since %s (%s, action %s); new pods are not scheduled here until it does: "+
		"check ECI_REGION, ECI_ENDPOINT and that this controller reaches the endpoint", since, what, e.Action)
	return st
}

// Refused lists the actions the RAM policy refused and that have not
// succeeded since, sorted.
func (h *Health) Refused() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.refused))
	for a := range h.refused {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
