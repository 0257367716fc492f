package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/simulator"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// simTag returns the value of tag k of a simulator group.
func simTag(g simulator.ContainerGroup, k string) string {
	for _, t := range g.Tags {
		if t.Key == k {
			return t.Value
		}
	}
	return ""
}

// groupsOfNode returns the simulator's groups of one cluster and node that
// are not terminal, by pod UID.
func groupsOfNode(sim *simulator.Simulator, cluster, node string) map[string][]string {
	out := map[string][]string{}
	for _, g := range sim.Groups() {
		if simTag(g, provider.TagClusterID) != cluster || simTag(g, provider.TagNodeName) != node {
			continue
		}
		uid := simTag(g, provider.TagPodUID)
		out[uid] = append(out[uid], g.ContainerGroupId)
	}
	return out
}

// converged reports, for the pods of ns that should exist and those that
// were deleted, whether every live pod is Running with exactly one group,
// no deleted pod is left in the apiserver, and the node has no group
// without a live pod. The string says what is still wrong.
func converged(ctx context.Context, kube kubernetes.Interface, sim *simulator.Simulator, cluster, node, ns string, want int) (bool, string, error) {
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, "", err
	}
	groups := groupsOfNode(sim, cluster, node)
	live := map[string]bool{}
	var problems []string
	running := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			problems = append(problems, p.Name+" still terminating")
			continue
		}
		live[string(p.UID)] = true
		if p.Status.Phase == corev1.PodRunning {
			running++
		} else {
			problems = append(problems, fmt.Sprintf("%s is %s (%s)", p.Name, p.Status.Phase, p.Status.Reason))
		}
		if n := len(groups[string(p.UID)]); n != 1 {
			problems = append(problems, fmt.Sprintf("%s has %d groups", p.Name, n))
		}
	}
	for uid, ids := range groups {
		if !live[uid] {
			problems = append(problems, fmt.Sprintf("groups %v have no pod (uid %s)", ids, uid))
		}
	}
	if running != want {
		problems = append(problems, fmt.Sprintf("%d of %d pods Running", running, want))
	}
	sort.Strings(problems)
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
	}
	return len(problems) == 0, strings.Join(problems, "; "), nil
}

// pollConverged waits until converged holds and returns how long it took.
func pollConverged(t *testing.T, kube kubernetes.Interface, sim *simulator.Simulator, cluster, node, ns string, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	poll(t, fmt.Sprintf("%d pods Running with one group each and no stray group", want), timeout, func(ctx context.Context) (bool, error) {
		ok, why, err := converged(ctx, kube, sim, cluster, node, ns, want)
		if why != "" {
			last = why
		}
		return ok, err
	})
	if t.Failed() {
		t.Logf("last state: %s", last)
	}
	return time.Since(start)
}

func createPods(t *testing.T, kube kubernetes.Interface, ns, prefix string, n int) {
	t.Helper()
	tpl := onVirtualNode(map[string]string{"app": prefix}, corev1.RestartPolicyAlways)
	for i := 0; i < n; i++ {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Labels: tpl.Labels}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func deletePods(t *testing.T, kube kubernetes.Interface, ns, prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := kube.CoreV1().Pods(ns).Delete(context.Background(), fmt.Sprintf("%s-%d", prefix, i), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}
