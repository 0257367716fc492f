package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAPIServerStall runs one controller replica (the seeds' StatefulSet
// pod virtual-node-eci-0) and freezes the kube-apiserver (SIGSTOP) for
// longer than the Lease duration. Alone, the replica keeps its node
// running through the stall instead of stopping it: no second start, no
// re-adoption of the groups, the pods keep their groups, and a pod created
// after the stall runs.
func TestAPIServerStall(t *testing.T) {
	t.Parallel()
	// A control plane of its own: the test freezes its apiserver.
	env := testenv.Start(t, testenv.Options{})
	bin := testutil.BuildCommand(t, "virtual-node")
	kube := env.Kube
	ctx := context.Background()
	const node = "virtual-node-eci-0"
	port := haFreePortRange(t, 1, "127.0.0.1")
	const renew = 4 * time.Second
	r := haStartReplica(t, env, bin, node, "127.0.0.1", port,
		"VIRTUAL_NODE_LEASE_DURATION=6s", "VIRTUAL_NODE_LEASE_RENEW_DEADLINE="+renew.String(), "VIRTUAL_NODE_LEASE_RETRY_PERIOD=1s")
	poll(t, "node "+node+" Ready", 60*time.Second, func(ctx context.Context) (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && testutil.NodeReady(n), nil
	})

	newPod := func(name string) {
		t.Helper()
		tpl := onVirtualNode(node, nil, corev1.RestartPolicyAlways)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	groupOf := func(name string) string {
		t.Helper()
		var id string
		poll(t, "pod "+name+" Running with its group", 60*time.Second, func(ctx context.Context) (bool, error) {
			got, err := kube.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil || got.Status.Phase != corev1.PodRunning {
				return false, err
			}
			id = got.Annotations["k8s.aliyun.com/eci-instance-id"]
			return id != "", nil
		})
		return id
	}
	before := map[string]string{}
	for i := range 2 {
		name := fmt.Sprintf("before-stall-%d", i)
		newPod(name)
		before[name] = groupOf(name)
	}

	resume, err := env.ControlPlane.PauseAPIServer()
	if err != nil {
		t.Fatal(err)
	}
	// Past the renew deadline and the Lease duration: the node is held over.
	poll(t, "the replica holds its node over the stall", 60*time.Second, func(context.Context) (bool, error) {
		return strings.Contains(r.Out.String(), "no other replica is alive to take the node: keeping it running"), nil
	})
	time.Sleep(6 * time.Second)
	if err := resume(); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Lease renewed after the stall", 60*time.Second, func(context.Context) (bool, error) {
		return strings.Contains(r.Out.String(), "renewed the node's Lease: the node kept running"), nil
	})
	newPod("after-stall")
	groupOf("after-stall")

	for name, id := range before {
		if now := groupOf(name); now != id {
			t.Errorf("pod %s has group %s after the stall, want %s", name, now, id)
		}
	}
	out := r.Out.String()
	for _, tc := range []struct {
		line string
		want int
	}{
		{`"owning virtual node: starting it"`, 1},
		{`"reconciled existing container groups"`, 1},
		{`"lost the node's Lease`, 0},
		{`"virtual node failed`, 0},
	} {
		if n := strings.Count(out, tc.line); n != tc.want {
			t.Errorf("replica log has %s %d times, want %d", tc.line, n, tc.want)
		}
	}
	if n := env.Simulator.Calls()["CreateContainerGroup"]["OK"]; n != 3 {
		t.Errorf("simulator saw %d successful creates, want 3 (no group made twice)", n)
	}
	if n := len(groupsOfNode(env.Simulator, haCluster, node)); n != 3 {
		t.Errorf("%d pods of node %s have groups, want 3", n, node)
	}
}
