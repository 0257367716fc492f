package simulator

import (
	"math"
	"time"
)

// quota is a token bucket: Burst tokens, refilled at PerSecond.
type quota struct {
	Burst     float64
	PerSecond float64
}

// perMinute models a published "N per minute" quota as a bucket that holds
// a minute's worth of calls and refills evenly, so a client staying under
// the published rate is never throttled.
func perMinute(n float64) quota { return quota{Burst: n, PerSecond: n / 60} }

// publishedQuotas are the per-operation quotas from the ECI documentation.
// Operations without a published quota are not throttled.
var publishedQuotas = map[string]quota{
	"CreateContainerGroup":              {Burst: 100, PerSecond: 20},
	"DeleteContainerGroup":              {Burst: 100, PerSecond: 20},
	"DescribeContainerGroups":           perMinute(2000),
	"DescribeContainerGroupStatus":      perMinute(10000),
	"DescribeContainerGroupMetric":      perMinute(2000),
	"DescribeMultiContainerGroupMetric": perMinute(2000),
	"ExecContainerCommand":              perMinute(500),
	"DescribeContainerLog":              perMinute(500),
	"UpdateContainerGroup":              perMinute(500),
	"RestartContainerGroup":             perMinute(500),
	"CreateImageCache":                  perMinute(200),
}

type tokenBucket struct {
	q      quota
	tokens float64
	last   time.Time
}

// take refills the bucket for the time elapsed since the last call and
// consumes one token if available.
func (b *tokenBucket) take(now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(b.q.Burst, b.tokens+el*b.q.PerSecond)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// throttler holds one bucket per operation. It is guarded by Simulator.mu.
type throttler struct {
	scale   float64
	buckets map[string]*tokenBucket
}

func newThrottler(scale float64) *throttler {
	return &throttler{scale: scale, buckets: map[string]*tokenBucket{}}
}

// allow reports whether one call of action may proceed at now.
func (t *throttler) allow(action string, now time.Time) bool {
	if t.scale <= 0 {
		return true
	}
	q, ok := publishedQuotas[action]
	if !ok {
		return true
	}
	b := t.buckets[action]
	if b == nil {
		sq := quota{Burst: math.Max(1, math.Floor(q.Burst*t.scale)), PerSecond: q.PerSecond * t.scale}
		b = &tokenBucket{q: sq, tokens: sq.Burst, last: now}
		t.buckets[action] = b
	}
	return b.take(now)
}
