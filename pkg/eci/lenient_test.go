package eci_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
)

// answer serves body as the answer of every call.
func answer(t *testing.T, body string) *eci.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	cred, err := eci.StaticCredential("id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	c, err := eci.NewClient(eci.Config{RegionId: "cn-hangzhou", Endpoint: srv.URL, Credential: cred, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The published Data[].Annotations is a JSON-encoded string; a map or a
// number in its place, or a wrong type in another field, must not fail the
// page: only that field is left empty.
func TestStatusDecodesDefensively(t *testing.T) {
	c := answer(t, `{"RequestId":"r","TotalCount":4,"NextToken":"","Data":[
		{"ContainerGroupId":"eci-string","Status":"Running","Annotations":"{\"k8s.aliyun.com/eci-instance-id\":\"eci-string\"}",
		 "PodStatus":{"Phase":"Running","PodIp":"10.0.0.1"}},
		{"ContainerGroupId":"eci-map","Status":"Running","Annotations":{"a":"b","n":3}},
		{"ContainerGroupId":"eci-number","Status":"Pending","Annotations":42},
		{"ContainerGroupId":"eci-odd","Status":7,"Name":"web","PodStatus":{"Phase":"Running"}}]}`)
	resp, err := c.DescribeContainerGroupStatus(context.Background(), &eci.DescribeContainerGroupStatusRequest{})
	if err != nil {
		t.Fatalf("the page failed: %v", err)
	}
	if len(resp.Data) != 4 || resp.TotalCount != 4 {
		t.Fatalf("got %d items (total %d), want 4", len(resp.Data), resp.TotalCount)
	}
	byID := map[string]eci.GroupStatus{}
	for _, g := range resp.Data {
		byID[g.ContainerGroupId] = g
	}
	if g := byID["eci-string"]; g.Annotations["k8s.aliyun.com/eci-instance-id"] != "eci-string" || g.PodStatus.PodIp != "10.0.0.1" || g.Undecoded != nil {
		t.Errorf("string annotations: %+v", g)
	}
	if g := byID["eci-map"]; g.Annotations["a"] != "b" || g.Annotations["n"] != "3" || g.Undecoded != nil {
		t.Errorf("map annotations: %+v", g)
	}
	if g := byID["eci-number"]; len(g.Annotations) != 0 || g.Status != "Pending" || g.Undecoded != nil {
		t.Errorf("number annotations: %+v", g)
	}
	g := byID["eci-odd"]
	if g.Status != "" || g.Name != "web" || g.PodStatus.Phase != "Running" || len(g.Undecoded) != 1 {
		t.Errorf("a number for Status: %+v; want Status empty and named in Undecoded, the rest kept", g)
	}
}
