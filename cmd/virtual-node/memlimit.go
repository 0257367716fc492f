package main

import (
	"math"
	"runtime/debug"

	"k8s.io/klog/v2"
)

// memLimitPercent is the share of the container's memory limit given to
// Go's memory limit: the rest is the runtime's own memory and stacks,
// which the Go limit does not count, with room to spare.
const memLimitPercent = 90

// goMemLimit returns the Go memory limit for a container limited to
// limitBytes (MEMORY_LIMIT_BYTES), or 0 to leave the runtime alone: when
// GOMEMLIMIT is set (gomemlimit not empty) the runtime has already taken
// it, and without a limit there is nothing to stay under.
//
// Go's collector lets the heap grow to twice what is live before it runs
// (GOGC=100); at 10,000 pods that doubling, not the live heap, is what
// reaches the container's limit during a burst. With a memory limit the
// collector runs earlier as the heap nears it instead of the kernel
// killing the container.
func goMemLimit(limitBytes int64, gomemlimit string) int64 {
	if gomemlimit != "" || limitBytes <= 0 {
		return 0
	}
	if limitBytes > math.MaxInt64/100 {
		return math.MaxInt64 / 100 * memLimitPercent // no real container; avoid overflow
	}
	return limitBytes * memLimitPercent / 100
}

// setMemoryLimit applies goMemLimit.
func setMemoryLimit(limitBytes int64, gomemlimit string) {
	if lim := goMemLimit(limitBytes, gomemlimit); lim > 0 {
		debug.SetMemoryLimit(lim)
		klog.InfoS("Go memory limit set from the container's", "memoryLimitBytes", limitBytes, "goMemLimitBytes", lim, "percent", memLimitPercent)
	}
}

// defaultGCPercent is the collector's target unless GOGC is set: the heap
// grows to 1.5 times what is live before a collection instead of twice.
// Measured with make bench at 2,000 pods: peak RSS 187/178 → 142/140 MiB
// (−22 %) for 15.9/13.7 → 17.2/16.8 CPU s (+15 %); at 10,000 pods see the
// README (Performance).
const defaultGCPercent = 50

// gcPercent returns the GC percent to set, or -1 to leave the runtime's:
// an operator's GOGC wins.
func gcPercent(gogc string) int {
	if gogc != "" {
		return -1
	}
	return defaultGCPercent
}

// setGCPercent applies gcPercent.
func setGCPercent(gogc string) {
	if p := gcPercent(gogc); p >= 0 {
		debug.SetGCPercent(p)
	}
}
