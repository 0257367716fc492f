package ownership

import "github.com/prometheus/client_golang/prometheus"

// The metrics are registered once per process and labelled by node, so any
// number of node sets and nodes in one process share them without clashing.
var (
	nodesRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "vnode", Subsystem: "ownership", Name: "nodes_running",
		Help: "Virtual nodes this replica runs because it holds their Lease.",
	})
	liveReplicas = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "vnode", Subsystem: "ownership", Name: "live_replicas",
		Help: "Replicas of the node set this replica counts as alive (itself included).",
	})
	transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vnode", Subsystem: "ownership", Name: "transitions_total",
		Help: "Ownership changes of a virtual node on this replica: acquired, lost (not renewed), released (shutdown), handed_over (load sharing), failed (the node stopped by itself).",
	}, []string{"node", "event"})
)

func init() { prometheus.MustRegister(nodesRunning, liveReplicas, transitions) }
