package provider

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestFallbackQuota: at 10,000 pods the fallback keeps within
// DescribeContainerGroups' published quota, with room to spare for the
// other callers of the action, at both poll periods.
func TestFallbackQuota(t *testing.T) {
	quota := eci.PublishedQuotas["DescribeContainerGroups"].PerSecond * 60 // calls per minute
	pages := (10000 + eci.MaxDescribeLimit - 1) / eci.MaxDescribeLimit
	period := fallbackListingPeriod(pages, 2*time.Second)
	listing := float64(pages) / period.Minutes()
	for _, interval := range []time.Duration{250 * time.Millisecond, 2 * time.Second} {
		starting := float64(fallbackStartingCalls(interval)) / interval.Minutes()
		if total := listing + starting; total > 0.8*quota {
			t.Errorf("poll %s: %.0f listing + %.0f starting calls/min = %.0f, above 80%% of the quota %.0f/min", interval, listing, starting, total, quota)
		}
	}
	if period > time.Minute {
		t.Errorf("a 10,000-pod node would see a running pod's change only every %s", period)
	}
	// A small node lists every status interval.
	if got := fallbackListingPeriod(5, 2*time.Second); got != 2*time.Second {
		t.Errorf("5 pages: listing every %s, want the status interval", got)
	}
}

// TestStatusFallback: under the documented RAM policy the status call is
// refused once; the provider switches to DescribeContainerGroups, brings
// the pod to Running, shows the fallback in its metric and on the Node's
// permissions condition, and never sends the refused call again.
func TestStatusFallback(t *testing.T) {
	cfg := simulator.DefaultConfig()
	cfg.QuotaScale = 0
	cfg.StartDelay = time.Second
	cfg.Policies = map[string]simulator.Policy{simulator.DefaultAccessKeyID: simulator.PolicyDocumented}
	sim, url := simtest.Start(t, cfg)
	health := eci.NewHealth()
	cloud := simtest.Client(t, url, eci.Config{Backoff: 5 * time.Millisecond, Health: health})
	p, err := New(Options{NodeName: "vk", ClusterID: "test", Cloud: cloud, Kube: controlplane.NoAPIServer(t),
		StatusInterval: 3 * time.Second, FastStatusInterval: 100 * time.Millisecond, Health: health})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "web-uid"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	resp, err := cloud.CreateContainerGroup(context.Background(), &eci.CreateContainerGroupRequest{
		SecurityGroupId: simulator.DefaultSecurityGroupID, VSwitchId: "vsw-sim-h", ContainerGroupName: "web", RestartPolicy: "Always",
		Tags: append(p.ownTags(), eci.Tag{Key: translate.TagPodNamespace, Value: "default"}, eci.Tag{Key: translate.TagPodName, Value: "web"},
			eci.Tag{Key: translate.TagPodUID, Value: "web-uid"}),
		Containers: []eci.Container{{Name: "app", Image: "busybox", Cpu: 1, Memory: 2, Commands: []string{"sh", "-c", "sleep 3600"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.ContainerGroupId
	p.mu.Lock()
	p.pods[key("default", "web")] = &entry{pod: pod, groupID: id, created: time.Now()}
	p.byGroup[id] = key("default", "web")
	p.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	pushed := make(chan *corev1.Pod, 100)
	p.NotifyPods(ctx, func(pod *corev1.Pod) {
		select {
		case pushed <- pod:
		default:
		}
	})
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.After(30 * time.Second)
	for running := false; !running; {
		select {
		case pod := <-pushed:
			running = pod.Status.Phase == corev1.PodRunning
		case <-deadline:
			t.Fatal("the pod never reached Running under the documented policy")
		}
	}
	// The group started between two full listings: its pod was polled by id.
	byID := 0
	for _, r := range sim.Requests("DescribeContainerGroups") {
		if r.Params["ContainerGroupIds"] != "" {
			byID++
		}
	}
	if byID == 0 {
		t.Error("no DescribeContainerGroups by id for the starting pod between full listings")
	}
	if !p.InStatusFallback() {
		t.Error("InStatusFallback() = false after the status call was refused")
	}
	if v := testutil.ToFloat64(p.metrics.statusFallback); v != 1 {
		t.Errorf("vnode_status_fallback = %v, want 1", v)
	}
	// Another full listing goes by (every 3 s now); the refused call is
	// not sent again.
	before := simtest.Calls(sim, "DescribeContainerGroups")
	for simtest.Calls(sim, "DescribeContainerGroups") < before+1 {
		time.Sleep(100 * time.Millisecond)
	}
	if n := simtest.Calls(sim, "DescribeContainerGroupStatus"); n != 1 {
		t.Errorf("DescribeContainerGroupStatus sent %d times, want once (detected once)", n)
	}
	conds := p.CloudConditions()
	if api := conds[0]; api.Type != ConditionContainerInstanceAPI || api.Status != corev1.ConditionTrue {
		t.Errorf("ContainerInstanceAPI = %+v", api)
	}
	perm := conds[1]
	if perm.Status != corev1.ConditionTrue || perm.Reason != ReasonStatusFallback || !strings.Contains(perm.Message, "DescribeContainerGroups") {
		t.Errorf("ContainerInstancePermissions = %+v, want True/StatusFallback", perm)
	}
}

// TestPermissionsCondition: actions still refused turn the condition
// False, naming each action, what breaks and the fix.
func TestPermissionsCondition(t *testing.T) {
	p := &Provider{}
	c := p.permissionsCondition(nil)
	if c.Status != corev1.ConditionTrue || c.Reason != ReasonAllActionsAllowed {
		t.Errorf("nothing refused: %+v", c)
	}
	c = p.permissionsCondition([]string{"DescribeContainerGroupStatus", "ExecContainerCommand"})
	if c.Status != corev1.ConditionFalse || c.Reason != ReasonActionsNotAllowed {
		t.Fatalf("refused without the fallback: %+v", c)
	}
	for _, want := range []string{"eci:DescribeContainerGroupStatus (pod status)", "eci:ExecContainerCommand (kubectl exec)", "vnodectl doctor", "AliyunECIFullAccess"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q lacks %q", c.Message, want)
		}
	}
	p.fallbackOn.Store(true)
	c = p.permissionsCondition([]string{"DescribeContainerGroupStatus", "ExecContainerCommand"})
	if c.Status != corev1.ConditionFalse || strings.Contains(c.Message, "eci:DescribeContainerGroupStatus (") || !strings.Contains(c.Message, "polled with DescribeContainerGroups") {
		t.Errorf("refused with the fallback: %+v", c)
	}
}

// TestRefusalLog: a poll refused for the same action again is not logged
// again; another action, or any other error, is.
func TestRefusalLog(t *testing.T) {
	var r refusalLog
	denied := func(action string) error {
		return eci.AnswerError(action, 403, "Forbidden.RAM", "User not authorized to operate on the specified resource, or this API doesn't support RAM.", "req")
	}
	if r.refused(denied("DescribeContainerGroups")) {
		t.Error("the first refusal counted as a repeat")
	}
	if !r.refused(denied("DescribeContainerGroups")) {
		t.Error("the second refusal of the same action was not a repeat")
	}
	if r.refused(denied("UpdateContainerGroup")) {
		t.Error("a refusal of another action counted as a repeat")
	}
	if r.refused(eci.AnswerError("DescribeContainerGroups", 500, "InternalError", "x", "req")) {
		t.Error("a server error counted as a repeated refusal")
	}
}

// TestNodeStatusReprobe: an action the RAM policy refused turns the
// permissions condition False; once the policy allows it, the periodic
// harmless probe clears it although nobody calls the action again. The
// taint is only there while the cloud is unavailable, never for a refused
// action.
func TestNodeStatusReprobe(t *testing.T) {
	kube := shared.Get(t).Clientset()
	node := "vk-reprobe"
	registerNode(t, kube, node)
	cfg := simulator.DefaultConfig()
	cfg.QuotaScale = 0
	var narrow []string
	for _, a := range simulator.PolicyDocumented.Actions {
		if a != "ExecContainerCommand" {
			narrow = append(narrow, a)
		}
	}
	cfg.Policies = map[string]simulator.Policy{simulator.DefaultAccessKeyID: {Name: "narrow", Actions: narrow}}
	sim, url := simtest.Start(t, cfg)
	health := eci.NewHealth()
	cloud := simtest.Client(t, url, eci.Config{Health: health})
	p, err := New(Options{NodeName: node, ClusterID: "test", Cloud: cloud, Kube: kube, Health: health})
	if err != nil {
		t.Fatal(err)
	}
	p.refusedReprobe = 500 * time.Millisecond
	_, err = cloud.ExecContainerCommand(context.Background(), &eci.ExecContainerCommandRequest{ContainerGroupId: "eci-x", ContainerName: "c", Command: []string{"true"}})
	if _, refused := eci.PermissionDenied(err); !refused {
		t.Fatalf("exec under the narrow policy: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []corev1.NodeCondition
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.RunNodeStatus(ctx, func(_ context.Context, c []corev1.NodeCondition) error {
			mu.Lock()
			got = c
			mu.Unlock()
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	perm := func() corev1.NodeCondition {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < 2 {
			return corev1.NodeCondition{}
		}
		return got[1]
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; permissions %+v", what, perm())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("ContainerInstancePermissions=False", func() bool {
		c := perm()
		return c.Status == corev1.ConditionFalse && strings.Contains(c.Message, "eci:ExecContainerCommand")
	})
	if v := testutil.ToFloat64(p.metrics.actionRefused("ExecContainerCommand")); v != 1 {
		t.Errorf("vnode_cloud_action_refused{ExecContainerCommand} = %v, want 1", v)
	}
	n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, taint := range n.Spec.Taints {
		if taint.Key == TaintCloudUnavailable {
			t.Errorf("a refused action tainted the node: %v", n.Spec.Taints)
		}
	}
	if err := sim.SetPolicy(simulator.DefaultAccessKeyID, simulator.PolicyDocumented); err != nil {
		t.Fatal(err)
	}
	waitFor("ContainerInstancePermissions=True after the policy allows exec", func() bool {
		c := perm()
		return c.Status == corev1.ConditionTrue && c.Reason == ReasonAllActionsAllowed
	})
	if v := testutil.ToFloat64(p.metrics.actionRefused("ExecContainerCommand")); v != 0 {
		t.Errorf("vnode_cloud_action_refused{ExecContainerCommand} = %v after the policy allows it, want 0", v)
	}
}
