package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/webhook"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// demoNode is the node the demo registers (VIRTUAL_NODE_NAME unset).
const demoNode = config.DefaultNodeName

// demoRun is one run of ci/demo.sh in a state directory of its own, with
// this test run's binaries.
type demoRun struct {
	t      *testing.T
	script string
	state  string
	env    []string
	// wrap, if set, runs the script under this command (e.g. unshare).
	wrap []string
}

// newDemo prepares a demo run: the binaries `make demo` builds, a state
// directory, free ports and an environment without VIRTUAL_NODE_IP (the
// demo relies on its default). `demo.sh down` runs when the test ends
// even if the test stopped it already (it is idempotent).
func newDemo(t *testing.T, wrap ...string) *demoRun {
	t.Helper()
	kubectlBinary(t) // the demo is driven with kubectl, as users do
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	root, err := controlplane.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, name := range []string{"devcluster", "eci-simulator", "vnode-webhook", "virtual-node"} {
		if err := os.Symlink(testutil.BuildCommand(t, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	d := &demoRun{t: t, script: filepath.Join(root, "ci", "demo.sh"), state: t.TempDir(), wrap: wrap}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VIRTUAL_NODE_IP=") {
			d.env = append(d.env, kv)
		}
	}
	d.env = append(d.env, "DEMO_STATE_DIR="+d.state, "DEMO_BIN_DIR="+bin,
		"KUBELET_PORT="+strconv.Itoa(testenv.FreePort(t)), "METRICS_PORT="+strconv.Itoa(testenv.FreePort(t)),
		"WEBHOOK_PORT="+strconv.Itoa(testenv.FreePort(t)))
	t.Cleanup(func() {
		if out, err := d.run("down", time.Minute); err != nil {
			t.Errorf("demo.sh down: %v\n%s", err, out)
		}
	})
	return d
}

// run runs `demo.sh arg` (wrapped for "up") and returns its output.
func (d *demoRun) run(arg string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"bash", d.script, arg}
	if arg == "up" && len(d.wrap) > 0 {
		args = append(append([]string{}, d.wrap...), args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = d.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// up runs `demo.sh up` and fails the test, with the logs' tails, when it
// fails.
func (d *demoRun) up() string {
	t := d.t
	t.Helper()
	out, err := d.run("up", 6*time.Minute)
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(d.state, "*.log"))
		for _, l := range logs {
			if b, rerr := os.ReadFile(l); rerr == nil {
				t.Logf("--- %s (tail)\n%s", filepath.Base(l), tail(string(b), 40))
			}
		}
		t.Fatalf("demo.sh up: %v\n%s", err, out)
	}
	t.Logf("demo.sh up:\n%s", out)
	return out
}

// down runs `demo.sh down` and checks that every process the demo started
// is gone: the ones of its pid files, and any process (etcd, the
// apiserver...) whose command line names the state directory.
func (d *demoRun) down() {
	t := d.t
	t.Helper()
	pids := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(d.state, "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
	}
	for _, p := range []string{"devcluster", "eci-simulator", "vnode-webhook", "virtual-node"} {
		if _, ok := pids[p]; !ok {
			t.Errorf("the demo left no pid file for %s: %v", p, files)
		}
	}
	out, err := d.run("down", time.Minute)
	if err != nil {
		t.Fatalf("demo.sh down: %v\n%s", err, out)
	}
	t.Logf("demo.sh down:\n%s", out)
	for p, pid := range pids {
		if !strings.Contains(out, "stopped "+p+"\n") {
			t.Errorf("demo.sh down output lacks %q", "stopped "+p)
		}
		if processAlive(pid) {
			t.Errorf("%s (pid %d) still runs after demo.sh down", p, pid)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(d.state, "*.pid")); len(left) > 0 {
		t.Errorf("pid files left after demo.sh down: %v", left)
	}
	// devcluster stops its children; none may outlive it.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), d.state) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if processAlive(pid) {
			t.Errorf("pid %d still runs after demo.sh down: %s", pid, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

// processAlive reports whether pid runs (a zombie, dead but not yet reaped
// by its new parent, does not).
func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestDemo runs `make demo`'s script (ci/demo.sh up, then down) with this
// run's binaries in a state directory of its own, and checks what its
// output promises against the demo's cluster itself:
//   - the Deployment carries only the label alibabacloud.com/eci=true; the
//     webhook, called by the apiserver on a loopback URL, gave its pods the
//     virtual node's nodeSelector and toleration, and they run there;
//   - the node advertises this host's first address other than loopback
//     (VIRTUAL_NODE_IP unset), so the apiserver's node proxy reaches the
//     pods' logs and the node's stats;
//   - the pods Running under the documentation's custom RAM policy (the
//     status fallback on the Node), and the hidden kube-proxy container in
//     the pod's group but not on the pod;
//   - demo.sh down stops every process it started.
func TestDemo(t *testing.T) {
	t.Parallel()
	d := newDemo(t)
	out := d.up()
	for _, want := range []string{
		"RAM policy: the documented custom policy",
		`deployment "hello-eci" successfully rolled out`,
		"hello from ECI",
		"ContainerInstanceAPI=True",
		"ContainerInstancePermissions=True StatusFallback",
		"pod containers:   hello\n",
		"eci-kube-proxy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// The hidden container is listed among the group's containers, beside
	// the pod's own.
	if i := strings.Index(out, "group containers"); i < 0 {
		t.Error("demo output lacks the group's containers")
	} else if g := out[i:]; !strings.Contains(g, "hello") || !strings.Contains(g, "eci-kube-proxy") {
		t.Errorf("group containers section %q: want hello and eci-kube-proxy", g)
	}

	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(d.state, "cluster", "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The product's main path: a label, and the webhook does the rest.
	dep, err := kube.AppsV1().Deployments("default").Get(ctx, "hello-eci", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tpl := dep.Spec.Template
	if tpl.Labels[webhook.LabelECI] != "true" || len(tpl.Spec.NodeSelector) != 0 || len(tpl.Spec.Tolerations) != 0 || tpl.Spec.Affinity != nil {
		t.Errorf("the demo's Deployment template: labels %v, nodeSelector %v, tolerations %v, affinity %v; want only the label %s=true",
			tpl.Labels, tpl.Spec.NodeSelector, tpl.Spec.Tolerations, tpl.Spec.Affinity, webhook.LabelECI)
	}
	pods, err := kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello-eci"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != int(*dep.Spec.Replicas) {
		t.Errorf("%d hello-eci pods, want %d", len(pods.Items), *dep.Spec.Replicas)
	}
	for _, p := range pods.Items {
		if !routed(&p) || p.Spec.NodeName != demoNode || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: nodeName %q, phase %s, nodeSelector %v, tolerations %v; want Running on %s with the webhook's nodeSelector and toleration",
				p.Name, p.Spec.NodeName, p.Status.Phase, p.Spec.NodeSelector, p.Spec.Tolerations, demoNode)
		}
	}
	i := strings.Index(out, "routed by the webhook")
	if i < 0 {
		t.Fatal("demo output lacks the webhook's routing")
	}
	for _, want := range []string{
		"nodeSelector=none tolerations=none",
		"nodeName=" + demoNode,
		`nodeSelector={"type":"virtual-kubelet"}`,
		"toleration=virtual-kubelet.io/provider Exists NoSchedule (added by the webhook)",
	} {
		if !strings.Contains(out[i:], want) {
			t.Errorf("the demo's routing section lacks %q", want)
		}
	}

	// The node's address: this host's first address other than loopback.
	node, err := kube.CoreV1().Nodes().Get(ctx, demoNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var nodeIP string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			nodeIP = a.Address
		}
	}
	ifaces, err := config.SystemInterfaces{}.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	hostIP, ok := config.ChooseNodeIP(ifaces)
	if !ok {
		// TestDemoLoopbackOnly covers this machine's case.
		if nodeIP != config.LoopbackNodeIP || !strings.Contains(out, "this machine has no network address other than loopback") {
			t.Errorf("no host address: node InternalIP %q, want %s and the demo saying why", nodeIP, config.LoopbackNodeIP)
		}
		d.down()
		return
	}
	if nodeIP != hostIP.String() {
		t.Errorf("node InternalIP = %q, want this host's first address other than loopback, %s", nodeIP, hostIP)
	}
	// What the demo showed through the node proxy, and the proxy itself.
	j := strings.Index(out, "through the apiserver's node proxy to "+nodeIP)
	if j < 0 {
		t.Fatal("demo output lacks the node proxy section")
	}
	proxied := out[j:]
	if k := strings.Index(proxied, "what the node says"); k > 0 {
		proxied = proxied[:k]
	}
	for _, want := range []string{"/proxy/containerLogs/default/hello-eci-", "    hello from ECI", "/proxy/stats/summary", "node " + demoNode, "pod default/hello-eci-"} {
		if !strings.Contains(proxied, want) {
			t.Errorf("the demo's node proxy section lacks %q:\n%s", want, proxied)
		}
	}
	base := "/api/v1/nodes/" + demoNode + "/proxy/"
	stats, err := kube.CoreV1().RESTClient().Get().AbsPath(base + "stats/summary").DoRaw(ctx)
	if err != nil {
		t.Fatalf("GET %sstats/summary: %v", base, err)
	}
	for _, p := range pods.Items {
		if !strings.Contains(string(stats), `"name":"`+p.Name+`"`) {
			t.Errorf("stats/summary through the node proxy lacks pod %s: %s", p.Name, stats)
		}
		logs, err := kube.CoreV1().RESTClient().Get().AbsPath(base + "containerLogs/default/" + p.Name + "/hello").DoRaw(ctx)
		if err != nil || !strings.Contains(string(logs), "hello from ECI") {
			t.Errorf("containerLogs of %s through the node proxy = %q, %v; want hello from ECI", p.Name, logs, err)
		}
	}
	d.down()
}

// TestDemoLoopbackOnly runs the demo on a machine with no network address
// but loopback (a network namespace of its own, lo up): the node falls
// back to 127.0.0.1 and the demo says, before anything else fails, that
// the apiserver's node proxy is unavailable and why, and still runs the
// labelled pods on ECI.
func TestDemoLoopbackOnly(t *testing.T) {
	t.Parallel()
	unshare, err := exec.LookPath("unshare")
	if err == nil {
		_, err = exec.LookPath("ip") // brings lo up in the namespace
	}
	if err == nil {
		err = exec.Command(unshare, "--net", "true").Run()
	}
	if err != nil {
		t.Skipf("cannot make a network namespace with unshare --net (needs root or user namespaces): %v", err)
	}
	d := newDemo(t, unshare, "--net", "sh", "-c", `ip link set lo up && exec "$@"`, "demo")
	out := d.up()
	for _, want := range []string{
		"this machine has no network address other than loopback, so the node advertises\n127.0.0.1 (VIRTUAL_NODE_IP unset)",
		`refuses to proxy to a loopback address ("address not allowed")`,
		`deployment "hello-eci" successfully rolled out`,
		"nodeName=" + demoNode,
		"toleration=virtual-kubelet.io/provider Exists NoSchedule (added by the webhook)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out, "through the apiserver's node proxy") {
		t.Error("the demo tried the node proxy on a loopback node address")
	}
	d.down()
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
