package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

type describeOut struct {
	RequestId       string
	NextToken       string
	TotalCount      int
	ContainerGroups []ContainerGroup
}

func TestDescribeFiltersAndPaging(t *testing.T) {
	e := newEnv(t, nil)
	var ids []string
	for i := 0; i < 25; i++ {
		app := "web"
		if i%2 == 1 {
			app = "db"
		}
		tier := "front"
		if i%3 == 0 {
			tier = "back"
		}
		ids = append(ids, e.create(fmt.Sprintf("g-%02d", i), map[string]string{
			"Tag.1.Key": "app", "Tag.1.Value": app, "Tag.2.Key": "tier", "Tag.2.Value": tier}))
	}

	// Paging walks every group exactly once, newest first.
	seen := map[string]bool{}
	token, pages := "", 0
	var order []string
	for {
		var out describeOut
		params := map[string]string{"Limit": "10"}
		if token != "" {
			params["NextToken"] = token
		}
		e.mustCall("DescribeContainerGroups", params, &out)
		pages++
		if out.TotalCount != 25 {
			t.Fatalf("TotalCount %d", out.TotalCount)
		}
		for _, g := range out.ContainerGroups {
			if seen[g.ContainerGroupId] {
				t.Fatalf("group %s returned twice", g.ContainerGroupId)
			}
			seen[g.ContainerGroupId] = true
			order = append(order, g.ContainerGroupName)
		}
		if token = out.NextToken; token == "" {
			break
		}
	}
	if len(seen) != 25 || pages != 3 || order[0] != "g-24" || order[24] != "g-00" {
		t.Fatalf("paging saw %d groups in %d pages, order %v", len(seen), pages, order)
	}

	tests := []struct {
		name   string
		params map[string]string
		want   int
	}{
		{"default limit", map[string]string{}, 20},
		{"by ids", map[string]string{"ContainerGroupIds": fmt.Sprintf(`["%s","%s","eci-unknown"]`, ids[0], ids[7])}, 2},
		{"one tag", map[string]string{"Tag.1.Key": "app", "Tag.1.Value": "web"}, 13},
		{"tags are ANDed", map[string]string{"Tag.1.Key": "app", "Tag.1.Value": "web", "Tag.2.Key": "tier", "Tag.2.Value": "back"}, 5},
		{"tag key only", map[string]string{"Tag.1.Key": "tier"}, 20},
		{"by name", map[string]string{"ContainerGroupName": "g-03"}, 1},
		{"by status", map[string]string{"Status": StatusRunning}, 20},
		{"no such status", map[string]string{"Status": StatusFailed}, 0},
		{"by zone", map[string]string{"ZoneId": "cn-hangzhou-h"}, 20},
		{"other zone", map[string]string{"ZoneId": "cn-hangzhou-i"}, 0},
		{"by vswitch", map[string]string{"VSwitchId": "vsw-sim-h", "Limit": "5"}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.sub(t)
			var out describeOut
			e.mustCall("DescribeContainerGroups", tc.params, &out)
			if len(out.ContainerGroups) != tc.want {
				t.Fatalf("got %d groups, want %d", len(out.ContainerGroups), tc.want)
			}
		})
	}
	for _, bad := range []map[string]string{{"Limit": "21"}, {"Limit": "0"}, {"NextToken": "garbage"}, {"ContainerGroupIds": "eci-1"}} {
		err := e.call("DescribeContainerGroups", bad, nil)
		wantCode(t, err, CodeInvalidParameter, http.StatusBadRequest)
	}
}

type statusOut struct {
	RequestId  string
	NextToken  string
	TotalCount int
	Data       []GroupStatus
}

func TestDescribeContainerGroupStatus(t *testing.T) {
	e := newEnv(t, nil)
	old := e.create("old", map[string]string{"Tag.1.Key": TagPodName, "Tag.1.Value": "old-pod",
		"Tag.2.Key": TagPodNamespace, "Tag.2.Value": "ns1", "Tag.3.Key": TagPodUID, "Tag.3.Value": "uid-1"})
	e.clock.Advance(2 * time.Minute)
	fresh := e.create("fresh", merge(script("Container.1", "exit 3"), map[string]string{"RestartPolicy": "Never"}))

	var out statusOut
	e.mustCall("DescribeContainerGroupStatus", map[string]string{"SinceSecond": "60"}, &out)
	if len(out.Data) != 1 || out.Data[0].ContainerGroupId != fresh {
		t.Fatalf("SinceSecond=60 returned %+v, want only %s", out.Data, fresh)
	}
	st := out.Data[0]
	term := st.PodStatus.ContainerStatuses[0].State.Terminated
	if st.Status != StatusFailed || st.PodStatus.Phase != "Failed" || term == nil || term.ExitCode != 3 {
		t.Fatalf("fresh status %+v", st)
	}

	e.mustCall("DescribeContainerGroupStatus", map[string]string{"SinceSecond": "600"}, &out)
	if out.TotalCount != 2 {
		t.Fatalf("SinceSecond=600 total %d", out.TotalCount)
	}
	// A change to the old group brings it back into a short window.
	if err := e.sim.FailGroup(old, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)
	e.mustCall("DescribeContainerGroupStatus", map[string]string{"SinceSecond": "60"}, &out)
	if len(out.Data) != 2 {
		t.Fatalf("after failing old group, got %d items", len(out.Data))
	}

	e.mustCall("DescribeContainerGroupStatus", map[string]string{"ContainerGroupIds": `["` + old + `"]`}, &out)
	st = out.Data[0]
	if st.Name != "old-pod" || st.Namespace != "ns1" || st.UID != "uid-1" || st.PodStatus.PodIp == "" ||
		len(st.PodStatus.PodIps) != 1 || st.PodStatus.Conditions[0].Type != "ContainerInstanceCreated" {
		t.Fatalf("pod identity/status wrong: %+v", st)
	}
	var ann map[string]string
	if err := json.Unmarshal([]byte(st.Annotations), &ann); err != nil || ann["k8s.aliyun.com/eci-instance-id"] != old {
		t.Errorf("annotations %q (%v): want a JSON-encoded object naming the group", st.Annotations, err)
	}
	// Limit and NextToken page the status list too.
	for i := 0; i < 5; i++ {
		e.create("p-"+strconv.Itoa(i), nil)
	}
	e.mustCall("DescribeContainerGroupStatus", map[string]string{"Limit": "3"}, &out)
	if len(out.Data) != 3 || out.NextToken == "" || out.TotalCount != 7 {
		t.Fatalf("limit 3: %d items, token %q, total %d", len(out.Data), out.NextToken, out.TotalCount)
	}
}

// TestStatusJSONShape spells out the published shape of a status item
// (TestResponsesMatchPublishedShapes checks every field against the
// tables): lowercase condition keys, capitalised container states.
func TestStatusJSONShape(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("shape", nil)
	resp, err := e.client.ProcessCommonRequest(e.request("DescribeContainerGroupStatus",
		map[string]string{"ContainerGroupIds": `["` + id + `"]`}))
	if err != nil {
		t.Fatal(err)
	}
	body := resp.GetHttpContentString()
	for _, want := range []string{`"uuid":`, `"type":"Ready"`, `"status":"True"`, `"lastTransitionTime":`, `"State":{"Running":{"StartedAt":`, `"PodIps":[{"Ip":`, `"Annotations":"{`} {
		if !contains(body, want) {
			t.Errorf("status body lacks %s: %s", want, body)
		}
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
