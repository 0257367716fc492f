package provider_test

// The memory the node spends per pod, measured through the provider's
// exported API against the fake cloud (issue 15 §1): how many bytes of heap
// the provider's pod table keeps per Running pod, and how many the core
// keeps for the last status pushed per pod.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/fake"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// benchPod is pod i as the apiserver stores a Deployment's pod bound to the
// virtual node (the bench's workload: one container with requests, the
// default tolerations, a ReplicaSet owner, a scheduled condition). It
// mounts no service-account token, so no apiserver is needed.
func benchPod(i int) *corev1.Pod {
	name := fmt.Sprintf("bench-7d9f8c6b5d-%05d", i)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "bench-0", Name: name, GenerateName: "bench-7d9f8c6b5d-",
			UID:             types.UID(fmt.Sprintf("6f1d2c3b-4a5e-4f60-8a7b-%012d", i)),
			ResourceVersion: fmt.Sprint(1000 + i), CreationTimestamp: metav1.Now(),
			Labels: map[string]string{"app": "bench", "bench-run": "r1", "pod-template-hash": "7d9f8c6b5d"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "bench-7d9f8c6b5d",
				UID: "0c1d2e3f-4a5b-4c6d-8e7f-000000000001", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			NodeName: nodeName, RestartPolicy: corev1.RestartPolicyAlways, DNSPolicy: corev1.DNSDefault,
			AutomountServiceAccountToken: ptr.To(false), ServiceAccountName: "default", SchedulerName: "default-scheduler",
			TerminationGracePeriodSeconds: ptr.To[int64](0), EnableServiceLinks: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{}, PreemptionPolicy: ptr.To(corev1.PreemptLowerPriority), Priority: ptr.To[int32](0),
			NodeSelector: map[string]string{"type": "virtual-kubelet"},
			Tolerations: []corev1.Toleration{
				{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example.com/bench/app:1", Command: []string{"sleep", "infinity"},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi"),
				}},
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy: corev1.PullIfNotPresent,
			}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
		}},
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// podState builds n Running pods through a provider on the fake cloud and
// returns the heap bytes per pod held by the provider (its pod table) and
// by the last status pushed per pod (what the core keeps).
func podState(tb testing.TB, n int) (providerPerPod, pushedPerPod float64) {
	cloud := fake.New()
	cloud.AddVSwitch("vsw-a", "zone-a")
	p, err := provider.New(provider.Options{
		NodeName: nodeName, ClusterID: clusterID, VSwitches: []string{"vsw-a"}, SecurityGroup: "sg-fake",
		Cloud: cloud, Kube: controlplane.NoAPIServer(tb),
		StatusInterval: 20 * time.Millisecond, ResyncInterval: time.Hour,
	})
	if err != nil {
		tb.Fatal(err)
	}
	// What the core keeps: the last pod pushed, per pod.
	var mu sync.Mutex
	last := make(map[string]*corev1.Pod, n)
	ctx, cancel := context.WithCancel(context.Background())
	p.NotifyPods(ctx, func(pod *corev1.Pod) {
		c := pod.DeepCopy()
		mu.Lock()
		last[pod.Name] = c
		mu.Unlock()
	})
	defer cancel()
	for i := 0; i < n; i++ {
		if err := p.CreatePod(ctx, benchPod(i)); err != nil {
			tb.Fatalf("CreatePod %d: %v", i, err)
		}
	}
	for _, g := range cloud.Groups() {
		if err := cloud.UpdateGroup(g.ContainerGroupId, func(g *eci.ContainerGroup) {
			g.Status = eci.StatusRunning
			// The events the simulator (and ECI) record for each
			// container that starts; the provider forwards them and
			// remembers which it did.
			at := time.Now().UTC().Format(time.RFC3339)
			for _, c := range g.Containers {
				for _, ev := range [][2]string{{"Pulling", "pulling image %q"}, {"Pulled", "Successfully pulled image %q"}} {
					g.Events = append(g.Events, eci.Event{Count: 1, Type: "Normal", Name: g.ContainerGroupId, Reason: ev[0],
						Message: fmt.Sprintf(ev[1], c.Image), FirstTimestamp: at, LastTimestamp: at})
				}
				for _, ev := range [][2]string{{"Created", "Created container %s"}, {"Started", "Started container %s"}} {
					g.Events = append(g.Events, eci.Event{Count: 1, Type: "Normal", Name: g.ContainerGroupId, Reason: ev[0],
						Message: fmt.Sprintf(ev[1], c.Name), FirstTimestamp: at, LastTimestamp: at})
				}
			}
			for i := range g.Containers {
				g.Containers[i].Ready = true
				g.Containers[i].CurrentState = eci.ContainerState{State: "Running", StartTime: time.Now().UTC().Format(time.RFC3339)}
			}
		}); err != nil {
			tb.Fatal(err)
		}
	}
	// The status loop starts once every group is recorded: its first full
	// listing would otherwise see a group between its create and its
	// record, and look its pod up in the (absent) apiserver.
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		running := 0
		for _, pod := range last {
			if pod.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		mu.Unlock()
		if running == n {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d pods Running after 2 minutes", running, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done

	// The fake cloud's groups stay referenced throughout, so the
	// differences below are the provider's table and the pushed pods.
	withAll := heapInUse()
	mu.Lock()
	last = nil
	mu.Unlock()
	withoutPushes := heapInUse()
	pods, err := p.GetPods(context.Background())
	if err != nil || len(pods) != n {
		tb.Fatalf("GetPods: %d pods, %v; want %d", len(pods), err, n)
	}
	pods = nil
	p = nil
	withoutProvider := heapInUse()
	runtime.KeepAlive(cloud)
	return float64(withoutPushes-withoutProvider) / float64(n), float64(withAll-withoutPushes) / float64(n)
}

// BenchmarkPodState reports the heap the node keeps per Running pod:
// provider-B/pod (the provider's pod table) and pushed-B/pod (the last
// status handed to the core, which keeps it for every pod).
//
//	go test ./pkg/provider -run '^$' -bench BenchmarkPodState -benchtime 1x
func BenchmarkPodState(b *testing.B) {
	const n = 2000
	// Thousands of "created container group" lines would drown the figures.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	defer klog.LogToStderr(true)
	var prov, pushed float64
	for b.Loop() {
		prov, pushed = podState(b, n)
	}
	b.ReportMetric(prov, "provider-B/pod")
	b.ReportMetric(pushed, "pushed-B/pod")
}

// podsEffectivelyEqual is virtual-kubelet's comparison (node/podcontroller.go
// of v1.13.0, copied as is: it is not exported), which its pod controller
// runs on every change of a pod's metadata or spec.
func podsEffectivelyEqual(p1, p2 *corev1.Pod) bool {
	filterForResourceVersion := func(p cmp.Path) bool {
		if p.String() == "ObjectMeta.ResourceVersion" {
			return true
		}
		if p.String() == "Status" {
			return true
		}
		return false
	}
	return cmp.Equal(p1, p2, cmp.FilterPath(filterForResourceVersion, cmp.Ignore()))
}

// BenchmarkPodsEffectivelyEqual measures what one such comparison
// allocates for the bench's pod (with the service-account token volume
// admission adds) as the informer held it before TrimPod (managedFields
// already dropped) and as it holds it now.
//
//	go test ./pkg/provider -run '^$' -bench BenchmarkPodsEffectivelyEqual
func BenchmarkPodsEffectivelyEqual(b *testing.B) {
	pod := benchPod(1)
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "kube-api-access-x7k2p", VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To[int32](420), Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		}}}})
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-x7k2p", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}}
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
	}{{"whole", pod}, {"trimmed", func() *corev1.Pod { o, _ := provider.TrimPod(pod.DeepCopy()); return o.(*corev1.Pod) }()}} {
		b.Run(c.name, func(b *testing.B) {
			// The core compares the pod it last synced with the informer's
			// new version, which differs in its annotations.
			next := c.pod.DeepCopy()
			next.Annotations = map[string]string{"k8s.aliyun.com/eci-instance-id": "eci-1"}
			b.ReportAllocs()
			for b.Loop() {
				if podsEffectivelyEqual(c.pod, next) {
					b.Fatal("pods with different annotations compare equal")
				}
			}
		})
	}
}

// BenchmarkInformerPod reports the heap one pod takes in the pod informer
// (decoded from JSON, as from the apiserver, so every string is its own),
// without managedFields as before TrimPod ("whole") and as TrimPod leaves
// it: informer-B/pod.
//
//	go test ./pkg/provider -run '^$' -bench BenchmarkInformerPod -benchtime 1x
func BenchmarkInformerPod(b *testing.B) {
	const n = 2000
	for _, trim := range []bool{false, true} {
		name := "whole"
		if trim {
			name = "trimmed"
		}
		b.Run(name, func(b *testing.B) {
			var perPod float64
			for b.Loop() {
				raw := make([][]byte, n)
				for i := range raw {
					raw[i], _ = json.Marshal(benchPod(i))
				}
				before := heapInUse()
				pods := make([]*corev1.Pod, n)
				for i := range pods {
					var pod corev1.Pod
					if err := json.Unmarshal(raw[i], &pod); err != nil {
						b.Fatal(err)
					}
					if trim {
						_, _ = provider.TrimPod(&pod)
					}
					pods[i] = &pod
				}
				after := heapInUse()
				runtime.KeepAlive(pods)
				perPod = float64(after-before) / n
			}
			b.ReportMetric(perPod, "informer-B/pod")
		})
	}
}
