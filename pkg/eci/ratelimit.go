package eci

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Limit is the client-side token bucket of one ECI operation: Burst calls
// at once, refilled at PerSecond. The client waits for a token before every
// HTTP attempt, retries included, so it stays inside the account's quota
// instead of learning about it from Throttling answers.
type Limit struct {
	// PerSecond is the refill rate; 0 or less disables the client-side
	// limit of the operation.
	PerSecond float64
	// Burst is how many calls may go at once after a quiet period (at
	// least 1 when PerSecond > 0).
	Burst int
}

// defaultMaxThrottleBackoff caps the throttling pause (Config.MaxThrottleBackoff).
const defaultMaxThrottleBackoff = 30 * time.Second

// limits merges overrides over ClientLimits(1) and checks them.
func limits(overrides map[string]Limit) (map[string]Limit, error) {
	out := ClientLimits(1)
	for a, l := range overrides {
		if a == "" {
			return nil, fmt.Errorf("eci client: Limits: an operation name is required")
		}
		if l.PerSecond > 0 && l.Burst < 1 {
			return nil, fmt.Errorf("eci client: Limits[%s]: Burst must be at least 1 when PerSecond > 0 (got %d)", a, l.Burst)
		}
		out[a] = l
	}
	return out, nil
}

// opLimiter paces one operation: its token bucket, and a cool-down shared by
// every caller of the operation once the cloud answers Throttling. A
// throttled answer means the account's quota is used by someone else too
// (another controller, the user's scripts), so the whole operation slows
// down, not just the caller that happened to be refused.
type opLimiter struct {
	bucket *bucket // nil: no client-side quota

	mu      sync.Mutex
	until   time.Time // no call of the operation before this
	since   time.Time // when the current pause was decided
	strikes int       // pauses since the last success
}

// limiterSet holds one opLimiter per operation (those without a limit
// created on first use), and the client's share of the account's quotas
// that scales every bucket.
type limiterSet struct {
	base, ceil  time.Duration
	now         func() time.Time
	mu          sync.Mutex
	share       float64
	byOperation map[string]*opLimiter
}

// newLimiterSet makes the buckets of every limited operation at once, full,
// at share 1, so that every later re-scale applies to all of them alike.
func newLimiterSet(l map[string]Limit, base, ceil time.Duration) *limiterSet {
	s := &limiterSet{base: base, ceil: ceil, now: time.Now, share: 1, byOperation: map[string]*opLimiter{}}
	for a, q := range l {
		if q.PerSecond > 0 {
			s.byOperation[a] = &opLimiter{bucket: newBucket(q, 1, s.now)}
		}
	}
	return s
}

func (s *limiterSet) get(action string) *opLimiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.byOperation[action]
	if l == nil {
		l = &opLimiter{} // an operation without a limit
		s.byOperation[action] = l
	}
	return l
}

// setShare re-scales every bucket, present and future, to share of the
// configured limits.
func (s *limiterSet) setShare(share float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.share = share
	t := s.now()
	for _, l := range s.byOperation {
		if l.bucket != nil {
			l.bucket.setShare(t, share)
		}
	}
}

// wait blocks until the operation's cool-down has passed and a token is
// available, and reports how long that took.
func (l *opLimiter) wait(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for {
		l.mu.Lock()
		d := time.Until(l.until)
		l.mu.Unlock()
		if d <= 0 {
			break
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), ctx.Err()
		case <-t.C:
		}
	}
	if l.bucket != nil {
		if err := l.bucket.wait(ctx); err != nil {
			return time.Since(start), err
		}
	}
	return time.Since(start), nil
}

// throttled records a Throttling answer to a call sent at sent and pauses
// the operation: for a jittered delay that doubles with each pause since
// the last success, up to ceil. A call sent before the current pause began
// brings no news (calls in flight together are refused together), so it
// does not double the pause; it only makes sure the operation waits at
// least a jittered base delay from this answer. It returns the time left.
func (l *opLimiter) throttled(sent time.Time, base, ceil time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	d := jitter(base)
	if !sent.Before(l.since) {
		l.strikes++
		l.since = now
		d = jitter(backoff(base, ceil, l.strikes))
	}
	if until := now.Add(d); until.After(l.until) {
		l.until = until
	}
	return l.until.Sub(now)
}

// succeeded resets the throttling back-off of the operation.
func (l *opLimiter) succeeded() {
	l.mu.Lock()
	l.strikes = 0
	l.mu.Unlock()
}

// backoff is base doubled n-1 times, capped at ceil.
func backoff(base, ceil time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < ceil; i++ {
		d *= 2
	}
	return min(d, ceil)
}

// jitter picks a delay in [d/2, d], so callers refused together do not come
// back together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
