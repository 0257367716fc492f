package integration

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
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
		if simTag(g, translate.TagClusterID) != cluster || simTag(g, translate.TagNodeName) != node {
			continue
		}
		uid := simTag(g, translate.TagPodUID)
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
	defer func() {
		if t.Failed() {
			t.Logf("last state: %s", last)
		}
	}()
	poll(t, fmt.Sprintf("%d pods Running with one group each and no stray group", want), timeout, func(ctx context.Context) (bool, error) {
		ok, why, err := converged(ctx, kube, sim, cluster, node, ns, want)
		if why != "" {
			last = why
		}
		return ok, err
	})
	return time.Since(start)
}

// createPodsOn creates n pods prefix-0.. in ns, pinned to node.
func createPodsOn(t *testing.T, kube kubernetes.Interface, ns, prefix string, n int, node string) {
	t.Helper()
	tpl := onVirtualNode(node, map[string]string{"app": prefix}, corev1.RestartPolicyAlways)
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

// controllerEnv is the environment the chart gives the controller: the
// configuration of cfg and the simulator's AccessKey.
func controllerEnv(t *testing.T, env *testenv.Env, cfg *config.Config) []string {
	return []string{
		"KUBECONFIG=" + cfg.Kubeconfig,
		"ECI_ENDPOINT=" + env.SimulatorURL,
		"ECI_REGION=" + cfg.Region,
		"ECI_VSWITCH=" + strings.Join(cfg.VSwitches, ","),
		"ECI_SECURITY_GROUP=" + cfg.SecurityGroup,
		"CLUSTER_ID=" + cfg.ClusterID,
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + testenv.SimAccessKeyID(env.SimulatorConfig),
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + env.SimulatorConfig.AccessKeys[testenv.SimAccessKeyID(env.SimulatorConfig)],
		"VIRTUAL_NODE_NAME=" + cfg.NodeName,
		"POD_NAME=controller-" + cfg.NodeName,
		"VIRTUAL_NODE_IP=127.0.0.1",
		"KUBELET_LISTEN_IP=127.0.0.1",
		"KUBELET_PORT=" + strconv.Itoa(cfg.KubeletPort),
		"METRICS_ADDR=" + cfg.MetricsAddr,
		"ECI_STATUS_INTERVAL=500ms",
		"ECI_RESYNC_INTERVAL=10s",
		"HOME=" + t.TempDir(), // no stray credential files
	}
}

// startController starts bin (cmd/virtual-node) with environ as the chart's
// Deployment runs it; it is stopped when the test ends (testutil.Process).
func startController(t *testing.T, bin string, environ []string, args ...string) *testutil.Process {
	t.Helper()
	return testutil.StartProcess(t, "controller", bin, environ, args...)
}
