package main

import (
	"math"
	"runtime/debug"

	"k8s.io/klog/v2"
)

// memLimitPercent is the share of the container's memory limit given to
// Go's memory limit, and memLimitReserve the least left outside it: Go's
// limit counts the runtime's own memory (heap, stacks, metadata) but not
// the binary's text pages, which the container's RSS and its cgroup do.
// Measured at 10,000 pods with a 300 MiB container limit: at 90 % (a Go
// limit of 270 MiB) peak RSS was 319 MiB, 49 MiB over the Go limit and
// over the container's; hence 64 MiB at least.
const (
	memLimitPercent = 90
	memLimitReserve = 64 << 20
)

// goMemLimit returns the Go memory limit for a container limited to
// limitBytes (MEMORY_LIMIT_BYTES), or 0 to leave the runtime alone: when
// GOMEMLIMIT is set (gomemlimit not empty) the runtime has already taken
// it, and without a limit there is nothing to stay under. It is
// memLimitPercent of the limit, but leaves at least memLimitReserve (and
// never goes below half the limit).
//
// Go's collector lets the heap grow well past what is live before it runs;
// at 10,000 pods that growth, not the live heap, is what reaches the
// container's limit during a burst. With a memory limit the collector runs
// earlier as the heap nears it instead of the kernel killing the
// container.
func goMemLimit(limitBytes int64, gomemlimit string) int64 {
	if gomemlimit != "" || limitBytes <= 0 {
		return 0
	}
	if limitBytes > math.MaxInt64/100 {
		return math.MaxInt64 / 100 * memLimitPercent // no real container; avoid overflow
	}
	lim := min(limitBytes*memLimitPercent/100, limitBytes-memLimitReserve)
	return max(lim, limitBytes/2)
}

// setMemoryLimit applies goMemLimit.
func setMemoryLimit(limitBytes int64, gomemlimit string) {
	if lim := goMemLimit(limitBytes, gomemlimit); lim > 0 {
		debug.SetMemoryLimit(lim)
		klog.InfoS("Go memory limit set from the container's", "memoryLimitBytes", limitBytes, "goMemLimitBytes", lim, "percent", memLimitPercent, "reserveBytes", memLimitReserve)
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
