package eci

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second},
		{6, 30 * time.Second}, {40, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := backoff(time.Second, 30*time.Second, tt.n); got != tt.want {
			t.Errorf("backoff(1s, 30s, %d) = %v, want %v", tt.n, got, tt.want)
		}
		for i := 0; i < 50; i++ {
			if j := jitter(tt.want); j < tt.want/2 || j > tt.want {
				t.Fatalf("jitter(%v) = %v, outside [d/2, d]", tt.want, j)
			}
		}
	}
}

// TestThrottledEscalation shows that answers to calls sent together do not
// stack pauses: only a throttled call sent after the pause began doubles it.
func TestThrottledEscalation(t *testing.T) {
	l := &opLimiter{}
	base, ceil := time.Second, time.Minute
	before := time.Now()
	if d := l.throttled(before, base, ceil); d < base/2 || d > base {
		t.Fatalf("first pause %v, want within [%v, %v]", d, base/2, base)
	}
	for i := 0; i < 10; i++ {
		l.throttled(before, base, ceil) // in flight with the first
	}
	if l.strikes != 1 {
		t.Fatalf("calls sent before the pause counted as %d strikes, want 1", l.strikes)
	}
	if d := l.throttled(time.Now(), base, ceil); d < base || d > 2*base {
		t.Errorf("second pause %v, want within [%v, %v]", d, base, 2*base)
	}
	l.succeeded()
	if l.strikes != 0 {
		t.Errorf("a success left %d strikes", l.strikes)
	}
}
