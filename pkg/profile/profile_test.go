package profile

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	yes := true
	tests := []struct {
		name string
		data map[string]string
		want *Profile
		// wantKeys are the bad keys; wantText must all appear in the error.
		wantKeys []string
		wantText []string
	}{
		{name: "empty", data: nil, want: &Profile{}},
		{
			name: "all keys",
			data: map[string]string{
				"vSwitchIds": " vsw-a , vsw-b,,", "securityGroupId": "sg-1", "vpcId": "vpc-1",
				"resourceGroupId": "rg-1", "enableClusterIp": "true", "enableHybridMode": "whatever",
				"selectors": `[{"name":"big","namespaceSelector":{"matchLabels":{"team":"a"}},"objectSelector":{"matchLabels":{"size":"big"}},` +
					`"effect":{"annotations":{"k8s.aliyun.com/eci-use-specs":"2-4Gi"},"labels":{"tier":"eci"}}}]`,
			},
			want: &Profile{
				VSwitchIDs: []string{"vsw-a", "vsw-b"}, SecurityGroupID: "sg-1", VPCID: "vpc-1", ResourceGroupID: "rg-1",
				EnableClusterIP: &yes,
				Selectors: []Selector{{
					Name:              "big",
					NamespaceSelector: LabelMatch{MatchLabels: map[string]string{"team": "a"}},
					ObjectSelector:    LabelMatch{MatchLabels: map[string]string{"size": "big"}},
					Effect: Effect{Annotations: map[string]string{"k8s.aliyun.com/eci-use-specs": "2-4Gi"},
						Labels: map[string]string{"tier": "eci"}},
				}},
			},
		},
		{name: "legacy vswitchIds", data: map[string]string{"vswitchIds": "vsw-old"}, want: &Profile{VSwitchIDs: []string{"vsw-old"}}},
		{name: "both spellings agree", data: map[string]string{"vswitchIds": "vsw-a", "vSwitchIds": "vsw-a"}, want: &Profile{VSwitchIDs: []string{"vsw-a"}}},
		{name: "both spellings differ", data: map[string]string{"vswitchIds": "vsw-a", "vSwitchIds": "vsw-b"},
			wantKeys: []string{"vswitchIds"}, wantText: []string{"keep only vSwitchIds"}},
		{name: "bad vswitch", data: map[string]string{"vSwitchIds": "vsw-a,subnet-1"},
			wantKeys: []string{"vSwitchIds"}, wantText: []string{`"subnet-1"`, "vsw-"}},
		{name: "bad legacy vswitch names the legacy key", data: map[string]string{"vswitchIds": "x"},
			wantKeys: []string{"vswitchIds"}},
		{name: "duplicate vswitch", data: map[string]string{"vSwitchIds": "vsw-a,vsw-a"},
			wantKeys: []string{"vSwitchIds"}, wantText: []string{"listed twice"}},
		{name: "too many vswitches", data: map[string]string{"vSwitchIds": "vsw-1,vsw-2,vsw-3,vsw-4,vsw-5,vsw-6,vsw-7,vsw-8,vsw-9,vsw-10,vsw-11"},
			wantKeys: []string{"vSwitchIds"}, wantText: []string{"at most 10"}},
		{name: "bad security group", data: map[string]string{"securityGroupId": "default"},
			wantKeys: []string{"securityGroupId"}, wantText: []string{"sg-"}},
		{name: "bad bool", data: map[string]string{"enableClusterIp": "yes please"},
			wantKeys: []string{"enableClusterIp"}},
		{name: "bad resource group", data: map[string]string{"resourceGroupId": "default"}, wantKeys: []string{"resourceGroupId"}},
		{name: "selectors syntax error", data: map[string]string{"selectors": `[{"name": "a",}]`},
			wantKeys: []string{"selectors"}, wantText: []string{"byte", "write a JSON array such as"}},
		{name: "selectors truncated", data: map[string]string{"selectors": `[{"name": "a"`},
			wantKeys: []string{"selectors"}, wantText: []string{"ends early"}},
		{name: "selectors not a list", data: map[string]string{"selectors": `{"name":"a"}`},
			wantKeys: []string{"selectors"}},
		{name: "selectors wrong type", data: map[string]string{"selectors": `[{"name":"a","objectSelector":{"matchLabels":{"x":1}}}]`},
			wantKeys: []string{"selectors"}, wantText: []string{"objectSelector.matchLabels"}},
		{name: "selector typo field", data: map[string]string{"selectors": `[{"name":"a","objectSelecter":{"matchLabels":{"x":"1"}}}]`},
			wantKeys: []string{"selectors"}, wantText: []string{"objectSelecter"}},
		{name: "selector without name", data: map[string]string{"selectors": `[{"objectSelector":{"matchLabels":{"x":"1"}}}]`},
			wantKeys: []string{"selectors"}, wantText: []string{"name is empty"}},
		{name: "selector names twice", data: map[string]string{"selectors": `[{"name":"a","objectSelector":{"matchLabels":{"x":"1"}}},{"name":"a","objectSelector":{"matchLabels":{"y":"1"}}}]`},
			wantKeys: []string{"selectors"}, wantText: []string{"used twice"}},
		{name: "selector matches everything", data: map[string]string{"selectors": `[{"name":"all","effect":{"labels":{"a":"b"}}}]`},
			wantKeys: []string{"selectors"}, wantText: []string{`selector 0 ("all")`, "matches every pod"}},
		{name: "bad label value", data: map[string]string{"selectors": `[{"name":"a","objectSelector":{"matchLabels":{"x":"not ok"}}}]`},
			wantKeys: []string{"selectors"}, wantText: []string{"objectSelector.matchLabels"}},
		{name: "bad annotation key", data: map[string]string{"selectors": `[{"name":"a","objectSelector":{"matchLabels":{"x":"y"}},"effect":{"annotations":{"bad key":"v"}}}]`},
			wantKeys: []string{"selectors"}, wantText: []string{"effect.annotations"}},
		{name: "extra text", data: map[string]string{"selectors": `[] []`}, wantKeys: []string{"selectors"}},
		{name: "several bad keys at once", data: map[string]string{"securityGroupId": "x", "vSwitchIds": "y", "selectors": "["},
			wantKeys: []string{"securityGroupId", "selectors", "vSwitchIds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.data)
			if tt.wantKeys == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Parse = %+v, want %+v", got, tt.want)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error = %v, want a *ValidationError", err)
			}
			if got != nil {
				t.Errorf("Parse returned a profile with an error")
			}
			if !reflect.DeepEqual(ve.Keys(), tt.wantKeys) {
				t.Errorf("bad keys = %v, want %v (%v)", ve.Keys(), tt.wantKeys, err)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestMatch(t *testing.T) {
	p, err := Parse(map[string]string{"selectors": `[
		{"name":"first","objectSelector":{"matchLabels":{"app":"web","size":"big"}},
		 "effect":{"annotations":{"spec":"2-4Gi","a":"first"},"labels":{"l":"first"}}},
		{"name":"ns","namespaceSelector":{"matchLabels":{"team":"x"}},
		 "effect":{"annotations":{"spec":"1-2Gi","b":"ns"},"labels":{"l":"ns","m":"ns"}}},
		{"name":"both","namespaceSelector":{"matchLabels":{"team":"x"}},"objectSelector":{"matchLabels":{"app":"web"}},
		 "effect":{"annotations":{"c":"both"}}}
	]`})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                    string
		ns, labels, annotations map[string]string
		want                    Match
	}{
		{name: "nothing", ns: map[string]string{"team": "y"}, labels: map[string]string{"app": "web"}},
		{name: "labels are ANDed", labels: map[string]string{"app": "web"}},
		{name: "object selector", labels: map[string]string{"app": "web", "size": "big"},
			want: Match{Selectors: []string{"first"}, Annotations: map[string]string{"spec": "2-4Gi", "a": "first"}, Labels: map[string]string{"l": "first"}}},
		{name: "first selector wins per key", ns: map[string]string{"team": "x"}, labels: map[string]string{"app": "web", "size": "big"},
			want: Match{Selectors: []string{"first", "ns", "both"},
				Annotations: map[string]string{"spec": "2-4Gi", "a": "first", "b": "ns", "c": "both"},
				Labels:      map[string]string{"l": "first", "m": "ns"}}},
		{name: "pod's own values win", ns: map[string]string{"team": "x"}, labels: map[string]string{"m": "mine"},
			annotations: map[string]string{"spec": "mine"},
			want:        Match{Selectors: []string{"ns"}, Annotations: map[string]string{"b": "ns"}, Labels: map[string]string{"l": "ns"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Match(tt.ns, tt.labels, tt.annotations)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Match = %+v, want %+v", got, tt.want)
			}
		})
	}
	var none *Profile
	if m := none.Match(nil, nil, nil); m.Selectors != nil {
		t.Errorf("nil profile matched %v", m.Selectors)
	}
}

func TestCloneIsDeep(t *testing.T) {
	p, err := Parse(map[string]string{"vSwitchIds": "vsw-a", "enableClusterIp": "false",
		"selectors": `[{"name":"a","objectSelector":{"matchLabels":{"x":"y"}},"effect":{"labels":{"k":"v"}}}]`})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Clone()
	c.VSwitchIDs[0] = "changed"
	c.Selectors[0].Effect.Labels["k"] = "changed"
	*c.EnableClusterIP = true
	if p.VSwitchIDs[0] != "vsw-a" || p.Selectors[0].Effect.Labels["k"] != "v" || *p.EnableClusterIP {
		t.Errorf("Clone shares memory with the original: %+v", p)
	}
	if !sameContent(p, p.Clone()) {
		t.Error("a clone differs from its original")
	}
}
