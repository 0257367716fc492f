package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestGoMemLimit(t *testing.T) {
	for _, c := range []struct {
		name       string
		limit      int64
		gomemlimit string
		want       int64
	}{
		{"90 % of the container's limit", 1 << 30, "", 966367641},
		{"512Mi: 64 MiB left outside", 512 << 20, "", 448 << 20},
		{"300Mi: 64 MiB left outside", 300 << 20, "", 236 << 20},
		{"100Mi: never below half", 100 << 20, "", 50 << 20},
		{"GOMEMLIMIT set by hand wins", 1 << 30, "700MiB", 0},
		{"no limit", 0, "", 0},
		{"negative (malformed) limit", -1, "", 0},
		{"huge limit does not overflow", math.MaxInt64, "", math.MaxInt64 / 100 * 90},
	} {
		if got := goMemLimit(c.limit, c.gomemlimit); got != c.want {
			t.Errorf("%s: goMemLimit(%d, %q) = %d, want %d", c.name, c.limit, c.gomemlimit, got, c.want)
		}
	}
}

func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	setMemoryLimit(1<<30, "")
	if got := debug.SetMemoryLimit(-1); got != 966367641 {
		t.Errorf("after MEMORY_LIMIT_BYTES=1Gi the runtime's memory limit is %d, want 90 %% (966367641)", got)
	}
	debug.SetMemoryLimit(prev)
	setMemoryLimit(1<<30, "700MiB")
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("with GOMEMLIMIT set the runtime's memory limit changed to %d, want it left at %d", got, prev)
	}
}

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		gogc string
		want int
	}{{"", defaultGCPercent}, {"100", -1}, {"off", -1}} {
		if got := gcPercent(c.gogc); got != c.want {
			t.Errorf("gcPercent(%q) = %d, want %d", c.gogc, got, c.want)
		}
	}
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	setGCPercent("")
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, defaultGCPercent)
	}
	setGCPercent("100")
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=100 set: GC percent changed to %d", got)
	}
}
