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
