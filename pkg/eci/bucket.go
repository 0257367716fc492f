package eci

import (
	"context"
	"math"
	"sync"
	"time"
)

// bucket is the token bucket of one operation whose size and rate follow
// this client's share of the account's quota (Client.SetShare). Callers
// reserve a token, running into debt when there is none, and wait until
// the debt is paid at the current rate, so waiters keep their order and
// one token is never granted twice.
//
// Re-scaling keeps the sum of every client's grants inside the account's
// bucket as long as the shares of all clients never add up to more than
// 1 at any instant (package ownership publishes shares so that they do):
//
//   - between s and t a client grants at most tokens(s) + the integral of
//     its rate over [s, t]; tokens never exceed the bucket size. With
//     sizes and rates proportional to the shares, the clients together
//     grant at most the account's bucket plus its refill over [s, t],
//     which is what the cloud allows.
//   - shrinking caps the tokens at the new size at once, and the calls
//     already waiting give their reservations back and queue again at the
//     new rate (reservations made at the old rate would otherwise keep
//     the old pace);
//   - growing adds no token: the bucket refills at the new rate from what
//     it holds, so a grown share is reached one refill window later;
//   - a new client starts with an empty bucket at share 0 until its share
//     is set.
//
// At share 0 nothing is granted: callers wait until the share grows or
// their context ends.
type bucket struct {
	base Limit            // the whole budget (share 1)
	now  func() time.Time // the clock (tests give their own)

	mu      sync.Mutex
	share   float64
	tokens  float64 // negative: owed to waiters holding reservations
	last    time.Time
	pending int           // reservations not yet due
	changed chan struct{} // closed and replaced on every re-scale
}

func newBucket(base Limit, share float64, now func() time.Time) *bucket {
	if now == nil {
		now = time.Now
	}
	b := &bucket{base: base, now: now, share: share, last: now(), changed: make(chan struct{})}
	b.tokens = b.burstLocked()
	return b
}

// arrivalSlack is kept out of every bucket: its size is the Limit's Burst
// less this long at its rate. A call's trip to the cloud takes more or
// less time than its neighbours', so calls granted at the cloud's own pace
// arrive bunched: in any window the cloud can see the calls granted in a
// window longer by the largest difference in trip times. A client whose
// bucket is exactly the cloud's (Create: 100 + 20/s) then collects a
// Throttling answer whenever both run empty. With 50ms (one call of
// Create's 20/s), a 10,000-pod run of two replicas on a loaded 2-core
// machine still collected 7; 500ms absorbs trips half a second apart and
// costs only burst (Create's bucket holds 90), never rate.
const arrivalSlack = 500 * time.Millisecond

func (b *bucket) rateLocked() float64 { return b.base.PerSecond * b.share }
func (b *bucket) burstLocked() float64 {
	return max(0, float64(b.base.Burst)-b.base.PerSecond*arrivalSlack.Seconds()) * b.share
}

// advanceLocked refills the bucket up to t at the current rate.
func (b *bucket) advanceLocked(t time.Time) {
	if t.After(b.last) {
		b.tokens = math.Min(b.burstLocked(), b.tokens+t.Sub(b.last).Seconds()*b.rateLocked())
		b.last = t
	}
}

// reserve takes a token at t. It returns how long the caller must wait
// before acting (0: act now), whether the share is 0 (nothing granted:
// wait for changed), and the channel closed by the next re-scale.
func (b *bucket) reserve(t time.Time) (delay time.Duration, paused bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.share <= 0 || b.base.PerSecond <= 0 {
		return 0, true, b.changed
	}
	b.advanceLocked(t)
	b.tokens--
	delay = time.Duration(-b.tokens / b.rateLocked() * float64(time.Second))
	if delay <= 0 {
		return 0, false, b.changed
	}
	b.pending++
	return delay, false, b.changed
}

// due records that a reservation has come due (the caller acts on it).
// When a re-scale gave it back meanwhile, the token is taken again, at
// the new rate, so the grant is still counted once.
func (b *bucket) due(t time.Time, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if changed == b.changed {
		b.pending--
		return
	}
	b.advanceLocked(t)
	b.tokens--
}

// cancel gives back a reservation that is not due yet (the caller gave
// up), unless a re-scale already took every reservation back.
func (b *bucket) cancel(changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if changed == b.changed {
		b.pending--
		b.tokens++
	}
}

// setShare re-scales the bucket at t to share of the whole budget.
func (b *bucket) setShare(t time.Time, share float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked(t)
	// Reservations not yet due are given back; their callers reserve
	// again at the new rate.
	b.tokens += float64(b.pending)
	b.pending = 0
	b.share = share
	b.tokens = math.Min(b.tokens, b.burstLocked())
	close(b.changed)
	b.changed = make(chan struct{})
}

// wait blocks until the caller may send one call, or ctx ends.
func (b *bucket) wait(ctx context.Context) error {
	for {
		delay, paused, changed := b.reserve(b.now())
		if !paused && delay <= 0 {
			return nil
		}
		var timer *time.Timer
		var fired <-chan time.Time
		if !paused {
			timer = time.NewTimer(delay)
			fired = timer.C
		}
		select {
		case <-ctx.Done():
			if !paused {
				timer.Stop()
				b.cancel(changed)
			}
			return ctx.Err()
		case <-fired:
			b.due(b.now(), changed)
			return nil
		case <-changed:
			// Re-scaled: the reservation was taken back; queue again.
			if timer != nil {
				timer.Stop()
			}
		}
	}
}

// tokensAt reports the tokens at t (negative: owed to waiters), for tests.
func (b *bucket) tokensAt(t time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked(t)
	return b.tokens
}
