package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/virtualnode"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// nodeCondition returns the node's condition of type typ, or nil.
func nodeCondition(n *corev1.Node, typ corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == typ {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// nodeTaint returns the node's taint with key, or nil.
func nodeTaint(n *corev1.Node, key string) *corev1.Taint {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].Key == key {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

// metricValue scrapes the controller's /metrics at addr and returns the
// value of the sample whose line starts with series (name{labels}).
func metricValue(ctx context.Context, addr, series string) (string, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v, true, nil
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return "", false, sc.Err()
}

func getNode(ctx context.Context, kube kubernetes.Interface, name string) (*corev1.Node, error) {
	return kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

// TestDocumentedRAMPolicy runs a node whose AccessKey has exactly the
// documentation's custom RAM policy (seed 002, step 1): pods reach Running
// with status from the DescribeContainerGroups fallback, kubectl logs
// works, the metric and the Node show the fallback. A narrower policy that
// also lacks ExecContainerCommand makes kubectl exec fail with the action
// named, a pod event, the Node condition False and the refused-action
// metric.
func TestDocumentedRAMPolicy(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-ram")
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) {
		c.StartDelay = 200 * time.Millisecond
		c.Policies = map[string]simulator.Policy{testenv.SimAccessKeyID(*c): simulator.PolicyDocumented}
	}})
	cfg := env.NodeConfig(t, nodeName)
	env.StartNode(t, cfg)
	kube := env.Kube
	ctx := context.Background()
	ns := uniqueName("ram")
	createNamespace(t, kube, ns)

	tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, "sh", "-c", "echo hello from eci; sleep infinity")
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "pod Running and Ready under the documented policy", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := condition(p, corev1.PodReady)
		return p.Status.Phase == corev1.PodRunning && c != nil && c.Status == corev1.ConditionTrue && p.Status.PodIP != "", nil
	})
	calls := env.Simulator.Calls()
	if n := calls["DescribeContainerGroupStatus"][simulator.CodeForbiddenRAM]; n != 1 || calls["DescribeContainerGroupStatus"]["OK"] != 0 {
		t.Errorf("DescribeContainerGroupStatus answers %v: want one refusal (detected once), nothing else", calls["DescribeContainerGroupStatus"])
	}
	if calls["DescribeContainerGroups"]["OK"] == 0 {
		t.Error("no DescribeContainerGroups call: where did the status come from?")
	}
	poll(t, "vnode_status_fallback = 1", 30*time.Second, func(ctx context.Context) (bool, error) {
		v, ok, err := metricValue(ctx, cfg.MetricsAddr, fmt.Sprintf(`vnode_status_fallback{node=%q}`, nodeName))
		return ok && v == "1", err
	})
	poll(t, "Node shows the fallback (ContainerInstancePermissions=True, StatusFallback) and the cloud answering", 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := getNode(ctx, kube, nodeName)
		if err != nil {
			return false, err
		}
		perm, api := nodeCondition(n, provider.ConditionContainerInstancePermissions), nodeCondition(n, provider.ConditionContainerInstanceAPI)
		return perm != nil && perm.Status == corev1.ConditionTrue && perm.Reason == provider.ReasonStatusFallback &&
			strings.Contains(perm.Message, "DescribeContainerGroups") &&
			api != nil && api.Status == corev1.ConditionTrue, nil
	})
	if r := kubectlIn(t, env, ns, "", "logs", "web"); r.code != 0 || !strings.Contains(r.stdout, "hello from eci") {
		t.Errorf("kubectl logs under the documented policy = %q exit %d (%s)", r.stdout, r.code, r.stderr)
	}
	if r := kubectlIn(t, env, ns, "", "exec", "web", "--", "echo", "allowed"); r.code != 0 || r.stdout != "allowed\n" {
		t.Errorf("kubectl exec under the documented policy = %q exit %d (%s)", r.stdout, r.code, r.stderr)
	}

	// A narrower policy: the documented one without ExecContainerCommand.
	var narrow []string
	for _, a := range simulator.PolicyDocumented.Actions {
		if a != "ExecContainerCommand" {
			narrow = append(narrow, a)
		}
	}
	if err := env.Simulator.SetPolicy(testenv.SimAccessKeyID(env.SimulatorConfig), simulator.Policy{Name: "narrow", Actions: narrow}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		r := kubectlIn(t, env, ns, "", "exec", "web", "--", "echo", "refused")
		if r.code == 0 || !strings.Contains(r.stderr, `"eci:ExecContainerCommand"`) || !strings.Contains(r.stderr, "RAM policy") {
			t.Errorf("kubectl exec under a policy without ExecContainerCommand = %q exit %d, stderr %q: want a failure naming the action and the policy fix", r.stdout, r.code, r.stderr)
		}
	}
	poll(t, "one ContainerInstancePermissionDenied event on the pod", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := podEvents(ctx, kube, ns, "web")
		n := 0
		for _, e := range evs {
			if e.Reason == provider.ReasonPermissionDenied {
				n++
				if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, "eci:ExecContainerCommand") || e.Count > 1 {
					return false, fmt.Errorf("event %s %q count %d: want one Warning naming eci:ExecContainerCommand", e.Type, e.Message, e.Count)
				}
			}
		}
		return n == 1, err
	})
	poll(t, "Node condition ContainerInstancePermissions=False naming ExecContainerCommand", 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := getNode(ctx, kube, nodeName)
		if err != nil {
			return false, err
		}
		perm := nodeCondition(n, provider.ConditionContainerInstancePermissions)
		return perm != nil && perm.Status == corev1.ConditionFalse && perm.Reason == provider.ReasonActionsNotAllowed &&
			strings.Contains(perm.Message, "eci:ExecContainerCommand (kubectl exec)"), nil
	})
	poll(t, "vnode_cloud_action_refused{action=ExecContainerCommand} = 1", 30*time.Second, func(ctx context.Context) (bool, error) {
		v, ok, err := metricValue(ctx, cfg.MetricsAddr, fmt.Sprintf(`vnode_cloud_action_refused{action="ExecContainerCommand",node=%q}`, nodeName))
		return ok && v == "1", err
	})
	// The pod itself is untouched.
	p, err := kube.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		t.Errorf("pod after the refusals: %v %+v", err, p.Status.Phase)
	}
}

// TestCloudUnavailable: when the cloud refuses the AccessKey, or does not
// answer, for longer than the grace period, the Node gets
// ContainerInstanceAPI=False and the NoSchedule taint, the metric says 0;
// the node stays Ready, keeps its registration taint, and the running pod
// and its group are not touched. Both clear when the cloud answers again.
func TestCloudUnavailable(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-cloud")
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) { c.StartDelay = 200 * time.Millisecond }})
	cfg := env.NodeConfig(t, nodeName)
	cfg.CloudUnavailableGrace = 2 * time.Second
	env.StartNode(t, cfg)
	kube := env.Kube
	ns := uniqueName("cloud")
	createNamespace(t, kube, ns)
	ctx := context.Background()

	tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, "sh", "-c", "sleep infinity")
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "runs"}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var running *corev1.Pod
	poll(t, "pod Running", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "runs", metav1.GetOptions{})
		running = p
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	groups := len(groupsOfNode(env.Simulator, cfg.ClusterID, nodeName))
	poll(t, "ContainerInstanceAPI=True at first", 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := getNode(ctx, kube, nodeName)
		if err != nil {
			return false, err
		}
		c := nodeCondition(n, provider.ConditionContainerInstanceAPI)
		return c != nil && c.Status == corev1.ConditionTrue && nodeTaint(n, provider.TaintCloudUnavailable) == nil, nil
	})

	for _, tc := range []struct{ name, code, reason string }{
		{"bad key", "InvalidAccessKeyId.NotFound", "AccessKeyRefused"},
		{"outage", simulator.CodeServiceUnavailable, "EndpointUnreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := env.Simulator.InjectFault(simulator.Fault{Action: "*", ErrorRate: 1, Code: tc.code}); err != nil {
				t.Fatal(err)
			}
			poll(t, "ContainerInstanceAPI=False "+tc.reason+" and the NoSchedule taint", 60*time.Second, func(ctx context.Context) (bool, error) {
				n, err := getNode(ctx, kube, nodeName)
				if err != nil {
					return false, err
				}
				c := nodeCondition(n, provider.ConditionContainerInstanceAPI)
				taint := nodeTaint(n, provider.TaintCloudUnavailable)
				return c != nil && c.Status == corev1.ConditionFalse && c.Reason == tc.reason && c.Message != "" &&
					taint != nil && taint.Effect == corev1.TaintEffectNoSchedule && taint.Value == tc.reason, nil
			})
			n, err := getNode(ctx, kube, nodeName)
			if err != nil {
				t.Fatal(err)
			}
			if r := nodeCondition(n, corev1.NodeReady); r == nil || r.Status != corev1.ConditionTrue {
				t.Errorf("node Ready = %+v while the cloud is unavailable; want True", r)
			}
			if nodeTaint(n, virtualnode.TaintKey) == nil {
				t.Errorf("registration taint %s gone: %v", virtualnode.TaintKey, n.Spec.Taints)
			}
			poll(t, "vnode_cloud_api_available = 0", 30*time.Second, func(ctx context.Context) (bool, error) {
				v, ok, err := metricValue(ctx, cfg.MetricsAddr, fmt.Sprintf(`vnode_cloud_api_available{node=%q}`, nodeName))
				return ok && v == "0", err
			})
			// Only a refused AccessKey raises the credentials alert's metric.
			wantRefused := "0"
			if tc.reason == "AccessKeyRefused" {
				wantRefused = "1"
			}
			poll(t, "vnode_cloud_access_key_refused = "+wantRefused, 30*time.Second, func(ctx context.Context) (bool, error) {
				v, ok, err := metricValue(ctx, cfg.MetricsAddr, fmt.Sprintf(`vnode_cloud_access_key_refused{node=%q}`, nodeName))
				return ok && v == wantRefused, err
			})
			// Some polls fail while the taint is on; the pod is not touched.
			time.Sleep(3 * time.Second)
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "runs", metav1.GetOptions{})
			if err != nil || p.UID != running.UID || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
				t.Errorf("the running pod was touched: %v, uid %s (was %s), phase %s, deleting %v", err, p.UID, running.UID, p.Status.Phase, p.DeletionTimestamp)
			}
			if got := len(groupsOfNode(env.Simulator, cfg.ClusterID, nodeName)); got != groups {
				t.Errorf("node has %d groups during the fault, had %d", got, groups)
			}

			env.Simulator.ClearFaults()
			poll(t, "ContainerInstanceAPI=True and no taint once the cloud answers", 60*time.Second, func(ctx context.Context) (bool, error) {
				n, err := getNode(ctx, kube, nodeName)
				if err != nil {
					return false, err
				}
				c := nodeCondition(n, provider.ConditionContainerInstanceAPI)
				return c != nil && c.Status == corev1.ConditionTrue && nodeTaint(n, provider.TaintCloudUnavailable) == nil &&
					nodeTaint(n, virtualnode.TaintKey) != nil, nil
			})
			poll(t, "vnode_cloud_api_available = 1", 30*time.Second, func(ctx context.Context) (bool, error) {
				v, ok, err := metricValue(ctx, cfg.MetricsAddr, fmt.Sprintf(`vnode_cloud_api_available{node=%q}`, nodeName))
				return ok && v == "1", err
			})
			poll(t, "vnode_cloud_access_key_refused = 0", 30*time.Second, func(ctx context.Context) (bool, error) {
				v, ok, err := metricValue(ctx, cfg.MetricsAddr, fmt.Sprintf(`vnode_cloud_access_key_refused{node=%q}`, nodeName))
				return ok && v == "0", err
			})
		})
	}
	p, err := kube.CoreV1().Pods(ns).Get(ctx, "runs", metav1.GetOptions{})
	if err != nil || p.UID != running.UID || p.Status.Phase != corev1.PodRunning {
		t.Errorf("pod after the faults: %v %s %s", err, p.UID, p.Status.Phase)
	}
}

// TestStartWhileCloudUnavailable: a controller that starts while the cloud
// refuses its AccessKey (e.g. after a rotation to a wrong key rolled it)
// registers the node and keeps it heartbeating, Ready, with
// ContainerInstanceAPI=False and the NoSchedule taint, instead of leaving
// a Node without heartbeats that would go NotReady and have its pods
// evicted; a pod bound to it waits, and runs once the key is accepted.
func TestStartWhileCloudUnavailable(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-start")
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) { c.StartDelay = 200 * time.Millisecond }})
	if err := env.Simulator.InjectFault(simulator.Fault{Action: "*", ErrorRate: 1, Code: "InvalidAccessKeyId.NotFound"}); err != nil {
		t.Fatal(err)
	}
	cfg := env.NodeConfig(t, nodeName)
	cfg.CloudUnavailableGrace = 2 * time.Second
	env.StartNodeNoWait(t, cfg)
	kube := env.Kube
	ns := uniqueName("start")
	createNamespace(t, kube, ns)
	ctx := context.Background()

	poll(t, "node Ready with ContainerInstanceAPI=False AccessKeyRefused and the taint", 60*time.Second, func(ctx context.Context) (bool, error) {
		n, err := getNode(ctx, kube, nodeName)
		if err != nil {
			return false, err
		}
		ready, api := nodeCondition(n, corev1.NodeReady), nodeCondition(n, provider.ConditionContainerInstanceAPI)
		taint := nodeTaint(n, provider.TaintCloudUnavailable)
		return ready != nil && ready.Status == corev1.ConditionTrue && api != nil && api.Status == corev1.ConditionFalse &&
			api.Reason == "AccessKeyRefused" && taint != nil && taint.Effect == corev1.TaintEffectNoSchedule, nil
	})
	// A pod that tolerates everything (as a DaemonSet's would) still lands; it waits.
	tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, "sh", "-c", "sleep infinity")
	tpl.Spec.Tolerations = append(tpl.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists})
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "waits"}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if n := env.Simulator.Calls()["CreateContainerGroup"]["OK"]; n != 0 {
		t.Errorf("%d groups created while the key was refused", n)
	}
	env.Simulator.ClearFaults()
	poll(t, "pod Running once the key is accepted", 90*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "waits", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	poll(t, "ContainerInstanceAPI=True and no taint", 60*time.Second, func(ctx context.Context) (bool, error) {
		n, err := getNode(ctx, kube, nodeName)
		if err != nil {
			return false, err
		}
		c := nodeCondition(n, provider.ConditionContainerInstanceAPI)
		return c != nil && c.Status == corev1.ConditionTrue && nodeTaint(n, provider.TaintCloudUnavailable) == nil, nil
	})
}
