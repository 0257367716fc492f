package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
)

// TestBenchEndToEnd runs the benchmark as `make bench` does, at a size CI
// can afford: the real control plane, the virtual-node binary against the
// simulator, and kwok (built from its pinned module) on the same control
// plane. It checks that every figure the report prints was measured, not
// that any target is met.
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds virtual-node and kwok and starts a control plane: skipped with -short")
	}
	root := moduleRoot(t)
	bin := t.TempDir()
	run(t, root, nil, "go", "build", "-o", filepath.Join(bin, "virtual-node"), "./cmd/virtual-node")
	// kwok is cached under the repository's bin/ like the kube binaries.
	run(t, root, nil, "./ci/build-kwok.sh")
	for _, f := range []string{"kwok", "kwok-stages.yaml"} {
		if err := os.Symlink(filepath.Join(root, "bin", f), filepath.Join(bin, f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, workload := range []string{WorkloadBurst, WorkloadJobs, WorkloadPaced} {
		t.Run(workload, func(t *testing.T) {
			out := t.TempDir()
			opts := Options{
				Workload: workload, Pods: 40, Namespaces: 2, QuotaScale: 0, Baseline: true, Rate: 40,
				SteadyWindow: 3 * time.Second, ProfileSeconds: 2, BinDir: bin, OutDir: out,
				Timeout: 5 * time.Minute, Log: testWriter{t},
			}
			rep := runSmoke(t, opts)
			if len(rep.Targets) != 2 || rep.Targets[0].Target != "virtual-node" || rep.Targets[1].Target != "kwok" {
				t.Fatalf("targets %+v", rep.Targets)
			}
			for _, r := range rep.Targets {
				if r.Pods != 40 || r.Running != 40 || r.Errors != 0 {
					t.Errorf("%s: %d pods, %d reached the end state, %d errors (%v)", r.Target, r.Pods, r.Running, r.Errors, r.Failed)
				}
				if r.Throughput <= 0 || r.BoundToRunning.N != 40 || r.PeakRSSMiB <= 0 || r.CPUSeconds <= 0 || r.APIRequests == 0 {
					t.Errorf("%s: figures missing: throughput %v, bound→running n %d, RSS %v, CPU %v, apiserver requests %d",
						r.Target, r.Throughput, r.BoundToRunning.N, r.PeakRSSMiB, r.CPUSeconds, r.APIRequests)
				}
			}
			vn := rep.Targets[0]
			if vn.GroupsLeft != 0 || vn.ECICallsPerPod["CreateContainerGroup"] != 1 {
				t.Errorf("virtual node: %d groups left, %v creates per pod", vn.GroupsLeft, vn.ECICallsPerPod["CreateContainerGroup"])
			}
			if workload != WorkloadJobs && vn.DeleteToGroupGone.N != 40 {
				t.Errorf("virtual node: delete→group gone measured for %d pods, want 40", vn.DeleteToGroupGone.N)
			}
			// The overhead's split: where the create reached the cloud,
			// and the node's own queue and create figures.
			if workload != WorkloadJobs && (vn.BoundToCreateSent.N != 40 || vn.CreateSentToRunning.N != 40) {
				t.Errorf("virtual node: bound→create sent measured for %d pods, create sent→running for %d, want 40",
					vn.BoundToCreateSent.N, vn.CreateSentToRunning.N)
			}
			if vn.NodeCreateMean <= 0 || vn.NodeQueueP99Bucket <= 0 {
				t.Errorf("virtual node: create mean %v s, queue wait p99 bucket %v s: not read from its metrics", vn.NodeCreateMean, vn.NodeQueueP99Bucket)
			}
			var names []string
			for _, f := range vn.Files {
				names = append(names, filepath.Base(f))
			}
			for _, want := range []string{"cpu.pprof", "heap.pprof", "metrics.txt"} {
				if !strings.Contains(strings.Join(names, " "), want) {
					t.Errorf("virtual node records %v: no %s", names, want)
				}
			}
			for _, f := range []string{"latest-results.json", "latest-running.png"} {
				if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
					t.Errorf("%s: %v", f, err)
				}
			}
		})
	}
	t.Run(WorkloadRollout, func(t *testing.T) { testRolloutSmoke(t, bin) })
}

// testRolloutSmoke is the rollout workload's smoke, run by
// TestBenchEndToEnd with the binaries it built: 40 pods in two
// Deployments, churned for 20 s (a roll every ~7 s, a random pod deleted
// every second), the virtual node alone to keep make test short. It
// checks that the churn figures were measured and that nothing leaked.
func testRolloutSmoke(t *testing.T, bin string) {
	opts := Options{
		Workload: WorkloadRollout, Pods: 40, Namespaces: 2, QuotaScale: 0, ChurnRate: 4, ChurnDuration: 20 * time.Second,
		SteadyWindow: 2 * time.Second, ProfileSeconds: 2, BinDir: bin, OutDir: t.TempDir(),
		Timeout: 5 * time.Minute, Log: testWriter{t},
	}
	rep := runSmoke(t, opts)
	if len(rep.Targets) != 1 || rep.Targets[0].Churn == nil {
		t.Fatalf("targets %+v: want the virtual node with churn figures", rep.Targets)
	}
	vn, c := rep.Targets[0], rep.Targets[0].Churn
	if vn.Pods <= 40 || vn.Running <= 40 || vn.Errors != 0 {
		t.Errorf("%d pods, %d ran, %d errors (%v): want more than 40 pods run (replacements) and no error", vn.Pods, vn.Running, vn.Errors, vn.Failed)
	}
	if c.Rolls < 1 || c.RandomDeletes < 1 || c.PodsCreated < 1 || c.PodsDeleted < 1 || c.CreatedPerSec <= 0 {
		t.Errorf("churn: %d rolls, %d random deletes, %d pods created (%.2f/s), %d deleted: want each above 0",
			c.Rolls, c.RandomDeletes, c.PodsCreated, c.CreatedPerSec, c.PodsDeleted)
	}
	if c.GroupsOrphaned < 0 || c.PodsWithoutGroup < 0 {
		t.Errorf("the leak check did not run (the rollouts never settled?): %v", c.LeakSamples)
	}
	if vn.GroupsLeft != 0 || c.GroupsOrphaned != 0 || c.PodsWithoutGroup != 0 || c.PodsStuck != 0 {
		t.Errorf("%d groups left, %d orphaned and %d Running pods without a group at settle (%v), %d pods stuck (%v)",
			vn.GroupsLeft, c.GroupsOrphaned, c.PodsWithoutGroup, c.LeakSamples, c.PodsStuck, c.StuckSample)
	}
	inChurn := 0
	for _, p := range c.RSSSamples {
		if p.T >= 0 && p.T <= c.Seconds {
			inChurn++
		}
	}
	if inChurn < 2 || c.RSSStartMiB <= 0 || c.RSSEndMiB <= 0 || c.RSSPeakMiB < c.RSSStartMiB {
		t.Errorf("RSS: %d samples in the churn, start %v, end %v, peak %v MiB", inChurn, c.RSSStartMiB, c.RSSEndMiB, c.RSSPeakMiB)
	}
	// A pod replaced before the node created its group has none: at
	// most one create per pod, never two.
	if cr := vn.ECICallsPerPod["CreateContainerGroup"]; cr <= 0 || cr > 1 || c.ECICallsPerPod["CreateContainerGroup"] <= 0 || c.APIRequestsPerPod <= 0 {
		t.Errorf("creates per pod %v (churn: %v), apiserver requests per pod created in the churn %v",
			cr, c.ECICallsPerPod["CreateContainerGroup"], c.APIRequestsPerPod)
	}
	var names []string
	for _, f := range vn.Files {
		names = append(names, filepath.Base(f))
	}
	if !strings.Contains(strings.Join(names, " "), "heap.pprof") {
		t.Errorf("virtual node records %v: no heap profile at the churn's end", names)
	}
	if st, err := os.Stat(filepath.Join(opts.OutDir, "latest-rss.png")); err != nil || st.Size() == 0 {
		t.Errorf("latest-rss.png: %v", err)
	}
}

// TestBenchReplicas is the smoke of the cluster-scale mode: two
// controller processes share two virtual nodes and the account's ECI API
// quota (published quotas scaled to 0.25, so Create is 25 + 5/s and the
// 80 pods take 11 s); one is killed (kill -9) 5 s in, while pods are
// being created; every pod runs with exactly one group, the cloud answers
// no call with Throttling, and no group is left.
func TestBenchReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds virtual-node and starts a control plane: skipped with -short")
	}
	root := moduleRoot(t)
	bin := t.TempDir()
	run(t, root, nil, "go", "build", "-o", filepath.Join(bin, "virtual-node"), "./cmd/virtual-node")
	opts := Options{
		Workload: WorkloadBurst, Pods: 80, Namespaces: 2, QuotaScale: 0.25, Nodes: 2, Replicas: 2,
		KillReplicaAfter: 5 * time.Second, SteadyWindow: 3 * time.Second, BinDir: bin, OutDir: t.TempDir(),
		Timeout: 5 * time.Minute, Log: testWriter{t},
	}
	rep := runSmoke(t, opts)
	vn := rep.Targets[0]
	if vn.Pods != 80 || vn.Running != 80 || vn.Errors != 0 {
		t.Errorf("%d pods, %d running, %d errors (%v)", vn.Pods, vn.Running, vn.Errors, vn.Failed)
	}
	if vn.DuplicateGroups != 0 || vn.PodsWithoutGroup != 0 {
		t.Errorf("after the kill: %d pods created twice, %d running pods without a group", vn.DuplicateGroups, vn.PodsWithoutGroup)
	}
	if vn.CreateRate <= 0 {
		t.Errorf("create rate not measured")
	}
	if vn.ECIThrottled != 0 {
		t.Errorf("%d ECI calls answered Throttling: the replicas did not split the quota", vn.ECIThrottled)
	}
	if vn.GroupsLeft != 0 || vn.ECICallsPerPod["CreateContainerGroup"] != 1 {
		t.Errorf("%d groups left, %v creates per pod", vn.GroupsLeft, vn.ECICallsPerPod["CreateContainerGroup"])
	}
}

func TestOptionsNodesReplicas(t *testing.T) {
	for _, tt := range []struct {
		nodes, replicas int
		want            string
	}{
		{0, 1, "-nodes 0"},
		{2, 3, "-replicas 3"},
		{2, 0, "-replicas 0"},
		{2, 1, "-kill-replica-after"},
	} {
		o := Options{BinDir: t.TempDir()}
		o.Defaults()
		o.Nodes, o.Replicas = tt.nodes, tt.replicas
		if tt.want == "-kill-replica-after" {
			o.KillReplicaAfter = time.Second
		}
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("-nodes %d -replicas %d: %v, want an error naming %s", tt.nodes, tt.replicas, err, tt.want)
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// testWriter sends the bench's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// runSmoke runs the bench with opts, bounded to 10 minutes; missing
// control-plane binaries skip the test unless CI is set.
func runSmoke(t *testing.T, opts Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := Run(ctx, opts)
	if errors.Is(err, controlplane.ErrBinariesMissing) && os.Getenv("CI") != "true" {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
