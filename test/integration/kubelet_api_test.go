package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// kubectlRun is one finished kubectl invocation.
type kubectlRun struct {
	stdout, stderr string
	code           int
}

// kubectlBinary is the kubectl the checks run: the system one, as users do.
func kubectlBinary(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/kubectl"); err == nil {
		return "/usr/bin/kubectl"
	}
	p, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed")
	}
	return p
}

// kubectlIn runs kubectl in namespace ns with stdin and returns its
// output and exit code (a kubectl that cannot be started fails the test).
func kubectlIn(t *testing.T, env *testenv.Env, ns, stdin string, args ...string) kubectlRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlBinary(t), append([]string{"--kubeconfig", env.ControlPlane.Kubeconfig(), "-n", ns}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	run := kubectlRun{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		run.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("kubectl %v: %v", args, err)
	}
	return run
}

// lineReader collects a process's output lines with their arrival times.
type lineReader struct {
	mu    sync.Mutex
	lines []string
	at    []time.Time
	done  chan struct{}
}

func readLines(r io.Reader) *lineReader {
	lr := &lineReader{done: make(chan struct{})}
	go func() {
		defer close(lr.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.mu.Lock()
			lr.lines, lr.at = append(lr.lines, sc.Text()), append(lr.at, time.Now())
			lr.mu.Unlock()
		}
	}()
	return lr
}

// waitLine waits for a line containing s and returns its index.
func (lr *lineReader) waitLine(t *testing.T, s string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lr.mu.Lock()
		for i, l := range lr.lines {
			if strings.Contains(l, s) {
				lr.mu.Unlock()
				return i
			}
		}
		got := strings.Join(lr.lines, "\n")
		lr.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q within %s; got:\n%s", s, timeout, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (lr *lineReader) snapshot() ([]string, []time.Time) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return append([]string(nil), lr.lines...), append([]time.Time(nil), lr.at...)
}

// TestKubeletAPI drives the kubelet API of the virtual node through the
// real apiserver with kubectl: logs (every option, follow, previous),
// exec (exit codes, configMap files, stdin, a TTY), attach, port-forward,
// the stats endpoints, and the authentication of the kubelet port.
func TestKubeletAPI(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-kubelet-api")
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) {
		c.StartDelay = 300 * time.Millisecond
		c.RestartBackoff = 2 * time.Second
	}})
	cfg := env.NodeConfig(t, nodeName)
	env.StartNode(t, cfg)
	kube := env.Kube
	ctx := context.Background()
	ns := uniqueName("kubelet-api")
	createNamespace(t, kube, ns)
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config"},
		Data:       map[string]string{"app.conf": "key=value\nmode=test\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	newPod := func(name string, restart corev1.RestartPolicy, script string) *corev1.Pod {
		tpl := onVirtualNode(nodeName, nil, restart, "sh", "-c", script)
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: tpl.Spec}
	}
	create := func(pods ...*corev1.Pod) {
		t.Helper()
		for _, p := range pods {
			if _, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitRunning := func(names ...string) {
		t.Helper()
		for _, name := range names {
			poll(t, name+" Running", 60*time.Second, func(ctx context.Context) (bool, error) {
				p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				return err == nil && p.Status.Phase == corev1.PodRunning, err
			})
		}
	}

	// shell: two containers, the config map mounted whole and one key
	// through subPath.
	shell := newPod("shell", corev1.RestartPolicyAlways, "echo l1; echo l2; echo l3; echo l4; echo l5; sleep infinity")
	shell.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}}}
	shell.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/app"}, {Name: "cfg", MountPath: "/etc/single.conf", SubPath: "app.conf"}}
	side := shell.Spec.Containers[0]
	side.Name, side.Command, side.VolumeMounts = "side", []string{"sh", "-c", "echo from-side; sleep infinity"}, nil
	shell.Spec.Containers = append(shell.Spec.Containers, side)
	create(shell,
		newPod("timed", corev1.RestartPolicyAlways, "echo early; sleep 3; echo late; sleep infinity"),
		newPod("crasher", corev1.RestartPolicyAlways, "echo run; date; sleep 1; exit 1"))
	waitRunning("shell", "timed")

	logs := func(t *testing.T, args ...string) kubectlRun {
		t.Helper()
		return kubectlIn(t, env, ns, "", append([]string{"logs"}, args...)...)
	}

	t.Run("kubectl logs options", func(t *testing.T) {
		stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z l5\n$`)
		tests := []struct {
			name  string
			args  []string
			want  string
			match *regexp.Regexp
		}{
			{name: "all", args: []string{"shell", "-c", "main"}, want: "l1\nl2\nl3\nl4\nl5\n"},
			{name: "--tail", args: []string{"shell", "-c", "main", "--tail=2"}, want: "l4\nl5\n"},
			{name: "--limit-bytes", args: []string{"shell", "-c", "main", "--limit-bytes=5"}, want: "l1\nl2"},
			{name: "--timestamps", args: []string{"shell", "-c", "main", "--timestamps", "--tail=1"}, match: stamped},
			{name: "-c", args: []string{"shell", "-c", "side"}, want: "from-side\n"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := logs(t, tc.args...)
				if r.code != 0 || (tc.match == nil && r.stdout != tc.want) || (tc.match != nil && !tc.match.MatchString(r.stdout)) {
					t.Fatalf("kubectl logs %v = %q (exit %d, stderr %q), want %q", tc.args, r.stdout, r.code, r.stderr, tc.want)
				}
			})
		}

		t.Run("--limit-bytes travels as LimitBytes", func(t *testing.T) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "shell", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			before := len(env.Simulator.Requests("DescribeContainerLog"))
			if r := logs(t, "shell", "-c", "main", "--limit-bytes=4"); r.stdout != "l1\nl" {
				t.Fatalf("--limit-bytes=4: %q (%s)", r.stdout, r.stderr)
			}
			sent := ""
			for _, req := range env.Simulator.Requests("DescribeContainerLog")[before:] {
				if req.Params["ContainerGroupId"] == p.Annotations[translate.AnnotationInstanceID] && req.Params["ContainerName"] == "main" {
					sent = req.Params["LimitBytes"]
				}
			}
			if n, err := strconv.Atoi(sent); err != nil || n < 4 {
				t.Errorf("DescribeContainerLog LimitBytes %q, want at least the 4 bytes asked for", sent)
			}
		})

		t.Run("--since and --since-time", func(t *testing.T) {
			var stampedLines []string
			poll(t, "timed to print late", 20*time.Second, func(context.Context) (bool, error) {
				r := logs(t, "timed", "--timestamps")
				stampedLines = strings.Split(strings.TrimSpace(r.stdout), "\n")
				return len(stampedLines) == 2, nil
			})
			lateAt, err := time.Parse(time.RFC3339Nano, strings.Fields(stampedLines[1])[0])
			if err != nil {
				t.Fatal(err)
			}
			since := lateAt.UTC().Truncate(time.Second).Format(time.RFC3339)
			if r := logs(t, "timed", "--since-time="+since); r.stdout != "late\n" {
				t.Errorf("--since-time=%s: %q (%s)", since, r.stdout, r.stderr)
			}
			// A window that holds "late" but not "early", 3 s before it.
			window := int(time.Since(lateAt).Seconds()) + 2
			if r := logs(t, "timed", "--since="+strconv.Itoa(window)+"s"); r.stdout != "late\n" {
				t.Errorf("--since=%ds: %q (%s)", window, r.stdout, r.stderr)
			}
			if r := logs(t, "timed", "--since=1h"); r.stdout != "early\nlate\n" {
				t.Errorf("--since=1h: %q (%s)", r.stdout, r.stderr)
			}
		})

		t.Run("-p", func(t *testing.T) {
			if r := logs(t, "shell", "-c", "main", "-p"); r.code == 0 || !strings.Contains(r.stderr, `previous terminated container "main" in pod "shell" not found`) {
				t.Errorf("-p without a restart: exit %d, stderr %q", r.code, r.stderr)
			}
			poll(t, "crasher to restart", 30*time.Second, func(ctx context.Context) (bool, error) {
				p, err := kube.CoreV1().Pods(ns).Get(ctx, "crasher", metav1.GetOptions{})
				return err == nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1, err
			})
			r := logs(t, "crasher", "-p")
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if r.code != 0 || len(lines) != 2 || lines[0] != "run" || !strings.Contains(lines[1], "UTC") {
				t.Errorf("-p = %q (exit %d, stderr %q), want one run: run and its date", r.stdout, r.code, r.stderr)
			}
		})
	})

	t.Run("kubectl logs -f streams lines as printed and ends when the container exits", func(t *testing.T) {
		create(newPod("follower", corev1.RestartPolicyNever, "echo first; sleep 3; echo second; sleep 3; echo last; exit 0"))
		waitRunning("follower")
		cmd := exec.Command(kubectlBinary(t), "--kubeconfig", env.ControlPlane.Kubeconfig(), "-n", ns, "logs", "-f", "--timestamps", "follower")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lr := readLines(stdout)
		exited := make(chan error, 1)
		go func() { <-lr.done; exited <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })

		lr.waitLine(t, "second", 15*time.Second)
		select {
		case err := <-exited:
			t.Fatalf("kubectl logs -f ended (%v) while the container still runs", err)
		default:
		}
		var exitErr error
		select {
		case exitErr = <-exited:
		case <-time.After(20 * time.Second):
			t.Fatalf("kubectl logs -f did not end after the container exited")
		}
		endedAt := time.Now()
		if exitErr != nil {
			t.Fatalf("kubectl logs -f: %v (%s)", exitErr, stderr.String())
		}
		lines, arrived := lr.snapshot()
		var texts []string
		for i, l := range lines {
			f := strings.SplitN(l, " ", 2)
			printed, err := time.Parse(time.RFC3339Nano, f[0])
			if err != nil || len(f) != 2 {
				t.Fatalf("line %q has no timestamp", l)
			}
			texts = append(texts, f[1])
			if f[1] != "first" { // "first" was printed before the follow began
				t.Logf("follow latency of %q: %s", f[1], arrived[i].Sub(printed).Round(time.Millisecond))
			}
		}
		if strings.Join(texts, ",") != "first,second,last" {
			t.Fatalf("followed lines %q, want first, second, last once each", texts)
		}
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "follower", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cs := p.Status.ContainerStatuses; len(cs) == 1 && cs[0].State.Terminated != nil {
			t.Logf("kubectl logs -f ended %s after the container finished (finishedAt has second precision)",
				endedAt.Sub(cs[0].State.Terminated.FinishedAt.Time).Round(time.Millisecond))
		}
	})

	exec3 := func(t *testing.T, stdin string, args ...string) kubectlRun {
		t.Helper()
		return kubectlIn(t, env, ns, stdin, append([]string{"exec"}, args...)...)
	}

	t.Run("kubectl exec", func(t *testing.T) {
		tests := []struct {
			name  string
			stdin string
			args  []string
			want  string
			code  int
		}{
			{name: "echo", args: []string{"shell", "--", "echo", "hello"}, want: "hello\n"},
			{name: "exit code", args: []string{"shell", "--", "sh", "-c", "echo out; exit 3"}, want: "out\n", code: 3},
			{name: "cat a configMap file", args: []string{"shell", "--", "cat", "/etc/app/app.conf"}, want: "key=value\nmode=test\n"},
			{name: "cat a subPath mount", args: []string{"shell", "--", "cat", "/etc/single.conf"}, want: "key=value\nmode=test\n"},
			{name: "cat a missing file", args: []string{"shell", "--", "cat", "/etc/app/missing"},
				want: "cat: /etc/app/missing: No such file or directory\n", code: 1},
			// side mounts nothing: the command ran in the container asked for.
			{name: "-c", args: []string{"shell", "-c", "side", "--", "cat", "/etc/app/app.conf"},
				want: "cat: /etc/app/app.conf: No such file or directory\n", code: 1},
			{name: "-i with a piped script", stdin: "echo piped\nexit 5\n", args: []string{"-i", "shell", "--", "sh"}, want: "piped\n", code: 5},
			{name: "-i until end of input", stdin: "echo at-eof", args: []string{"-i", "shell", "--", "sh"}, want: "at-eof\n"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := exec3(t, tc.stdin, tc.args...)
				if r.stdout != tc.want || r.code != tc.code {
					t.Fatalf("kubectl exec %v = %q exit %d (stderr %q), want %q exit %d", tc.args, r.stdout, r.code, r.stderr, tc.want, tc.code)
				}
			})
		}
	})

	t.Run("kubectl exec -it with the terminal size", func(t *testing.T) {
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("script (util-linux) is not installed")
		}
		// script gives kubectl a pseudo-terminal of 30x100, whose size
		// kubectl sends as the first resize.
		line := fmt.Sprintf("stty rows 30 cols 100; exec %s --kubeconfig %s -n %s exec -it shell -- sh",
			kubectlBinary(t), env.ControlPlane.Kubeconfig(), ns)
		cmd := exec.Command("script", "-qfec", line, "/dev/null")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out testutil.SyncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		waitOutput := func(what, s string) {
			t.Helper()
			poll(t, what, 15*time.Second, func(context.Context) (bool, error) { return strings.Contains(out.String(), s), nil })
		}
		waitOutput("the shell prompt", "# ")
		_, _ = io.WriteString(stdin, "stty size\r")
		waitOutput("the terminal size", "30 100")
		_, _ = io.WriteString(stdin, "exit 7\r")
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 7 {
				t.Fatalf("kubectl exec -it ended with %v, want exit 7; output:\n%s", err, out.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("kubectl exec -it did not end after exit")
		}
		_ = stdin.Close()
	})

	t.Run("kubectl attach", func(t *testing.T) {
		r := kubectlIn(t, env, ns, "x\n", "attach", "-i", "shell", "-c", "main")
		if r.code == 0 || !strings.Contains(r.stderr, "not supported on ECI") {
			t.Errorf("attach -i: exit %d, stderr %q; want a clear refusal", r.code, r.stderr)
		}
		create(newPod("attachee", corev1.RestartPolicyNever, "sleep 3; echo a1; sleep 3; echo a2; exit 0"))
		waitRunning("attachee")
		r = kubectlIn(t, env, ns, "", "attach", "attachee", "-c", "main")
		if r.code != 0 || !strings.HasSuffix(r.stdout, "a2\n") {
			t.Errorf("attach = %q exit %d (stderr %q), want the output up to a2 and exit 0 when the container ends", r.stdout, r.code, r.stderr)
		}
	})

	t.Run("kubectl port-forward is refused clearly", func(t *testing.T) {
		port := testenv.FreePort(t)
		cmd := exec.Command(kubectlBinary(t), "--kubeconfig", env.ControlPlane.Kubeconfig(), "-n", ns,
			"port-forward", "pod/shell", fmt.Sprintf("%d:80", port))
		var out testutil.SyncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		poll(t, "port-forward to listen", 15*time.Second, func(context.Context) (bool, error) {
			return strings.Contains(out.String(), "Forwarding from"), nil
		})
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.ReadAll(conn)
		conn.Close()
		poll(t, "port-forward to report the refusal", 15*time.Second, func(context.Context) (bool, error) {
			return strings.Contains(out.String(), "not supported on ECI"), nil
		})
	})

	kubeletClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the node's self-signed serving cert
	}}
	kubeletGet := func(t *testing.T, method, path, token string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, fmt.Sprintf("https://127.0.0.1:%d%s", cfg.KubeletPort, path), nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := kubeletClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	t.Run("stats summary and resource metrics as metrics-server reads them", func(t *testing.T) {
		// metrics-server scrapes each kubelet directly with its service
		// account token, authorised for nodes/stats and nodes/metrics;
		// the apiserver's node proxy would refuse this harness's loopback
		// node address.
		// Cluster-wide objects on the shared control plane: named after
		// this test's namespace and deleted when it ends.
		reader := ns + "-metrics-reader"
		t.Cleanup(func() {
			_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), reader, metav1.DeleteOptions{})
			_ = kube.RbacV1().ClusterRoles().Delete(context.Background(), reader, metav1.DeleteOptions{})
		})
		if _, err := kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: reader},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/stats", "nodes/metrics"}, Verbs: []string{"get"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "metrics"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: reader},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: reader},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "metrics", Namespace: ns}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tok, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "metrics", &authnv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		token := tok.Status.Token
		var body []byte
		poll(t, "the metrics token to be authorised", 30*time.Second, func(context.Context) (bool, error) {
			code, b := kubeletGet(t, http.MethodGet, "/stats/summary", token)
			if body = b; code != http.StatusOK {
				return false, fmt.Errorf("status %d: %s", code, b)
			}
			return true, nil
		})
		before := metricCalls(env.Simulator)
		var summary statsv1alpha1.Summary
		if err := json.Unmarshal(body, &summary); err != nil {
			t.Fatal(err)
		}
		var shellStats *statsv1alpha1.PodStats
		for i := range summary.Pods {
			if summary.Pods[i].PodRef.Name == "shell" {
				shellStats = &summary.Pods[i]
			}
		}
		switch {
		case shellStats == nil:
			t.Fatalf("no stats for pod shell in %+v", summary.Pods)
		case shellStats.CPU == nil || shellStats.CPU.UsageNanoCores == nil || *shellStats.CPU.UsageNanoCores == 0:
			t.Errorf("shell CPU = %+v", shellStats.CPU)
		case shellStats.Memory == nil || shellStats.Memory.WorkingSetBytes == nil || *shellStats.Memory.WorkingSetBytes == 0:
			t.Errorf("shell memory = %+v", shellStats.Memory)
		case len(shellStats.Containers) != 2:
			t.Errorf("shell containers = %+v", shellStats.Containers)
		case summary.Node.NodeName != nodeName || summary.Node.CPU == nil || *summary.Node.CPU.UsageNanoCores == 0:
			t.Errorf("node stats = %+v", summary.Node)
		}
		code, b := kubeletGet(t, http.MethodGet, "/metrics/resource", token)
		metrics := string(b)
		if code != http.StatusOK {
			t.Fatalf("/metrics/resource = %d %s", code, metrics)
		}
		for _, want := range []string{
			`container_cpu_usage_seconds_total{container="side",namespace="` + ns + `",pod="shell"}`,
			`container_memory_working_set_bytes{container="main",namespace="` + ns + `",pod="shell"}`,
			`container_start_time_seconds{container="main",namespace="` + ns + `",pod="shell"}`,
			`pod_cpu_usage_seconds_total{namespace="` + ns + `",pod="shell"}`,
			`pod_memory_working_set_bytes{namespace="` + ns + `",pod="shell"}`,
			"node_cpu_usage_seconds_total ", "node_memory_working_set_bytes ", "scrape_error 0",
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics/resource lacks %q:\n%s", want, metrics)
			}
		}
		// The summary and the metrics share one sample set (10 s cache).
		if calls := metricCalls(env.Simulator) - before; calls > 1 {
			t.Errorf("the scrapes made %d DescribeMultiContainerGroupMetric calls, want at most 1", calls)
		}
	})

	t.Run("the kubelet port refuses callers the apiserver does not vouch for", func(t *testing.T) {
		sa, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "default", &authnv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		exec := "/exec/" + ns + "/shell/main?command=echo&command=pwned&output=1"
		tests := []struct {
			name, method, path, token string
			want                      int
		}{
			{"anonymous exec", http.MethodPost, exec, "", http.StatusUnauthorized},
			{"anonymous logs", http.MethodGet, "/containerLogs/" + ns + "/shell/main", "", http.StatusUnauthorized},
			{"anonymous stats", http.MethodGet, "/stats/summary", "", http.StatusUnauthorized},
			{"bogus token exec", http.MethodPost, exec, "not-a-token", http.StatusUnauthorized},
			{"service account without nodes/proxy exec", http.MethodPost, exec, sa.Status.Token, http.StatusForbidden},
			{"service account without nodes/stats", http.MethodGet, "/stats/summary", sa.Status.Token, http.StatusForbidden},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if code, body := kubeletGet(t, tc.method, tc.path, tc.token); code != tc.want {
					t.Fatalf("%s %s = %d %q, want %d", tc.method, tc.path, code, body, tc.want)
				}
			})
		}
		// ... while the same exec through the apiserver is allowed.
		if r := exec3(t, "", "shell", "--", "echo", "via-apiserver"); r.code != 0 || r.stdout != "via-apiserver\n" {
			t.Errorf("exec via the apiserver = %q exit %d (%s)", r.stdout, r.code, r.stderr)
		}
	})
}

// metricCalls counts DescribeMultiContainerGroupMetric calls, any outcome.
func metricCalls(sim *simulator.Simulator) int {
	return simtest.Calls(sim, "DescribeMultiContainerGroupMetric")
}
