package profile

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
)

func TestIgnored(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		want []string // keys
		text []string // in the messages
	}{
		{name: "known keys", data: map[string]string{"vSwitchIds": "vsw-a", "vswitchIds": "vsw-a", "securityGroupId": "sg-1",
			"vpcId": "vpc-1", "resourceGroupId": "rg-1", "enableClusterIp": "true", "selectors": "", "tags": "a:b"}},
		{name: "the vendor's switches off are honoured", data: map[string]string{"enableHybridMode": "false", "enablePrivateZone": "False",
			"enableLogController": "", "featureGates": "", "slsMachineGroup": " "}},
		{name: "the vendor's switches on", data: map[string]string{"enablePrivateZone": "true", "enableHybridMode": "false"},
			want: []string{"enablePrivateZone"}, text: []string{`"enablePrivateZone"`, "PrivateZone", "not supported", `set it to "false"`}},
		{name: "vendor values", data: map[string]string{"featureGates": "WaitForFirstConsumer=false", "slsMachineGroup": "k8s-group"},
			want: []string{"featureGates", "slsMachineGroup"}},
		{name: "not a boolean", data: map[string]string{"enableLinuxArm64Node": "maybe"}, want: []string{"enableLinuxArm64Node"}},
		{name: "unknown key", data: map[string]string{"securityGroupID": "sg-1"}, want: []string{"securityGroupID"},
			text: []string{`"securityGroupID" is unknown`, "securityGroupId", "spelling"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Ignored(tt.data)
			var keys []string
			var msgs []string
			for _, k := range got {
				keys = append(keys, k.Key)
				msgs = append(msgs, k.Message)
				if k.Value != tt.data[k.Key] {
					t.Errorf("%s: value %q, want %q", k.Key, k.Value, tt.data[k.Key])
				}
			}
			if !reflect.DeepEqual(keys, tt.want) {
				t.Fatalf("ignored keys = %v, want %v", keys, tt.want)
			}
			for _, w := range tt.text {
				if !strings.Contains(strings.Join(msgs, "\n"), w) {
					t.Errorf("messages %q lack %q", msgs, w)
				}
			}
			// Ignored keys never reject a profile.
			if _, err := Parse(tt.data); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	var many []string
	for i := range 12 {
		many = append(many, fmt.Sprintf("k%d:v", i))
	}
	tests := []struct {
		name    string
		value   string
		want    []eci.Tag
		set     bool
		wantErr string
	}{
		{name: "absent"},
		{name: "blank", value: "  "},
		{name: "tags", value: "team:web, cost:42", want: []eci.Tag{{Key: "team", Value: "web"}, {Key: "cost", Value: "42"}}, set: true},
		{name: "own key", value: "NodeName:x", wantErr: `tags: tag key "NodeName" is one of the controller's own`},
		{name: "too many", value: strings.Join(many, ","), wantErr: "tags has 12 tags; at most 11"},
		{name: "bad form", value: "team", wantErr: `tags: "team" is not key:value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := map[string]string{}
			if tt.value != "" {
				data[KeyTags] = tt.value
			}
			p, err := Parse(data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tt.wantErr)
				}
				if ve, ok := err.(*ValidationError); !ok || !reflect.DeepEqual(ve.Keys(), []string{KeyTags}) {
					t.Errorf("bad keys = %v, want [tags]", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Tags, tt.want) || p.TagsSet != tt.set {
				t.Errorf("Tags = %v (set %v), want %v (set %v)", p.Tags, p.TagsSet, tt.want, tt.set)
			}
		})
	}
}

// TestStoreReportsIgnoredKeys: each key the add-on does not use gets one
// Warning event naming it, when it appears or its value changes; edits of
// other keys and re-deliveries repeat nothing. The tags and resource group
// of the profile reach GroupDefaults.
func TestStoreReportsIgnoredKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kube := controlPlane(t).Clientset()
	ns := testNamespace(t, kube)
	rec := record.NewFakeRecorder(20)
	s := NewStore(StoreOptions{Kube: kube, Recorder: rec, Namespace: ns, ReportIgnoredKeys: true})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cms := kube.CoreV1().ConfigMaps(ns)
	ch := s.Changed()
	cm, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "eci-profile", Namespace: ns},
		Data: map[string]string{"securityGroupId": "sg-1", "enableHybridMode": "false", "enablePrivateZone": "true",
			"resourceGroupID": "rg-typo", "resourceGroupId": "rg-1", "tags": "team:web"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitChanged(t, ch)
	got := drainEvents(rec, 2, 10*time.Second)
	if len(got) != 2 || !strings.Contains(got[0], `"enablePrivateZone"`) || !strings.Contains(got[1], `"resourceGroupID" is unknown`) {
		t.Fatalf("events = %q, want one Warning each for enablePrivateZone and resourceGroupID", got)
	}
	for _, ev := range got {
		if !strings.HasPrefix(ev, "Warning "+ReasonProfileKeyIgnored+" ") {
			t.Errorf("event %q is not a %s Warning", ev, ReasonProfileKeyIgnored)
		}
	}
	tags, set, rg := s.GroupDefaults()
	if !set || !reflect.DeepEqual(tags, []eci.Tag{{Key: "team", Value: "web"}}) || rg != "rg-1" {
		t.Errorf("GroupDefaults = %v %v %q", tags, set, rg)
	}

	// Editing another key repeats nothing; changing an ignored key's value
	// reports that key again.
	ch = s.Changed()
	cm.Data["securityGroupId"] = "sg-2"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, ch)
	ch = s.Changed()
	cm.Data["resourceGroupID"] = "rg-typo2"
	if _, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, ch)
	got = drainEvents(rec, 2, 3*time.Second)
	if len(got) != 1 || !strings.Contains(got[0], `"resourceGroupID"`) {
		t.Fatalf("events after the edits = %q, want one for resourceGroupID", got)
	}
}

// drainEvents reads up to n events, waiting at most d in all.
func drainEvents(rec *record.FakeRecorder, n int, d time.Duration) []string {
	var out []string
	deadline := time.After(d)
	for len(out) < n {
		select {
		case ev := <-rec.Events:
			out = append(out, ev)
		case <-deadline:
			return out
		}
	}
	return out
}

func TestParseNodeSettings(t *testing.T) {
	tests := []struct {
		name       string
		data       map[string]string
		wantLabels map[string]string
		wantTaints []corev1.Taint // nil: key absent
		wantErr    []string
	}{
		{name: "absent", data: map[string]string{"nodeLabels": " "}},
		{name: "labels", data: map[string]string{"nodeLabels": "pool=eci, tier=web"}, wantLabels: map[string]string{"pool": "eci", "tier": "web"}},
		{name: "taints keep the default", data: map[string]string{"nodeTaints": "dedicated=batch:NoSchedule"},
			wantTaints: []corev1.Taint{{Key: "virtual-kubelet.io/provider", Value: "alibabacloud", Effect: corev1.TaintEffectNoSchedule},
				{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}}},
		{name: "default removed", data: map[string]string{"nodeTaints": "virtual-kubelet.io/provider-"}, wantTaints: []corev1.Taint{}},
		{name: "own label", data: map[string]string{"nodeLabels": "type=x"}, wantErr: []string{"nodeLabels", `label "type" is set by the controller`}},
		{name: "bad taint", data: map[string]string{"nodeTaints": "a=b"}, wantErr: []string{"nodeTaints", "has no effect"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.data)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("Parse accepted it")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.NodeLabels, tt.wantLabels) {
				t.Errorf("NodeLabels = %v, want %v", p.NodeLabels, tt.wantLabels)
			}
			switch {
			case tt.wantTaints == nil && p.NodeTaints != nil:
				t.Errorf("NodeTaints = %+v, want none", p.NodeTaints)
			case tt.wantTaints != nil && (p.NodeTaints == nil || len(p.NodeTaints.All()) != len(tt.wantTaints) ||
				(len(tt.wantTaints) > 0 && !reflect.DeepEqual(p.NodeTaints.All(), tt.wantTaints))):
				t.Errorf("NodeTaints = %+v, want %v", p.NodeTaints, tt.wantTaints)
			}
			if c := p.Clone(); !reflect.DeepEqual(c.NodeLabels, p.NodeLabels) || (p.NodeTaints != nil && c.NodeTaints == p.NodeTaints) {
				t.Error("Clone does not deep-copy the node settings")
			}
		})
	}
}
