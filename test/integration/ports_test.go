package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// listeningPorts returns the TCP ports pid listens on, from its open
// sockets (/proc/<pid>/fd) and the kernel's socket tables of its network
// namespace (/proc/<pid>/net/tcp, tcp6).
func listeningPorts(pid int) ([]int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	seen := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: local address %q: %w", table, fields[1], err)
			}
			seen[int(port)] = true
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	var ports []int
	for p := range seen {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	return ports, nil
}

// TestAnonymousGetsNoPodData runs the controller binary with two virtual
// nodes and a running pod whose spec holds a literal secret, finds every
// TCP port the process listens on, and asks each of them, without a client
// certificate or a token, for every kubelet path that serves pod data:
// each answers 401, 403 or 404 and no answer carries the pod's name, UID or
// secret; no anonymous exec reaches the cloud. The apiserver's own kubelet
// client certificate still gets /stats/summary and /pods on the node's
// kubelet port, and /metrics and /healthz still answer on METRICS_ADDR.
func TestAnonymousGetsNoPodData(t *testing.T) {
	t.Parallel()
	env := startShared(t, testenv.Options{})
	kube := env.Kube
	bin := testutil.BuildCommand(t, "virtual-node")

	base := uniqueName("vnode-ports")
	cfg := env.NodeConfig(t, base)
	kp, err := testutil.FreePortRange(2, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg.KubeletPort = kp
	for {
		metricsPort := testenv.FreePort(t)
		if metricsPort != kp && metricsPort != kp+1 {
			cfg.MetricsAddr = "127.0.0.1:" + strconv.Itoa(metricsPort)
			break
		}
	}
	node0, node1 := base+"-0", base+"-1"
	ctl := startController(t, bin, append(controllerEnv(t, env, cfg), "VIRTUAL_NODE_COUNT=2"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, n := range []string{node0, node1} {
		poll(t, n+" Ready", 90*time.Second, func(ctx context.Context) (bool, error) {
			node, err := kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			return err == nil && testutil.NodeReady(node), err
		})
	}

	ns := uniqueName("ports")
	createNamespace(t, kube, ns)
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	secret := "literal-" + hex.EncodeToString(raw[:])
	const podName = "ro-secret-pod"
	tpl := onVirtualNode(node0, map[string]string{"app": "ports"}, corev1.RestartPolicyAlways, "sleep", "3600")
	tpl.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", Value: secret}}
	pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName, Labels: tpl.Labels}, Spec: tpl.Spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, podName+" Running", 90*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	markers := []string{secret, string(pod.UID), podName}
	leaks := func(body string) []string {
		var found []string
		for _, m := range markers {
			if strings.Contains(body, m) {
				found = append(found, m)
			}
		}
		return found
	}

	// Every port the process listens on, once both nodes serve theirs.
	metricsPort, _ := strconv.Atoi(strings.TrimPrefix(cfg.MetricsAddr, "127.0.0.1:"))
	want := []int{kp, kp + 1, metricsPort}
	sort.Ints(want)
	var ports []int
	poll(t, "the controller to listen on both kubelet ports and METRICS_ADDR", 30*time.Second, func(context.Context) (bool, error) {
		var err error
		ports, err = listeningPorts(ctl.Cmd.Process.Pid)
		return fmt.Sprint(ports) == fmt.Sprint(want), err
	})

	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the node's self-signed serving cert; no client cert
	}}
	do := func(client *http.Client, method, url string) (int, string, error) {
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b), err
	}
	execsBefore := simtest.Calls(env.Simulator, "ExecContainerCommand")
	podPath := ns + "/" + podName
	probes := []struct{ method, path string }{
		{http.MethodGet, "/pods"}, {http.MethodGet, "/pods/"}, {http.MethodGet, "/runningpods/"},
		{http.MethodGet, "/stats/summary"}, {http.MethodGet, "/stats/summary?only_cpu_and_memory=true"},
		{http.MethodGet, "/stats/summary?node=" + node0}, {http.MethodGet, "/stats/"},
		{http.MethodGet, "/metrics/resource"}, {http.MethodGet, "/metrics/resource?node=" + node0}, {http.MethodGet, "/metrics/cadvisor"},
		{http.MethodGet, "/spec/"}, {http.MethodGet, "/logs/"},
		{http.MethodGet, "/containerLogs/" + podPath + "/main"}, {http.MethodGet, "/containerLogs/" + podPath + "/main?tailLines=10"},
		{http.MethodGet, "/exec/" + podPath + "/main?command=env&output=1&error=1"},
		{http.MethodPost, "/exec/" + podPath + "/main?command=env&output=1&error=1"},
		{http.MethodPost, "/run/" + podPath + "/main?cmd=env"},
		{http.MethodGet, "/attach/" + podPath + "/main?output=1"}, {http.MethodPost, "/attach/" + podPath + "/main?output=1"},
		{http.MethodPost, "/portForward/" + podPath},
	}
	for _, port := range ports {
		t.Run(fmt.Sprintf("anonymous on port %d", port), func(t *testing.T) {
			// The port's scheme: TLS (the kubelet API) or plain HTTP.
			scheme := "https"
			if _, _, err := do(anon, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/healthz", port)); err != nil {
				scheme = "http"
				if _, _, err := do(anon, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err != nil {
					t.Fatalf("port %d answers neither https nor http: %v", port, err)
				}
			}
			if wantScheme := map[bool]string{true: "https", false: "http"}[port != metricsPort]; scheme != wantScheme {
				t.Errorf("port %d speaks %s, want %s", port, scheme, wantScheme)
			}
			for _, p := range probes {
				code, body, err := do(anon, p.method, fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, p.path))
				switch {
				case err != nil:
					t.Errorf("%s %s: %v", p.method, p.path, err)
				case code != http.StatusUnauthorized && code != http.StatusForbidden && code != http.StatusNotFound:
					t.Errorf("%s %s = %d, want 401, 403 or 404:\n%.2000s", p.method, p.path, code, body)
				case len(leaks(body)) > 0:
					t.Errorf("%s %s = %d carries pod data %q:\n%.2000s", p.method, p.path, code, leaks(body), body)
				}
			}
		})
	}
	if n := simtest.Calls(env.Simulator, "ExecContainerCommand") - execsBefore; n != 0 {
		t.Errorf("anonymous requests made %d ExecContainerCommand calls, want 0", n)
	}

	t.Run("the apiserver's kubelet client certificate gets stats and pods on the kubelet port", func(t *testing.T) {
		certFile, keyFile := env.ControlPlane.KubeletClientCertFiles()
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		apiserver := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}}, //nolint:gosec // as the apiserver, which does not verify kubelet serving certs unless told to
		}}
		var summary statsv1alpha1.Summary
		poll(t, node0+"'s /stats/summary with the pod", 60*time.Second, func(context.Context) (bool, error) {
			code, body, err := do(apiserver, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/stats/summary", kp))
			if err != nil || code != http.StatusOK {
				return false, fmt.Errorf("status %d %.500s: %v", code, body, err)
			}
			summary = statsv1alpha1.Summary{}
			if err := json.Unmarshal([]byte(body), &summary); err != nil {
				return false, err
			}
			for _, ps := range summary.Pods {
				if ps.PodRef.Name == podName && ps.PodRef.Namespace == ns && ps.CPU != nil && ps.CPU.UsageNanoCores != nil {
					return true, nil
				}
			}
			return false, fmt.Errorf("no CPU stats for %s/%s among %d pods", ns, podName, len(summary.Pods))
		})
		if summary.Node.NodeName != node0 {
			t.Errorf("port %d's summary is of node %q, want %s", kp, summary.Node.NodeName, node0)
		}
		code, body, err := do(apiserver, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/pods", kp))
		if err != nil || code != http.StatusOK || !strings.Contains(body, string(pod.UID)) {
			t.Errorf("/pods on %s's kubelet port = %d (%v), want 200 listing pod %s:\n%.2000s", node0, code, err, pod.UID, body)
		}
		// Node 1 has its own port, and its own (empty) summary.
		code, body, err = do(apiserver, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/stats/summary", kp+1))
		var other statsv1alpha1.Summary
		switch {
		case err != nil || code != http.StatusOK:
			t.Errorf("/stats/summary on %s's kubelet port = %d (%v): %.500s", node1, code, err, body)
		case json.Unmarshal([]byte(body), &other) != nil || other.Node.NodeName != node1 || len(leaks(body)) > 0:
			t.Errorf("/stats/summary on %s's kubelet port: want node %s without %s's pod:\n%.2000s", node1, node1, node0, body)
		}
	})

	t.Run("metrics and health still answer on METRICS_ADDR", func(t *testing.T) {
		code, body, err := do(anon, http.MethodGet, "http://"+cfg.MetricsAddr+"/healthz")
		if err != nil || code != http.StatusOK || body != "ok" {
			t.Errorf("/healthz = %d %q (%v), want 200 ok", code, body, err)
		}
		code, body, err = do(anon, http.MethodGet, "http://"+cfg.MetricsAddr+"/metrics")
		if err != nil || code != http.StatusOK || !strings.Contains(body, "vnode_ownership_nodes_running 2") ||
			!strings.Contains(body, `vnode_queue_depth{node="`+node0+`"`) {
			t.Errorf("/metrics = %d (%v), want 200 with both nodes' series:\n%.3000s", code, err, body)
		}
		if found := leaks(body); len(found) > 0 {
			t.Errorf("/metrics carries pod data %q", found)
		}
		code, _, err = do(anon, http.MethodGet, "http://"+cfg.MetricsAddr+"/debug/pprof/")
		if err != nil || code != http.StatusNotFound {
			t.Errorf("/debug/pprof/ = %d (%v), want 404 while PPROF_ENABLED is off", code, err)
		}
	})
}
