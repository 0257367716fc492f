package integration

import (
	"context"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKillDuringCreates kills the controller process with SIGKILL while it
// is creating the 200 pods of a Deployment, with creates in flight (the
// simulator commits them after the caller is gone), and starts it again:
// every pod ends Running with exactly one group, and no group is left
// without a pod. The ClientToken (the pod UID) and adoption at start-up
// are what make that hold.
func TestKillDuringCreates(t *testing.T) {
	t.Parallel()
	const replicas = 200
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) { c.StartDelay = 200 * time.Millisecond }})
	bin := testutil.BuildCommand(t, "virtual-node")
	cfg := env.NodeConfig(t, uniqueName("vnode-kill"))
	environ := controllerEnv(t, env, cfg)
	kube, ctx, ns := env.Kube, context.Background(), uniqueName("kill")
	createNamespace(t, kube, ns)

	first := startController(t, bin, environ)
	poll(t, "node registered and Ready", 90*time.Second, func(ctx context.Context) (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
		return err == nil && testutil.NodeReady(n), err
	})
	// Slow creates down so that the kill lands with creates in flight.
	if err := env.Simulator.InjectFault(simulator.Fault{Action: "CreateContainerGroup", LatencyMs: 400}); err != nil {
		t.Fatal(err)
	}
	tpl := onVirtualNode(cfg.NodeName, map[string]string{"app": "kill"}, "Always")
	tpl.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": cfg.NodeName}
	n := int32(replicas)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "kill"},
		Spec:       appsv1.DeploymentSpec{Replicas: &n, Selector: &metav1.LabelSelector{MatchLabels: tpl.Labels}, Template: tpl},
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "a third of the groups created", 3*time.Minute, func(ctx context.Context) (bool, error) {
		return env.Simulator.Calls()["CreateContainerGroup"]["OK"] >= replicas/3, nil
	})
	first.Kill(t)
	killedAt := env.Simulator.Calls()["CreateContainerGroup"]["OK"]
	// Creates sent before the kill are committed by the cloud anyway.
	time.Sleep(time.Second)
	if err := env.Simulator.InjectFault(simulator.Fault{Action: "CreateContainerGroup"}); err != nil {
		t.Fatal(err)
	}
	groups := groupsOfNode(env.Simulator, cfg.ClusterID, cfg.NodeName)
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unrecorded := 0
	for _, p := range pods.Items {
		if len(groups[string(p.UID)]) > 0 && p.Annotations[translate.AnnotationInstanceID] == "" {
			unrecorded++
		}
	}
	t.Logf("killed after %d creates answered; %d groups exist, %d of them not recorded on their pod", killedAt, len(groups), unrecorded)
	if len(groups) >= replicas {
		t.Fatalf("every group existed before the kill (%d): the kill came too late to test anything", len(groups))
	}

	startController(t, bin, environ)
	took := pollConverged(t, kube, env.Simulator, cfg.ClusterID, cfg.NodeName, ns, replicas, 6*time.Minute)
	t.Logf("converged %v after the restart", took.Round(time.Millisecond))
	calls := env.Simulator.Calls()
	t.Logf("creates: %v; deletes: %v", calls["CreateContainerGroup"], calls["DeleteContainerGroup"])
}
