package integration

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/ownership"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Short ownership timings for the tests: a dead replica's nodes are taken
// over about haLease after its last renewal.
const (
	haLease   = 4 * time.Second
	haRenew   = 3 * time.Second
	haRetry   = 500 * time.Millisecond
	haCluster = "test-cluster"
)

// haReplica is one ack-virtual-node-controller process.
type haReplica struct {
	id, ip string
	*testutil.Process
}

// haStartReplica runs the controller binary as replica id, with its kubelet
// API (and node address) on ip; extra env entries override the defaults.
// The process is stopped (SIGKILL if need be) when the test ends.
func haStartReplica(t *testing.T, env *testenv.Env, bin, id, ip string, kubeletPort int, extra ...string) *haReplica {
	t.Helper()
	cfg := env.NodeConfig(t, "unused")
	vars := map[string]string{
		"KUBECONFIG":                        cfg.Kubeconfig,
		"ECI_ENDPOINT":                      env.SimulatorURL,
		"ECI_REGION":                        cfg.Region,
		"ECI_VSWITCH":                       strings.Join(cfg.VSwitches, ","),
		"ECI_SECURITY_GROUP":                cfg.SecurityGroup,
		"ALIBABA_CLOUD_ACCESS_KEY_ID":       testenv.SimAccessKeyID(env.SimulatorConfig),
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET":   env.SimulatorConfig.AccessKeys[testenv.SimAccessKeyID(env.SimulatorConfig)],
		"CLUSTER_ID":                        haCluster,
		"POD_NAME":                          id,
		"POD_NAMESPACE":                     "kube-system",
		"VIRTUAL_NODE_IP":                   ip,
		"KUBELET_LISTEN_IP":                 ip,
		"KUBELET_PORT":                      strconv.Itoa(kubeletPort),
		"METRICS_ADDR":                      "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"ECI_STATUS_INTERVAL":               "500ms",
		"ECI_RESYNC_INTERVAL":               "5s",
		"VIRTUAL_NODE_LEASE_DURATION":       haLease.String(),
		"VIRTUAL_NODE_LEASE_RENEW_DEADLINE": haRenew.String(),
		"VIRTUAL_NODE_LEASE_RETRY_PERIOD":   haRetry.String(),
		"HOME":                              t.TempDir(), // no stray credential files
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			delete(vars, k)
		} else {
			vars[k] = v
		}
	}
	environ := make([]string, 0, len(vars))
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	r := &haReplica{id: id, ip: ip, Process: testutil.StartProcess(t, "replica "+id, bin, environ)}
	// Runs before StartProcess's clean-up: the kubelet's SIGTERM.
	t.Cleanup(func() { r.stop(t, 30*time.Second) })
	return r
}

// stop sends SIGTERM (what the kubelet sends) and waits for the exit; a
// replica that does not exit in time is killed and the test fails.
func (r *haReplica) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	r.Stop(t, syscall.SIGTERM, timeout)
}

// kill is kill -9: no Lease is released, no clean-up runs.
func (r *haReplica) kill(t *testing.T) {
	t.Helper()
	r.Kill(t)
}

// haHolders returns the holder of each node's ownership Lease ("" when free
// or missing).
func haHolders(ctx context.Context, kube kubernetes.Interface, names []string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		l, err := kube.CoordinationV1().Leases("kube-system").Get(ctx, ownership.NodeLeaseName(n), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			out[n] = ""
		case err != nil:
			return nil, err
		case l.Spec.HolderIdentity != nil:
			out[n] = *l.Spec.HolderIdentity
		default:
			out[n] = ""
		}
	}
	return out, nil
}

// haQuotaShares returns the ECI API quota share each replica publishes on
// its membership Lease, by replica.
func haQuotaShares(ctx context.Context, kube kubernetes.Interface) (map[string]string, error) {
	list, err := kube.CoordinationV1().Leases("kube-system").List(ctx, metav1.ListOptions{LabelSelector: ownership.LabelLeaseKind + "=replica"})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range list.Items {
		if l.Spec.HolderIdentity != nil {
			out[*l.Spec.HolderIdentity] = l.Annotations[ownership.AnnotationQuotaShare]
		}
	}
	return out, nil
}

func haNodeIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// haFreePortRange returns a port p such that p..p+n-1 are free on every ip.
func haFreePortRange(t *testing.T, n int, ips ...string) int {
	t.Helper()
	port, err := testutil.FreePortRange(n, ips...)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// haPod is what must survive a takeover unchanged.
type haPod struct {
	node, uid, group string
}

// TestHAReplicas runs two controller replicas (the real binary, two
// processes) that share three virtual nodes through their Leases, kills
// one with SIGKILL and checks that the other takes its nodes over, keeps
// them Ready (the node Leases in kube-node-lease keep being renewed, by
// the new owner, whose address and kubelet port the nodes now advertise),
// and keeps every pod: same pod UIDs, same container groups, exactly one
// group per pod, none without a pod. The survivor then manages the adopted
// pods (delete, create) and, stopped with SIGTERM, releases every Lease at
// once and leaves the groups running.
func TestHAReplicas(t *testing.T) {
	t.Parallel()
	// A control plane of its own: replicas share out nodes through the
	// replica Leases in kube-system, which every replica of the cluster reads.
	env := testenv.Start(t, testenv.Options{})
	bin := testutil.BuildCommand(t, "virtual-node")
	kube := env.Kube
	ctx := context.Background()
	base := "vnode-ha"
	names := []string{base + "-0", base + "-1", base + "-2"}
	ipA, ipB := "127.0.0.1", "127.0.0.2"
	port := haFreePortRange(t, len(names), ipA, ipB)
	common := []string{"VIRTUAL_NODE_NAME=" + base, "VIRTUAL_NODE_COUNT=3"}
	reps := map[string]*haReplica{
		"replica-a": haStartReplica(t, env, bin, "replica-a", ipA, port, common...),
		"replica-b": haStartReplica(t, env, bin, "replica-b", ipB, port, common...),
	}

	// Both replicas run nodes: the load is shared.
	var owners map[string]string
	poll(t, "three nodes Ready, each owned by one replica, both replicas owning some", 90*time.Second, func(ctx context.Context) (bool, error) {
		h, err := haHolders(ctx, kube, names)
		if err != nil {
			return false, err
		}
		per := map[string]int{}
		for _, n := range names {
			if reps[h[n]] == nil {
				return false, nil
			}
			per[h[n]]++
			node, err := kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil || !testutil.NodeReady(node) || haNodeIP(node) != reps[h[n]].ip {
				return false, nil
			}
		}
		owners = h
		return per["replica-a"] > 0 && per["replica-b"] > 0, nil
	})
	t.Logf("owners before the kill: %v", owners)
	// The account's ECI API quota is split by the nodes each replica runs
	// (2 and 1 of 3: 0.6666 and 0.3333).
	poll(t, "each replica's membership Lease publishes its part of the ECI API quota", 60*time.Second, func(ctx context.Context) (bool, error) {
		h, err := haHolders(ctx, kube, names)
		if err != nil {
			return false, err
		}
		per := map[string]int{}
		for _, n := range names {
			per[h[n]]++
		}
		s, err := haQuotaShares(ctx, kube)
		if err != nil {
			return false, err
		}
		want := map[int]string{1: "0.3333", 2: "0.6666"}
		return s["replica-a"] == want[per["replica-a"]] && s["replica-b"] == want[per["replica-b"]], nil
	})

	// Two running pods per node.
	ns := "ha"
	createNamespace(t, kube, ns)
	for _, n := range names {
		tpl := onVirtualNode("", map[string]string{"app": "ha"}, corev1.RestartPolicyAlways)
		tpl.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": n}
		for i := 0; i < 2; i++ {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-p%d", n, i), Labels: tpl.Labels}, Spec: tpl.Spec}
			if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := map[string]haPod{}
	poll(t, "six pods Running with a group each", 90*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		rec := map[string]haPod{}
		for _, p := range pods.Items {
			g := p.Annotations["k8s.aliyun.com/eci-instance-id"]
			if p.Status.Phase != corev1.PodRunning || g == "" {
				return false, nil
			}
			rec[p.Name] = haPod{node: p.Spec.NodeName, uid: string(p.UID), group: g}
		}
		before = rec
		return len(rec) == 6, nil
	})
	createsBefore := env.Simulator.Calls()["CreateContainerGroup"]["OK"]
	if createsBefore != 6 {
		t.Fatalf("simulator saw %d successful creates for 6 pods", createsBefore)
	}

	// Kill the replica that owns more nodes (the larger takeover).
	count := map[string]int{}
	for _, h := range owners {
		count[h]++
	}
	victim, survivor := reps["replica-a"], reps["replica-b"]
	if count["replica-b"] > count["replica-a"] {
		victim, survivor = survivor, victim
	}
	var victimNodes []string
	for _, n := range names {
		if owners[n] == victim.id {
			victimNodes = append(victimNodes, n)
		}
	}
	sort.Strings(victimNodes)
	killedAt := time.Now()
	victim.kill(t)
	t.Logf("killed %s (kill -9), which owned %v; %s takes over", victim.id, victimNodes, survivor.id)

	var takeover time.Duration
	poll(t, "the survivor holds every node Lease", 60*time.Second, func(ctx context.Context) (bool, error) {
		h, err := haHolders(ctx, kube, names)
		if err != nil {
			return false, err
		}
		for _, n := range names {
			if h[n] != survivor.id {
				return false, nil
			}
		}
		takeover = time.Since(killedAt)
		return true, nil
	})
	var renewed time.Duration
	taken := map[string]bool{}
	for _, n := range victimNodes {
		taken[n] = true
	}
	poll(t, "every node Ready at the survivor's address, the taken-over nodes' Leases renewed after the kill", 60*time.Second, func(ctx context.Context) (bool, error) {
		for i, n := range names {
			node, err := kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if !testutil.NodeReady(node) || haNodeIP(node) != survivor.ip || node.Status.DaemonEndpoints.KubeletEndpoint.Port != int32(port+i) {
				return false, nil
			}
			if !taken[n] {
				continue
			}
			l, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			// The victim renewed every node Lease until it died; only the
			// survivor can have renewed it after the ownership Lease ran out.
			if l.Spec.RenewTime == nil || !l.Spec.RenewTime.After(killedAt.Add(haLease)) {
				return false, nil
			}
		}
		renewed = time.Since(killedAt)
		return true, nil
	})
	// The survivor takes the whole quota once the victim's membership
	// Lease has expired.
	poll(t, "the survivor publishes the whole ECI API quota", 60*time.Second, func(ctx context.Context) (bool, error) {
		s, err := haQuotaShares(ctx, kube)
		return err == nil && s[survivor.id] == "1", err
	})
	t.Logf("lease duration %s (renew deadline %s, retry period %s): survivor held every node Lease %s after the kill; taken-over nodes Ready at the survivor's address with their kube-node-lease renewed by it %s after the kill",
		haLease, haRenew, haRetry, takeover.Round(10*time.Millisecond), renewed.Round(10*time.Millisecond))

	// The node Leases in kube-node-lease keep being renewed: watch one
	// renewal go by on each taken-over node.
	for _, n := range victimNodes {
		l0, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		poll(t, "node Lease of "+n+" renewed again", 60*time.Second, func(ctx context.Context) (bool, error) {
			l, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n, metav1.GetOptions{})
			return err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(l0.Spec.RenewTime.Time), err
		})
	}

	// No pod was recreated: same pods, UIDs and groups; one group per pod
	// UID and none without a pod; no create call since.
	assertNoRecreate := func(stage string) {
		t.Helper()
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		after := map[string]haPod{}
		for _, p := range pods.Items {
			after[p.Name] = haPod{node: p.Spec.NodeName, uid: string(p.UID), group: p.Annotations["k8s.aliyun.com/eci-instance-id"]}
			if p.Status.Phase != corev1.PodRunning {
				t.Errorf("%s: pod %s is %s", stage, p.Name, p.Status.Phase)
			}
		}
		for name, b := range before {
			if a, ok := after[name]; !ok || a != b {
				t.Errorf("%s: pod %s was %+v, now %+v (present %v)", stage, name, b, a, ok)
			}
		}
		if len(after) != len(before) {
			t.Errorf("%s: %d pods, want %d", stage, len(after), len(before))
		}
		live := map[string]string{}
		for _, a := range after {
			live[a.uid] = a.group
		}
		for _, n := range names {
			for uid, ids := range groupsOfNode(env.Simulator, haCluster, n) {
				switch {
				case live[uid] == "":
					t.Errorf("%s: groups %v of node %s have no pod (uid %s)", stage, ids, n, uid)
				case len(ids) != 1 || ids[0] != live[uid]:
					t.Errorf("%s: pod uid %s has groups %v, want exactly [%s]", stage, uid, ids, live[uid])
				}
				delete(live, uid)
			}
		}
		if len(live) > 0 {
			t.Errorf("%s: pods without a group: %v", stage, live)
		}
		if n := env.Simulator.Calls()["CreateContainerGroup"]["OK"]; n != createsBefore {
			t.Errorf("%s: simulator saw %d successful creates, want still %d", stage, n, createsBefore)
		}
	}
	assertNoRecreate("after the takeover")
	if !strings.Contains(survivor.Out.String(), `"reconciled existing container groups"`) {
		t.Errorf("survivor never logged its adoption of the taken-over groups")
	}

	// The survivor manages the taken-over pods: a deleted pod loses its
	// group, a new pod on a taken-over node runs.
	gone := victimNodes[0] + "-p0"
	if err := kube.CoreV1().Pods(ns).Delete(ctx, gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "group of deleted pod "+gone+" deleted by the survivor", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Pods(ns).Get(ctx, gone, metav1.GetOptions{})
		groups := groupsOfNode(env.Simulator, haCluster, victimNodes[0])
		_, still := groups[before[gone].uid]
		return apierrors.IsNotFound(err) && !still, nil
	})
	delete(before, gone)
	tpl := onVirtualNode("", map[string]string{"app": "ha"}, corev1.RestartPolicyAlways)
	tpl.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": victimNodes[0]}
	fresh := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: victimNodes[0] + "-new", Labels: tpl.Labels}, Spec: tpl.Spec}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, fresh, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "new pod on a taken-over node Running", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, fresh.Name, metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return false, err
		}
		before[p.Name] = haPod{node: p.Spec.NodeName, uid: string(p.UID), group: p.Annotations["k8s.aliyun.com/eci-instance-id"]}
		return true, nil
	})
	createsBefore++
	assertNoRecreate("after managing the taken-over pods")

	// SIGTERM releases every Lease (a rolling update hands over at once)
	// and leaves the pods' groups alone.
	survivor.stop(t, 30*time.Second)
	h, err := haHolders(ctx, kube, names)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if h[n] != "" {
			t.Errorf("after SIGTERM the Lease of %s is still held by %q", n, h[n])
		}
	}
	if _, err := kube.CoordinationV1().Leases("kube-system").Get(ctx, ownership.ReplicaLeaseName(survivor.id), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("membership Lease of %s after SIGTERM: %v, want NotFound", survivor.id, err)
	}
	total := 0
	for _, n := range names {
		total += len(groupsOfNode(env.Simulator, haCluster, n))
	}
	if total != len(before) {
		t.Errorf("after SIGTERM %d pods have groups, want all %d (stopping must not delete groups)", total, len(before))
	}
}

// TestStatefulSetNodeName runs the controller as the seeds' StatefulSet pod
// virtual-node-eci-1 (POD_NAME from the downward API, no
// VIRTUAL_NODE_NAME): it serves node virtual-node-eci-1 and holds its
// Lease. Restarted after kill -9 under the same pod name, it takes the
// node back at once (the Lease is its own) and adopts the running pod's
// group instead of creating another one.
func TestStatefulSetNodeName(t *testing.T) {
	t.Parallel()
	// A control plane of its own: a replica, which reads every replica Lease
	// in kube-system, and the check that no node "virtual-kubelet" exists.
	env := testenv.Start(t, testenv.Options{})
	bin := testutil.BuildCommand(t, "virtual-node")
	kube := env.Kube
	ctx := context.Background()
	const pod = "virtual-node-eci-1"
	port := haFreePortRange(t, 1, "127.0.0.1")
	// A long Lease: taking the node back must not wait for it to expire.
	env60 := []string{"VIRTUAL_NODE_LEASE_DURATION=60s", "VIRTUAL_NODE_LEASE_RENEW_DEADLINE=40s", "VIRTUAL_NODE_LEASE_RETRY_PERIOD=1s"}
	r := haStartReplica(t, env, bin, pod, "127.0.0.1", port, env60...)

	var node *corev1.Node
	poll(t, "node "+pod+" Ready", 60*time.Second, func(ctx context.Context) (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, pod, metav1.GetOptions{})
		node = n
		return err == nil && testutil.NodeReady(n), nil
	})
	if node.Labels["type"] != "virtual-kubelet" || node.Status.DaemonEndpoints.KubeletEndpoint.Port != int32(port) {
		t.Errorf("node labels %v, kubelet port %d (want %d)", node.Labels, node.Status.DaemonEndpoints.KubeletEndpoint.Port, port)
	}
	h, err := haHolders(ctx, kube, []string{pod})
	if err != nil || h[pod] != pod {
		t.Fatalf("Lease %s holder = %q (%v), want %s", ownership.NodeLeaseName(pod), h[pod], err, pod)
	}
	if _, err := kube.CoreV1().Nodes().Get(ctx, "virtual-kubelet", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node virtual-kubelet: %v, want NotFound (the pod name names the node)", err)
	}

	tpl := onVirtualNode("", nil, corev1.RestartPolicyAlways)
	tpl.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": pod}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "on-ordinal", Namespace: "default"}, Spec: tpl.Spec}
	if _, err := kube.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var rec haPod
	poll(t, "pod Running on "+pod, 60*time.Second, func(ctx context.Context) (bool, error) {
		got, err := kube.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.PodRunning {
			return false, err
		}
		rec = haPod{node: got.Spec.NodeName, uid: string(got.UID), group: got.Annotations["k8s.aliyun.com/eci-instance-id"]}
		return rec.group != "", nil
	})

	r.kill(t)
	restarted := haStartReplica(t, env, bin, pod, "127.0.0.1", port, env60...)
	// Well within the 60s Lease: the replica does not wait for its own
	// Lease to expire.
	poll(t, "restarted replica owns its node again", 40*time.Second, func(ctx context.Context) (bool, error) {
		return strings.Contains(restarted.Out.String(), `"virtual node is ready"`), nil
	})
	var l *coordinationv1.Lease
	if l, err = kube.CoordinationV1().Leases("kube-system").Get(ctx, ownership.NodeLeaseName(pod), metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != pod {
		t.Errorf("Lease holder after restart = %v, want %s", l.Spec.HolderIdentity, pod)
	}
	got, err := kube.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if now := (haPod{node: got.Spec.NodeName, uid: string(got.UID), group: got.Annotations["k8s.aliyun.com/eci-instance-id"]}); now != rec {
		t.Errorf("pod after restart = %+v, want %+v", now, rec)
	}
	groups := groupsOfNode(env.Simulator, haCluster, pod)
	if len(groups) != 1 || len(groups[rec.uid]) != 1 || groups[rec.uid][0] != rec.group {
		t.Errorf("groups of node %s = %v, want only %s for pod uid %s", pod, groups, rec.group, rec.uid)
	}
	if n := env.Simulator.Calls()["CreateContainerGroup"]["OK"]; n != 1 {
		t.Errorf("simulator saw %d successful creates, want 1", n)
	}
}

// TestHAConfigErrors runs the controller binary with bad ownership
// settings: each stops it with exit code 2 and a message naming the
// variable and the fix, before anything is contacted.
func TestHAConfigErrors(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	bin := testutil.BuildCommand(t, "virtual-node")
	base := []string{"ECI_VSWITCH=vsw-a", "ECI_SECURITY_GROUP=sg-a", "ECI_REGION=cn-hangzhou", "HOME=" + t.TempDir()}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"no nodes", []string{"VIRTUAL_NODE_COUNT=0"}, "VIRTUAL_NODE_COUNT: 0 is out of range: set 1-100"},
		{"count not a number", []string{"VIRTUAL_NODE_COUNT=three"}, "VIRTUAL_NODE_COUNT"},
		{"bad lease namespace", []string{"POD_NAMESPACE=Kube_System"}, "POD_NAMESPACE: \"Kube_System\" is not a namespace name"},
		{"renew deadline not below the lease", []string{"VIRTUAL_NODE_LEASE_DURATION=5s", "VIRTUAL_NODE_LEASE_RENEW_DEADLINE=6s"}, "VIRTUAL_NODE_LEASE_RENEW_DEADLINE: 6s must be positive and shorter than VIRTUAL_NODE_LEASE_DURATION"},
		{"retry period too long", []string{"VIRTUAL_NODE_LEASE_RETRY_PERIOD=9s"}, "VIRTUAL_NODE_LEASE_RETRY_PERIOD: 9s"},
		{"ports run out", []string{"KUBELET_PORT=65534", "VIRTUAL_NODE_COUNT=3"}, "KUBELET_PORT: 65534 + VIRTUAL_NODE_COUNT (3) runs past port 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Env = append(append([]string{}, base...), tt.env...)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit = %v, want exit code 2; output: %s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output %q does not contain %q", out, tt.want)
			}
		})
	}
}

// TestNodeStartFailure: a node that cannot start on a replica (its kubelet
// port is taken) gets a Warning event naming the cause, its Lease is given
// up, and it is retried with backoff until it runs.
func TestNodeStartFailure(t *testing.T) {
	t.Parallel()
	// A control plane of its own: a replica, which reads every replica Lease
	// in kube-system.
	env := testenv.Start(t, testenv.Options{})
	bin := testutil.BuildCommand(t, "virtual-node")
	kube := env.Kube
	ctx := context.Background()
	const node = "vnode-busy"
	port := haFreePortRange(t, 1, "127.0.0.1")
	busy, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	haStartReplica(t, env, bin, "replica-busy", "127.0.0.1", port, "VIRTUAL_NODE_NAME="+node)
	poll(t, "Warning event VirtualNodeFailed on node "+node, 60*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := kube.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + node + ",reason=VirtualNodeFailed"})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "address already in use") && strings.Contains(e.Message, "replica-busy") {
				return true, nil
			}
		}
		return false, nil
	})
	busy.Close()
	poll(t, "node "+node+" Ready once its port is free", 90*time.Second, func(ctx context.Context) (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && testutil.NodeReady(n), nil
	})
	h, err := haHolders(ctx, kube, []string{node})
	if err != nil || h[node] != "replica-busy" {
		t.Errorf("Lease holder = %q (%v), want replica-busy", h[node], err)
	}
}
