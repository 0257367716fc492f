package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// target is what runs the pods: the virtual node against the simulator, or
// kwok. Both are processes, so their memory and CPU are read from /proc.
type target interface {
	// name labels the figures.
	name() string
	// start runs the process and returns once its node is Ready.
	start(ctx context.Context) error
	// stop ends the process.
	stop()
	// pid is the process to measure.
	pid() int
	// user is the apiserver identity of the process.
	user() string
	// placement makes a pod template land on the target's node.
	placement(spec *corev1.PodSpec)
	// cloud is the simulator the target uses, or nil.
	cloud() *simulator.Simulator
}

// proc is a child process with its output in a log file.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProc(dir, name, bin string, args, env []string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitNodeReady waits for node's Ready condition, failing early (with the
// log's tail) if a process exits.
func (c *cluster) waitNodeReady(ctx context.Context, node string, procs ...*proc) error {
	p := procs[0]
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, q := range procs {
			if q.exited() {
				p = q
				return false, fmt.Errorf("exited before node %s was Ready", node)
			}
		}
		n, err := c.kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && testutil.NodeReady(n), nil
	})
	if err != nil {
		b, _ := os.ReadFile(p.log)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return fmt.Errorf("node %s: %w\n%s", node, err, b)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// vnodeTarget is cmd/virtual-node with the simulator as its cloud: one
// process, or Options.Replicas of them sharing Options.Nodes nodes.
type vnodeTarget struct {
	cl          *cluster
	opts        Options
	p           *proc   // the first replica: its memory, CPU and profiles are reported
	procs       []*proc // every replica
	metricsAddr string  // the first replica's
	kill        *time.Timer
}

const vnodeName = "bench-vnode"

func (t *vnodeTarget) name() string                { return "virtual-node" }
func (t *vnodeTarget) user() string                { return vnodeUser }
func (t *vnodeTarget) cloud() *simulator.Simulator { return t.cl.sim }
func (t *vnodeTarget) pid() int                    { return t.p.cmd.Process.Pid }

// stop ends every replica at once, as a Deployment deleted does.
func (t *vnodeTarget) stop() {
	if t.kill != nil {
		t.kill.Stop()
	}
	var wg sync.WaitGroup
	for _, p := range t.procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// nodeNames are the virtual nodes the replicas share (config.NodeNames).
func (t *vnodeTarget) nodeNames() []string {
	if t.opts.Nodes <= 1 {
		return []string{vnodeName}
	}
	names := make([]string, t.opts.Nodes)
	for i := range names {
		names[i] = vnodeName + "-" + strconv.Itoa(i)
	}
	return names
}
func (t *vnodeTarget) placement(spec *corev1.PodSpec) {
	placeOn(spec, "virtual-kubelet", "virtual-kubelet.io/provider")
}

func (t *vnodeTarget) start(ctx context.Context) error {
	kubeconfig := filepath.Join(t.cl.dir, "vnode.kubeconfig")
	if err := t.cl.cp.WriteKubeconfig(kubeconfig, vnodeUser, []string{"system:masters"}); err != nil {
		return err
	}
	replicas := max(t.opts.Replicas, 1)
	// Each replica listens on an address of its own (127.0.0.1, .2, ...)
	// and every node on KUBELET_PORT + its index, so a node keeps its port
	// whichever replica runs it.
	ips := make([]string, replicas)
	for i := range ips {
		ips[i] = "127.0.0." + strconv.Itoa(i+1)
	}
	kubeletPort, err := testutil.FreePortRange(max(t.opts.Nodes, 1), ips...)
	if err != nil {
		return err
	}
	var vsw []string
	for _, z := range t.cl.simCfg.Zones {
		for _, v := range z.VSwitches {
			vsw = append(vsw, v.VSwitchId)
		}
	}
	var keyID, secret string
	for keyID, secret = range t.cl.simCfg.AccessKeys {
		break
	}
	home := filepath.Join(t.cl.dir, "vnode-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	env := []string{
		"HOME=" + home,
		"KUBECONFIG=" + kubeconfig,
		"ECI_ENDPOINT=" + t.cl.simURL,
		"ECI_REGION=" + t.cl.simCfg.RegionId,
		"ECI_VSWITCH=" + strings.Join(vsw, ","),
		"ECI_SECURITY_GROUP=" + t.cl.simCfg.SecurityGroups[0],
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + keyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + secret,
		"CLUSTER_ID=bench",
		"VIRTUAL_NODE_NAME=" + vnodeName,
		"VIRTUAL_NODE_COUNT=" + strconv.Itoa(max(t.opts.Nodes, 1)),
		"KUBELET_PORT=" + strconv.Itoa(kubeletPort),
		"ECI_POD_CAPACITY=" + strconv.Itoa(t.opts.podCapacity()),
		"PPROF_ENABLED=true",
		// The client's limits follow the simulator's quotas.
		"ECI_API_QUOTA_SCALE=" + strconv.FormatFloat(t.opts.QuotaScale, 'g', -1, 64),
	}
	env = append(env, t.opts.VnodeEnv...)
	// The kube-proxy identity of ECI pods, as the chart installs it.
	if _, err := nodeaccess.EnsureKubeProxyIdentity(ctx, t.cl.cp.Clientset(), metav1.NamespaceSystem); err != nil {
		return err
	}
	for i, ip := range ips {
		metricsPort, err := freePort()
		if err != nil {
			return err
		}
		metricsAddr := "127.0.0.1:" + strconv.Itoa(metricsPort)
		renv := append([]string{
			"POD_NAME=bench-replica-" + strconv.Itoa(i),
			"KUBELET_LISTEN_IP=" + ip,
			"VIRTUAL_NODE_IP=" + ip,
			"METRICS_ADDR=" + metricsAddr,
		}, env...)
		logName := "virtual-node"
		if replicas > 1 {
			logName += "-" + strconv.Itoa(i)
		}
		p, err := startProc(t.cl.dir, logName, filepath.Join(t.opts.BinDir, "virtual-node"), nil, renv)
		if err != nil {
			return err
		}
		t.procs = append(t.procs, p)
		if i == 0 {
			t.p, t.metricsAddr = p, metricsAddr
		}
	}
	for _, n := range t.nodeNames() {
		if err := t.cl.waitNodeReady(ctx, n, t.procs...); err != nil {
			return err
		}
	}
	if d := t.opts.KillReplicaAfter; d > 0 {
		victim := t.procs[len(t.procs)-1]
		t.kill = time.AfterFunc(d, func() {
			logf(t.opts.Log, "virtual-node: kill -9 replica %d (pid %d)", len(t.procs)-1, victim.cmd.Process.Pid)
			_ = victim.cmd.Process.Kill()
		})
	}
	return nil
}

// kwokTarget is kwok managing one fake node: the kubelet that costs
// nothing, so its figures are the control plane's own limit.
type kwokTarget struct {
	cl   *cluster
	opts Options
	p    *proc
}

const kwokNode = "bench-kwok"

func (t *kwokTarget) name() string                   { return "kwok" }
func (t *kwokTarget) user() string                   { return kwokUser }
func (t *kwokTarget) cloud() *simulator.Simulator    { return nil }
func (t *kwokTarget) pid() int                       { return t.p.cmd.Process.Pid }
func (t *kwokTarget) stop()                          { t.p.stop() }
func (t *kwokTarget) placement(spec *corev1.PodSpec) { placeOn(spec, "kwok", "kwok.x-k8s.io/node") }

func (t *kwokTarget) start(ctx context.Context) error {
	kubeconfig := filepath.Join(t.cl.dir, "kwok.kubeconfig")
	if err := t.cl.cp.WriteKubeconfig(kubeconfig, kwokUser, []string{"system:masters"}); err != nil {
		return err
	}
	capacity := corev1.ResourceList{
		corev1.ResourcePods:   *resource.NewQuantity(int64(t.opts.podCapacity()), resource.DecimalSI),
		corev1.ResourceCPU:    resource.MustParse("20000"),
		corev1.ResourceMemory: resource.MustParse("80Ti"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        kwokNode,
			Labels:      map[string]string{"type": "kwok", corev1.LabelHostname: kwokNode},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		},
		Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: "kwok.x-k8s.io/node", Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if _, err := t.cl.kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create kwok node: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	home := filepath.Join(t.cl.dir, "kwok-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--manage-nodes-with-label-selector=type=kwok",
		"--server-address=127.0.0.1:" + strconv.Itoa(port),
		"--node-lease-duration-seconds=40",
		"--config=" + filepath.Join(t.opts.BinDir, "kwok-stages.yaml"),
	}
	t.p, err = startProc(t.cl.dir, "kwok", filepath.Join(t.opts.BinDir, "kwok"), args, []string{"HOME=" + home})
	if err != nil {
		return err
	}
	return t.cl.waitNodeReady(ctx, kwokNode, t.p)
}

// placeOn selects nodes labelled type=nodeType and tolerates their taint.
func placeOn(spec *corev1.PodSpec, nodeType, taint string) {
	spec.NodeSelector = map[string]string{"type": nodeType}
	spec.Tolerations = []corev1.Toleration{{Key: taint, Operator: corev1.TolerationOpExists}}
}

// procUsage reads a process's peak resident memory (VmHWM) and its CPU
// time so far (utime+stime).
func procUsage(pid int) (peakRSSMiB, cpuSeconds float64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	var kb float64
	if _, err := fmt.Sscanf(procField(string(status), "VmHWM"), "%f", &kb); err != nil {
		return 0, 0, fmt.Errorf("VmHWM of %d: %w", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the line, in clock ticks (USER_HZ = 100).
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return kb / 1024, (ut + st) / 100, nil
}
