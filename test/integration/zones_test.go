package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestZonesAndOrphans shows the provider learning which zone is out of
// stock (the next create lists it last) and sweeping a group whose pod
// does not exist, while groups of other nodes are left alone.
func TestZonesAndOrphans(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-zones")
	env := startShared(t, testenv.Options{})
	env.StartNode(t, env.NodeConfig(t, nodeName)) // vsw-sim-h,vsw-sim-i,vsw-sim-j, ordered; resync 10 s
	kube, ctx, ns := env.Kube, context.Background(), uniqueName("zones")
	createNamespace(t, kube, ns)

	t.Run("a zone without stock moves to the back of the list", func(t *testing.T) {
		if err := env.Simulator.SetStock("cn-hangzhou-h", 0, 0); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = env.Simulator.SetStock("cn-hangzhou-h", 1000, 4000) }()
		run := func(name string) *corev1.Pod {
			tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
			if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var pod *corev1.Pod
			poll(t, name+" placed", 60*time.Second, func(ctx context.Context) (bool, error) {
				p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				pod = p
				return err == nil && p.Annotations[translate.AnnotationVSwitchID] != "", err
			})
			return pod
		}
		first := run("first")
		if v := first.Annotations[translate.AnnotationVSwitchID]; v != "vsw-sim-i" {
			t.Fatalf("first pod landed in %s, want vsw-sim-i (zone h has no stock)", v)
		}
		run("second")
		var secondReq string
		for _, r := range env.Simulator.Requests("CreateContainerGroup") {
			if r.Params["ContainerGroupName"] == ns+"-second" {
				secondReq = r.Params["VSwitchId"]
			}
		}
		if !strings.HasPrefix(secondReq, "vsw-sim-i,") || !strings.HasSuffix(secondReq, ",vsw-sim-h") {
			t.Errorf("second create asked for %q, want vsw-sim-i first and the stock-less vsw-sim-h last", secondReq)
		}
	})

	t.Run("a group whose pod does not exist is swept; another node's is not", func(t *testing.T) {
		mk := func(node, name string) string {
			resp, err := env.Cloud.CreateContainerGroup(ctx, &eci.CreateContainerGroupRequest{
				SecurityGroupId: "sg-sim", VSwitchId: "vsw-sim-j", ContainerGroupName: name, RestartPolicy: "Always",
				Tags: []eci.Tag{{Key: translate.TagClusterID, Value: "test-cluster"}, {Key: translate.TagNodeName, Value: node},
					{Key: translate.TagPodNamespace, Value: ns}, {Key: translate.TagPodName, Value: name}, {Key: translate.TagPodUID, Value: "00000000-dead-beef-0000-" + name}},
				Containers: []eci.Container{{Name: "c", Image: "busybox"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			return resp.ContainerGroupId
		}
		ours := mk(nodeName, "ghost")
		theirs := mk("another-node", "ghost2")
		poll(t, "orphan swept", 40*time.Second, func(ctx context.Context) (bool, error) {
			_, ok := env.Simulator.Group(ours)
			return !ok, nil
		})
		if _, ok := env.Simulator.Group(theirs); !ok {
			t.Error("the sweep deleted a group of another node")
		}
	})
}
