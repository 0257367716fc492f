package provider

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

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
		id := env.addPod("default", name, "Always", container{name: "app", script: "sleep 3600"})
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
