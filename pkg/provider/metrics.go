package provider

import "github.com/prometheus/client_golang/prometheus"

// orphansDeleted counts groups deleted because their pod was gone: a
// non-zero rate means pods are deleted while the controller cannot act.
var orphansDeleted = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "vnode", Name: "orphan_groups_deleted_total",
	Help: "Container groups deleted because their pod no longer exists.",
})

// listingMisses counts groups a full status listing left out although they
// existed: the pod was kept, but a rising count means the cloud's listing
// cannot be trusted alone.
var listingMisses = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "vnode", Name: "status_listing_misses_total",
	Help: "Container groups missing from a full status listing but found when described by id.",
})

// missedDeletions counts pods deleted without the virtual-kubelet core
// telling the provider (found by housekeeping or from an informer
// tombstone): their groups would otherwise run on, billed.
var missedDeletions = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "vnode", Name: "missed_pod_deletions_total",
	Help: "Pods deleted without the core telling the provider, whose groups were then deleted by housekeeping or from an informer tombstone.",
})

// Pod start-up, stage by stage: where a pod's time between being bound to
// the node and being reported Running goes.
var (
	podSyncDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "vnode", Name: "pod_sync_delay_seconds",
		Help:    "From a pod's binding to this node (PodScheduled) until the node starts creating its container group: time spent waiting in the pod queue.",
		Buckets: startBuckets,
	})
	podCreateDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "vnode", Name: "pod_create_duration_seconds",
		Help:    "How long the node's first attempt to create a pod's container group took (service-account tokens, the cloud call, recording the result), whatever its outcome.",
		Buckets: startBuckets,
	})
	podRunningDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "vnode", Name: "pod_running_report_delay_seconds",
		Help:    "From a container group's creation until the node reports its pod Running; includes the cloud's own start-up time.",
		Buckets: startBuckets,
	})
)

var startBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300}

func init() {
	prometheus.MustRegister(orphansDeleted, listingMisses, missedDeletions, podSyncDelay, podCreateDuration, podRunningDelay)
}
