package provider

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// TestHousekeeping: a pod deleted without the core telling the provider
// (its deletion lost in a watch gap) must not leave its group running. The
// groups of pods that still exist, even ones the informer has not seen
// yet, are kept.
func TestHousekeeping(t *testing.T) {
	env := newSimEnv(t)
	kube, ns, informer := env.onAPIServer(t, "housekeeping")
	ctx := context.Background()

	// track registers a group for pod name with uid; apiserver says
	// whether the pod object exists, inInformer whether the informer has it.
	track := func(name string, apiserver, inInformer bool) string {
		t.Helper()
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(name + "-old")},
			Spec: corev1.PodSpec{NodeName: env.p.opts.NodeName, Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
		if apiserver {
			created, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pod = created
		}
		if inInformer {
			if err := informer.Add(pod); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := env.cloud.CreateContainerGroup(ctx, &eci.CreateContainerGroupRequest{
			SecurityGroupId: "sg-sim", VSwitchId: "vsw-sim-h", ContainerGroupName: name,
			Containers: []eci.Container{{Name: "app", Image: "busybox", Cpu: 1, Memory: 2}},
		})
		if err != nil {
			t.Fatal(err)
		}
		env.p.mu.Lock()
		env.p.pods[key(ns, name)] = &entry{pod: pod, groupID: resp.ContainerGroupId}
		env.p.byGroup[resp.ContainerGroupId] = key(ns, name)
		env.p.mu.Unlock()
		return resp.ContainerGroupId
	}
	tests := []struct {
		name                  string
		apiserver, inInformer bool
		replaced              bool // the apiserver holds a new pod of that name
		deleting              bool // a DeletePod of it is under way
		wantGone              bool
	}{
		{name: "running", apiserver: true, inInformer: true},
		{name: "not in the informer yet", apiserver: true},
		{name: "deleted", wantGone: true},
		{name: "deleted and recreated", apiserver: true, inInformer: true, replaced: true, wantGone: true},
		{name: "deleted, its deletion under way", deleting: true},
	}
	groups := map[string]string{}
	for i, tt := range tests {
		name := "pod-" + string(rune('a'+i))
		groups[tt.name] = track(name, tt.apiserver && !tt.replaced, tt.inInformer && !tt.replaced)
		if tt.deleting {
			env.p.mu.RLock()
			env.p.pods[key(ns, name)].deleting.Add(1)
			env.p.mu.RUnlock()
		}
		if tt.replaced {
			fresh, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: corev1.PodSpec{NodeName: env.p.opts.NodeName, Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := informer.Add(fresh); err != nil {
				t.Fatal(err)
			}
		}
	}
	lists := 0
	// Lists of pods (not watches) are what housekeeping may make.
	env.p.opts.Kube = controlplane.ClientWith(t, shared.Get(t), func(r *http.Request) {
		if r.Method == http.MethodGet && !strings.Contains(r.URL.RawQuery, "watch") && strings.HasSuffix(r.URL.Path, "/pods") {
			lists++
		}
	})
	env.p.housekeep(ctx)
	if lists != 1 {
		t.Errorf("housekeeping listed pods %d times, want once", lists)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := env.cloud.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{ContainerGroupIds: []string{groups[tt.name]}, Limit: 20})
			if err != nil {
				t.Fatal(err)
			}
			gone := len(resp.ContainerGroups) == 0
			if gone != tt.wantGone {
				t.Errorf("group gone = %v, want %v", gone, tt.wantGone)
			}
		})
	}
}

// TestPodDeletedTombstone: the core ignores a deletion the informer reports
// as a tombstone; the provider deletes the group, and only for its own pod.
func TestPodDeletedTombstone(t *testing.T) {
	env := newSimEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env.p.mu.Lock()
	env.p.runCtx = ctx
	env.p.mu.Unlock()
	kube := shared.Get(t).Clientset()
	env.p.opts.Kube = kube

	id := env.addPod("default", "web", "Always", container{Name: "app", Script: "sleep 3600"})
	exists := func() bool {
		resp, err := env.cloud.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{ContainerGroupIds: []string{id}, Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.ContainerGroups) == 1
	}
	pod := func(uid string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: types.UID(uid)}}
	}
	for _, tc := range []struct {
		name     string
		obj      any
		wantKept bool
	}{
		{"plain delete is the core's", pod("web-uid"), true},
		{"tombstone of another pod of that name", cache.DeletedFinalStateUnknown{Key: "default/web", Obj: pod("other")}, true},
		{"tombstone of the tracked pod", cache.DeletedFinalStateUnknown{Key: "default/web", Obj: pod("web-uid")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.p.PodDeleted(tc.obj)
			if got := exists(); got != tc.wantKept {
				t.Errorf("group exists = %v, want %v", got, tc.wantKept)
			}
		})
	}
}

// TestMarkLost: a pod is failed as lost only when its group was old enough
// to be in the full listing, is missing from it, and is not found when
// described by id. A large listing takes long enough that groups created
// meanwhile are missing from it; failing their pods would leave the groups
// running with nothing to delete them.
func TestMarkLost(t *testing.T) {
	env := newSimEnv(t)
	ctx := context.Background()
	// The listing began a minute ago and took that long.
	listStart := time.Now().Add(-time.Minute)
	mk := func(name string, age time.Duration) string {
		id := env.addPod("default", name, "Always", container{Name: "app", Script: "sleep 3600"})
		env.p.mu.Lock()
		e := env.p.pods[key("default", name)]
		e.created = listStart.Add(-age)
		e.pod.Status.Phase = corev1.PodRunning
		env.p.mu.Unlock()
		return id
	}
	tests := []struct {
		name     string
		age      time.Duration // before the listing began
		inList   bool
		deleted  bool
		wantLost bool
	}{
		{name: "listed", age: time.Hour, inList: true},
		// Created 15 s after the listing began: older than lostGrace now,
		// yet the listing could not contain it.
		{name: "created while the listing ran", age: -15 * time.Second},
		{name: "left out of the listing but still there", age: time.Hour},
		{name: "gone", age: time.Hour, deleted: true, wantLost: true},
	}
	seen := map[string]bool{}
	ids := map[string]string{}
	for i, tt := range tests {
		name := "pod-" + string(rune('a'+i))
		ids[tt.name] = name
		id := mk(name, tt.age)
		if tt.inList {
			seen[id] = true
		}
		if tt.deleted {
			if err := env.cloud.DeleteContainerGroup(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := env.calls("DescribeContainerGroups")
	env.p.markLost(ctx, seen, listStart)
	// Only the two old unlisted groups are worth a describe, in one call.
	if got := env.calls("DescribeContainerGroups") - before; got != 1 {
		t.Errorf("DescribeContainerGroups calls = %d, want 1", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.p.mu.RLock()
			st := env.p.pods[key("default", ids[tt.name])].pod.Status
			env.p.mu.RUnlock()
			lost := st.Phase == corev1.PodFailed && st.Reason == "ContainerInstanceNotFound"
			if lost != tt.wantLost {
				t.Errorf("lost = %v (phase %s, reason %q), want %v", lost, st.Phase, st.Reason, tt.wantLost)
			}
		})
	}
}
