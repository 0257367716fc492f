package virtualnode

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// freeAddr is a loopback address free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestMetricsPortServesNoPodData: METRICS_ADDR answers /metrics and
// /healthz, and every kubelet pod-data path with a 404 that says where it
// went; /debug/pprof only when enabled.
func TestMetricsPortServesNoPodData(t *testing.T) {
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(t *testing.T, method, url string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, pprofOn := range []bool{false, true} {
		addr := freeAddr(t)
		reg := prometheus.NewRegistry()
		probe := prometheus.NewCounter(prometheus.CounterOpts{Name: "vnode_test_probe_total", Help: "A counter this test registers."})
		reg.MustRegister(probe)
		probe.Inc()
		srv, errc, err := serveMetrics(addr, reg, newNodeRegistry(), pprofOn)
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + addr

		if code, body := get(t, http.MethodGet, base+"/healthz"); code != http.StatusOK || body != "ok" {
			t.Errorf("/healthz = %d %q, want 200 ok (a replica running no node is healthy)", code, body)
		}
		if code, body := get(t, http.MethodGet, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "vnode_test_probe_total 1") {
			t.Errorf("/metrics = %d, want 200 with the injected registry's series:\n%s", code, body)
		}
		for _, path := range []string{"/pods", "/pods/", "/runningpods/", "/stats/summary", "/stats/summary/", "/stats/container",
			"/metrics/resource", "/metrics/cadvisor", "/spec/", "/containerLogs/ns/pod/main", "/logs/",
			"/exec/ns/pod/main?command=id", "/attach/ns/pod/main", "/portForward/ns/pod", "/run/ns/pod/main"} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				code, body := get(t, method, base+path)
				if code != http.StatusNotFound || !strings.Contains(body, "KUBELET_PORT") {
					t.Errorf("%s %s = %d %q, want 404 naming the kubelet port", method, path, code, body)
				}
			}
		}
		code, _ := get(t, http.MethodGet, base+"/debug/pprof/")
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[pprofOn]; code != want {
			t.Errorf("pprof enabled=%v: /debug/pprof/ = %d, want %d", pprofOn, code, want)
		}

		// A port in use stops the start with the variable's name.
		if _, _, err := serveMetrics(addr, prometheus.NewRegistry(), newNodeRegistry(), false); err == nil || !strings.Contains(err.Error(), "METRICS_ADDR "+addr) {
			t.Errorf("second server on %s: %v, want an error naming METRICS_ADDR", addr, err)
		}
		_ = srv.Close()
		select {
		case err := <-errc:
			t.Errorf("closing the server reported %v", err)
		default:
		}
	}
}
