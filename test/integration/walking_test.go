package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/virtualnode"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// nodeName is the virtual node of the tests with a control plane of their
// own; tests on the shared one name theirs with uniqueName.
const nodeName = "virtual-kubelet"

// onVirtualNode is the pod template users write by hand to target the
// node. With node not "" it is pinned to that node (kubernetes.io/hostname),
// as tests on the shared control plane must be: other tests' virtual nodes
// carry the same type label.
func onVirtualNode(node string, labels map[string]string, restart corev1.RestartPolicy, command ...string) corev1.PodTemplateSpec {
	sel := map[string]string{"type": "virtual-kubelet"}
	if node != "" {
		sel[corev1.LabelHostname] = node
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy: restart,
			NodeSelector:  sel,
			Tolerations:   []corev1.Toleration{{Key: virtualnode.TaintKey, Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "main", Image: "registry.example.com/library/busybox:1.36", Command: command,
			}},
		},
	}
}

func poll(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			if ctx.Err() == nil { // keep the last real error, not the deadline
				last = err
			}
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
	}
}

// ownGroups lists the simulator's groups tagged for this cluster and node.
func ownGroups(ctx context.Context, cloud *eci.Client, node string, extra ...eci.Tag) ([]eci.ContainerGroup, error) {
	var out []eci.ContainerGroup
	req := &eci.DescribeContainerGroupsRequest{Tags: append([]eci.Tag{
		{Key: translate.TagClusterID, Value: "test-cluster"}, {Key: translate.TagNodeName, Value: node},
	}, extra...)}
	for {
		resp, err := cloud.DescribeContainerGroups(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, resp.ContainerGroups...)
		if resp.NextToken == "" {
			return out, nil
		}
		req.NextToken = resp.NextToken
	}
}

func createNamespace(t *testing.T, kube kubernetes.Interface, name string) {
	t.Helper()
	_, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Pods need the namespace's default ServiceAccount (token projection).
	poll(t, "default service account in "+name, 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// TestVirtualNode is the walking skeleton end to end: node registration,
// a Deployment's pods as tagged groups, scale to zero, Jobs that succeed and
// fail with their exit code, and kubectl logs through the apiserver.
func TestVirtualNode(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-walking")
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) { c.StartDelay = 500 * time.Millisecond }})
	cfg := env.NodeConfig(t, nodeName)
	env.StartNode(t, cfg)
	kube := env.Kube
	ctx := context.Background()

	t.Run("node is registered Ready with label, taint, lease and kubelet endpoint", func(t *testing.T) {
		n, err := kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Labels["type"] != "virtual-kubelet" {
			t.Errorf("label type = %q", n.Labels["type"])
		}
		tainted := false
		for _, tn := range n.Spec.Taints {
			if tn.Key == virtualnode.TaintKey && tn.Value == "alibabacloud" && tn.Effect == corev1.TaintEffectNoSchedule {
				tainted = true
			}
		}
		if !tainted {
			t.Errorf("taints = %+v, want %s=alibabacloud:NoSchedule", n.Spec.Taints, virtualnode.TaintKey)
		}
		if !testutil.NodeReady(n) {
			t.Errorf("node not Ready: %+v", n.Status.Conditions)
		}
		if got := n.Status.DaemonEndpoints.KubeletEndpoint.Port; int(got) != cfg.KubeletPort {
			t.Errorf("kubelet port = %d, want %d", got, cfg.KubeletPort)
		}
		if n.Status.Capacity.Pods().Value() != int64(cfg.PodCapacity) {
			t.Errorf("pod capacity = %v", n.Status.Capacity.Pods())
		}
		if !strings.HasPrefix(n.Status.NodeInfo.KubeletVersion, "v1.30.14") {
			t.Errorf("kubelet version %q does not report the apiserver version", n.Status.NodeInfo.KubeletVersion)
		}
		var first time.Time
		poll(t, "node lease", 20*time.Second, func(ctx context.Context) (bool, error) {
			l, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != nodeName || l.Spec.RenewTime == nil {
				return false, fmt.Errorf("lease not held by the node: %+v", l.Spec)
			}
			first = l.Spec.RenewTime.Time
			return true, nil
		})
		poll(t, "lease renewal", 30*time.Second, func(ctx context.Context) (bool, error) {
			l, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
			return err == nil && l.Spec.RenewTime.Time.After(first), err
		})
	})

	t.Run("deployment of 3 becomes 3 tagged groups and scales to zero", func(t *testing.T) {
		ns := uniqueName("web")
		createNamespace(t, kube, ns)
		labels := map[string]string{"app": "web"}
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](3),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: onVirtualNode(nodeName, labels, corev1.RestartPolicyAlways),
			},
		}
		if _, err := kube.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var pods []corev1.Pod
		poll(t, "3 Running pods with IPs", 90*time.Second, func(ctx context.Context) (bool, error) {
			l, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			pods = l.Items
			running := 0
			for _, p := range l.Items {
				if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.Spec.NodeName == nodeName {
					running++
				}
			}
			return running == 3 && len(l.Items) == 3, nil
		})
		groups, err := ownGroups(ctx, env.Cloud, nodeName, eci.Tag{Key: translate.TagPodNamespace, Value: ns})
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) != 3 {
			t.Fatalf("simulator has %d groups for namespace %s, want 3", len(groups), ns)
		}
		byID := map[string]eci.ContainerGroup{}
		for _, g := range groups {
			byID[g.ContainerGroupId] = g
		}
		for _, p := range pods {
			id := p.Annotations[translate.AnnotationInstanceID]
			g, ok := byID[id]
			if !ok {
				t.Errorf("pod %s: annotation %s=%q names no group of this node", p.Name, translate.AnnotationInstanceID, id)
				continue
			}
			tags := map[string]string{}
			for _, tg := range g.Tags {
				tags[tg.Key] = tg.Value
			}
			if tags[translate.TagPodName] != p.Name || tags[translate.TagPodUID] != string(p.UID) {
				t.Errorf("group %s tags %v do not name pod %s/%s", id, tags, p.Name, p.UID)
			}
			if g.IntranetIp != p.Status.PodIP {
				t.Errorf("pod %s IP %s, group IP %s", p.Name, p.Status.PodIP, g.IntranetIp)
			}
			if g.Status != eci.StatusRunning {
				t.Errorf("group %s status %s", id, g.Status)
			}
		}

		poll(t, "zone, vSwitch and VPC recorded on the pods", 20*time.Second, func(ctx context.Context) (bool, error) {
			l, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			for _, p := range l.Items {
				g := byID[p.Annotations[translate.AnnotationInstanceID]]
				if p.Annotations[translate.AnnotationZoneID] != g.ZoneId || g.ZoneId == "" ||
					p.Annotations[translate.AnnotationVSwitchID] != g.VSwitchId || p.Annotations[translate.AnnotationVPC] != g.VpcId {
					return false, fmt.Errorf("pod %s annotations %v, group in %s/%s", p.Name, p.Annotations, g.ZoneId, g.VSwitchId)
				}
			}
			return true, nil
		})

		// The deployment controller writes the Deployment too (status,
		// annotations): a scale read before its write conflicts, so the
		// read and update are retried as kubectl scale does.
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			scale, err := kube.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			scale.Spec.Replicas = 0
			_, err = kube.AppsV1().Deployments(ns).UpdateScale(ctx, "web", scale, metav1.UpdateOptions{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		poll(t, "pods and groups gone after scale to 0", 90*time.Second, func(ctx context.Context) (bool, error) {
			l, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			g, err := ownGroups(ctx, env.Cloud, nodeName, eci.Tag{Key: translate.TagPodNamespace, Value: ns})
			if err != nil {
				return false, err
			}
			return len(l.Items) == 0 && len(g) == 0, nil
		})
	})

	jobs := []struct {
		name     string
		command  string
		wantCode int32
		phase    corev1.PodPhase
	}{
		{name: "job-ok", command: "echo working; sleep 0.5; exit 0", wantCode: 0, phase: corev1.PodSucceeded},
		{name: "job-fail", command: "echo failing; exit 3", wantCode: 3, phase: corev1.PodFailed},
	}
	for _, jc := range jobs {
		t.Run(fmt.Sprintf("%s ends %s with exit code %d", jc.name, jc.phase, jc.wantCode), func(t *testing.T) {
			ns := uniqueName(jc.name)
			createNamespace(t, kube, ns)
			job := &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Name: jc.name, Namespace: ns},
				Spec: batchv1.JobSpec{
					BackoffLimit: ptr.To[int32](0),
					Template:     onVirtualNode(nodeName, map[string]string{"job": jc.name}, corev1.RestartPolicyNever, "sh", "-c", jc.command),
				},
			}
			if _, err := kube.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var pod corev1.Pod
			poll(t, "job pod to end "+string(jc.phase), 90*time.Second, func(ctx context.Context) (bool, error) {
				l, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job=" + jc.name})
				if err != nil || len(l.Items) == 0 {
					return false, err
				}
				pod = l.Items[0]
				return pod.Status.Phase == jc.phase, nil
			})
			if len(pod.Status.ContainerStatuses) != 1 || pod.Status.ContainerStatuses[0].State.Terminated == nil {
				t.Fatalf("container status = %+v, want terminated", pod.Status.ContainerStatuses)
			}
			if code := pod.Status.ContainerStatuses[0].State.Terminated.ExitCode; code != jc.wantCode {
				t.Errorf("exit code = %d, want %d", code, jc.wantCode)
			}
			cond := batchv1.JobComplete
			if jc.phase == corev1.PodFailed {
				cond = batchv1.JobFailed
			}
			poll(t, "job condition "+string(cond), 60*time.Second, func(ctx context.Context) (bool, error) {
				j, err := kube.BatchV1().Jobs(ns).Get(ctx, jc.name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				for _, c := range j.Status.Conditions {
					if c.Type == cond && c.Status == corev1.ConditionTrue {
						return true, nil
					}
				}
				return false, nil
			})
		})
	}

	t.Run("kubectl logs returns what the container printed", func(t *testing.T) {
		ns := uniqueName("logs")
		createNamespace(t, kube, ns)
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, "sh", "-c", "echo hello from eci; echo second line; sleep infinity")
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "talker", Namespace: ns}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "talker Running", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "talker", metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
		var out []byte
		poll(t, "kubectl logs output", 30*time.Second, func(ctx context.Context) (bool, error) {
			var err error
			out, err = exec.CommandContext(ctx, "kubectl", "--kubeconfig", env.ControlPlane.Kubeconfig(),
				"-n", ns, "logs", "talker").CombinedOutput()
			if err != nil {
				return false, fmt.Errorf("kubectl logs: %v: %s", err, out)
			}
			return strings.Contains(string(out), "second line"), nil
		})
		if got := string(out); !strings.HasPrefix(got, "hello from eci\nsecond line") {
			t.Errorf("kubectl logs = %q", got)
		}
		if err := kube.CoreV1().Pods(ns).Delete(ctx, "talker", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "talker and its group gone", 60*time.Second, func(ctx context.Context) (bool, error) {
			_, err := kube.CoreV1().Pods(ns).Get(ctx, "talker", metav1.GetOptions{})
			g, gerr := ownGroups(ctx, env.Cloud, nodeName, eci.Tag{Key: translate.TagPodNamespace, Value: ns})
			return apierrors.IsNotFound(err) && gerr == nil && len(g) == 0, gerr
		})
	})

	t.Run("metrics port serves metrics and health, and no pod data", func(t *testing.T) {
		base := "http://" + cfg.MetricsAddr
		get := func(path string, want int) string {
			t.Helper()
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != want {
				t.Fatalf("GET %s = %d, want %d: %s", path, resp.StatusCode, want, b)
			}
			return string(b)
		}
		if got := get("/healthz", http.StatusOK); got != "ok" {
			t.Errorf("/healthz = %q", got)
		}
		m := get("/metrics", http.StatusOK)
		for _, want := range []string{`eci_api_calls_total{action="CreateContainerGroup",outcome="OK"}`, `vnode_queue_depth{node="` + nodeName + `",queue="sync_pods_from_kubernetes"}`,
			`vnode_pod_create_duration_seconds_count{node="` + nodeName + `"}`,
			// ownership's and the process's metrics, from the same injected registry
			"vnode_ownership_nodes_running 1", `vnode_ownership_transitions_total{event="acquired",node="` + nodeName + `"} 1`,
			"process_resident_memory_bytes", "go_goroutines",
			// what the chart's alerts and dashboard read (monitoring.*)
			`vnode_ownership_node_running{node="` + nodeName + `"} 1`, `vnode_pods{node="` + nodeName + `",phase="Running"}`,
			`vnode_pod_pending_max_age_seconds{node="` + nodeName + `"}`, `vnode_cloud_access_key_refused{node="` + nodeName + `"} 0`} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		// Pod specs and stats are on the authenticated kubelet port only
		// (TestAnonymousGetsNoPodData covers every port and path).
		for _, path := range []string{"/pods", "/stats/summary", "/metrics/resource"} {
			if body := get(path, http.StatusNotFound); strings.Contains(body, "job-ok") || !strings.Contains(body, "KUBELET_PORT") {
				t.Errorf("GET %s on the metrics port = %q, want no pod and a pointer to KUBELET_PORT", path, body)
			}
		}
	})
}
