package kubeletapi

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"
)

// metricsTTL is how long one set of samples answers every scraper
// (metrics-server, Prometheus, kubectl top): they scrape every 10-60 s and
// must not multiply DescribeMultiContainerGroupMetric calls.
const metricsTTL = 10 * time.Second

// processStart stands for the node's start time in the summary.
var processStart = time.Now()

// metricsCache holds the newest sample of each group. Its mutex is held
// during a refresh, so concurrent scrapers wait for one refresh and share
// it instead of each calling the cloud.
type metricsCache struct {
	mu      sync.Mutex
	at      time.Time
	samples map[string]eci.MetricRecord
	// failed: a batch of the last refresh failed (scrape_error).
	failed bool
}

// podSample is a pod with the figures the stats endpoints report.
type podSample struct {
	namespace, name, uid string
	groupID              string
	start                time.Time
	containers           []string
	// started is each running container's start time, from its status.
	started map[string]time.Time
	rec     *eci.MetricRecord
	at      time.Time
}

// sampledPods returns every pod with its group's latest sample (nil when
// the group is not running) and whether the last refresh was incomplete.
func (a *API) sampledPods(ctx context.Context) ([]podSample, bool) {
	pods := a.podsForStats()
	ids := make([]string, 0, len(pods))
	for _, ps := range pods {
		ids = append(ids, ps.groupID)
	}
	samples, failed := a.metrics.get(ctx, a.cloud, ids)
	for i := range pods {
		if rec, ok := samples[pods[i].groupID]; ok {
			pods[i].rec = &rec
			pods[i].at = sampleTime(rec.Timestamp)
		}
	}
	return pods, failed
}

// podsForStats copies what the stats need of each pod, sorted for stable
// output.
func (a *API) podsForStats() []podSample {
	var out []podSample
	a.pods.EachPod(func(pod *corev1.Pod, groupID string, created time.Time) {
		ps := podSample{namespace: pod.Namespace, name: pod.Name, uid: string(pod.UID), groupID: groupID,
			start: created, started: map[string]time.Time{}}
		if pod.Status.StartTime != nil {
			ps.start = pod.Status.StartTime.Time
		}
		for _, c := range pod.Spec.Containers {
			ps.containers = append(ps.containers, c.Name)
		}
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.State.Running != nil {
				ps.started[cs.Name] = cs.State.Running.StartedAt.Time
			}
		}
		out = append(out, ps)
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].namespace != out[j].namespace {
			return out[i].namespace < out[j].namespace
		}
		return out[i].name < out[j].name
	})
	return out
}

// get returns samples no older than metricsTTL, refreshing them in
// batches of eci.MaxIDsPerCall when they are stale.
func (c *metricsCache) get(ctx context.Context, cloud Cloud, ids []string) (map[string]eci.MetricRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < metricsTTL {
		return c.samples, c.failed
	}
	// Batches go one after another: the SDK client is not safe for
	// concurrent requests, and a refresh is at most one per metricsTTL.
	fresh := map[string]eci.MetricRecord{}
	failed := false
	for start := 0; start < len(ids); start += eci.MaxIDsPerCall {
		batch := ids[start:min(start+eci.MaxIDsPerCall, len(ids))]
		resp, err := cloud.DescribeMultiContainerGroupMetric(ctx, &eci.DescribeMultiContainerGroupMetricRequest{ContainerGroupIds: batch})
		if err != nil {
			// Keep the previous samples of these groups: an older point
			// is better than a hole in every graph.
			failed = true
			klog.FromContext(ctx).Error(err, "group metrics unavailable", "groups", len(batch), "class", eci.ClassOf(err))
			for _, id := range batch {
				if rec, ok := c.samples[id]; ok {
					fresh[id] = rec
				}
			}
			continue
		}
		for _, md := range resp.MonitorDatas {
			if n := len(md.Records); n > 0 {
				fresh[md.ContainerGroupId] = md.Records[n-1]
			}
		}
	}
	c.samples, c.failed, c.at = fresh, failed, time.Now()
	return c.samples, c.failed
}

// sampleTime parses a record's timestamp, now if it cannot be read.
func sampleTime(s string) time.Time {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t
	}
	return time.Now()
}

// u64 clamps a cloud figure at zero.
func u64(v int64) *uint64 {
	if v < 0 {
		v = 0
	}
	return ptr.To(uint64(v))
}

func cpuStats(c eci.CPUStats, t metav1.Time) *statsv1alpha1.CPUStats {
	return &statsv1alpha1.CPUStats{Time: t, UsageNanoCores: u64(c.UsageNanoCores), UsageCoreNanoSeconds: u64(c.UsageCoreNanoSeconds)}
}

func memoryStats(m eci.MemoryStats, t metav1.Time) *statsv1alpha1.MemoryStats {
	return &statsv1alpha1.MemoryStats{Time: t, AvailableBytes: u64(m.AvailableBytes), UsageBytes: u64(m.UsageBytes),
		WorkingSetBytes: u64(m.WorkingSet), RSSBytes: u64(m.Rss)}
}

func networkStats(n eci.NetworkStats, t metav1.Time) *statsv1alpha1.NetworkStats {
	if len(n.Interfaces) == 0 {
		return nil
	}
	out := &statsv1alpha1.NetworkStats{Time: t}
	for _, i := range n.Interfaces {
		out.Interfaces = append(out.Interfaces, statsv1alpha1.InterfaceStats{Name: i.Name,
			RxBytes: u64(i.RxBytes), RxErrors: u64(i.RxErrors), TxBytes: u64(i.TxBytes), TxErrors: u64(i.TxErrors)})
	}
	// The default interface is the first one, eth0 on ECI.
	out.InterfaceStats = out.Interfaces[0]
	return out
}

// containerFigures returns the sample of one container: its own entry,
// or the group's when the group has just this container and the cloud
// gave no per-container figures.
func (ps podSample) containerFigures(name string) (eci.CPUStats, eci.MemoryStats, bool) {
	for _, c := range ps.rec.Containers {
		if c.Name == name {
			return c.CPU, c.Memory, true
		}
	}
	if len(ps.rec.Containers) == 0 && len(ps.containers) == 1 {
		return ps.rec.CPU, ps.rec.Memory, true
	}
	return eci.CPUStats{}, eci.MemoryStats{}, false
}

// containerStart is when a container's current run started, else the pod's.
func (ps podSample) containerStart(name string) time.Time {
	if t, ok := ps.started[name]; ok && !t.IsZero() {
		return t
	}
	return ps.start
}

// GetStatsSummary serves /stats/summary from DescribeMultiContainerGroupMetric:
// CPU, memory and network of every running pod and its containers, and
// their sums as the node's usage. Pods whose group is not running are
// listed without figures, as the kubelet lists pods it cannot measure.
func (a *API) GetStatsSummary(ctx context.Context) (*statsv1alpha1.Summary, error) {
	pods, _ := a.sampledPods(ctx)
	now := metav1.Now()
	var cpu, cpuTime, ws, usage, rss uint64
	s := &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: a.nodeName, StartTime: metav1.NewTime(processStart)}}
	for _, ps := range pods {
		out := statsv1alpha1.PodStats{
			PodRef:    statsv1alpha1.PodReference{Name: ps.name, Namespace: ps.namespace, UID: ps.uid},
			StartTime: metav1.NewTime(ps.start),
		}
		if ps.rec != nil {
			t := metav1.NewTime(ps.at)
			out.CPU, out.Memory, out.Network = cpuStats(ps.rec.CPU, t), memoryStats(ps.rec.Memory, t), networkStats(ps.rec.Network, t)
			for _, name := range ps.containers {
				c, m, ok := ps.containerFigures(name)
				if !ok {
					continue
				}
				out.Containers = append(out.Containers, statsv1alpha1.ContainerStats{Name: name,
					StartTime: metav1.NewTime(ps.containerStart(name)), CPU: cpuStats(c, t), Memory: memoryStats(m, t)})
			}
			cpu += *out.CPU.UsageNanoCores
			cpuTime += *out.CPU.UsageCoreNanoSeconds
			ws += *out.Memory.WorkingSetBytes
			usage += *out.Memory.UsageBytes
			rss += *out.Memory.RSSBytes
		}
		s.Pods = append(s.Pods, out)
	}
	s.Node.CPU = &statsv1alpha1.CPUStats{Time: now, UsageNanoCores: &cpu, UsageCoreNanoSeconds: &cpuTime}
	s.Node.Memory = &statsv1alpha1.MemoryStats{Time: now, WorkingSetBytes: &ws, UsageBytes: &usage, RSSBytes: &rss}
	return s, nil
}

// Resource metric names and help texts, as the kubelet's /metrics/resource
// serves them to metrics-server.
const (
	metricNodeCPU        = "node_cpu_usage_seconds_total"
	metricNodeMemory     = "node_memory_working_set_bytes"
	metricPodCPU         = "pod_cpu_usage_seconds_total"
	metricPodMemory      = "pod_memory_working_set_bytes"
	metricContainerCPU   = "container_cpu_usage_seconds_total"
	metricContainerMem   = "container_memory_working_set_bytes"
	metricContainerStart = "container_start_time_seconds"
	metricScrapeError    = "scrape_error"
)

var metricHelp = map[string]string{
	metricNodeCPU:        "Cumulative cpu time consumed by the node in core-seconds",
	metricNodeMemory:     "Current working set of the node in bytes",
	metricPodCPU:         "Cumulative cpu time consumed by the pod in core-seconds",
	metricPodMemory:      "Current working set of the pod in bytes",
	metricContainerCPU:   "Cumulative cpu time consumed by the container in core-seconds",
	metricContainerMem:   "Current working set of the container in bytes",
	metricContainerStart: "Start time of the container since unix epoch in seconds",
	metricScrapeError:    "1 if there was an error while getting container metrics, 0 otherwise",
}

// metricTypes lists every name: the zero MetricType is COUNTER.
var metricTypes = map[string]dto.MetricType{
	metricNodeCPU: dto.MetricType_COUNTER, metricPodCPU: dto.MetricType_COUNTER, metricContainerCPU: dto.MetricType_COUNTER,
	metricNodeMemory: dto.MetricType_GAUGE, metricPodMemory: dto.MetricType_GAUGE, metricContainerMem: dto.MetricType_GAUGE,
	metricContainerStart: dto.MetricType_GAUGE, metricScrapeError: dto.MetricType_GAUGE,
}

// GetMetricsResource serves /metrics/resource from the same samples as the
// summary: cumulative CPU seconds and working-set bytes of the node, every
// running pod and container (labels container, namespace, pod), container
// start times, and scrape_error = 1 when a batch could not be read.
func (a *API) GetMetricsResource(ctx context.Context) ([]*dto.MetricFamily, error) {
	pods, failed := a.sampledPods(ctx)
	fams := map[string]*dto.MetricFamily{}
	add := func(name string, value float64, at time.Time, labels ...string) {
		f := fams[name]
		if f == nil {
			f = &dto.MetricFamily{Name: ptr.To(name), Help: ptr.To(metricHelp[name]), Type: metricTypes[name].Enum()}
			fams[name] = f
		}
		m := &dto.Metric{TimestampMs: ptr.To(at.UnixMilli())}
		for i := 0; i+1 < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: ptr.To(labels[i]), Value: ptr.To(labels[i+1])})
		}
		if metricTypes[name] == dto.MetricType_COUNTER {
			m.Counter = &dto.Counter{Value: ptr.To(value)}
		} else {
			m.Gauge = &dto.Gauge{Value: ptr.To(value)}
		}
		f.Metric = append(f.Metric, m)
	}
	now := time.Now()
	var cpuSeconds, ws float64
	for _, ps := range pods {
		if ps.rec == nil {
			continue
		}
		podCPU := float64(*u64(ps.rec.CPU.UsageCoreNanoSeconds)) / 1e9
		podWS := float64(*u64(ps.rec.Memory.WorkingSet))
		cpuSeconds += podCPU
		ws += podWS
		add(metricPodCPU, podCPU, ps.at, "namespace", ps.namespace, "pod", ps.name)
		add(metricPodMemory, podWS, ps.at, "namespace", ps.namespace, "pod", ps.name)
		for _, name := range ps.containers {
			c, m, ok := ps.containerFigures(name)
			if !ok {
				continue
			}
			labels := []string{"container", name, "namespace", ps.namespace, "pod", ps.name}
			add(metricContainerCPU, float64(*u64(c.UsageCoreNanoSeconds))/1e9, ps.at, labels...)
			add(metricContainerMem, float64(*u64(m.WorkingSet)), ps.at, labels...)
			add(metricContainerStart, float64(ps.containerStart(name).UnixNano())/1e9, ps.at, labels...)
		}
	}
	add(metricNodeCPU, cpuSeconds, now)
	add(metricNodeMemory, ws, now)
	scrapeError := 0.0
	if failed {
		scrapeError = 1
	}
	add(metricScrapeError, scrapeError, now)
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}
