package eci

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// greedy is a client that sends a call whenever its bucket has a token:
// the worst case for the account's quota.
type greedy struct {
	b     *bucket
	alive bool
}

// step lets every live client take all the tokens it has at t, and
// returns how many calls went out.
func step(t time.Time, clients []*greedy) int {
	n := 0
	for _, c := range clients {
		if !c.alive {
			continue
		}
		for {
			delay, paused, changed := c.b.reserve(t)
			if paused {
				break
			}
			if delay > 0 {
				c.b.cancel(changed) // would have to wait: not now
				break
			}
			n++
		}
	}
	return n
}

// event changes the clients at a moment of the run.
type event struct {
	at time.Duration
	do func(t time.Time, clients []*greedy) []*greedy
}

// runSplit runs greedy clients of one account's quota through events, in
// steps of 10ms for 30s, and returns the calls sent in each step.
func runSplit(q Limit, events []event) []int {
	start := time.Unix(1_000_000, 0)
	const dt = 10 * time.Millisecond
	var clients []*greedy
	var sent []int
	for at := time.Duration(0); at <= 30*time.Second; at += dt {
		t := start.Add(at)
		for _, e := range events {
			if e.at == at {
				clients = e.do(t, clients)
			}
		}
		sent = append(sent, step(t, clients))
	}
	return sent
}

// overUse returns the worst excess, over every window of the run, of the
// calls sent beyond what the account's bucket allows in that window (its
// size plus its refill), and where it happened.
func overUse(q Limit, sent []int, dt time.Duration) (float64, string) {
	worst, where := 0.0, ""
	for i := range sent {
		n := 0
		for j := i; j < len(sent); j++ {
			n += sent[j]
			allowed := float64(q.Burst) + q.PerSecond*float64(j-i+1)*dt.Seconds()
			if ex := float64(n) - allowed; ex > worst {
				worst, where = ex, fmt.Sprintf("%d calls in [%v, %v], the account allows %.1f", n, time.Duration(i)*dt, time.Duration(j)*dt, allowed)
			}
		}
	}
	return worst, where
}

func joins(share float64) event {
	return event{do: func(t time.Time, cs []*greedy) []*greedy {
		b := newBucket(createQuota, 1, func() time.Time { return t })
		b.setShare(t, 0) // a newcomer starts empty, at share 0
		if share > 0 {
			b.setShare(t, share)
		}
		return append(cs, &greedy{b: b, alive: true})
	}}
}

// alone is the first replica: the whole quota and a full bucket, which it
// spends at once (the worst case for whoever comes next).
func alone() event {
	return event{do: func(t time.Time, cs []*greedy) []*greedy {
		return append(cs, &greedy{b: newBucket(createQuota, 1, func() time.Time { return t }), alive: true})
	}}
}

func setShare(i int, share float64) event {
	return event{do: func(t time.Time, cs []*greedy) []*greedy { cs[i].b.setShare(t, share); return cs }}
}

func die(i int) event {
	return event{do: func(_ time.Time, cs []*greedy) []*greedy { cs[i].alive = false; return cs }}
}

func at(d time.Duration, e event) event { e.at = d; return e }

var createQuota = PublishedQuotas["CreateContainerGroup"] // 100 + 20/s

// TestSplitNoOverUse runs greedy replicas through joins and deaths with
// the order package ownership keeps (a replica shrinks before it
// publishes its share; a replica grows only to what the others' published
// shares leave; a newcomer starts empty at share 0): in no window do they
// together send more than the account's bucket allows. The same run with
// the newcomer growing before the others shrink does over-use, which
// shows the check can see it.
func TestSplitNoOverUse(t *testing.T) {
	const dt = 10 * time.Millisecond
	s := time.Second
	tests := []struct {
		name     string
		events   []event
		wantOver bool
	}{
		{"join: the others shrink first, the newcomer starts empty at share 0", []event{
			at(0, alone()), at(3*s, joins(0)), at(4*s, setShare(0, 0.5)), at(5*s, setShare(1, 0.5)),
			at(9*s, joins(0)), at(10*s, setShare(0, 1.0/3)), at(10*s+500*time.Millisecond, setShare(1, 1.0/3)),
			at(11*s, setShare(2, 1.0/3)),
		}, false},
		{"death: the survivors grow once it is counted out", []event{
			at(0, alone()), at(0, setShare(0, 0.5)), at(0, joins(0.5)),
			at(4*s, die(1)), at(6*s, setShare(0, 1)),
			at(10*s, joins(0)), at(10*s, setShare(0, 0.5)), at(11*s, setShare(2, 0.5)),
			at(15*s, die(0)), at(17*s, setShare(2, 1)),
		}, false},
		{"join done wrong: the newcomer takes half before the other shrinks", []event{
			at(0, alone()), at(3*s, joins(0.5)), at(5*s, setShare(0, 0.5)),
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := runSplit(createQuota, tt.events)
			total := 0
			for _, n := range sent {
				total += n
			}
			if total < 400 {
				t.Fatalf("only %d calls in 30s: the clients did not use their shares", total)
			}
			// One call of slack for the 10ms steps.
			over, where := overUse(createQuota, sent, dt)
			if got := over > 1; got != tt.wantOver {
				t.Errorf("over-use %v (worst: %s), want over-use %v", over, where, tt.wantOver)
			}
		})
	}
}

// TestBucketRescale checks the re-scaling rules one by one on a fake
// clock: a shrink caps the tokens and queues waiting calls again at the
// new rate; a grow adds no token; share 0 grants nothing.
func TestBucketRescale(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	b := newBucket(createQuota, 1, func() time.Time { return t0 })
	// The bucket's size: Create's 100 less the arrival slack's worth at
	// 20/s.
	full := 100 - 20*arrivalSlack.Seconds()
	if got := b.tokensAt(t0); got != full {
		t.Fatalf("a new bucket holds %v tokens, want the full %v", got, full)
	}
	// Take them all and queue 10 more at 20/s: the 10th waits 0.5s.
	for i := 0; i < int(full); i++ {
		if d, _, _ := b.reserve(t0); d != 0 {
			t.Fatalf("call %d waits %v with tokens left", i, d)
		}
	}
	var last time.Duration
	for i := 0; i < 10; i++ {
		last, _, _ = b.reserve(t0)
	}
	if last != 500*time.Millisecond {
		t.Fatalf("10th waiting call at share 1 waits %v, want 500ms", last)
	}
	// Halve the share: the 10 waiting calls give their reservations back
	// and queue again at 10/s, so the 10th now waits 1s.
	b.setShare(t0, 0.5)
	if got := b.tokensAt(t0); got != 0 {
		t.Fatalf("after the shrink the bucket holds %v, want 0 (nothing left, no debt)", got)
	}
	var changed []<-chan struct{}
	for i := 0; i < 10; i++ {
		var ch <-chan struct{}
		last, _, ch = b.reserve(t0)
		changed = append(changed, ch)
	}
	if last != time.Second {
		t.Errorf("10th waiting call at share 0.5 waits %v, want 1s", last)
	}
	for _, ch := range changed { // the waiting calls go out
		b.due(t0.Add(time.Second), ch)
	}
	// After a quiet minute the bucket holds its half size, not more.
	t1 := t0.Add(time.Minute)
	if got := b.tokensAt(t1); got != full/2 {
		t.Errorf("a full bucket at share 0.5 holds %v, want %v", got, full/2)
	}
	// Growing adds no token; the tokens come at the new rate.
	b.setShare(t1, 1)
	if got := b.tokensAt(t1); got != full/2 {
		t.Errorf("right after growing to share 1 the bucket holds %v, want still %v", got, full/2)
	}
	if got := b.tokensAt(t1.Add(time.Second)); got != full/2+20 {
		t.Errorf("a second after growing the bucket holds %v, want %v (20/s)", got, full/2+20)
	}
	// Shrinking caps the tokens at the new size at once.
	b.setShare(t1.Add(time.Second), 0.25)
	if got := b.tokensAt(t1.Add(time.Second)); got != full/4 {
		t.Errorf("after shrinking to share 0.25 the bucket holds %v, want %v", got, full/4)
	}
	// Share 0 grants nothing.
	b.setShare(t1.Add(time.Second), 0)
	if _, paused, _ := b.reserve(t1.Add(time.Hour)); !paused {
		t.Error("a bucket at share 0 granted a call")
	}
}

// TestBucketWaitFollowsShare: a call waiting at share 0 goes out once the
// share grows, and a call that waits longer than its context gives its
// reservation back.
func TestBucketWaitFollowsShare(t *testing.T) {
	b := newBucket(Limit{PerSecond: 1000, Burst: 1}, 1, nil)
	b.setShare(time.Now(), 0)
	done := make(chan error, 1)
	go func() { done <- b.wait(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("a call went out at share 0 (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	b.setShare(time.Now(), 1)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting call did not go out after the share grew")
	}

	slow := newBucket(Limit{PerSecond: 0.01, Burst: 1}, 1, nil)
	if err := slow.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := slow.wait(ctx); err == nil {
		t.Fatal("a call went out 100s early")
	}
	slow.mu.Lock()
	pending, tokens := slow.pending, slow.tokens
	slow.mu.Unlock()
	if pending != 0 || tokens < -0.01 {
		t.Errorf("a call that gave up left %d reservations and %v tokens, want none owed", pending, tokens)
	}
}
