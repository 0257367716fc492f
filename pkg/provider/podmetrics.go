package provider

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// podPhases are the phases vnode_pods always reports, zero or not, so a
// dashboard or an alert sees a phase drop to 0 instead of vanishing.
var podPhases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

var (
	podsDesc = prometheus.NewDesc("vnode_pods",
		"Pods the virtual node holds, by the phase it reports for them (Pending until their container group runs, including pods waiting for a group after a stock-out or throttling).",
		[]string{"node", "phase"}, nil)
	pendingAgeDesc = prometheus.NewDesc("vnode_pod_pending_max_age_seconds",
		"How long the node's longest-waiting Pending pod has waited since the node first tried to create its container group (0 when none is Pending); pods whose deletion is under way are left out.",
		[]string{"node"}, nil)
)

// podCollector reports, at scrape time, the pods of the providers running
// in the process: a node runs here only while this replica holds its
// Lease, so its series come and go with Provider.Run.
type podCollector struct {
	mu        sync.Mutex
	providers map[string]*Provider // by node name
}

// Describe implements prometheus.Collector.
func (c *podCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- podsDesc
	ch <- pendingAgeDesc
}

// Collect implements prometheus.Collector.
func (c *podCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	provs := make([]*Provider, 0, len(c.providers))
	for _, p := range c.providers {
		provs = append(provs, p)
	}
	c.mu.Unlock()
	for _, p := range provs {
		counts, oldest := p.podFigures()
		for _, ph := range podPhases {
			ch <- prometheus.MustNewConstMetric(podsDesc, prometheus.GaugeValue, float64(counts[ph]), p.opts.NodeName, string(ph))
		}
		ch <- prometheus.MustNewConstMetric(pendingAgeDesc, prometheus.GaugeValue, oldest, p.opts.NodeName)
	}
}

// track makes p's pods part of the metrics until untrack.
func (c *podCollector) track(p *Provider) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.providers[p.opts.NodeName] = p
}

// untrack removes p's pods from the metrics, unless another provider of
// the same node has replaced it meanwhile.
func (c *podCollector) untrack(p *Provider) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.providers[p.opts.NodeName] == p {
		delete(c.providers, p.opts.NodeName)
	}
}

// podFigures counts the provider's pods by phase and returns, in seconds,
// how long its longest-waiting Pending pod (deletion not under way) has
// waited for its group to run.
func (p *Provider) podFigures() (map[corev1.PodPhase]int, float64) {
	now := p.clock.Now()
	counts := map[corev1.PodPhase]int{}
	var oldest float64
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, e := range p.pods {
		ph := e.pod.Status.Phase
		if ph == "" {
			ph = corev1.PodPending
		}
		counts[ph]++
		if ph != corev1.PodPending || e.terminating.Load() {
			continue
		}
		since := e.pendingSince
		if since.IsZero() {
			since = e.created
		}
		if since.IsZero() {
			continue
		}
		if age := now.Sub(since).Seconds(); age > oldest {
			oldest = age
		}
	}
	return counts, oldest
}
