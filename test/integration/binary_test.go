package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestControllerBinary runs the real ack-virtual-node-controller binary:
// bad configuration exits 2 naming the variables; a good one, with the
// AccessKey in the environment as the chart's secretKeyRef provides it,
// registers the node and runs a pod in the simulator.
func TestControllerBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	bin := testutil.BuildCommand(t, "virtual-node")

	t.Run("bad configuration exits 2 and names the variables", func(t *testing.T) {
		cmd := exec.Command(bin)
		cmd.Env = []string{"ECI_VSWITCH=subnet-1", "ECI_REGION=cn-hangzhou", "ECI_KUBE_PROXY=perhaps"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Fatalf("exit = %v, want exit code 2; stderr: %s", err, stderr.String())
		}
		for _, want := range []string{"ECI_KUBE_PROXY"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q does not name %s", stderr.String(), want)
			}
		}
		cmd = exec.Command(bin)
		cmd.Env = []string{"ECI_VSWITCH=subnet-1", "ECI_REGION=cn-hangzhou"}
		stderr.Reset()
		cmd.Stderr = &stderr
		_ = cmd.Run()
		for _, want := range []string{`ECI_VSWITCH: "subnet-1"`, "ECI_SECURITY_GROUP is empty"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), want)
			}
		}
		// Capacities are checked at start-up too: a bad one used to panic
		// inside the node after its Lease was taken.
		cmd = exec.Command(bin)
		cmd.Env = []string{"ECI_VSWITCH=vsw-a", "ECI_SECURITY_GROUP=sg-a", "ECI_REGION=cn-hangzhou",
			"ECI_CPU_CAPACITY=lots", "ECI_MEMORY_CAPACITY=-1Gi"}
		stderr.Reset()
		cmd.Stderr = &stderr
		err = cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Fatalf("bad capacities: exit = %v, want exit code 2; stderr: %s", err, stderr.String())
		}
		for _, want := range []string{`ECI_CPU_CAPACITY: "lots"`, `ECI_MEMORY_CAPACITY: "-1Gi"`} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), want)
			}
		}
	})

	t.Run("unreachable apiserver is reported with the documented error", func(t *testing.T) {
		dir := t.TempDir()
		kc := filepath.Join(dir, "kubeconfig")
		port := testenv.FreePort(t) // nothing listens there
		cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:" + strconv.Itoa(port) +
			"\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: x}\n"
		if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin)
		cmd.Env = []string{"ECI_VSWITCH=vsw-a", "ECI_SECURITY_GROUP=sg-a", "ECI_REGION=cn-hangzhou", "KUBECONFIG=" + kc,
			"METRICS_ADDR=127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit = %v, want 1; output: %s", err, out)
		}
		for _, want := range []string{"failed to get kubernetes server version", "cannot be reached"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output does not contain %q:\n%s", want, out)
			}
		}
	})

	t.Run("runs a pod against the simulator with credentials from the environment", func(t *testing.T) {
		env := startShared(t, testenv.Options{})
		cfg := env.NodeConfig(t, uniqueName("vnode-binary"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = []string{
			"KUBECONFIG=" + cfg.Kubeconfig,
			"ECI_ENDPOINT=" + env.SimulatorURL,
			"ECI_REGION=" + cfg.Region,
			"ECI_VSWITCH=" + strings.Join(cfg.VSwitches, ","),
			"ECI_SECURITY_GROUP=" + cfg.SecurityGroup,
			"ALIBABA_CLOUD_ACCESS_KEY_ID=" + testenv.SimAccessKeyID(env.SimulatorConfig),
			"ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + env.SimulatorConfig.AccessKeys[testenv.SimAccessKeyID(env.SimulatorConfig)],
			"VIRTUAL_NODE_NAME=" + cfg.NodeName,
			"VIRTUAL_NODE_IP=127.0.0.1",
			"KUBELET_LISTEN_IP=127.0.0.1",
			"KUBELET_PORT=" + strconv.Itoa(cfg.KubeletPort),
			"METRICS_ADDR=" + cfg.MetricsAddr,
			"ECI_STATUS_INTERVAL=500ms",
			"HOME=" + t.TempDir(), // no stray credential files
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				t.Error("controller did not stop within 20s of SIGINT")
			}
			if t.Failed() {
				t.Logf("controller output:\n%s", out.String())
			}
		}()
		kube := env.Kube
		poll(t, "node "+cfg.NodeName+" registered", 60*time.Second, func(ctx context.Context) (bool, error) {
			_, err := kube.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
			return err == nil, err
		})
		ns := uniqueName("binary")
		createNamespace(t, kube, ns)
		tpl := onVirtualNode(cfg.NodeName, nil, corev1.RestartPolicyAlways)
		tpl.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": cfg.NodeName}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "from-binary", Namespace: ns}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "pod Running", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "from-binary", metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning && p.Annotations["k8s.aliyun.com/eci-instance-id"] != "", err
		})
		if n := env.Simulator.Calls()["CreateContainerGroup"]["OK"]; n != 1 {
			t.Errorf("simulator saw %d successful creates, want 1", n)
		}

		// A second controller whose METRICS_ADDR is taken (by the first)
		// stops with the variable's name instead of running without
		// /healthz.
		second := exec.CommandContext(ctx, bin)
		second.Env = append(append([]string(nil), cmd.Env...), "POD_NAME=second-replica")
		secondOut, err := second.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("second controller on a used METRICS_ADDR: exit = %v, want 1; output: %s", err, secondOut)
		}
		if want := "METRICS_ADDR " + cfg.MetricsAddr; !strings.Contains(string(secondOut), want) {
			t.Errorf("second controller's output does not name %q:\n%s", want, secondOut)
		}
	})
}
