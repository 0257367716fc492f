package simulator

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestResourceGroupId: CreateContainerGroup keeps the ResourceGroupId it
// is given and DescribeContainerGroups returns it; the Describe operations
// filter by it when asked, and without it list the groups of every
// resource group (the published parameter is a filter).
func TestResourceGroupId(t *testing.T) {
	e := newEnv(t, nil)
	inA := e.create("in-a", map[string]string{"ResourceGroupId": "rg-a", "Tag.1.Key": "set", "Tag.1.Value": "rg"})
	inB := e.create("in-b", map[string]string{"ResourceGroupId": "rg-b", "Tag.1.Key": "set", "Tag.1.Value": "rg"})
	none := e.create("in-default", map[string]string{"Tag.1.Key": "set", "Tag.1.Value": "rg"})
	if g := e.describe(inA); g.ResourceGroupId != "rg-a" {
		t.Fatalf("ResourceGroupId = %q, want rg-a", g.ResourceGroupId)
	}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   []string
	}{
		{"no filter lists every resource group", map[string]string{"Tag.1.Key": "set", "Tag.1.Value": "rg"}, []string{inA, inB, none}},
		{"filter", map[string]string{"ResourceGroupId": "rg-b"}, []string{inB}},
		{"filter and tag", map[string]string{"ResourceGroupId": "rg-a", "Tag.1.Key": "set"}, []string{inA}},
		{"no such group", map[string]string{"ResourceGroupId": "rg-c"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out describeOut
			e.sub(t).mustCall("DescribeContainerGroups", tc.params, &out)
			got := map[string]bool{}
			for _, g := range out.ContainerGroups {
				got[g.ContainerGroupId] = true
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for _, id := range tc.want {
				if !got[id] {
					t.Errorf("group %s missing: got %v", id, got)
				}
			}
			var st statusOut
			e.sub(t).mustCall("DescribeContainerGroupStatus", tc.params, &st)
			if len(st.Data) != len(tc.want) {
				t.Errorf("DescribeContainerGroupStatus returned %d groups, want %d", len(st.Data), len(tc.want))
			}
		})
	}
}

// TestCreateTagRules: CreateContainerGroup refuses tags that break the
// published rules and takes 20 valid ones.
func TestCreateTagRules(t *testing.T) {
	e := newEnv(t, nil)
	for name, tag := range map[string][2]string{
		"key too long":      {strings.Repeat("k", 65), "v"},
		"key acs: prefix":   {"acs:x", "v"},
		"key aliyun prefix": {"aliyunx", "v"},
		"key with URL":      {"see-http://x", "v"},
		"value acs: prefix": {"k", "acs:v"},
		"value with URL":    {"k", "https://example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			err := e.sub(t).call("CreateContainerGroup", createParams("bad-tag", map[string]string{"Tag.1.Key": tag[0], "Tag.1.Value": tag[1]}), nil)
			wantCode(t, err, CodeInvalidParameter, http.StatusBadRequest)
		})
	}
	many := map[string]string{}
	for i := 1; i <= 21; i++ {
		n := strings.Repeat("x", i)
		many["Tag."+strconv.Itoa(i)+".Key"], many["Tag."+strconv.Itoa(i)+".Value"] = "k"+n, n
	}
	err := e.call("CreateContainerGroup", createParams("too-many", many), nil)
	wantCode(t, err, CodeInvalidParameter, http.StatusBadRequest)
	if !strings.Contains(err.Error(), "at most 20 tags") {
		t.Errorf("error %v does not name the limit", err)
	}
	delete(many, "Tag.21.Key")
	delete(many, "Tag.21.Value")
	id := e.create("twenty", many)
	if g := e.describe(id); len(g.Tags) != 20 {
		t.Errorf("group has %d tags, want 20", len(g.Tags))
	}
	_ = e.create("long-value", map[string]string{"Tag.1.Key": strings.Repeat("k", 64), "Tag.1.Value": strings.Repeat("v", 128)})
}
