package ownership

import "github.com/prometheus/client_golang/prometheus"

// Metrics are ownership's Prometheus metrics: build them once per registry
// with NewMetrics and give them to Run (Options.Metrics). Transitions are
// labelled by node, so any number of nodes share them without clashing.
type Metrics struct {
	nodesRunning prometheus.Gauge
	liveReplicas prometheus.Gauge
	// nodesUnrenewed counts nodes held over: running without a renewed
	// Lease while no other replica is alive to take them.
	nodesUnrenewed prometheus.Gauge
	transitions    *prometheus.CounterVec
	// nodeRunning is 1 for each node of the set this replica runs, 0 for
	// the others: the sum over the replicas is 1 per node when every node
	// is run, 0 for a node nobody runs.
	nodeRunning *prometheus.GaugeVec
}

// NewMetrics builds ownership's metrics and registers them with reg (none
// when reg is nil); registering twice with one registry panics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		nodesRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "vnode", Subsystem: "ownership", Name: "nodes_running",
			Help: "Virtual nodes this replica runs because it holds their Lease.",
		}),
		liveReplicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "vnode", Subsystem: "ownership", Name: "live_replicas",
			Help: "Replicas of the node set this replica counts as alive (itself included).",
		}),
		nodesUnrenewed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "vnode", Subsystem: "ownership", Name: "nodes_unrenewed",
			Help: "Virtual nodes this replica keeps running although their Lease could not be renewed (the apiserver did not answer within the renew deadline and no other replica is alive to take them).",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vnode", Subsystem: "ownership", Name: "transitions_total",
			Help: "Ownership changes of a virtual node on this replica: acquired, lost (not renewed, or taken by another replica), held_over (not renewed, kept running: no other replica alive), resumed (renewed again after being held over), released (shutdown), handed_over (load sharing), failed (the node stopped by itself).",
		}, []string{"node", "event"}),
		nodeRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "vnode", Subsystem: "ownership", Name: "node_running",
			Help: "1 for each virtual node of the set this replica runs because it holds its Lease, 0 for the others; summed over the replicas, 0 means nobody runs the node.",
		}, []string{"node"}),
	}
	if reg != nil {
		reg.MustRegister(m.nodesRunning, m.liveReplicas, m.nodesUnrenewed, m.transitions, m.nodeRunning)
	}
	return m
}
