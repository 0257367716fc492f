// Package bench measures one virtual node at scale: how many pods it holds,
// how fast they reach Running, what it adds to the cloud's own latency, how
// many ECI calls and apiserver requests it makes, and what it costs in
// memory and CPU. The same workload runs against kwok, the zero-cost
// kubelet, on the same control plane, so every figure has a baseline that
// is the limit of the control-plane path on the machine at hand.
//
// It is a program (cmd/vnode-bench, `make bench`), not a test: figures are
// reported, and a missed target is a finding rather than a failure.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Workloads a run can drive.
const (
	// WorkloadBurst creates all pods at once through Deployments spread
	// over namespaces, waits until they run, then scales them to zero.
	WorkloadBurst = "burst"
	// WorkloadChurn creates pods at a steady rate and deletes each one as
	// soon as it runs.
	WorkloadChurn = "churn"
	// WorkloadJobs fans out Jobs whose pods exit 0.
	WorkloadJobs = "jobs"
	// WorkloadPaced creates pods one by one at Rate a second (the
	// scheduler binds them as they come), waits until they run, then
	// deletes them: the node's overhead at a rate it can sustain, where
	// a burst measures mostly its queue.
	WorkloadPaced = "paced"
	// WorkloadRollout brings Pods up through Deployments, then for
	// ChurnDuration rolls the Deployments one after another and deletes
	// random Running pods (the ReplicaSets replace them), at ChurnRate
	// pods a second in all; it then waits for every rollout to finish
	// and reports leaked groups, stuck pods and the node's RSS over the
	// churn: the node at scale over time, where the others measure one
	// wave of pods.
	WorkloadRollout = "rollout"
)

// Options configure a run. Zero values take the defaults in Defaults.
type Options struct {
	// Workload is burst, paced, churn, rollout or jobs.
	Workload string
	// Pods is how many pods burst, paced, rollout and jobs create.
	Pods int
	// Namespaces spreads the workload's Deployments or Jobs.
	Namespaces int
	// Rate is how many pods a second the paced workload creates.
	Rate float64
	// ChurnRate (pods/s) and ChurnDuration shape the churn and rollout
	// workloads. For rollout, ChurnRate is the pods replaced a second:
	// three quarters through rolling updates, one quarter through
	// deleting random Running pods.
	ChurnRate     float64
	ChurnDuration time.Duration
	// StuckAfter is how long a bound pod may stay neither Running nor
	// deleted before the rollout workload reports it stuck.
	StuckAfter time.Duration
	// SimLatency is the simulator's own create→Running delay, subtracted
	// from bound→Running to give the node's overhead.
	SimLatency time.Duration
	// QuotaScale multiplies the simulator's published API quotas (1 keeps
	// them, 0 disables throttling).
	QuotaScale float64
	// Baseline also runs the workload against kwok.
	Baseline bool
	// SteadyWindow is how long status calls are counted once every pod
	// runs, to report the steady-state rate.
	SteadyWindow time.Duration
	// BinDir holds virtual-node and kwok; the kube binaries come from the
	// control plane's own defaults.
	BinDir string
	// OutDir receives results.json and running.png.
	OutDir string
	// Timeout bounds each target's workload.
	Timeout time.Duration
	// Log receives progress lines.
	Log io.Writer `json:"-"`
	// VnodeEnv adds KEY=VALUE settings to the virtual node's environment
	// (after the bench's own, so they win), to compare tunings.
	VnodeEnv []string
	// ProfileSeconds is the length of the virtual node's CPU profile,
	// taken from the first pod on (0: none).
	ProfileSeconds int
	// KeepDir keeps the control plane's and the targets' logs.
	KeepDir bool
	// Nodes is how many virtual nodes the controller runs
	// (VIRTUAL_NODE_COUNT); pods spread over them.
	Nodes int
	// Replicas is how many controller processes share the nodes and the
	// account's ECI API quota, as the Deployment's replicas do in
	// production (package ownership). The memory and CPU figures, and the
	// profiles, are the first replica's.
	Replicas int
	// KillReplicaAfter, if set, kills the last replica (kill -9) this long
	// after every node is Ready: its nodes move to the others, and the
	// report shows whether a pod was lost (pods running) or duplicated
	// (creates per pod, groups left).
	KillReplicaAfter time.Duration
}

// Defaults fills the zero fields of o.
func (o *Options) Defaults() {
	if o.Workload == "" {
		o.Workload = WorkloadBurst
	}
	if o.Pods == 0 {
		o.Pods = 3000
	}
	if o.Namespaces == 0 {
		o.Namespaces = 10
	}
	if o.Rate == 0 {
		o.Rate = 40
	}
	if o.ChurnRate == 0 {
		o.ChurnRate = 20
		if o.Workload == WorkloadRollout {
			// Creates and deletes each well under the published
			// 20/s, and what two cores' control plane follows with
			// 10,000 pods running.
			o.ChurnRate = 10
		}
	}
	if o.ChurnDuration == 0 {
		o.ChurnDuration = 60 * time.Second
		if o.Workload == WorkloadRollout {
			o.ChurnDuration = 10 * time.Minute
		}
	}
	if o.StuckAfter == 0 {
		o.StuckAfter = 2 * time.Minute
	}
	if o.SteadyWindow == 0 {
		o.SteadyWindow = 20 * time.Second
	}
	if o.BinDir == "" {
		o.BinDir = "bin"
	}
	if o.OutDir == "" {
		o.OutDir = "bench-results"
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
}

// Validate names the flag of every bad option.
func (o *Options) Validate() error {
	var errs []error
	switch o.Workload {
	case WorkloadBurst, WorkloadChurn, WorkloadJobs, WorkloadPaced, WorkloadRollout:
	default:
		errs = append(errs, fmt.Errorf("-workload %q: use burst, paced, churn, rollout or jobs", o.Workload))
	}
	if o.Rate <= 0 {
		errs = append(errs, fmt.Errorf("-rate %v: must be positive (pods created a second by -workload paced)", o.Rate))
	}
	if o.Pods < 1 {
		errs = append(errs, fmt.Errorf("-pods %d: must be at least 1", o.Pods))
	}
	if o.Namespaces < 1 || o.Namespaces > o.Pods {
		errs = append(errs, fmt.Errorf("-namespaces %d: must be between 1 and -pods", o.Namespaces))
	}
	if o.ChurnRate <= 0 {
		errs = append(errs, fmt.Errorf("-churn-rate %v: must be positive", o.ChurnRate))
	}
	if o.ChurnDuration < 0 {
		errs = append(errs, fmt.Errorf("-churn-duration %v: must not be negative (0 takes the workload's default)", o.ChurnDuration))
	}
	if o.StuckAfter < 0 {
		errs = append(errs, fmt.Errorf("-stuck-after %v: must not be negative (0 takes the default, 2m)", o.StuckAfter))
	}
	if o.SimLatency < 0 {
		errs = append(errs, fmt.Errorf("-sim-latency %v: must not be negative", o.SimLatency))
	}
	for _, kv := range o.VnodeEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("-vnode-env %q: use KEY=VALUE", kv))
		}
	}
	if o.ProfileSeconds < 0 {
		errs = append(errs, fmt.Errorf("-profile-seconds %d: must not be negative (0 takes no CPU profile)", o.ProfileSeconds))
	}
	if o.Nodes < 1 || o.Nodes > 100 {
		errs = append(errs, fmt.Errorf("-nodes %d: must be between 1 and 100", o.Nodes))
	}
	if o.Replicas < 1 || o.Replicas > o.Nodes || o.Replicas > 200 {
		errs = append(errs, fmt.Errorf("-replicas %d: must be between 1 and -nodes (%d): a replica beyond the nodes runs none", o.Replicas, o.Nodes))
	}
	if o.KillReplicaAfter < 0 || (o.KillReplicaAfter > 0 && o.Replicas < 2) {
		errs = append(errs, fmt.Errorf("-kill-replica-after %v: needs -replicas 2 or more, and must not be negative", o.KillReplicaAfter))
	}
	if o.QuotaScale < 0 {
		errs = append(errs, fmt.Errorf("-quota-scale %v: must not be negative (0 disables throttling)", o.QuotaScale))
	}
	for _, b := range o.binaries() {
		if _, err := os.Stat(b.path); err != nil {
			errs = append(errs, fmt.Errorf("%s not found (fix: %s)", b.path, b.fix))
		}
	}
	return errors.Join(errs...)
}

// podCapacity is the pods a node offers: every pod of the run, the
// surge of a rolling update (a quarter of one Deployment, the rollout
// workload rolls one at a time) and room to spare.
func (o *Options) podCapacity() int {
	c := o.Pods + 100
	if o.Workload == WorkloadRollout {
		c += (o.Pods/max(o.Namespaces, 1)+3)/4 + o.Pods/20
	}
	return c
}

type binary struct{ path, fix string }

func (o *Options) binaries() []binary {
	bins := []binary{{filepath.Join(o.BinDir, "virtual-node"), "run `make build`"}}
	if o.Baseline {
		bins = append(bins, binary{filepath.Join(o.BinDir, "kwok"), "run `ci/build-kwok.sh`"},
			binary{filepath.Join(o.BinDir, "kwok-stages.yaml"), "run `ci/build-kwok.sh`"})
	}
	return bins
}

// Report is everything a run measured.
type Report struct {
	// Started is when the run began.
	Started time.Time `json:"started"`
	// Machine describes where it ran.
	Machine Machine `json:"machine"`
	// Options are the run's options after defaults.
	Options Options `json:"options"`
	// Targets holds the virtual node first, then kwok if run.
	Targets []*Result `json:"targets"`
}

// Machine is the host the figures come from.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpuModel"`
	MemoryGi int    `json:"memoryGi"`
	GoOS     string `json:"goos"`
	GoArch   string `json:"goarch"`
}

// Run starts the control plane, runs the workload against the virtual node
// (and kwok), and writes the report into opts.OutDir.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.Defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now(), Machine: machine(), Options: opts}
	logf(opts.Log, "starting control plane")
	cl, err := startCluster(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer cl.stop()

	vn, err := runTarget(ctx, cl, &vnodeTarget{cl: cl, opts: opts}, opts)
	if err != nil {
		return nil, fmt.Errorf("virtual node: %w", err)
	}
	rep.Targets = append(rep.Targets, vn)
	if opts.Baseline {
		kw, err := runTarget(ctx, cl, &kwokTarget{cl: cl, opts: opts}, opts)
		if err != nil {
			return nil, fmt.Errorf("kwok: %w", err)
		}
		rep.Targets = append(rep.Targets, kw)
	}
	if err := rep.write(opts.OutDir); err != nil {
		return rep, err
	}
	return rep, nil
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(string(b), "model name")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(procField(string(b), "MemTotal"), "%d", &kb); err == nil {
			m.MemoryGi = (kb + 512*1024) / (1024 * 1024)
		}
	}
	return m
}

func logf(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}
