package kubeletapi

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/prometheus/common/expfmt"
)

// TestStats runs 25 pods (two batches of metrics) plus one that is not
// running, and checks the summary, the resource metrics and the cache.
func TestStats(t *testing.T) {
	e := newAPIEnv(t)
	for i := 0; i < 24; i++ {
		e.addPod("ns", fmt.Sprintf("web-%02d", i), "Always", container{Name: "main", Script: "sleep infinity"})
	}
	e.addPod("ns", "duo", "Always", container{Name: "app", Script: "sleep infinity"}, container{Name: "proxy", Script: "sleep infinity"})
	e.addPod("ns", "stuck", "Always", container{Name: "main", Script: "sleep infinity", Image: "example.com/pull-fail"})
	e.clock.Advance(time.Minute)
	ctx := context.Background()

	s, err := e.p.GetStatsSummary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.calls("DescribeMultiContainerGroupMetric"); got != 2 {
		t.Fatalf("%d metric calls for 26 groups, want 2 batches", got)
	}
	if len(s.Pods) != 26 || s.Node.NodeName != "vk" {
		t.Fatalf("summary has %d pods, node %q", len(s.Pods), s.Node.NodeName)
	}
	var sumWS uint64
	for _, ps := range s.Pods {
		switch ps.PodRef.Name {
		case "stuck":
			if ps.CPU != nil || len(ps.Containers) != 0 {
				t.Errorf("a pod that is not running has figures: %+v", ps)
			}
			continue
		case "duo":
			if len(ps.Containers) != 2 || ps.Containers[0].Name != "app" || ps.Containers[1].Name != "proxy" {
				t.Errorf("duo containers = %+v", ps.Containers)
			}
		default:
			if len(ps.Containers) != 1 || ps.Containers[0].Name != "main" || *ps.Containers[0].CPU.UsageNanoCores == 0 {
				t.Errorf("%s containers = %+v", ps.PodRef.Name, ps.Containers)
			}
		}
		if ps.CPU == nil || *ps.CPU.UsageNanoCores == 0 || *ps.CPU.UsageCoreNanoSeconds == 0 ||
			ps.Memory == nil || *ps.Memory.WorkingSetBytes == 0 || ps.Network == nil || ps.Network.Name != "eth0" {
			t.Errorf("%s: missing figures %+v", ps.PodRef.Name, ps)
			continue
		}
		sumWS += *ps.Memory.WorkingSetBytes
	}
	if *s.Node.Memory.WorkingSetBytes != sumWS {
		t.Errorf("node working set %d, sum of pods %d", *s.Node.Memory.WorkingSetBytes, sumWS)
	}

	// Within the TTL a second scraper is served from the cache.
	fams, err := e.p.GetMetricsResource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.calls("DescribeMultiContainerGroupMetric"); got != 2 {
		t.Fatalf("%d metric calls after a second scrape, want the cached 2", got)
	}
	var text bytes.Buffer
	enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		"# TYPE container_cpu_usage_seconds_total counter",
		`container_cpu_usage_seconds_total{container="proxy",namespace="ns",pod="duo"} `,
		`container_memory_working_set_bytes{container="main",namespace="ns",pod="web-00"} `,
		`container_start_time_seconds{container="main",namespace="ns",pod="web-23"} `,
		"# TYPE pod_memory_working_set_bytes gauge",
		`pod_cpu_usage_seconds_total{namespace="ns",pod="web-07"} `,
		"# TYPE node_cpu_usage_seconds_total counter",
		"node_memory_working_set_bytes ",
		"scrape_error 0 ",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), `pod="stuck"`) {
		t.Errorf("a pod that is not running has metrics")
	}

	// A failed batch is reported as scrape_error 1, with the previous
	// samples kept.
	if err := e.sim.InjectFault(simulator.Fault{Action: "DescribeMultiContainerGroupMetric", Times: 1,
		Code: "InvalidParameter", HTTPStatus: 400}); err != nil {
		t.Fatal(err)
	}
	e.p.metrics.mu.Lock()
	e.p.metrics.at = time.Time{}
	e.p.metrics.mu.Unlock()
	fams, err = e.p.GetMetricsResource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pods := 0
	for _, f := range fams {
		switch f.GetName() {
		case metricScrapeError:
			if f.Metric[0].GetGauge().GetValue() != 1 {
				t.Errorf("scrape_error = %v after a failed batch", f.Metric[0].GetGauge().GetValue())
			}
		case metricPodCPU:
			pods = len(f.Metric)
		}
	}
	if pods != 25 {
		t.Errorf("%d pods with CPU after a failed batch, want all 25 (previous samples kept)", pods)
	}
}
