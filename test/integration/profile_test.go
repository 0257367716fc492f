package integration

import (
	"context"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestProfileVSwitches shows that editing vSwitchIds in kube-system/eci-profile
// moves the next pod to the new vSwitch without a restart, while the pods
// already running keep their groups untouched.
func TestProfileVSwitches(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-profile")
	// A control plane of its own: kube-system/eci-profile, which this test
	// edits, is read by every virtual node of the cluster.
	env := testenv.Start(t, testenv.Options{})
	env.StartNode(t, env.NodeConfig(t, nodeName)) // ECI_VSWITCH: vsw-sim-h,vsw-sim-i,vsw-sim-j, ordered
	kube, ctx, ns := env.Kube, context.Background(), uniqueName("profile")
	createNamespace(t, kube, ns)
	runPod := func(name string) *corev1.Pod {
		t.Helper()
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var pod *corev1.Pod
		poll(t, name+" Running", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			pod = p
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
		return pod
	}
	vswitchOf := func(p *corev1.Pod) (string, string) {
		g, ok := env.Simulator.Group(p.Annotations[translate.AnnotationInstanceID])
		if !ok {
			t.Fatalf("no group for %s", p.Name)
		}
		return g.VSwitchId, g.Status
	}

	before := runPod("before")
	if vsw, _ := vswitchOf(before); vsw != "vsw-sim-h" {
		t.Fatalf("first pod in %s, want the first ECI_VSWITCH vsw-sim-h", vsw)
	}
	if _, err := kube.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "eci-profile"}, Data: map[string]string{"vSwitchIds": "vsw-sim-j", "securityGroupId": "sg-sim"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The profile is watched; give the watch event a moment to arrive.
	time.Sleep(2 * time.Second)
	after := runPod("after")
	if vsw, _ := vswitchOf(after); vsw != "vsw-sim-j" {
		t.Errorf("pod created after the edit is in %s, want vsw-sim-j from eci-profile", vsw)
	}
	if vsw, status := vswitchOf(before); vsw != "vsw-sim-h" || status != "Running" {
		t.Errorf("the earlier pod's group moved or stopped: %s %s", vsw, status)
	}

	// enableClusterIp: false replaces ECI_KUBE_PROXY (true) for new pods;
	// the pod annotation still decides for its pod.
	hasKubeProxy := func(p *corev1.Pod) bool {
		g, ok := env.Simulator.Group(p.Annotations[translate.AnnotationInstanceID])
		if !ok {
			t.Fatalf("no group for %s", p.Name)
		}
		return simKubeProxy(g) != nil
	}
	if !hasKubeProxy(after) {
		t.Fatal("with ECI_KUBE_PROXY=true and no enableClusterIp the pod's group has no kube-proxy")
	}
	cm, err := kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "eci-profile", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["enableClusterIp"] = "false"
	if _, err := kube.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if off := runPod("clusterip-off"); hasKubeProxy(off) {
		t.Error("enableClusterIp=false: the new pod's group runs kube-proxy")
	}
	tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
	optIn := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "clusterip-optin", Annotations: map[string]string{translate.AnnotationKubeProxyEnabled: "true"}}, Spec: tpl.Spec}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, optIn, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "clusterip-optin Running", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, optIn.Name, metav1.GetOptions{})
		optIn = p
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	if !hasKubeProxy(optIn) {
		t.Error("annotation true under enableClusterIp=false: the pod's group has no kube-proxy")
	}
	if !hasKubeProxy(after) {
		t.Error("the running pod lost its kube-proxy when the profile changed")
	}
}
