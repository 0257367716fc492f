package addon

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/charts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// go test ./pkg/vnodectl/addon -run TestRenderMonitoringGolden -update
// rewrites the golden files from the chart; review their diff.
var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current chart")

// everyMonitoringValue sets every value under monitoring, none to its
// default (everyValue uses it).
func everyMonitoringValue() map[string]any {
	return map[string]any{
		"serviceMonitor": map[string]any{"enabled": true, "namespace": "monitoring", "labels": map[string]any{"release": "kube-prometheus-stack"},
			"interval": "15s", "scrapeTimeout": "5s"},
		"prometheusRule": map[string]any{"enabled": true, "namespace": "monitoring", "labels": map[string]any{"release": "kube-prometheus-stack"},
			"selector": `job="ack-virtual-node-controller-metrics"`, "runbookUrl": "https://docs.example.com/ack-virtual-node",
			"pendingMinutes": 30, "throttlingFor": "5m"},
		"dashboard": map[string]any{"enabled": true, "namespace": "grafana", "labels": map[string]any{"grafana_dashboard": "1", "team": "platform"},
			"annotations": map[string]any{"grafana_folder": "ECI"}},
	}
}

// allMonitoring turns every monitoring object on with its defaults.
func allMonitoring() map[string]any {
	return map[string]any{
		"serviceMonitor": map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true},
		"dashboard":      map[string]any{"enabled": true},
	}
}

// isMonitoring says whether an object key of render is one of the
// monitoring objects.
func isMonitoring(key string) bool {
	kind, rest, _ := strings.Cut(key, "/")
	return kind == "ServiceMonitor" || kind == "PrometheusRule" ||
		(kind == "Service" && strings.HasSuffix(rest, "/ack-virtual-node-controller-metrics")) ||
		(kind == "ConfigMap" && strings.HasSuffix(rest, "/ack-virtual-node-dashboard"))
}

// TestRenderMonitoringGolden: `helm template` of the monitoring objects
// (metrics Service, ServiceMonitor, PrometheusRule, dashboard ConfigMap)
// matches testdata/monitoring-*.golden.yaml with them on, with defaults
// and with every value set; with them off (the default) none is rendered.
func TestRenderMonitoringGolden(t *testing.T) {
	objs, _ := render(t, minimal())
	for key := range objs {
		if isMonitoring(key) {
			t.Errorf("%s rendered with monitoring off (the default)", key)
		}
	}
	for name, values := range map[string]map[string]any{
		"defaults": with(minimal(), "monitoring", allMonitoring()),
		"every":    everyValue(),
	} {
		t.Run(name, func(t *testing.T) {
			objs, _ := render(t, values)
			var keys []string
			for key := range objs {
				if isMonitoring(key) {
					keys = append(keys, key)
				}
			}
			sort.Strings(keys)
			if len(keys) != 4 {
				t.Fatalf("monitoring objects %v, want the metrics Service, ServiceMonitor, PrometheusRule and dashboard ConfigMap", keys)
			}
			var b strings.Builder
			for _, key := range keys {
				b.WriteString("# " + key + "\n---\n" + strings.TrimSpace(objs[key]) + "\n")
			}
			got := b.String()
			path := filepath.Join("testdata", "monitoring-"+name+".golden.yaml")
			if *updateGolden {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v: run go test ./pkg/vnodectl/addon -run TestRenderMonitoringGolden -update to write it", err)
			}
			if got != string(want) {
				gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
				for i := 0; i < len(gl) || i < len(wl); i++ {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("rendered monitoring objects differ from %s at line %d:\n got: %q\nwant: %q\n"+
							"if the change is intended, run go test ./pkg/vnodectl/addon -run TestRenderMonitoringGolden -update and review the diff", path, i+1, g, w)
					}
				}
			}
		})
	}
}

// TestRenderMonitoringWiring: the ServiceMonitor finds the metrics Service,
// the Service the controller pods' metrics port, and the NetworkPolicy
// lets the scrape through; without a scraper admitted by the
// NetworkPolicy the render fails with what to set.
func TestRenderMonitoringWiring(t *testing.T) {
	objs, _ := render(t, everyValue())
	var svc corev1.Service
	objs.get(t, "Service/kube-system/ack-virtual-node-controller-metrics", &svc)
	var d appsv1.Deployment
	objs.get(t, "Deployment/kube-system/ack-virtual-node-controller", &d)
	var np networkingv1.NetworkPolicy
	objs.get(t, "NetworkPolicy/kube-system/ack-virtual-node-controller", &np)
	var sm struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
		Spec            struct {
			NamespaceSelector struct {
				MatchNames []string `json:"matchNames"`
			} `json:"namespaceSelector"`
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			Endpoints []struct {
				Port, Path, Scheme, Interval, ScrapeTimeout string
			} `json:"endpoints"`
		} `json:"spec"`
	}
	objs.get(t, "ServiceMonitor/monitoring/ack-virtual-node-controller", &sm)

	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("metrics Service selects %v, the controller pods are labelled %v", svc.Spec.Selector, d.Spec.Template.Labels)
			break
		}
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("metrics Service clusterIP %q publishNotReadyAddresses %v, want headless and publishing not-ready pods (a replica whose node is not Ready is the one to watch)",
			svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses)
	}
	var metricsPort int32 = -1
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "metrics" {
			metricsPort = p.ContainerPort
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort.StrVal != "metrics" || svc.Spec.Ports[0].Port != metricsPort || metricsPort != 11255 {
		t.Errorf("metrics Service ports %+v, want metrics -> the container's metrics port %d (controller.metricsPort 11255)", svc.Spec.Ports, metricsPort)
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %v, the metrics Service is labelled %v", sm.Spec.Selector.MatchLabels, svc.Labels)
			break
		}
	}
	// The selector must not also pick the webhook's Service.
	var web corev1.Service
	objs.get(t, "Service/kube-system/vn-webhook", &web)
	matchesWeb := true
	for k, v := range sm.Spec.Selector.MatchLabels {
		if web.Labels[k] != v {
			matchesWeb = false
		}
	}
	if matchesWeb || len(sm.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("ServiceMonitor selector %v also selects the webhook Service (%v)", sm.Spec.Selector.MatchLabels, web.Labels)
	}
	if !reflect.DeepEqual(sm.Spec.NamespaceSelector.MatchNames, []string{"kube-system"}) {
		t.Errorf("ServiceMonitor looks in namespaces %v, want the release's [kube-system]", sm.Spec.NamespaceSelector.MatchNames)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" ||
		sm.Spec.Endpoints[0].Interval != "15s" || sm.Spec.Endpoints[0].ScrapeTimeout != "5s" {
		t.Errorf("ServiceMonitor endpoints %+v, want port metrics, /metrics, every 15s, timeout 5s", sm.Spec.Endpoints)
	}
	if sm.Metadata.Labels["release"] != "kube-prometheus-stack" || sm.Metadata.Labels["app.kubernetes.io/instance"] != DefaultReleaseName {
		t.Errorf("ServiceMonitor labels %v, want the chart's and release=kube-prometheus-stack", sm.Metadata.Labels)
	}
	admitted := false
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port != nil && p.Port.IntVal == metricsPort && len(r.From) > 0 {
				admitted = true
			}
		}
	}
	if !admitted {
		t.Errorf("NetworkPolicy ingress %+v does not admit the scrapers to the metrics port %d", np.Spec.Ingress, metricsPort)
	}

	_, err := Render(with(minimal(), "monitoring", allMonitoring(), "networkPolicy", map[string]any{"enabled": true}), RenderOptions{})
	if err == nil || !strings.Contains(err.Error(), "networkPolicy.metrics.namespaceSelector") || !strings.Contains(err.Error(), "monitoring.serviceMonitor.enabled") {
		t.Errorf("ServiceMonitor with a NetworkPolicy that admits no scraper: %v, want an error naming networkPolicy.metrics.namespaceSelector", err)
	}
}

// prometheusRule is the part of a PrometheusRule the tests read.
type prometheusRule struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// TestRenderPrometheusRule: the alerts issue 16 asks for are there, each
// with a severity, a summary, a description that says what to do and a
// runbook link to its README section; the values shape them.
func TestRenderPrometheusRule(t *testing.T) {
	wantAlerts := []string{"VirtualNodeAccessKeyRefused", "VirtualNodeControllerAbsent", "VirtualNodeEciActionRefused", "VirtualNodeEciThrottled",
		"VirtualNodeEciUnreachable", "VirtualNodeGroupsLeaked", "VirtualNodeNotRunning", "VirtualNodePodPendingTooLong"}
	for name, tc := range map[string]struct {
		values              map[string]any
		key, runbook, sel   string
		pendingGT, throttle string
	}{
		"defaults": {with(minimal(), "monitoring", allMonitoring()), "PrometheusRule/kube-system/ack-virtual-node",
			"https://github.com/ack-virtual-node/ack-virtual-node/blob/main/README.md", `namespace="kube-system"`, "> 600", "15m"},
		"every value": {everyValue(), "PrometheusRule/monitoring/ack-virtual-node",
			"https://docs.example.com/ack-virtual-node", `job="ack-virtual-node-controller-metrics"`, "> 1800", "5m"},
	} {
		t.Run(name, func(t *testing.T) {
			objs, _ := render(t, tc.values)
			var pr prometheusRule
			objs.get(t, tc.key, &pr)
			var got []string
			for _, g := range pr.Spec.Groups {
				for _, r := range g.Rules {
					got = append(got, r.Alert)
					if s := r.Labels["severity"]; s != "warning" && s != "critical" {
						t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
					}
					if r.Annotations["summary"] == "" || len(r.Annotations["description"]) < 80 {
						t.Errorf("%s: summary %q, description %q: both are needed, the description saying what to do", r.Alert, r.Annotations["summary"], r.Annotations["description"])
					}
					if want := tc.runbook + "#" + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
						t.Errorf("%s: runbook_url %q, want %q (the README section named after the alert)", r.Alert, r.Annotations["runbook_url"], want)
					}
					// Every selector of the expression is narrowed to the
					// release's controller.
					if n := strings.Count(r.Expr, "{"); n == 0 || strings.Count(r.Expr, "{"+tc.sel) != n {
						t.Errorf("%s: not every selector carries %s:\n%s", r.Alert, tc.sel, r.Expr)
					}
					switch r.Alert {
					case "VirtualNodePodPendingTooLong":
						if !strings.HasSuffix(strings.TrimSpace(r.Expr), tc.pendingGT) {
							t.Errorf("%s: %q, want it to end with %q (monitoring.prometheusRule.pendingMinutes)", r.Alert, r.Expr, tc.pendingGT)
						}
					case "VirtualNodeEciThrottled":
						if r.For != tc.throttle {
							t.Errorf("%s: for %q, want %q (monitoring.prometheusRule.throttlingFor)", r.Alert, r.For, tc.throttle)
						}
					}
				}
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, wantAlerts) {
				t.Errorf("alerts %v, want %v", got, wantAlerts)
			}
		})
	}
}

// TestRenderDashboard: the dashboard ConfigMap carries the sidecar's label
// and the chart's dashboard file, which is valid JSON with panels.
func TestRenderDashboard(t *testing.T) {
	file, err := charts.FS.ReadFile(charts.AckVirtualNode + "/dashboards/ack-virtual-node.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		values map[string]any
		key    string
		labels map[string]string
		ann    map[string]string
	}{
		"defaults":    {with(minimal(), "monitoring", allMonitoring()), "ConfigMap/kube-system/ack-virtual-node-dashboard", map[string]string{"grafana_dashboard": "1"}, nil},
		"every value": {everyValue(), "ConfigMap/grafana/ack-virtual-node-dashboard", map[string]string{"grafana_dashboard": "1", "team": "platform"}, map[string]string{"grafana_folder": "ECI"}},
	} {
		t.Run(name, func(t *testing.T) {
			objs, _ := render(t, tc.values)
			var cm corev1.ConfigMap
			objs.get(t, tc.key, &cm)
			for k, v := range tc.labels {
				if cm.Labels[k] != v {
					t.Errorf("label %s = %q, want %q (labels %v)", k, cm.Labels[k], v, cm.Labels)
				}
			}
			if !reflect.DeepEqual(map[string]string(cm.Annotations), tc.ann) && !(len(cm.Annotations) == 0 && tc.ann == nil) {
				t.Errorf("annotations %v, want %v", cm.Annotations, tc.ann)
			}
			data := cm.Data["ack-virtual-node.json"]
			if data != strings.TrimRight(string(file), "\n") {
				t.Errorf("the ConfigMap's ack-virtual-node.json is not the chart's dashboards/ack-virtual-node.json")
			}
			var d struct {
				UID    string `json:"uid"`
				Title  string `json:"title"`
				Panels []struct {
					Title   string            `json:"title"`
					Type    string            `json:"type"`
					Targets []json.RawMessage `json:"targets"`
				} `json:"panels"`
			}
			if err := json.Unmarshal([]byte(data), &d); err != nil {
				t.Fatalf("dashboard is not valid JSON: %v", err)
			}
			graphs := 0
			for _, p := range d.Panels {
				if p.Type != "row" && len(p.Targets) > 0 {
					graphs++
				}
			}
			if d.UID != "ack-virtual-node" || d.Title != "ack-virtual-node" || graphs < 10 {
				t.Errorf("dashboard uid %q title %q with %d panels with queries, want ack-virtual-node and at least 10", d.UID, d.Title, graphs)
			}
		})
	}
}
