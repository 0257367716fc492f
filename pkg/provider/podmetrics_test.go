package provider_test

import (
	"context"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/fake"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// gauges returns the value of every series of metric name in reg, keyed
// by its label values joined with "/" (node first, as registered).
func gauges(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			k := ""
			for i, l := range m.GetLabel() {
				if i > 0 {
					k += "/"
				}
				k += l.GetName() + "=" + l.GetValue()
			}
			out[k] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestPodMetrics: vnode_pods counts a running node's pods by phase (a pod
// waiting for its group after throttling is Pending like one whose group
// is starting), vnode_pod_pending_max_age_seconds is the wait of the
// oldest Pending pod since its first create attempt, and both leave the
// registry when the node stops running here (another replica reports it).
func TestPodMetrics(t *testing.T) {
	const node = "vk-podmetrics"
	cp := provider.SharedControlPlane(t)
	kube := cp.Clientset()
	provider.RegisterNode(t, kube, node)
	ns := controlplane.TestNamespace(t, kube, "podmetrics")
	cloud := fake.New()
	cloud.AddVSwitch("vsw-a", "zone-a")
	reg := prometheus.NewRegistry()
	p, err := provider.New(provider.Options{
		NodeName: node, ClusterID: clusterID, VSwitches: []string{"vsw-a"}, SecurityGroup: "sg-fake",
		Cloud: cloud, Kube: kube, Metrics: provider.NewMetrics(reg),
		StatusInterval: 50 * time.Millisecond, ResyncInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.NotifyPods(ctx, func(*corev1.Pod) {})
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()

	phase := func(ph corev1.PodPhase) string { return "node=" + node + "/phase=" + string(ph) }
	eventually(t, "vnode_pods of the running node, all phases at 0", func() bool {
		g := gauges(t, reg, "vnode_pods")
		return len(g) == 5 && g[phase(corev1.PodPending)] == 0 && g[phase(corev1.PodRunning)] == 0 && g[phase(corev1.PodUnknown)] == 0
	})
	if age := gauges(t, reg, "vnode_pod_pending_max_age_seconds")["node="+node]; age != 0 {
		t.Errorf("vnode_pod_pending_max_age_seconds = %v with no pod, want 0", age)
	}

	newPod := func(name string) *corev1.Pod {
		no := false
		pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.PodSpec{NodeName: node, AutomountServiceAccountToken: &no,
				Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return pod
	}
	start := time.Now()
	// waits: the cloud throttles its create, so it has no group and is
	// retried later (5 s at the soonest, beyond this test's checks).
	cloud.NextError(fake.OpCreate, fake.Throttled(fake.OpCreate))
	if err := p.CreatePod(ctx, newPod("waits")); err != nil {
		t.Fatalf("CreatePod(waits): %v", err)
	}
	// runs: gets its group, which the test then starts.
	if err := p.CreatePod(ctx, newPod("runs")); err != nil {
		t.Fatalf("CreatePod(runs): %v", err)
	}
	eventually(t, "one group in the cloud", func() bool { return len(cloud.Groups()) == 1 })
	if err := cloud.SetStatus(cloud.Groups()[0].ContainerGroupId, eci.StatusRunning); err != nil {
		t.Fatal(err)
	}
	eventually(t, "vnode_pods: 1 Pending, 1 Running", func() bool {
		g := gauges(t, reg, "vnode_pods")
		return g[phase(corev1.PodPending)] == 1 && g[phase(corev1.PodRunning)] == 1
	})
	time.Sleep(50 * time.Millisecond) // the age grows past 0 however coarse the clock
	age := gauges(t, reg, "vnode_pod_pending_max_age_seconds")["node="+node]
	if limit := time.Since(start).Seconds(); age <= 0 || age > limit {
		t.Errorf("vnode_pod_pending_max_age_seconds = %v, want in (0, %v]: the wait of pod waits since its first attempt", age, limit)
	}

	// The node stops running here: its series go with it.
	cancel()
	<-done
	if g := gauges(t, reg, "vnode_pods"); len(g) != 0 {
		t.Errorf("vnode_pods after the node stopped = %v, want no series", g)
	}
	if g := gauges(t, reg, "vnode_pod_pending_max_age_seconds"); len(g) != 0 {
		t.Errorf("vnode_pod_pending_max_age_seconds after the node stopped = %v, want no series", g)
	}
}
