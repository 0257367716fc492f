package virtualnode

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// recordingRegisterer registers with a real registry and keeps the
// collectors, so a test learns the type of each metric even before it has
// a series (a vector without children gathers nothing).
type recordingRegisterer struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registerer.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// metricInfo is what the product registers under one name.
type metricInfo struct {
	typ    string // counter, gauge, histogram, summary; "" when only known at scrape time
	labels map[string]bool
}

// kindOf is the type of the metrics collector c makes, "" if c is a
// collector of its own kind (the Go and process collectors, the node and
// pod collectors that report at scrape time).
func kindOf(c prometheus.Collector) string {
	switch v := c.(type) {
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	case prometheus.Metric:
		var m dto.Metric
		if err := v.Write(&m); err != nil {
			return ""
		}
		switch {
		case m.Counter != nil:
			return "counter"
		case m.Gauge != nil:
			return "gauge"
		case m.Histogram != nil:
			return "histogram"
		case m.Summary != nil:
			return "summary"
		}
	}
	return ""
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	descConst  = regexp.MustCompile(`constLabels: \{([^}]*)\}`)
)

// productMetrics are the metrics a controller process serves on
// METRICS_ADDR, from the registration Run itself uses
// (registerProcessMetrics): names, types and label names.
func productMetrics(t *testing.T) map[string]*metricInfo {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec := &recordingRegisterer{Registerer: reg}
	registerProcessMetrics(rec)
	out := map[string]*metricInfo{}
	for _, c := range rec.collectors {
		typ := kindOf(c)
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			s := d.String()
			m := descName.FindStringSubmatch(s)
			if m == nil {
				t.Fatalf("cannot read the name of %s", s)
			}
			info := &metricInfo{typ: typ, labels: map[string]bool{}}
			if l := descLabels.FindStringSubmatch(s); l != nil && l[1] != "" {
				for _, n := range strings.Split(l[1], ",") {
					info.labels[strings.TrimSuffix(strings.TrimPrefix(n, "c("), ")")] = true
				}
			}
			if l := descConst.FindStringSubmatch(s); l != nil && l[1] != "" {
				for _, kv := range strings.Split(l[1], ",") {
					k, _, _ := strings.Cut(kv, "=")
					info.labels[k] = true
				}
			}
			out[m[1]] = info
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		info := out[f.GetName()]
		if info == nil {
			info = &metricInfo{labels: map[string]bool{}}
			out[f.GetName()] = info
		}
		if info.typ == "" && f.GetType() != dto.MetricType_UNTYPED {
			info.typ = strings.ToLower(f.GetType().String())
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				info.labels[l.GetName()] = true
			}
		}
	}
	return out
}

// targetLabels are the labels Prometheus adds to every series it scrapes
// through the chart's ServiceMonitor.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// series resolves a selector's metric name to what the product registers:
// histograms and summaries are queried as name_bucket/_sum/_count, and
// the extra labels those series carry.
func series(product map[string]*metricInfo, name string) (*metricInfo, map[string]bool, bool) {
	if info, ok := product[name]; ok {
		extra := map[string]bool{}
		if info.typ == "summary" {
			extra["quantile"] = true
		}
		return info, extra, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, found := strings.CutSuffix(name, suf)
		if !found {
			continue
		}
		info, ok := product[base]
		if !ok || (info.typ != "histogram" && (info.typ != "summary" || suf == "_bucket")) {
			return nil, nil, false
		}
		extra := map[string]bool{}
		if suf == "_bucket" {
			extra["le"] = true
		}
		return info, extra, true
	}
	return nil, nil, false
}

// checkExpr parses one PromQL expression and returns what is wrong with
// it: a parse error, a metric the product does not register, a label a
// selector matches or an aggregation groups by that none of its series
// has. names gets every metric name the expression selects.
func checkExpr(product map[string]*metricInfo, expr string, names map[string]bool) []string {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return []string{fmt.Sprintf("does not parse: %v", err)}
	}
	var problems []string
	// labelsUnder is every label the series selected under n may carry.
	labelsUnder := func(n parser.Node) map[string]bool {
		out := map[string]bool{}
		for _, l := range targetLabels {
			out[l] = true
		}
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				if info, extra, ok := series(product, vs.Name); ok {
					for l := range info.labels {
						out[l] = true
					}
					for l := range extra {
						out[l] = true
					}
				}
			}
			return nil
		})
		return out
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			if n.Name == "" {
				problems = append(problems, fmt.Sprintf("selector %s names no metric", n))
				return nil
			}
			names[n.Name] = true
			info, extra, ok := series(product, n.Name)
			if !ok {
				problems = append(problems, fmt.Sprintf("metric %s is not registered by the controller (registerProcessMetrics)", n.Name))
				return nil
			}
			known := labelsUnder(n)
			for l := range extra {
				known[l] = true
			}
			for _, m := range n.LabelMatchers {
				if m.Name != "__name__" && !known[m.Name] {
					problems = append(problems, fmt.Sprintf("%s has no label %q (it has %v)", n.Name, m.Name, keys(info.labels)))
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			known := labelsUnder(n.Expr)
			for _, l := range n.Grouping {
				if !known[l] {
					problems = append(problems, fmt.Sprintf("%s groups by %q, which none of its series has", n.Op, l))
				}
			}
		}
		return nil
	})
	return problems
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// renderMonitoring renders the chart with its ServiceMonitor,
// PrometheusRule and dashboard on and returns the alert expressions (by
// alert) and the dashboard JSON.
func renderMonitoring(t *testing.T) (map[string]string, []byte) {
	t.Helper()
	r, err := addon.Render(map[string]any{
		"region": "cn-hangzhou", "vSwitches": []any{"vsw-aaa"}, "securityGroup": "sg-aaa",
		"monitoring": map[string]any{
			"serviceMonitor": map[string]any{"enabled": true},
			"prometheusRule": map[string]any{"enabled": true},
			"dashboard":      map[string]any{"enabled": true},
		},
	}, addon.RenderOptions{})
	if err != nil {
		t.Fatalf("render the chart with monitoring on: %v", err)
	}
	alerts := map[string]string{}
	var dashboard []byte
	for _, doc := range releaseutil.SplitManifests(r.Manifest) {
		var obj struct {
			Kind     string                `json:"kind"`
			Metadata struct{ Name string } `json:"metadata"`
			Data     map[string]string     `json:"data"`
			Spec     struct {
				Groups []struct {
					Rules []struct {
						Alert string `json:"alert"`
						Expr  string `json:"expr"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("rendered document is not YAML: %v", err)
		}
		switch {
		case obj.Kind == "PrometheusRule":
			for _, g := range obj.Spec.Groups {
				for _, r := range g.Rules {
					alerts[r.Alert] = r.Expr
				}
			}
		case obj.Kind == "ConfigMap" && obj.Metadata.Name == "ack-virtual-node-dashboard":
			dashboard = []byte(obj.Data["ack-virtual-node.json"])
		}
	}
	if len(alerts) == 0 || dashboard == nil {
		t.Fatalf("rendered %d alerts and dashboard %v: the monitoring objects are missing", len(alerts), dashboard != nil)
	}
	return alerts, dashboard
}

// dashboardQueries are the dashboard's PromQL queries by panel title, and
// its variables' label_values() queries.
type dashboardQueries struct {
	panels    map[string][]string
	variables map[string]string
}

func parseDashboard(t *testing.T, raw []byte) dashboardQueries {
	t.Helper()
	var d struct {
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}
	q := dashboardQueries{panels: map[string][]string{}, variables: map[string]string{}}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if _, dup := q.panels[p.Title]; dup {
			t.Errorf("two panels are titled %q", p.Title)
		}
		q.panels[p.Title] = nil
		for _, tg := range p.Targets {
			q.panels[p.Title] = append(q.panels[p.Title], tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m, _ := v.Query.(map[string]any)
		s, _ := m["query"].(string)
		q.variables[v.Name] = s
	}
	return q
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// TestChartMetricsExist: every alert of the chart's PrometheusRule and
// every query of its Grafana dashboard parses as PromQL and selects only
// metrics the controller registers (taken from the registration Run uses,
// with their types and labels), with labels those metrics have; the
// checker itself flags a misspelt metric, label or grouping.
func TestChartMetricsExist(t *testing.T) {
	product := productMetrics(t)
	for _, want := range []string{"vnode_pods", "vnode_pod_create_duration_seconds", "eci_api_calls_total", "process_resident_memory_bytes"} {
		if product[want] == nil {
			t.Fatalf("the process registry has no %s: productMetrics reads it wrong (%d metrics: %v)", want, len(product), keys(map[string]bool{}))
		}
	}
	if info := product["eci_rate_limiter_wait_seconds"]; info == nil || info.typ != "histogram" || !info.labels["action"] {
		t.Fatalf("eci_rate_limiter_wait_seconds = %+v, want a histogram labelled by action", info)
	}

	// The checker catches what it is for.
	for expr, want := range map[string]string{
		`vnode_pods_total{node="x"}`:                            "vnode_pods_total is not registered",
		`vnode_pods_bucket`:                                     "vnode_pods_bucket is not registered",
		`sum by (zone) (vnode_pods)`:                            `groups by "zone"`,
		`eci_api_calls_total{result="OK"}`:                      `has no label "result"`,
		`histogram_quantile(0.9, rate(eci_api_calls_total[5m])`: "does not parse",
	} {
		got := checkExpr(product, expr, map[string]bool{})
		if len(got) == 0 || !strings.Contains(strings.Join(got, "; "), want) {
			t.Errorf("checkExpr(%s) = %v, want a problem containing %q", expr, got, want)
		}
	}

	alerts, raw := renderMonitoring(t)
	used := map[string]bool{}
	for alert, expr := range alerts {
		for _, p := range checkExpr(product, expr, used) {
			t.Errorf("alert %s: %s\n%s", alert, p, expr)
		}
	}
	dash := parseDashboard(t, raw)
	for title, exprs := range dash.panels {
		if len(exprs) == 0 {
			t.Errorf("panel %q has no query", title)
		}
		for _, expr := range exprs {
			for _, p := range checkExpr(product, expr, used) {
				t.Errorf("panel %q: %s\n%s", title, p, expr)
			}
		}
	}
	for name, q := range dash.variables {
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(<selector>, <label>)", name, q)
			continue
		}
		// The label the variable lists must be one the selected metric has.
		for _, p := range checkExpr(product, fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), used) {
			t.Errorf("variable %s: %s", name, p)
		}
	}
	t.Logf("alerts and dashboard use %d metrics: %v", len(used), keys(used))
	if len(used) < 15 {
		t.Errorf("only %d metrics found in %d alerts and %d panels: the extraction is off", len(used), len(alerts), len(dash.panels))
	}
}

// TestDashboardPanels: the dashboard shows what operators asked for, each
// panel from the metric that measures it.
func TestDashboardPanels(t *testing.T) {
	_, raw := renderMonitoring(t)
	dash := parseDashboard(t, raw)
	product := productMetrics(t)
	for title, want := range map[string][]string{
		"Pods by phase":                   {"vnode_pods"},
		"Oldest Pending pod":              {"vnode_pod_pending_max_age_seconds"},
		"Pod create rate":                 {"vnode_pod_create_duration_seconds_count"},
		"Pod create latency":              {"vnode_pod_create_duration_seconds_bucket", "vnode_pod_running_report_delay_seconds_bucket"},
		"ECI calls by action and outcome": {"eci_api_calls_total"},
		"Quota waits":                     {"eci_rate_limiter_wait_seconds_sum", "eci_rate_limiter_wait_seconds_bucket"},
		"Memory (RSS)":                    {"process_resident_memory_bytes"},
	} {
		exprs, ok := dash.panels[title]
		if !ok {
			t.Errorf("the dashboard has no panel %q (panels: %v)", title, keys(func() map[string]bool {
				m := map[string]bool{}
				for k := range dash.panels {
					m[k] = true
				}
				return m
			}()))
			continue
		}
		names := map[string]bool{}
		for _, e := range exprs {
			checkExpr(product, e, names)
		}
		for _, w := range want {
			if !names[w] {
				t.Errorf("panel %q queries %v, want %s among them", title, keys(names), w)
			}
		}
	}
	// Calls are split by action and by outcome, pods by phase.
	for title, by := range map[string]string{"ECI calls by action and outcome": "by (action, outcome)", "Pods by phase": "by (phase)"} {
		if exprs := dash.panels[title]; len(exprs) == 0 || !strings.Contains(exprs[0], by) {
			t.Errorf("panel %q queries %v, want them %s", title, exprs, by)
		}
	}
}
