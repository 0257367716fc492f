// Command vnode-bench is `make bench`: it runs one virtual node against the
// ECI simulator on a real control plane at scale, beside kwok on the same
// control plane, and prints the figures (see test/bench).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ack-virtual-node/ack-virtual-node/test/bench"
)

func main() {
	var o bench.Options
	flag.StringVar(&o.Workload, "workload", bench.WorkloadBurst, "burst (Deployments, then scale to zero), paced (pods created at -rate, then deleted), churn (create and delete at -churn-rate), rollout (Deployments at -pods, rolled and their pods deleted at -churn-rate for -churn-duration) or jobs (Job pods that exit 0)")
	flag.IntVar(&o.Pods, "pods", 3000, "pods to create (burst, paced, jobs), or to keep running (rollout)")
	flag.Float64Var(&o.Rate, "rate", 40, "pods created, and so bound to the node, per second (paced)")
	flag.IntVar(&o.Namespaces, "namespaces", 10, "namespaces the workload is spread over")
	flag.Float64Var(&o.ChurnRate, "churn-rate", 0, "pods created (and deleted) per second: churn (default 20), or replaced per second, 3/4 by rolling updates and 1/4 by deleting random Running pods: rollout (default 10)")
	flag.DurationVar(&o.ChurnDuration, "churn-duration", 0, "how long churn or rollout churns (default 60s for churn, 10m for rollout)")
	flag.DurationVar(&o.StuckAfter, "stuck-after", 0, "a bound pod neither Running nor deleted after this long is reported stuck (rollout; default 2m)")
	flag.DurationVar(&o.SimLatency, "sim-latency", 0, "the simulator's own create→Running latency")
	flag.Float64Var(&o.QuotaScale, "quota-scale", 1, "multiplier of the simulator's published API quotas (0 disables throttling)")
	flag.BoolVar(&o.Baseline, "kwok", true, "also run the workload against kwok on the same control plane")
	flag.DurationVar(&o.SteadyWindow, "steady-window", 0, "how long steady-state ECI calls are counted once all pods run (default 20s)")
	flag.StringVar(&o.BinDir, "bin", "bin", "directory with virtual-node and kwok")
	flag.StringVar(&o.OutDir, "out", "bench-results", "directory for the JSON results and the PNG plot")
	flag.DurationVar(&o.Timeout, "timeout", 0, "bound on each target's workload (default 20m)")
	flag.BoolVar(&o.KeepDir, "keep", false, "keep the control plane's and the targets' logs (the directory is printed)")
	flag.IntVar(&o.ProfileSeconds, "profile-seconds", 30, "length of the virtual node's CPU profile, taken from the first pod on and saved with its heap profile and metrics (0: none)")
	flag.IntVar(&o.Nodes, "nodes", 1, "virtual nodes the controller runs (VIRTUAL_NODE_COUNT); pods spread over them")
	flag.IntVar(&o.Replicas, "replicas", 1, "controller processes sharing the nodes and the account's ECI API quota (at most -nodes); memory and CPU figures are the first one's")
	flag.DurationVar(&o.KillReplicaAfter, "kill-replica-after", 0, "kill -9 the last replica this long after the nodes are Ready (needs -replicas 2 or more): pods running, creates per pod and groups left show whether a pod was lost or duplicated")
	flag.Func("vnode-env", "KEY=VALUE added to the virtual node's environment, e.g. KUBE_API_QPS=300 (repeatable)", func(v string) error {
		o.VnodeEnv = append(o.VnodeEnv, v)
		return nil
	})
	flag.Parse()
	o.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, o)
	if rep != nil && len(rep.Targets) > 0 {
		// Measured: print it even if saving it failed.
		rep.WriteTable(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vnode-bench:", err)
		os.Exit(1)
	}
	fmt.Printf("\nresults: %s/latest-results.json, plot: %s/latest-running.png\n", rep.Options.OutDir, rep.Options.OutDir)
}
