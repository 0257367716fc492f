package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// createForeignGroup makes a group directly in the cloud with the given
// cluster and node tags (empty: no such tag) for a pod that does not exist.
func createForeignGroup(t *testing.T, env *testenv.Env, cluster, node, name string) string {
	t.Helper()
	tags := []eci.Tag{{Key: translate.TagPodNamespace, Value: "gc"}, {Key: translate.TagPodName, Value: name},
		{Key: translate.TagPodUID, Value: "00000000-0000-0000-0000-" + fmt.Sprintf("%012d", len(name))}}
	if cluster != "" {
		tags = append(tags, eci.Tag{Key: translate.TagClusterID, Value: cluster})
	}
	if node != "" {
		tags = append(tags, eci.Tag{Key: translate.TagNodeName, Value: node})
	}
	resp, err := env.Cloud.CreateContainerGroup(context.Background(), &eci.CreateContainerGroupRequest{
		SecurityGroupId: "sg-sim", VSwitchId: "vsw-sim-j", ContainerGroupName: name, RestartPolicy: "Always",
		Tags: tags, Containers: []eci.Container{{Name: "c", Image: "busybox"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.ContainerGroupId
}

// TestGarbageCollection shows both sides of the promise "nothing lost,
// nothing stranded": deleting the namespace of 100 running pods leaves no
// group, and the groups of another cluster, of another node or without our
// tags survive every clean-up path (adoption at start, the periodic sweep),
// while this node's orphans are deleted by both.
func TestGarbageCollection(t *testing.T) {
	t.Parallel()
	const replicas = 100
	env := startShared(t, testenv.Options{})
	cfg := env.NodeConfig(t, uniqueName("vk-gc")) // resync (sweep) every 10 s
	kube, ctx := env.Kube, context.Background()

	foreign := map[string]string{
		"another cluster, same node name": createForeignGroup(t, env, "another-cluster", cfg.NodeName, "foreign-cluster"),
		"same cluster, another node":      createForeignGroup(t, env, cfg.ClusterID, "another-node", "foreign-node"),
		"no cluster tag":                  createForeignGroup(t, env, "", cfg.NodeName, "foreign-untagged"),
	}
	orphanAtStart := createForeignGroup(t, env, cfg.ClusterID, cfg.NodeName, "orphan-at-start")
	survive := func(t *testing.T, when string) {
		t.Helper()
		for what, id := range foreign {
			if _, ok := env.Simulator.Group(id); !ok {
				t.Errorf("%s: the group of %s (%s) was deleted", when, what, id)
			}
		}
	}

	env.StartNode(t, cfg)
	if _, ok := env.Simulator.Group(orphanAtStart); ok {
		t.Errorf("this node's orphan %s survived adoption at start", orphanAtStart)
	}
	survive(t, "after adoption at start")

	orphanLater := createForeignGroup(t, env, cfg.ClusterID, cfg.NodeName, "orphan-later")
	poll(t, "this node's orphan swept by the periodic resync", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, ok := env.Simulator.Group(orphanLater)
		return !ok, nil
	})
	survive(t, "after the periodic sweep")

	ns := uniqueName("gc")
	createNamespace(t, kube, ns)
	tpl := onVirtualNode(cfg.NodeName, map[string]string{"app": "gc"}, corev1.RestartPolicyAlways)
	n := int32(replicas)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "gc"},
		Spec: appsv1.DeploymentSpec{Replicas: &n, Selector: &metav1.LabelSelector{MatchLabels: tpl.Labels}, Template: tpl}}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pollConverged(t, kube, env.Simulator, cfg.ClusterID, cfg.NodeName, ns, replicas, 3*time.Minute)

	start := time.Now()
	if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "zero groups of this node after the namespace is deleted", 3*time.Minute, func(ctx context.Context) (bool, error) {
		return len(groupsOfNode(env.Simulator, cfg.ClusterID, cfg.NodeName)) == 0, nil
	})
	t.Logf("%d groups gone %v after the namespace delete", replicas, time.Since(start).Round(time.Millisecond))
	poll(t, "namespace gone", 3*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	// One more full resync with nothing of ours left must not touch the rest.
	time.Sleep(cfg.ResyncInterval + 2*time.Second)
	survive(t, "after the namespace delete and another resync")
}
