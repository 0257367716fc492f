package integration

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/ownership"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/virtualnode"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// stsKubelet plays the kubelet for the pods the real StatefulSet
// controller creates for the chart's StatefulSet: each live pod's
// container runs as a process (chartProcess, with the pod's own container
// env resolved for its name), and a process whose pod went away (scaled
// down) or was replaced gets SIGTERM. Ordinal i listens on 127.0.0.(10+i),
// as pods have addresses of their own. sync runs on the test's goroutine.
type stsKubelet struct {
	t           *testing.T
	env         *testenv.Env
	bin         string
	kubecfg     string
	sts         string
	metricsPort int
	pods        map[string]*stsPod // by pod name
}

type stsPod struct {
	uid  types.UID
	proc *chartProcess
	env  map[string]string
}

func stsPodIP(pod string) string {
	_, ord, _ := config.StatefulSetOrdinal(pod)
	return fmt.Sprintf("127.0.0.%d", 10+ord)
}

// sync starts a process for every live pod of the StatefulSet that has
// none and stops (SIGTERM, all at once, then waits) the processes whose
// pod is gone, replaced or terminating.
func (k *stsKubelet) sync(ctx context.Context) error {
	list, err := k.env.Kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=controller"})
	if err != nil {
		return err
	}
	live := map[string]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "StatefulSet" && ref.Name == k.sts && p.DeletionTimestamp == nil {
			live[p.Name] = p
		}
	}
	var stopping []*stsPod
	for name, sp := range k.pods {
		if p, ok := live[name]; !ok || p.UID != sp.uid {
			_ = sp.proc.proc.Cmd.Process.Signal(syscall.SIGTERM)
			stopping = append(stopping, sp)
			delete(k.pods, name)
		}
	}
	for _, sp := range stopping {
		sp.proc.stop()
	}
	for name, p := range live {
		if _, ok := k.pods[name]; ok {
			continue
		}
		env := resolvedEnv(k.t, k.env.Kube, "kube-system", name, p.Spec.Containers[0])
		ip := stsPodIP(name)
		env["VIRTUAL_NODE_IP"], env["KUBELET_LISTEN_IP"] = ip, ip
		env["METRICS_ADDR"] = ip + ":" + strconv.Itoa(k.metricsPort)
		sp := &stsPod{uid: p.UID, env: env, proc: &chartProcess{t: k.t, bin: k.bin, kube: k.env.Kube, kubecfg: k.kubecfg}}
		sp.proc.start(env)
		k.pods[name] = sp
	}
	return nil
}

// restart is kill -9 of a pod's container and the kubelet starting it
// again: same pod, same name, same env.
func (k *stsKubelet) restart(name string) {
	k.t.Helper()
	sp := k.pods[name]
	if sp == nil {
		k.t.Fatalf("no process runs pod %s", name)
	}
	sp.proc.proc.Kill(k.t)
	sp.proc.proc = nil
	sp.proc.start(sp.env)
}

func (k *stsKubelet) running() []*chartProcess {
	var out []*chartProcess
	for _, sp := range k.pods {
		out = append(out, sp.proc)
	}
	return out
}

// scaleStatefulSet is `kubectl -n kube-system scale statefulset <name>
// --replicas=n` (the scale subresource).
func scaleStatefulSet(t *testing.T, kube kubernetes.Interface, name string, n int32) {
	t.Helper()
	_, err := kube.AppsV1().StatefulSets("kube-system").UpdateScale(context.Background(), name,
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("scale statefulset %s to %d: %v", name, n, err)
	}
}

// placedPod is what must survive unchanged: the pod's UID, its node and its group.
type placedPod struct{ uid, node, group string }

func runningPod(ctx context.Context, kube kubernetes.Interface, ns, name string) (placedPod, bool, error) {
	p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return placedPod{}, false, err
	}
	pp := placedPod{uid: string(p.UID), node: p.Spec.NodeName, group: p.Annotations[translate.AnnotationInstanceID]}
	return pp, p.Status.Phase == corev1.PodRunning && pp.group != "", nil
}

// liveGroupsOf counts the node's groups of the cluster the cloud still has.
func liveGroupsOf(env *testenv.Env, cluster, node string) []string {
	var out []string
	for _, g := range env.Simulator.Groups() {
		if g.Status != "Deleted" && simTag(g, translate.TagClusterID) == cluster && simTag(g, translate.TagNodeName) == node {
			out = append(out, g.ContainerGroupId+"="+g.Status)
		}
	}
	return out
}

// TestStatefulSetForm follows seed 001 with the chart's StatefulSet form
// (Helm SDK install, the real StatefulSet controller creating the ordinal
// pods, the controller binary run per pod with that pod's env and the
// chart's ServiceAccount):
//   - migration: the Deployment form's node virtual-kubelet, with a pod on
//     it, is kept by `controller.kind=StatefulSet` with
//     statefulSet.legacyNodes=[virtual-kubelet]: ordinal 0 takes it over
//     when the Deployment's pod stops, same pod, same group, no create;
//   - scale 1 → 4 adds Ready nodes virtual-node-eci-1..3 that run pods and
//     split the account's quota with ordinal 0;
//   - scale 4 → 2 drains -2 and -3 only: their bare pods and groups are
//     gone, a Deployment's pod is recreated on a node that stays, the Nodes
//     and their Leases are deleted, nothing on -0, -1 or virtual-kubelet
//     changes;
//   - ordinal 1 killed with SIGKILL and restarted under its name gets its
//     node back (uncordoned if an unfinished drain had cordoned it) and
//     adopts its groups, none created twice;
//   - back to the Deployment form (nodeName virtual-node-eci, nodeCount 2):
//     its replica takes the two nodes over, same pods, same groups;
//   - uninstall drains every node.
func TestStatefulSetForm(t *testing.T) {
	t.Parallel()
	// A control plane of its own: the chart installs cluster-wide RBAC, a
	// webhook configuration and kube-system objects.
	env := testenv.Start(t, testenv.Options{NoKubeProxyIdentity: true})
	bin := testutil.BuildCommand(t, "virtual-node")
	kube := env.Kube
	ctx := context.Background()
	const sts, cluster, legacy = "virtual-node-eci", "test-cluster", "virtual-kubelet"
	ips := []string{"127.0.0.1", "127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"}
	kubeletPort := haFreePortRange(t, 2, ips...)
	metricsPort := haFreePortRange(t, 1, ips...)
	for metricsPort == kubeletPort || metricsPort == kubeletPort+1 {
		metricsPort = haFreePortRange(t, 1, ips...)
	}
	akID := testenv.SimAccessKeyID(env.SimulatorConfig)
	if _, err := kube.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "alibaba-addon-secret"},
		Data:       map[string][]byte{"access-key-id": []byte(akID), "access-key-secret": []byte(env.SimulatorConfig.AccessKeys[akID])},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ac, err := addon.New(addon.Options{RESTConfig: env.ControlPlane.RESTConfig(), Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Install(ctx, map[string]any{
		"region": env.SimulatorConfig.RegionId, "vSwitches": []any{env.SimulatorConfig.Zones[0].VSwitches[0].VSwitchId},
		"securityGroup": env.SimulatorConfig.SecurityGroups[0], "eciEndpoint": env.SimulatorURL, "clusterId": cluster,
		"webhook": map[string]any{"enabled": false},
		"controller": map[string]any{
			"statusInterval": "500ms", "resyncInterval": "10s", "kubeletPort": kubeletPort, "metricsPort": metricsPort,
		},
		"drain": map[string]any{"timeoutSeconds": 120, "podTimeout": "60s", "groupTimeout": "30s"},
	}); err != nil {
		t.Fatalf("install (Deployment form): %v", err)
	}
	kubecfg := serviceAccountKubeconfig(t, env, "kube-system", addon.ControllerServiceAccount)
	ns := "sts"
	createNamespace(t, kube, ns)
	creates := func() int { return env.Simulator.Calls()["CreateContainerGroup"]["OK"] }
	pin := func(name, node string) {
		t.Helper()
		tpl := onVirtualNode(node, nil, corev1.RestartPolicyAlways)
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitRunning := func(names ...string) map[string]placedPod {
		t.Helper()
		out := map[string]placedPod{}
		poll(t, fmt.Sprintf("pods %v Running with a group", names), 90*time.Second, func(ctx context.Context) (bool, error) {
			for _, n := range names {
				pp, ok, err := runningPod(ctx, kube, ns, n)
				if !ok {
					return false, err
				}
				out[n] = pp
			}
			return true, nil
		})
		return out
	}
	nodeReady := func(names ...string) {
		t.Helper()
		poll(t, fmt.Sprintf("nodes %v Ready", names), 90*time.Second, func(ctx context.Context) (bool, error) {
			for _, n := range names {
				node, err := kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
				if err != nil || !testutil.NodeReady(node) {
					return false, nil
				}
			}
			return true, nil
		})
	}

	// The Deployment form, with a pod on its node.
	dep := &chartProcess{t: t, bin: bin, kube: kube, kubecfg: kubecfg}
	denv := deploymentEnv(t, kube, 1)
	denv["METRICS_ADDR"] = "127.0.0.1:" + strconv.Itoa(metricsPort)
	dep.start(denv)
	defer dep.stop()
	nodeReady(legacy)
	pin("legacy-pod", legacy)
	before := waitRunning("legacy-pod")

	// Migration: the StatefulSet form, ordinal 0 keeping the old node.
	if _, err := ac.Upgrade(ctx, map[string]any{"controller": map[string]any{
		"kind": "StatefulSet", "statefulSet": map[string]any{"legacyNodes": []any{legacy}, "scaleDownTimeoutSeconds": 60},
	}}); err != nil {
		t.Fatalf("upgrade to the StatefulSet form: %v", err)
	}
	if _, err := kube.AppsV1().Deployments("kube-system").Get(ctx, addon.ControllerDeployment, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("controller Deployment after switching to the StatefulSet form: %v, want NotFound", err)
	}
	k := &stsKubelet{t: t, env: env, bin: bin, kubecfg: kubecfg, sts: sts, metricsPort: metricsPort, pods: map[string]*stsPod{}}
	defer func() {
		for _, p := range k.running() {
			p.stop()
		}
	}()
	poll(t, "the StatefulSet's pod "+sts+"-0 runs", 60*time.Second, func(ctx context.Context) (bool, error) {
		err := k.sync(ctx)
		return k.pods[sts+"-0"] != nil, err
	})
	nodeReady(sts + "-0")
	// Helm deleted the Deployment: the kubelet stops its pod.
	dep.stop()
	poll(t, "ordinal 0 runs node "+legacy, 60*time.Second, func(ctx context.Context) (bool, error) {
		h, err := haHolders(ctx, kube, []string{legacy})
		if err != nil || h[legacy] != sts+"-0" {
			return false, err
		}
		n, err := kube.CoreV1().Nodes().Get(ctx, legacy, metav1.GetOptions{})
		return err == nil && testutil.NodeReady(n) && haNodeIP(n) == stsPodIP(sts+"-0") &&
			n.Status.DaemonEndpoints.KubeletEndpoint.Port == int32(kubeletPort+1), err
	})
	if after := waitRunning("legacy-pod"); after["legacy-pod"] != before["legacy-pod"] {
		t.Errorf("legacy-pod after the migration = %+v, want %+v (same pod, same group)", after["legacy-pod"], before["legacy-pod"])
	}
	if n := creates(); n != 1 {
		t.Errorf("%d groups created after the migration, want 1 (none recreated)", n)
	}

	// kubectl -n kube-system scale statefulset virtual-node-eci --replicas=4
	scaleStatefulSet(t, kube, sts, 4)
	poll(t, "four ordinal pods run", 60*time.Second, func(ctx context.Context) (bool, error) {
		err := k.sync(ctx)
		return len(k.pods) == 4, err
	})
	nodes := []string{sts + "-0", sts + "-1", sts + "-2", sts + "-3"}
	nodeReady(nodes...)
	for _, n := range nodes {
		pin("on-"+n, n)
	}
	// A Deployment's pod on -3: cordon -1 while it is scheduled, so it
	// lands on -3 and must move when -3 goes.
	cordon := func(node string, on bool) {
		t.Helper()
		if _, err := kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType,
			[]byte(fmt.Sprintf(`{"spec":{"unschedulable":%v}}`, on)), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{nodes[0], nodes[1], nodes[2]} {
		cordon(n, true)
	}
	tpl := onVirtualNode("", map[string]string{"app": "mover"}, corev1.RestartPolicyAlways)
	tpl.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
			Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{nodes[1], nodes[3]}}}}}}}}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "mover"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: tpl.Labels}, Template: tpl},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var moverOld placedPod
	var moverName string
	poll(t, "the mover's pod Running on "+nodes[3], 90*time.Second, func(ctx context.Context) (bool, error) {
		list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=mover"})
		if err != nil || len(list.Items) != 1 {
			return false, err
		}
		moverName = list.Items[0].Name
		pp, ok, err := runningPod(ctx, kube, ns, moverName)
		moverOld = pp
		return ok, err
	})
	if moverOld.node != nodes[3] {
		t.Fatalf("the mover's pod landed on %s, want %s", moverOld.node, nodes[3])
	}
	for _, n := range []string{nodes[0], nodes[1], nodes[2]} {
		cordon(n, false)
	}
	placed := waitRunning("legacy-pod", "on-"+nodes[0], "on-"+nodes[1], "on-"+nodes[2], "on-"+nodes[3])
	for _, n := range nodes {
		if placed["on-"+n].node != n {
			t.Errorf("pod on-%s runs on %s", n, placed["on-"+n].node)
		}
	}
	// One quota among the ordinal pods: by the nodes each runs (ordinal 0
	// runs its own and the legacy node).
	poll(t, "the ordinal pods split the ECI API quota 2:1:1:1", 60*time.Second, func(ctx context.Context) (bool, error) {
		s, err := haQuotaShares(ctx, kube)
		return err == nil && s[nodes[0]] == "0.4" && s[nodes[1]] == "0.2" && s[nodes[2]] == "0.2" && s[nodes[3]] == "0.2", err
	})

	// kubectl -n kube-system scale statefulset virtual-node-eci --replicas=2
	createsBefore := creates()
	scaleStatefulSet(t, kube, sts, 2)
	poll(t, "pods -2 and -3 stopped", 90*time.Second, func(ctx context.Context) (bool, error) {
		err := k.sync(ctx)
		return len(k.pods) == 2 && k.pods[nodes[0]] != nil && k.pods[nodes[1]] != nil, err
	})
	// They drained before they exited: nothing of -2 and -3 is left.
	for _, n := range nodes[2:] {
		if _, err := kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node %s after scale-down: %v, want NotFound", n, err)
		}
		if _, err := kube.CoreV1().Pods(ns).Get(ctx, "on-"+n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod on-%s after scale-down: %v, want NotFound", n, err)
		}
		if left := liveGroupsOf(env, cluster, n); len(left) > 0 {
			t.Errorf("node %s left groups %v", n, left)
		}
		if _, err := kube.CoordinationV1().Leases("kube-system").Get(ctx, ownership.NodeLeaseName(n), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ownership Lease of %s after scale-down: %v, want NotFound", n, err)
		}
	}
	for _, n := range nodes[2:] {
		if g, ok := env.Simulator.Group(placed["on-"+n].group); ok && g.Status != "Deleted" {
			t.Errorf("group %s of pod on-%s: %s, want deleted", placed["on-"+n].group, n, g.Status)
		}
	}
	poll(t, "the node heartbeat Leases of -2 and -3 gone with their Nodes", 60*time.Second, func(ctx context.Context) (bool, error) {
		for _, n := range nodes[2:] {
			if _, err := kube.CoordinationV1().Leases("kube-node-lease").Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	})
	// Operators see it on the StatefulSet (kubectl describe statefulset).
	poll(t, "VirtualNodeScaledDown events of -2 and -3 on the StatefulSet", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := kube.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=StatefulSet,involvedObject.name=" + sts + ",reason=VirtualNodeScaledDown"})
		if err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, e := range evs.Items {
			for _, n := range nodes[2:] {
				if strings.Contains(e.Message, "pod "+n+" was scaled away and drained nodes "+n+":") && strings.Contains(e.Message, "none left") {
					seen[n] = true
				}
			}
		}
		return len(seen) == 2, nil
	})
	// The Deployment's pod was recreated on a node that stays.
	var moverNew placedPod
	var moverNewName string
	poll(t, "the mover's new pod Running on "+nodes[1], 90*time.Second, func(ctx context.Context) (bool, error) {
		list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=mover"})
		if err != nil || len(list.Items) != 1 || list.Items[0].Name == moverName {
			return false, err
		}
		moverNewName = list.Items[0].Name
		pp, ok, err := runningPod(ctx, kube, ns, moverNewName)
		moverNew = pp
		return ok, err
	})
	if moverNew.node != nodes[1] {
		t.Errorf("the mover's pod was recreated on %s, want %s", moverNew.node, nodes[1])
	}
	if g, ok := env.Simulator.Group(moverOld.group); ok && g.Status != "Deleted" {
		t.Errorf("the mover's old group %s: %s, want deleted", moverOld.group, g.Status)
	}
	stay := []string{"legacy-pod", "on-" + nodes[0], "on-" + nodes[1]}
	now := waitRunning(stay...)
	for _, n := range stay {
		if now[n] != placed[n] {
			t.Errorf("pod %s after the scale-down = %+v, want %+v (untouched)", n, now[n], placed[n])
		}
		if g, ok := env.Simulator.Group(placed[n].group); !ok || g.Status != "Running" {
			t.Errorf("group %s of %s: %s, want Running", placed[n].group, n, g.Status)
		}
	}
	for _, n := range []string{nodes[0], nodes[1], legacy} {
		node, err := kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil || node.Spec.Unschedulable || !testutil.NodeReady(node) {
			t.Errorf("node %s after the scale-down: %v, want Ready and schedulable", n, err)
		}
	}
	if n := creates(); n != createsBefore+1 {
		t.Errorf("%d groups created during the scale-down, want 1 (the mover's new pod)", n-createsBefore)
	}

	// kill -9 of ordinal 1: restarted under its name, it takes its node
	// back and adopts its groups.
	createsBefore = creates()
	// As an unfinished scale-down drain leaves a node (the pod killed at
	// the end of its grace period, then the StatefulSet scaled back up):
	// cordoned and marked; served again, the node uncordons itself.
	if _, err := kube.CoreV1().Nodes().Patch(ctx, nodes[1], types.MergePatchType, []byte(fmt.Sprintf(
		`{"metadata":{"annotations":{%q:%q}},"spec":{"unschedulable":true}}`, virtualnode.AnnotationScaleDownDrain, nodes[1])), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	k.restart(nodes[1])
	poll(t, "restarted "+nodes[1]+" runs its node again", 60*time.Second, func(ctx context.Context) (bool, error) {
		return strings.Contains(k.pods[nodes[1]].proc.proc.Out.String(), `"virtual node is ready"`), nil
	})
	nodeReady(nodes[1])
	if n, err := kube.CoreV1().Nodes().Get(ctx, nodes[1], metav1.GetOptions{}); err != nil || n.Spec.Unschedulable || n.Annotations[virtualnode.AnnotationScaleDownDrain] != "" {
		t.Errorf("node %s served again after an unfinished drain: %v, unschedulable=%v, annotations %v; want uncordoned, unmarked", nodes[1], err, n.Spec.Unschedulable, n.Annotations)
	}
	if h, err := haHolders(ctx, kube, []string{nodes[1]}); err != nil || h[nodes[1]] != nodes[1] {
		t.Errorf("Lease of %s held by %q (%v)", nodes[1], h[nodes[1]], err)
	}
	now = waitRunning("on-"+nodes[1], "legacy-pod")
	if now["on-"+nodes[1]] != placed["on-"+nodes[1]] {
		t.Errorf("pod on-%s after the restart = %+v, want %+v", nodes[1], now["on-"+nodes[1]], placed["on-"+nodes[1]])
	}
	var ids []string
	for uid, gs := range groupsOfNode(env.Simulator, cluster, nodes[1]) {
		ids = append(ids, uid+"="+strings.Join(gs, ","))
	}
	sort.Strings(ids)
	if live := liveGroupsOf(env, cluster, nodes[1]); len(live) != 2 {
		t.Errorf("node %s has groups %v (by pod: %v), want 2 (on-%s and the mover)", nodes[1], live, ids, nodes[1])
	}
	if n := creates(); n != createsBefore {
		t.Errorf("%d groups created after the restart, want 0", n-createsBefore)
	}

	// Back to the Deployment form: with nodeName virtual-node-eci and
	// nodeCount 2 it serves the same two nodes, so its replica takes them
	// over from the ordinal pods (stopped when Helm deletes the StatefulSet:
	// not a scale-down, nothing drained) and adopts their groups. The
	// legacy node cannot be served by that form: it is emptied first.
	if err := kube.CoreV1().Pods(ns).Delete(ctx, "legacy-pod", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "legacy-pod and its group gone", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Pods(ns).Get(ctx, "legacy-pod", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && len(liveGroupsOf(env, cluster, legacy)) == 0, nil
	})
	// The vendor's `kubectl -n kube-system edit statefulset
	// virtual-node-eci` (ECI_VSWITCH) survives the upgrade.
	vsw1 := env.SimulatorConfig.Zones[1].VSwitches[0].VSwitchId
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := kube.AppsV1().StatefulSets("kube-system").Get(ctx, sts, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i, e := range s.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "ECI_VSWITCH" {
				s.Spec.Template.Spec.Containers[0].Env[i].Value = vsw1
			}
		}
		_, err = kube.AppsV1().StatefulSets("kube-system").Update(ctx, s, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	createsBefore = creates()
	res, err := ac.Upgrade(ctx, map[string]any{"controller": map[string]any{
		"kind": "Deployment", "nodeName": sts, "nodeCount": 2, "statefulSet": map[string]any{"legacyNodes": []any{}},
	}})
	if err != nil {
		t.Fatalf("upgrade back to the Deployment form: %v", err)
	}
	if got, ok := res.KeptEdits["vSwitches"].([]any); !ok || len(got) != 1 || got[0] != vsw1 {
		t.Errorf("upgrade kept edits %v, want vSwitches=[%s] from the edited StatefulSet", res.KeptEdits, vsw1)
	}
	poll(t, "the StatefulSet's pods stopped", 60*time.Second, func(ctx context.Context) (bool, error) {
		err := k.sync(ctx)
		return len(k.pods) == 0, err
	})
	dep2 := &chartProcess{t: t, bin: bin, kube: kube, kubecfg: kubecfg}
	denv = deploymentEnv(t, kube, 2)
	if denv["ECI_VSWITCH"] != vsw1 {
		t.Errorf("the Deployment's ECI_VSWITCH = %q, want the StatefulSet's edit %s", denv["ECI_VSWITCH"], vsw1)
	}
	denv["METRICS_ADDR"] = "127.0.0.1:" + strconv.Itoa(metricsPort)
	dep2.start(denv)
	defer dep2.stop()
	poll(t, "the Deployment's replica runs "+nodes[0]+" and "+nodes[1], 60*time.Second, func(ctx context.Context) (bool, error) {
		h, err := haHolders(ctx, kube, nodes[:2])
		if err != nil || h[nodes[0]] != denv["POD_NAME"] || h[nodes[1]] != denv["POD_NAME"] {
			return false, err
		}
		for _, n := range nodes[:2] {
			node, err := kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil || !testutil.NodeReady(node) || haNodeIP(node) != "127.0.0.1" {
				return false, err
			}
		}
		return true, nil
	})
	now = waitRunning("on-"+nodes[0], "on-"+nodes[1])
	for _, n := range nodes[:2] {
		if now["on-"+n] != placed["on-"+n] {
			t.Errorf("pod on-%s in the Deployment form = %+v, want %+v", n, now["on-"+n], placed["on-"+n])
		}
	}
	if pp, _, err := runningPod(ctx, kube, ns, moverNewName); err != nil || pp != moverNew {
		t.Errorf("the mover's pod in the Deployment form = %+v (%v), want %+v", pp, err, moverNew)
	}
	if n := creates(); n != createsBefore {
		t.Errorf("%d groups created by the switch back to the Deployment form, want 0", n-createsBefore)
	}

	t.Run("uninstall drains every node", func(t *testing.T) {
		uninstallWithDrain(t, env, ac, bin, dep2)
	})
}

// TestScaledAway: what a StatefulSet pod's SIGTERM means, read from the
// real apiserver: scaled away only when its ordinal is not below
// spec.replicas of an existing StatefulSet that controls it; a restart
// within replicas, a StatefulSet deleted or being deleted, or a pod of
// another controller keep the nodes.
func TestScaledAway(t *testing.T) {
	t.Parallel()
	env := startShared(t, testenv.Options{})
	kube := env.Kube
	ctx := context.Background()
	ns := uniqueName("scaled-away")
	createNamespace(t, kube, ns)
	labels := map[string]string{"app": "vn"}
	set, err := kube.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "vn"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](4), ServiceName: "vn", PodManagementPolicy: appsv1.ParallelPodManagement, Selector: &metav1.LabelSelector{MatchLabels: labels},
			// Pods nobody schedules: only their names and owners matter.
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				NodeSelector: map[string]string{"no-such-node": "true"},
				Containers:   []corev1.Container{{Name: "c", Image: "registry.example.com/library/busybox:1.36"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the StatefulSet controller creates pod vn-3", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Pods(ns).Get(ctx, "vn-3", metav1.GetOptions{})
		return err == nil, nil
	})
	check := func(what, pod string, ordinal int, want bool, because string) {
		t.Helper()
		got, why := virtualnode.ScaledAway(ctx, kube, ns, "vn", pod, ordinal)
		if got != want || !strings.Contains(why, because) {
			t.Errorf("%s: ScaledAway = %v (%s), want %v because %q", what, got, why, want, because)
		}
	}
	check("restart within replicas", "vn-3", 3, false, "within the 4 replicas")
	scaleTo := func(n int32) {
		t.Helper()
		if _, err := kube.AppsV1().StatefulSets(ns).UpdateScale(ctx, "vn", &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: "vn", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	scaleTo(2)
	check("scaled 4 -> 2, ordinal 3", "vn-3", 3, true, "not within the 2 replicas")
	check("scaled 4 -> 2, ordinal 1", "vn-1", 1, false, "within the 2 replicas")
	// A pod named like an ordinal but controlled by something else.
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vn-7"}, Spec: set.Spec.Template.Spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	check("a pod the StatefulSet does not control", "vn-7", 7, false, "is not controlled by StatefulSet vn")
	if err := kube.AppsV1().StatefulSets(ns).Delete(ctx, "vn", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationOrphan)}); err != nil {
		t.Fatal(err)
	}
	poll(t, "StatefulSet vn deleted", 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := kube.AppsV1().StatefulSets(ns).Get(ctx, "vn", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	check("StatefulSet deleted", "vn-3", 3, false, "deleting the StatefulSet is not a scale-down")
}
