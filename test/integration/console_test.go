package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/virtualnode"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// consolePod creates a pod pinned to node that tolerates every taint (the
// node's extra taints included) and waits until it is Running; it returns
// the pod and its group in the simulator.
func consolePod(t *testing.T, env *testenv.Env, node, ns, name string, annotations map[string]string) (*corev1.Pod, simulator.ContainerGroup) {
	t.Helper()
	tpl := onVirtualNode(node, nil, corev1.RestartPolicyAlways)
	tpl.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	ctx := context.Background()
	if _, err := env.Kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Spec: tpl.Spec,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	poll(t, name+" Running", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := env.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		pod = p
		return err == nil && p.Status.Phase == corev1.PodRunning && p.Annotations[translate.AnnotationInstanceID] != "", err
	})
	g, ok := env.Simulator.Group(pod.Annotations[translate.AnnotationInstanceID])
	if !ok {
		t.Fatalf("no group %s for %s", pod.Annotations[translate.AnnotationInstanceID], name)
	}
	return pod, g
}

// wantTags checks tags on a simulator group (value "" means absent).
func wantTags(t *testing.T, g simulator.ContainerGroup, want map[string]string) {
	t.Helper()
	for k, v := range want {
		has := false
		for _, gt := range g.Tags {
			has = has || gt.Key == k
		}
		if got := simTag(g, k); got != v || (v == "" && has) {
			t.Errorf("group %s: tag %s = %q (present %v), want %q; tags %v", g.ContainerGroupId, k, got, has, v, g.Tags)
		}
	}
}

func nodeHasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) *corev1.Taint {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].Key == key && n.Spec.Taints[i].Effect == effect {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

// TestConsoleNodeSettings: the console's VNode settings from the
// environment. VIRTUAL_NODE_LABELS and VIRTUAL_NODE_TAINTS appear on the
// Node beside the default taint; every group carries ECI_TAGS after the
// controller's own tags and ECI_RESOURCE_GROUP_ID. A restart with the
// default taint removed explicitly ("virtual-kubelet.io/provider-") and a
// label dropped updates the existing Node, leaving other tools' labels and
// taints alone, and adopts the group in its resource group (the listing by
// tag finds it) instead of creating another. Too many tags stop the
// controller with a message naming ECI_TAGS and the limit.
func TestConsoleNodeSettings(t *testing.T) {
	t.Parallel()
	env, node, ns := startSharedEnvOnly(t, "vk-console", "console")
	kube, ctx := env.Kube, context.Background()
	cfg := env.NodeConfig(t, node)
	cfg.NodeLabels = "pool=eci,team=web"
	cfg.NodeTaints = "dedicated=batch:NoSchedule"
	cfg.Tags = "team:web,cost-center:42"
	cfg.ResourceGroupID = "rg-console"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	var first simulator.ContainerGroup
	var uid string
	t.Run("first run", func(t *testing.T) {
		env.StartNode(t, cfg)
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Labels["pool"] != "eci" || n.Labels["team"] != "web" || n.Labels["type"] != "virtual-kubelet" {
			t.Errorf("node labels = %v, want pool=eci, team=web beside type=virtual-kubelet", n.Labels)
		}
		if d := nodeHasTaint(n, virtualnode.TaintKey, corev1.TaintEffectNoSchedule); d == nil || d.Value != "alibabacloud" {
			t.Errorf("default taint missing: %v", n.Spec.Taints)
		}
		if d := nodeHasTaint(n, "dedicated", corev1.TaintEffectNoSchedule); d == nil || d.Value != "batch" {
			t.Errorf("taint dedicated=batch:NoSchedule missing: %v", n.Spec.Taints)
		}
		var pod *corev1.Pod
		pod, first = consolePod(t, env, node, ns, "tagged", map[string]string{translate.AnnotationCustomTags: "app:shop"})
		uid = string(pod.UID)
		wantTags(t, first, map[string]string{"team": "web", "cost-center": "42", "app": "shop",
			translate.TagClusterID: cfg.ClusterID, translate.TagNodeName: node, translate.TagPodUID: uid, translate.TagManagedBy: translate.ManagedByValue})
		if first.ResourceGroupId != "rg-console" {
			t.Errorf("ResourceGroupId = %q, want rg-console", first.ResourceGroupId)
		}
		// The listing the controller resyncs and adopts with (tags
		// ClusterId + NodeName, no ResourceGroupId) finds the group.
		out, err := env.Cloud.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{
			Tags: []eci.Tag{{Key: translate.TagClusterID, Value: cfg.ClusterID}, {Key: translate.TagNodeName, Value: node}}, Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ContainerGroups) != 1 || out.ContainerGroups[0].ContainerGroupId != first.ContainerGroupId {
			t.Errorf("listing by tag found %d groups, want %s", len(out.ContainerGroups), first.ContainerGroupId)
		}
	})
	if t.Failed() {
		return
	}

	// Another tool's label and taint, added while the node is stopped.
	n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels["other-tool"] = "x"
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "other-tool", Effect: corev1.TaintEffectPreferNoSchedule})
	if _, err := kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("restart without the default taint", func(t *testing.T) {
		cfg2 := env.NodeConfig(t, node)
		cfg2.NodeLabels = "pool=eci"
		cfg2.NodeTaints = "virtual-kubelet.io/provider-,dedicated=batch:NoSchedule"
		cfg2.Tags, cfg2.ResourceGroupID = cfg.Tags, cfg.ResourceGroupID
		env.StartNode(t, cfg2)
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, has := n.Labels["team"]; has || n.Labels["pool"] != "eci" || n.Labels["other-tool"] != "x" {
			t.Errorf("node labels = %v, want pool=eci and other-tool=x, team removed", n.Labels)
		}
		if nodeHasTaint(n, virtualnode.TaintKey, corev1.TaintEffectNoSchedule) != nil {
			t.Errorf("default taint kept after virtual-kubelet.io/provider-: %v", n.Spec.Taints)
		}
		if nodeHasTaint(n, "dedicated", corev1.TaintEffectNoSchedule) == nil || nodeHasTaint(n, "other-tool", corev1.TaintEffectPreferNoSchedule) == nil {
			t.Errorf("taints = %v, want dedicated (configured) and other-tool (another tool's)", n.Spec.Taints)
		}
		// The pod keeps its group: adopted, not created again.
		poll(t, "tagged Running on the restarted node", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "tagged", metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
		if groups := groupsOfNode(env.Simulator, cfg.ClusterID, node); len(groups[uid]) != 1 || groups[uid][0] != first.ContainerGroupId {
			t.Errorf("groups of the pod after the restart = %v, want only %s", groups[uid], first.ContainerGroupId)
		}
	})

	t.Run("too many tags stop the controller", func(t *testing.T) {
		bad := env.NodeConfig(t, uniqueName("vk-console-bad"))
		bad.Tags = "a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9,j:10,k:11,l:12"
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := virtualnode.Run(ctx, virtualnode.Options{Config: bad, Credential: env.Credential})
		if err == nil || !strings.Contains(err.Error(), "ECI_TAGS has 12 tags; at most 11") || !strings.Contains(err.Error(), "remove 1") {
			t.Fatalf("Run = %v, want the ECI_TAGS limit named", err)
		}
		if _, err := kube.CoreV1().Nodes().Get(ctx, bad.NodeName, metav1.GetOptions{}); err == nil {
			t.Error("a node was registered with a refused configuration")
		}
	})
}

// startSharedEnvOnly is sharedNodeAndNamespace without the node: the test
// starts its node with settings of its own.
func startSharedEnvOnly(t *testing.T, nodePrefix, nsPrefix string) (*testenv.Env, string, string) {
	t.Helper()
	env := startShared(t, testenv.Options{})
	ns := uniqueName(nsPrefix)
	createNamespace(t, env.Kube, ns)
	return env, uniqueName(nodePrefix), ns
}

// profileEvents returns the events of kube-system/eci-profile with reason.
func profileEvents(ctx context.Context, kube kubernetes.Interface, reason string) ([]corev1.Event, error) {
	list, err := kube.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.kind": "ConfigMap", "involvedObject.name": profile.DefaultName, "reason": reason}.String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// TestConsoleProfileSettings: the eci-profile's tags and resourceGroupId
// replace ECI_TAGS and ECI_RESOURCE_GROUP_ID for new pods without a
// restart (the pod annotation eci-custom-tags still decides its own keys;
// pods already running keep their groups); a profile with too many tags is
// refused naming the key and the limit, the last good one staying in
// effect; keys the controller does not use get one Warning each, which
// other edits do not repeat.
func TestConsoleProfileSettings(t *testing.T) {
	t.Parallel()
	// A control plane of its own: kube-system/eci-profile is read by every
	// virtual node of the cluster.
	env := testenv.Start(t, testenv.Options{})
	node := uniqueName("vk-console-profile")
	cfg := env.NodeConfig(t, node)
	cfg.Tags, cfg.ResourceGroupID = "team:env", "rg-env"
	cfg.NodeLabels = "from=env"
	env.StartNode(t, cfg)
	kube, ctx, ns := env.Kube, context.Background(), uniqueName("console-profile")
	createNamespace(t, kube, ns)

	_, before := consolePod(t, env, node, ns, "before", nil)
	wantTags(t, before, map[string]string{"team": "env", "app": ""})
	if before.ResourceGroupId != "rg-env" {
		t.Errorf("ResourceGroupId = %q, want rg-env from ECI_RESOURCE_GROUP_ID", before.ResourceGroupId)
	}

	cms := kube.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: profile.DefaultName}, Data: map[string]string{
		"tags": "team:profile,app:x", "resourceGroupId": "rg-profile",
		"enablePrivateZone": "true", "enableHybridMode": "false", "securityGroupID": "sg-typo",
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The Warnings are recorded while the profile is applied.
	poll(t, "ProfileKeyIgnored Warnings for enablePrivateZone and securityGroupID", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := profileEvents(ctx, kube, profile.ReasonProfileKeyIgnored)
		return len(evs) == 2, err
	})
	evs, err := profileEvents(ctx, kube, profile.ReasonProfileKeyIgnored)
	if err != nil {
		t.Fatal(err)
	}
	msgs := ""
	for _, e := range evs {
		if e.Type != corev1.EventTypeWarning {
			t.Errorf("event %q is %s, want Warning", e.Message, e.Type)
		}
		msgs += e.Message + "\n"
	}
	for _, w := range []string{`"enablePrivateZone"`, `"securityGroupID" is unknown`} {
		if !strings.Contains(msgs, w) {
			t.Errorf("Warnings %q do not name %s", msgs, w)
		}
	}
	if strings.Contains(msgs, "enableHybridMode") {
		t.Errorf("enableHybridMode=false (honoured: the feature is off) got a Warning: %q", msgs)
	}

	_, after := consolePod(t, env, node, ns, "after", nil)
	wantTags(t, after, map[string]string{"team": "profile", "app": "x"})
	if after.ResourceGroupId != "rg-profile" {
		t.Errorf("ResourceGroupId = %q, want rg-profile from eci-profile", after.ResourceGroupId)
	}
	_, own := consolePod(t, env, node, ns, "own", map[string]string{translate.AnnotationCustomTags: "team:pod"})
	wantTags(t, own, map[string]string{"team": "pod", "app": "x"})
	if g, _ := env.Simulator.Group(before.ContainerGroupId); simTag(g, "team") != "env" || g.ResourceGroupId != "rg-env" || g.Status != "Running" {
		t.Errorf("the earlier pod's group changed: %v %q %s", g.Tags, g.ResourceGroupId, g.Status)
	}

	// Too many tags: refused as a whole, naming the key and the limit.
	var many []string
	for i := range 12 {
		many = append(many, fmt.Sprintf("k%d:v", i))
	}
	cm.Data["tags"] = strings.Join(many, ",")
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "InvalidProfile Warning naming tags", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := profileEvents(ctx, kube, profile.ReasonInvalidProfile)
		for _, e := range evs {
			if strings.Contains(e.Message, "tags has 12 tags; at most 11") && strings.Contains(e.Message, "stays in effect") {
				return true, nil
			}
		}
		return false, err
	})
	_, kept := consolePod(t, env, node, ns, "kept", nil)
	wantTags(t, kept, map[string]string{"team": "profile", "app": "x", "k0": ""})

	// Fixing it (and an unrelated key) repeats no ignored-key Warning.
	cm.Data["tags"] = "team:fixed"
	cm.Data["vpcId"] = "vpc-sim"
	if _, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var fixed simulator.ContainerGroup
	poll(t, "a pod with the fixed profile's tags", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, fixed = consolePod(t, env, node, ns, uniqueName("fixed"), nil)
		return simTag(fixed, "team") == "fixed", nil
	})
	evs, err = profileEvents(ctx, kube, profile.ReasonProfileKeyIgnored)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Count > 1 {
			t.Errorf("Warning %q repeated %d times by edits of other keys", e.Message, e.Count)
		}
	}
	if len(evs) != 2 {
		t.Errorf("%d ProfileKeyIgnored events, want 2 (one per key)", len(evs))
	}

	// nodeLabels and nodeTaints replace VIRTUAL_NODE_LABELS and
	// VIRTUAL_NODE_TAINTS on the running node; removing them brings the
	// environment's back.
	nodeIs := func(what string, cond func(n *corev1.Node) bool) {
		t.Helper()
		poll(t, what, 30*time.Second, func(ctx context.Context) (bool, error) {
			n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			return err == nil && cond(n), err
		})
	}
	nodeIs("the environment's label and the default taint", func(n *corev1.Node) bool {
		return n.Labels["from"] == "env" && nodeHasTaint(n, virtualnode.TaintKey, corev1.TaintEffectNoSchedule) != nil
	})
	if cm, err = cms.Get(ctx, profile.DefaultName, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	cm.Data["nodeLabels"] = "from=profile,tier=eci"
	cm.Data["nodeTaints"] = "virtual-kubelet.io/provider-,profile=yes:NoSchedule"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	nodeIs("the profile's labels and taints, the default taint removed", func(n *corev1.Node) bool {
		return n.Labels["from"] == "profile" && n.Labels["tier"] == "eci" && nodeHasTaint(n, "profile", corev1.TaintEffectNoSchedule) != nil &&
			nodeHasTaint(n, virtualnode.TaintKey, corev1.TaintEffectNoSchedule) == nil
	})
	delete(cm.Data, "nodeLabels")
	delete(cm.Data, "nodeTaints")
	if _, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	nodeIs("the environment's settings back", func(n *corev1.Node) bool {
		_, tier := n.Labels["tier"]
		return n.Labels["from"] == "env" && !tier && nodeHasTaint(n, "profile", corev1.TaintEffectNoSchedule) == nil &&
			nodeHasTaint(n, virtualnode.TaintKey, corev1.TaintEffectNoSchedule) != nil
	})

	// vpcId is checked against the VPC the cloud reports for each new
	// group (vpc-sim): the pods made while it said vpc-sim got no Warning,
	// one made while it names another VPC gets one.
	podEvents := func(ctx context.Context, name, reason string) ([]corev1.Event, error) {
		list, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": name, "reason": reason}.String()})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	}
	if cm, err = cms.Get(ctx, profile.DefaultName, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	cm.Data["vpcId"] = "vpc-other"
	if _, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The edit reaches the store within moments; a pod made before that
	// rightly gets no Warning, so each try makes a new pod.
	var wrong []corev1.Event
	for try := 0; try < 5 && len(wrong) == 0; try++ {
		name := uniqueName("wrong-vpc")
		consolePod(t, env, node, ns, name, nil)
		for wait := 0; wait < 40 && len(wrong) == 0; wait++ {
			if wrong, err = podEvents(ctx, name, provider.ReasonVPCMismatch); err != nil {
				t.Fatal(err)
			}
			if len(wrong) == 0 {
				time.Sleep(250 * time.Millisecond)
			}
		}
	}
	if len(wrong) != 1 || wrong[0].Type != corev1.EventTypeWarning || !strings.Contains(wrong[0].Message, "VPC vpc-sim") ||
		!strings.Contains(wrong[0].Message, "vpcId is vpc-other") {
		t.Fatalf("VPCMismatch events = %+v, want one Warning naming vpc-sim and vpc-other", wrong)
	}
	fixedPod := simTag(fixed, translate.TagPodName)
	if evs, err = podEvents(ctx, fixedPod, provider.ReasonVPCMismatch); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Errorf("pod %s, made while vpcId matched, got %q", fixedPod, evs[0].Message)
	}
}
