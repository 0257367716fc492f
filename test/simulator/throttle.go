package simulator

import (
	"math"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
)

// tokenBucket is one operation's quota: Burst tokens, refilled at
// PerSecond, on the simulator's clock.
type tokenBucket struct {
	q      eci.Limit
	tokens float64
	last   time.Time
}

// take refills the bucket for the time elapsed since the last call and
// consumes one token if available.
func (b *tokenBucket) take(now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(b.q.Burst), b.tokens+el*b.q.PerSecond)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// throttler holds one bucket per operation, with the published quotas
// (eci.PublishedQuotas, the table the client paces itself below)
// scaled by Config.QuotaScale. It is guarded by Simulator.mu.
type throttler struct {
	quotas  map[string]eci.Limit
	buckets map[string]*tokenBucket
}

func newThrottler(scale float64) *throttler {
	return &throttler{quotas: eci.ScaledLimits(scale), buckets: map[string]*tokenBucket{}}
}

// allow reports whether one call of action may proceed at now. Operations
// without a published quota, and every operation at QuotaScale 0, are
// never throttled.
func (t *throttler) allow(action string, now time.Time) bool {
	q, ok := t.quotas[action]
	if !ok || q.PerSecond <= 0 {
		return true
	}
	b := t.buckets[action]
	if b == nil {
		b = &tokenBucket{q: q, tokens: float64(q.Burst), last: now}
		t.buckets[action] = b
	}
	return b.take(now)
}
