package provider

import (
	"context"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// slimTestPod is fullPod (trim_test.go) as the informer holds it, with a
// native sidecar, an init container and a projected service-account token.
func slimTestPod() *corev1.Pod {
	obj, _ := TrimPod(fullPod())
	pod := obj.(*corev1.Pod)
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "init", Image: "registry.example.com/init:1", Command: []string{"setup"}},
		{Name: "proxy", Image: "registry.example.com/proxy:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			Env: []corev1.EnvVar{{Name: "UPSTREAM", Value: "127.0.0.1:8080"}}},
	}
	pod.Spec.ServiceAccountName = "web"
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
		}}}})
	return pod
}

// TestSlimSpecKeepsWhatTheProviderReads: the status computed from a slim
// copy, the tokens renewed from it and the kubelet API's container list are
// those of the whole pod.
func TestSlimSpecKeepsWhatTheProviderReads(t *testing.T) {
	pod := slimTestPod()
	slim := slimCopy(pod)
	if len(slim.Spec.Containers[0].Env) != 0 || slim.Spec.Containers[0].ReadinessProbe != nil || len(slim.Spec.HostAliases) != 0 {
		t.Errorf("slim spec still holds what the provider does not read: %+v", slim.Spec)
	}
	if !equality.Semantic.DeepEqual(slim.Status, pod.Status) {
		t.Error("slimCopy changed the status (the core writes it back)")
	}
	// Of the metadata, the identity and the provider's annotations: the
	// labels and the other annotations are the informer's (wholePod).
	wantMeta := metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		Annotations: map[string]string{translate.AnnotationInstanceID: "eci-1"}}
	if !equality.Semantic.DeepEqual(slim.ObjectMeta, wantMeta) {
		t.Errorf("slim metadata %+v, want %+v", slim.ObjectMeta, wantMeta)
	}

	g := &eci.ContainerGroup{ContainerGroupId: "eci-1", Status: eci.StatusRunning, IntranetIp: "10.1.0.5", CreationTime: "2026-12-01T04:00:00Z",
		InitContainers: []eci.ContainerStatus{{Name: "init", CurrentState: eci.ContainerState{State: "Terminated", ExitCode: 0}}},
		Containers: []eci.ContainerStatus{
			{Name: "proxy", Ready: true, CurrentState: eci.ContainerState{State: "Running", StartTime: "2026-12-01T04:00:05Z"}},
			{Name: "app", Ready: true, CurrentState: eci.ContainerState{State: "Running", StartTime: "2026-12-01T04:00:06Z"}},
		}}
	created := time.Now()
	whole, fromSlim := podStatus(pod, g, created), podStatus(slim, g, created)
	keepTransitions(&fromSlim, &whole)
	if !equality.Semantic.DeepEqual(whole, fromSlim) {
		t.Errorf("status from the slim copy differs:\nwhole %+v\nslim  %+v", whole, fromSlim)
	}
	if whole.Phase != corev1.PodRunning || len(whole.InitContainerStatuses) != 2 || len(whole.ContainerStatuses) != 1 || whole.ContainerStatuses[0].Image != "registry.example.com/web:1" {
		t.Errorf("the status does not describe the pod: %+v", whole)
	}

	tr := translate.New(translate.Options{NodeName: "virtual-kubelet", ClusterID: "c1"}, tokenCluster{})
	names := translate.TokenVolumes(pod)
	wantVols, _, err := tr.RefreshVolumes(context.Background(), pod, names)
	if err != nil || len(wantVols) != 1 {
		t.Fatalf("renewing the whole pod's token: %v, %v", wantVols, err)
	}
	// Renewal completes the slim copy from the informer (renewalPod).
	if len(slim.Spec.Volumes) != 0 {
		t.Errorf("slim spec keeps the volumes, which the informer holds: %+v", slim.Spec.Volumes)
	}
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := indexer.Add(pod); err != nil {
		t.Fatal(err)
	}
	lister := corev1listers.NewPodLister(indexer)
	renewal := slim.DeepCopy()
	if !renewalPod(renewal, lister) {
		t.Fatal("renewalPod: the informer's pod was not found")
	}
	gotVols, _, err := tr.RefreshVolumes(context.Background(), renewal, names)
	if err != nil || !reflect.DeepEqual(gotVols, wantVols) {
		t.Errorf("renewing from the slim copy: %+v, %v; want %+v", gotVols, err, wantVols)
	}
	renewal.Spec.Volumes[0].Name = "changed"
	if pod.Spec.Volumes[0].Name == "changed" {
		t.Error("renewalPod shares the informer's volumes: the caller's changes reach the informer's cache")
	}
	other := slim.DeepCopy()
	other.UID = "uid-other"
	if renewalPod(other, lister) {
		t.Error("renewalPod completed a pod from the informer's pod of another UID")
	}
}

// tokenCluster mints a fixed token; the pod refers to nothing else.
type tokenCluster struct{ emptyCluster }

func (tokenCluster) Token(_ context.Context, _, _ string, req *authv1.TokenRequest) (*authv1.TokenRequest, error) {
	out := req.DeepCopy()
	out.Status = authv1.TokenRequestStatus{Token: "token-1", ExpirationTimestamp: metav1.NewTime(time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC))}
	return out, nil
}

// TestGetPodIsWhole: GetPod and GetPods give the pod back whole, its spec
// from the informer, as long as the informer's pod is the one the provider
// took; a pod whose spec changed since comes back with the slim spec, so
// the core sees the difference and calls UpdatePod, after which (record)
// the new spec is whole again.
func TestGetPodIsWhole(t *testing.T) {
	informer := slimTestPod()
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := indexer.Add(informer); err != nil {
		t.Fatal(err)
	}
	p := &Provider{pods: map[string]*entry{}, byGroup: map[string]string{}, podLister: corev1listers.NewPodLister(indexer)}
	e := &entry{groupID: "eci-1"}
	e.keep(informer)
	e.pod.Annotations[translate.AnnotationInstanceID] = "eci-1"
	e.pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.9.9.9"}
	k := key(informer.Namespace, informer.Name)
	p.pods[k] = e
	ctx := context.Background()

	got, err := p.GetPod(ctx, informer.Namespace, informer.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(got.Spec, informer.Spec) {
		t.Errorf("GetPod's spec is not the informer's:\ngot  %+v\nwant %+v", got.Spec, informer.Spec)
	}
	if got.Status.PodIP != "10.9.9.9" || got.Annotations[translate.AnnotationInstanceID] != "eci-1" {
		t.Errorf("GetPod's status %+v / annotations %v are not the provider's", got.Status, got.Annotations)
	}
	// The core compares these with the informer's before calling UpdatePod.
	if !equality.Semantic.DeepEqual(got.Labels, informer.Labels) || !equality.Semantic.DeepEqual(got.Annotations, informer.Annotations) {
		t.Errorf("GetPod's labels %v and annotations %v are not the informer's %v, %v", got.Labels, got.Annotations, informer.Labels, informer.Annotations)
	}
	got.Spec.Containers[0].Image = "changed"
	got.Labels["app"] = "changed"
	if informer.Spec.Containers[0].Image == "changed" || informer.Labels["app"] == "changed" {
		t.Fatal("GetPod's pod shares the informer's spec or labels: the caller's changes reach the informer's cache")
	}
	all, err := p.GetPods(ctx)
	if err != nil || len(all) != 1 || !equality.Semantic.DeepEqual(all[0].Spec, informer.Spec) {
		t.Errorf("GetPods: %v; want the one pod with the informer's spec", err)
	}

	// The image is changed: until UpdatePod takes the new pod, GetPod does
	// not give the new spec (the core would then skip UpdatePod).
	updated := informer.DeepCopy()
	updated.Spec.Containers[0].Image = "registry.example.com/web:2"
	updated.ResourceVersion = "43"
	if err := indexer.Update(updated); err != nil {
		t.Fatal(err)
	}
	got, _ = p.GetPod(ctx, informer.Namespace, informer.Name)
	if equality.Semantic.DeepEqual(got.Spec.Containers, updated.Spec.Containers) {
		t.Error("GetPod gives the informer's changed containers before UpdatePod took them")
	}
	// UpdatePod is applyUpdate (the cloud's part, TestImageUpdate) then
	// record; this provider has no cloud.
	p.record(updated.DeepCopy())
	got, _ = p.GetPod(ctx, informer.Namespace, informer.Name)
	if !equality.Semantic.DeepEqual(got.Spec, updated.Spec) || got.Status.PodIP != "10.9.9.9" || got.Annotations[translate.AnnotationInstanceID] != "eci-1" {
		t.Errorf("after UpdatePod: spec whole %v, status %+v, annotations %v", equality.Semantic.DeepEqual(got.Spec, updated.Spec), got.Status, got.Annotations)
	}
	if p.pods[k].pod.Spec.Containers[0].Image != "registry.example.com/web:2" || len(p.pods[k].pod.Spec.Containers[0].Env) != 0 {
		t.Errorf("UpdatePod did not keep the new pod slim: %+v", p.pods[k].pod.Spec.Containers[0])
	}

	// A user changes the labels and an annotation: until UpdatePod takes
	// them, GetPod's differ from the informer's (the core then calls it),
	// and the provider's annotations stay.
	relabelled := updated.DeepCopy()
	relabelled.Labels = map[string]string{"app": "web", "tier": "front"}
	relabelled.Annotations["example.com/note"] = "x"
	relabelled.ResourceVersion = "44"
	if err := indexer.Update(relabelled); err != nil {
		t.Fatal(err)
	}
	got, _ = p.GetPod(ctx, informer.Namespace, informer.Name)
	if equality.Semantic.DeepEqual(got.Labels, relabelled.Labels) && equality.Semantic.DeepEqual(got.Annotations, relabelled.Annotations) {
		t.Error("GetPod gives the informer's changed labels and annotations before UpdatePod took them")
	}
	if err := p.UpdatePod(ctx, relabelled.DeepCopy()); err != nil { // no image changed: no cloud call
		t.Fatal(err)
	}
	got, _ = p.GetPod(ctx, informer.Namespace, informer.Name)
	if !equality.Semantic.DeepEqual(got.Labels, relabelled.Labels) || got.Annotations["example.com/note"] != "x" || got.Annotations[translate.AnnotationInstanceID] != "eci-1" {
		t.Errorf("after UpdatePod: labels %v, annotations %v; want the informer's with the provider's", got.Labels, got.Annotations)
	}
	if len(p.pods[k].pod.Labels) != 0 || p.pods[k].pod.Annotations["example.com/note"] != "" {
		t.Errorf("UpdatePod kept labels or others' annotations: %+v", p.pods[k].pod.ObjectMeta)
	}

	// Another pod of that name, or none: the provider's own (slim) copy.
	other := updated.DeepCopy()
	other.UID = "uid-2"
	if err := indexer.Update(other); err != nil {
		t.Fatal(err)
	}
	got, _ = p.GetPod(ctx, informer.Namespace, informer.Name)
	if got.UID != informer.UID || len(got.Spec.Containers[0].Env) != 0 {
		t.Errorf("GetPod with another pod of that name in the informer: uid %s, spec %+v; want the provider's slim copy", got.UID, got.Spec.Containers[0])
	}
	if err := indexer.Delete(other); err != nil {
		t.Fatal(err)
	}
	if got, err = p.GetPod(ctx, informer.Namespace, informer.Name); err != nil || got.UID != informer.UID {
		t.Errorf("GetPod of a pod gone from the informer: %v, %v; want the provider's copy", got, err)
	}
}

// BenchmarkRecordPod reports the heap one Running pod's record takes in
// the provider's table (slimCopy, record-B/pod), for slimTestPod: a pod
// with a projected service-account token volume, as admission gives every
// pod that mounts its ServiceAccount's token.
//
//	go test ./pkg/provider -run '^$' -bench BenchmarkRecordPod -benchtime 1x
func BenchmarkRecordPod(b *testing.B) {
	const n = 2000
	pod := slimTestPod()
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning}
	var perPod float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		kept := make([]*corev1.Pod, n)
		for i := range kept {
			kept[i] = slimCopy(pod)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(kept)
		perPod = float64(after.HeapAlloc-before.HeapAlloc) / n
	}
	b.ReportMetric(perPod, "record-B/pod")
}
