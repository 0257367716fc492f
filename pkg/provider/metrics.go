package provider

import (
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the provider's Prometheus metrics. Every one carries a node
// label, as one process runs up to 100 virtual nodes: build them once per
// registry with NewMetrics and give the same Metrics to every Provider of
// the process (Options.Metrics).
type Metrics struct {
	// orphansDeleted counts groups deleted because their pod was gone: a
	// non-zero rate means pods are deleted while the controller cannot act.
	orphansDeleted *prometheus.CounterVec
	// listingMisses counts groups a full status listing left out although
	// they existed: the pod was kept, but a rising count means the cloud's
	// listing cannot be trusted alone.
	listingMisses *prometheus.CounterVec
	// missedDeletions counts pods deleted without the virtual-kubelet core
	// telling the provider (found by housekeeping or from an informer
	// tombstone): their groups would otherwise run on, billed.
	missedDeletions *prometheus.CounterVec
	// Pod start-up, stage by stage: where a pod's time between being bound
	// to the node and being reported Running goes.
	podSyncDelay, podCreateDuration, podRunningDelay *prometheus.HistogramVec
	// statusFallback is 1 while pod status is polled with
	// DescribeContainerGroups because the RAM policy refuses
	// DescribeContainerGroupStatus (fallback.go).
	statusFallback *prometheus.GaugeVec
	// cloudAvailable is 0 while the node shows ContainerInstanceAPI=False
	// (AccessKey refused or endpoint unreachable past the grace period).
	cloudAvailable *prometheus.GaugeVec
	// actionRefused is 1 for each ECI action the RAM policy refused and
	// that has not succeeded since.
	actionRefused *prometheus.GaugeVec
	// keyRefused is 1 while the node shows ContainerInstanceAPI=False
	// because the cloud refuses the AccessKey (not because it is
	// unreachable).
	keyRefused *prometheus.GaugeVec
	// pods are the nodes' pods by phase and the age of the oldest Pending
	// one, counted at scrape time (podmetrics.go).
	pods *podCollector
}

var startBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300}

// NewMetrics builds the provider's metrics and registers them with reg
// (none when reg is nil); registering twice with one registry panics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	node := []string{"node"}
	m := &Metrics{
		orphansDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vnode", Name: "orphan_groups_deleted_total",
			Help: "Container groups deleted because their pod no longer exists.",
		}, node),
		listingMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vnode", Name: "status_listing_misses_total",
			Help: "Container groups missing from a full status listing but found when described by id.",
		}, node),
		missedDeletions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vnode", Name: "missed_pod_deletions_total",
			Help: "Pods deleted without the core telling the provider, whose groups were then deleted by housekeeping or from an informer tombstone.",
		}, node),
		podSyncDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vnode", Name: "pod_sync_delay_seconds",
			Help:    "From a pod's binding to this node (PodScheduled) until the node starts creating its container group: time spent waiting in the pod queue.",
			Buckets: startBuckets,
		}, node),
		podCreateDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vnode", Name: "pod_create_duration_seconds",
			Help:    "How long the node's first attempt to create a pod's container group took (service-account tokens, the cloud call, recording the result), whatever its outcome.",
			Buckets: startBuckets,
		}, node),
		podRunningDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vnode", Name: "pod_running_report_delay_seconds",
			Help:    "From a container group's creation until the node reports its pod Running; includes the cloud's own start-up time.",
			Buckets: startBuckets,
		}, node),
		statusFallback: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "vnode", Name: "status_fallback",
			Help: "1 while pod status is polled with DescribeContainerGroups because the AccessKey's RAM policy refuses DescribeContainerGroupStatus.",
		}, node),
		cloudAvailable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "vnode", Name: "cloud_api_available",
			Help: "0 while the ECI API refuses the AccessKey or does not answer past the grace period (Node condition ContainerInstanceAPI=False, taint " + TaintCloudUnavailable + "), else 1.",
		}, node),
		actionRefused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "vnode", Name: "cloud_action_refused",
			Help: "1 for each ECI action the AccessKey's RAM policy refused (Forbidden.RAM) and that has not succeeded since.",
		}, []string{"node", "action"}),
		keyRefused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "vnode", Name: "cloud_access_key_refused",
			Help: "1 while the ECI API has refused the AccessKey past the grace period (Node condition ContainerInstanceAPI=False, reason " + eci.HealthReasonKeyRefused + "), else 0.",
		}, node),
		pods: &podCollector{providers: map[string]*Provider{}},
	}
	if reg != nil {
		reg.MustRegister(m.orphansDeleted, m.listingMisses, m.missedDeletions, m.podSyncDelay, m.podCreateDuration, m.podRunningDelay,
			m.statusFallback, m.cloudAvailable, m.actionRefused, m.keyRefused, m.pods)
	}
	return m
}

// nodeMetrics are the metrics of one node.
type nodeMetrics struct {
	orphansDeleted, listingMisses, missedDeletions   prometheus.Counter
	podSyncDelay, podCreateDuration, podRunningDelay prometheus.Observer
	statusFallback, cloudAvailable, keyRefused       prometheus.Gauge
	// actionRefused is labelled by action too.
	actionRefused func(action string) prometheus.Gauge
	pods          *podCollector
}

func (m *Metrics) forNode(name string) nodeMetrics {
	return nodeMetrics{
		orphansDeleted:    m.orphansDeleted.WithLabelValues(name),
		listingMisses:     m.listingMisses.WithLabelValues(name),
		missedDeletions:   m.missedDeletions.WithLabelValues(name),
		podSyncDelay:      m.podSyncDelay.WithLabelValues(name),
		podCreateDuration: m.podCreateDuration.WithLabelValues(name),
		podRunningDelay:   m.podRunningDelay.WithLabelValues(name),
		statusFallback:    m.statusFallback.WithLabelValues(name),
		cloudAvailable:    m.cloudAvailable.WithLabelValues(name),
		keyRefused:        m.keyRefused.WithLabelValues(name),
		actionRefused:     func(action string) prometheus.Gauge { return m.actionRefused.WithLabelValues(name, action) },
		pods:              m.pods,
	}
}
