package provider

import (
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsPerNode: the providers of one process share one set of
// metrics in one registry (a second registration would panic), each
// counting under its node's name.
func TestMetricsPerNode(t *testing.T) {
	cred, err := eci.StaticCredential("id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	// Never called: the test only counts.
	cloud, err := eci.NewClient(eci.Config{RegionId: "cn-hangzhou", Endpoint: "http://127.0.0.1:1", Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	counts := map[string]float64{"vk-0": 2, "vk-1": 1}
	for name, n := range counts {
		p, err := New(Options{NodeName: name, ClusterID: "c1", Cloud: cloud, Kube: controlplane.NoAPIServer(t), Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		for range int(n) {
			p.metrics.orphansDeleted.Inc()
		}
		p.metrics.podCreateDuration.Observe(0.5)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			if len(mt.GetLabel()) != 1 || mt.GetLabel()[0].GetName() != "node" {
				t.Errorf("%s has labels %v, want node only", f.GetName(), mt.GetLabel())
				continue
			}
			if got[f.GetName()] == nil {
				got[f.GetName()] = map[string]float64{}
			}
			v := mt.GetCounter().GetValue() + float64(mt.GetHistogram().GetSampleCount())
			got[f.GetName()][mt.GetLabel()[0].GetValue()] = v
		}
	}
	for name, n := range counts {
		if v := got["vnode_orphan_groups_deleted_total"][name]; v != n {
			t.Errorf("vnode_orphan_groups_deleted_total{node=%q} = %v, want %v", name, v, n)
		}
		if v := got["vnode_pod_create_duration_seconds"][name]; v != 1 {
			t.Errorf("vnode_pod_create_duration_seconds{node=%q} count = %v, want 1", name, v)
		}
	}
}
