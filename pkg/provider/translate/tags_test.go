package translate

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
)

// TestGroupTagsAndResourceGroup: the configured tags follow the
// controller's own; the eci-profile's replace ECI_TAGS as a whole and its
// resource group replaces ECI_RESOURCE_GROUP_ID; the pod's eci-custom-tags
// may replace a configured value but never an own one.
func TestGroupTagsAndResourceGroup(t *testing.T) {
	env := []eci.Tag{{Key: "team", Value: "env"}, {Key: "cost", Value: "1"}}
	tests := []struct {
		name     string
		profile  func() ([]eci.Tag, bool, string)
		ann      string
		wantTags []eci.Tag // after the own tags
		wantRG   string
		wantErr  string
	}{
		{name: "env", wantTags: env, wantRG: "rg-env"},
		{name: "profile replaces both", profile: func() ([]eci.Tag, bool, string) {
			return []eci.Tag{{Key: "team", Value: "profile"}}, true, "rg-profile"
		}, wantTags: []eci.Tag{{Key: "team", Value: "profile"}}, wantRG: "rg-profile"},
		{name: "profile with only a resource group keeps the env tags", profile: func() ([]eci.Tag, bool, string) {
			return nil, false, "rg-profile"
		}, wantTags: env, wantRG: "rg-profile"},
		{name: "profile with only tags keeps the env resource group", profile: func() ([]eci.Tag, bool, string) {
			return []eci.Tag{{Key: "x", Value: "y"}}, true, ""
		}, wantTags: []eci.Tag{{Key: "x", Value: "y"}}, wantRG: "rg-env"},
		{name: "pod annotation adds and replaces a configured value", ann: "team:pod,app:web",
			wantTags: []eci.Tag{{Key: "team", Value: "pod"}, {Key: "cost", Value: "1"}, {Key: "app", Value: "web"}}, wantRG: "rg-env"},
		{name: "pod annotation cannot replace an own tag", ann: "ClusterId:other", wantErr: `tag key "ClusterId" is used by the virtual node`},
		{name: "pod annotation under the published rules", ann: "k:https://x", wantErr: "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(Options{NodeName: "vk", ClusterID: "c1", Tags: env, ResourceGroupID: "rg-env", GroupDefaults: tt.profile},
				newMemCluster(t))
			pod := testPod(func(p *corev1.Pod) {
				if tt.ann != "" {
					p.Annotations = map[string]string{AnnotationCustomTags: tt.ann}
				}
			})
			out, err := tr.build(context.Background(), pod)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Req.Tags) < len(OwnTagKeys) {
				t.Fatalf("tags = %v", out.Req.Tags)
			}
			for i, k := range OwnTagKeys {
				if out.Req.Tags[i].Key != k {
					t.Errorf("tag %d = %v, want the own tag %s", i, out.Req.Tags[i], k)
				}
			}
			if got := out.Req.Tags[len(OwnTagKeys):]; !reflect.DeepEqual(got, tt.wantTags) {
				t.Errorf("configured tags = %v, want %v", got, tt.wantTags)
			}
			if out.Req.ResourceGroupId != tt.wantRG {
				t.Errorf("ResourceGroupId = %q, want %q", out.Req.ResourceGroupId, tt.wantRG)
			}
			if len(out.Req.Tags) > eci.MaxTags {
				t.Errorf("%d tags, over the cloud's %d", len(out.Req.Tags), eci.MaxTags)
			}
		})
	}
}

// TestConfiguredTagsLeaveRoomForThePod: the largest configuration plus the
// most tags a pod annotation may add still fit the cloud's limit.
func TestConfiguredTagsLeaveRoomForThePod(t *testing.T) {
	var env []eci.Tag
	for i := range MaxConfiguredTags {
		env = append(env, eci.Tag{Key: "cfg" + string(rune('a'+i)), Value: "v"})
	}
	tr := New(Options{NodeName: "vk", ClusterID: "c1", Tags: env}, newMemCluster(t))
	pod := testPod(func(p *corev1.Pod) {
		p.Annotations = map[string]string{AnnotationCustomTags: "p1:1,p2:2,p3:3"}
	})
	out, err := tr.build(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Req.Tags) != eci.MaxTags {
		t.Errorf("%d tags, want exactly the cloud's %d", len(out.Req.Tags), eci.MaxTags)
	}
}
