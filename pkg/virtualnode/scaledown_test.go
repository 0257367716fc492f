package virtualnode

import (
	"context"
	"testing"
	"time"
)

// TestStopAfter: the nodes' context outlives a cancelled parent until the
// decision on what to do before stopping is made and that is done (a pod
// scaled away while it was starting still drains), and not longer.
func TestStopAfter(t *testing.T) {
	done := func(ctx context.Context) bool {
		select {
		case <-ctx.Done():
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}
	t.Run("nothing to do", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		ctx, stop, decide := stopAfter(parent)
		defer stop()
		decide(nil)
		if done(ctx) {
			t.Fatal("ended before the parent")
		}
		cancel()
		if !done(ctx) {
			t.Fatal("did not end with the parent")
		}
	})
	t.Run("stopped before the decision", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		ctx, stop, decide := stopAfter(parent)
		defer stop()
		cancel()
		if done(ctx) {
			t.Fatal("ended before the decision was made")
		}
		ran := make(chan bool, 1)
		decide(func(c context.Context) { ran <- c.Err() == nil })
		select {
		case alive := <-ran:
			if !alive {
				t.Error("the function ran with its context already ended")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the function did not run")
		}
		if !done(ctx) {
			t.Fatal("did not end after the function")
		}
		decide(func(context.Context) { t.Error("a second decision ran") })
	})
	t.Run("stop", func(t *testing.T) {
		ctx, stop, _ := stopAfter(context.Background())
		stop()
		if !done(ctx) {
			t.Fatal("stop did not end it")
		}
	})
}
