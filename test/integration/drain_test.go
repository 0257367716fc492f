package integration

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runDrain runs `virtual-node drain` as the pre-delete hook Job would: the
// controller's binary and environment, with short waits.
func runDrain(t *testing.T, bin string, environ []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "drain", "--pod-timeout=3s", "--group-timeout=3s")
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, out)
	}
	return string(out), 0
}

// TestDrainAfterUninstall stops the controller with pods running (as an
// uninstall does) and runs the clean-up command: a group the cloud refuses
// to delete is reported with the reason and a failing exit code; once the
// cloud accepts, every group of the node is deleted and named in the
// report, the pods are gone, the node is cordoned, and another cluster's
// group on a node of the same name is untouched.
func TestDrainAfterUninstall(t *testing.T) {
	t.Parallel()
	env := startShared(t, testenv.Options{})
	bin := testutil.BuildCommand(t, "virtual-node")
	cfg := env.NodeConfig(t, uniqueName("vnode-drain"))
	environ := controllerEnv(t, env, cfg)
	kube, ctx, ns := env.Kube, context.Background(), uniqueName("drain")
	createNamespace(t, kube, ns)
	foreign := createForeignGroup(t, env, "another-cluster", cfg.NodeName, "foreign-drain")

	ctrl := startController(t, bin, environ)
	poll(t, "node registered and Ready", 90*time.Second, func(ctx context.Context) (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
		return err == nil && testutil.NodeReady(n), err
	})
	const pods = 5
	createPodsOn(t, kube, ns, "app", pods, cfg.NodeName)
	pollConverged(t, kube, env.Simulator, cfg.ClusterID, cfg.NodeName, ns, pods, 2*time.Minute)
	groups := groupsOfNode(env.Simulator, cfg.ClusterID, cfg.NodeName)
	ctrl.Stop(t, os.Interrupt, 20*time.Second) // uninstall: the controller goes first, its pods stay

	t.Run("a group the cloud will not delete is reported and fails the run", func(t *testing.T) {
		if err := env.Simulator.InjectFault(simulator.Fault{Action: "DeleteContainerGroup", ErrorRate: 1, Code: "Forbidden.RAM", HTTPStatus: 403}); err != nil {
			t.Fatal(err)
		}
		defer env.Simulator.ClearFaults()
		out, code := runDrain(t, bin, environ)
		t.Logf("drain report:\n%s", out)
		if code != 1 {
			t.Errorf("exit code %d, want 1\n%s", code, out)
		}
		for _, want := range []string{"drain INCOMPLETE", "Forbidden.RAM", "group LEFT"} {
			if !strings.Contains(out, want) {
				t.Errorf("report does not say %q:\n%s", want, out)
			}
		}
		for _, ids := range groups {
			if !strings.Contains(out, ids[0]) {
				t.Errorf("report does not name group %s:\n%s", ids[0], out)
			}
		}
	})

	t.Run("drain deletes every group of the node and names them", func(t *testing.T) {
		out, code := runDrain(t, bin, environ)
		t.Logf("drain report:\n%s", out)
		if code != 0 {
			t.Errorf("exit code %d, want 0\n%s", code, out)
		}
		if !strings.Contains(out, "drain complete") {
			t.Errorf("report does not say the drain completed:\n%s", out)
		}
		for _, ids := range groups {
			if !strings.Contains(out, "group deleted by drain: "+ids[0]) {
				t.Errorf("report does not name deleted group %s:\n%s", ids[0], out)
			}
		}
		if left := groupsOfNode(env.Simulator, cfg.ClusterID, cfg.NodeName); len(left) != 0 {
			t.Errorf("groups left in the cloud: %v", left)
		}
		if _, ok := env.Simulator.Group(foreign); !ok {
			t.Error("drain deleted another cluster's group on a node of the same name")
		}
		list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 0 {
			t.Errorf("pods left: %d (%v)", len(list.Items), err)
		}
		node, err := kube.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
		if err != nil || !node.Spec.Unschedulable {
			t.Errorf("node not cordoned (%v)", err)
		}
	})
}

// TestDrainWithControllerRunning runs the clean-up the way a pre-delete
// hook does, before the controller is deleted: the controller deletes the
// pods' groups itself, the report says so, and nothing is left.
func TestDrainWithControllerRunning(t *testing.T) {
	t.Parallel()
	env := startShared(t, testenv.Options{})
	bin := testutil.BuildCommand(t, "virtual-node")
	cfg := env.NodeConfig(t, uniqueName("vnode-hook"))
	environ := controllerEnv(t, env, cfg)
	kube, ctx, ns := env.Kube, context.Background(), uniqueName("hook")
	createNamespace(t, kube, ns)
	startController(t, bin, environ)
	poll(t, "node registered and Ready", 90*time.Second, func(ctx context.Context) (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
		return err == nil && testutil.NodeReady(n), err
	})
	const pods = 3
	createPodsOn(t, kube, ns, "app", pods, cfg.NodeName)
	pollConverged(t, kube, env.Simulator, cfg.ClusterID, cfg.NodeName, ns, pods, 2*time.Minute)
	groups := groupsOfNode(env.Simulator, cfg.ClusterID, cfg.NodeName)

	ctx2, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx2, bin, "drain", "--pod-timeout=60s", "--group-timeout=30s")
	cmd.Env = environ
	raw, err := cmd.CombinedOutput()
	out := string(raw)
	t.Logf("drain report:\n%s", out)
	if err != nil {
		t.Errorf("drain: %v", err)
	}
	for _, ids := range groups {
		if !strings.Contains(out, "group deleted by its controller: "+ids[0]) {
			t.Errorf("report does not say the controller deleted %s", ids[0])
		}
	}
	if left := groupsOfNode(env.Simulator, cfg.ClusterID, cfg.NodeName); len(left) != 0 {
		t.Errorf("groups left in the cloud: %v", left)
	}
	if n := env.Simulator.Calls()["DeleteContainerGroup"]["OK"]; n != pods {
		t.Errorf("%d groups deleted, want %d (one per pod, by the controller)", n, pods)
	}
}
