package simulator

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StartDelay = 10 * time.Second })
	running := e.create("hot", map[string]string{"Cpu": "2.000000", "Memory": "4.000000"})
	e.clock.Advance(10 * time.Second)
	pending := e.create("cold", nil)
	e.clock.Advance(5 * time.Minute)

	var multi struct {
		RequestId    string
		MonitorDatas []MonitorData
	}
	e.mustCall("DescribeMultiContainerGroupMetric", map[string]string{
		"ContainerGroupIds": fmt.Sprintf(`["%s","%s","eci-unknown"]`, running, pending), "MetricType": "summary"}, &multi)
	if len(multi.MonitorDatas) != 2 {
		t.Fatalf("MonitorDatas %+v", multi.MonitorDatas)
	}
	for _, md := range multi.MonitorDatas {
		switch md.ContainerGroupId {
		case running:
			if len(md.Records) != 1 {
				t.Fatalf("running group records %+v", md.Records)
			}
			r := md.Records[0]
			if r.CPU.Limit != 2000 || r.CPU.UsageNanoCores <= 0 || r.CPU.UsageNanoCores > 2e9 ||
				r.Memory.UsageBytes <= 0 || r.Memory.WorkingSet > 4*gib || len(r.Containers) != 1 || r.Network.Interfaces[0].Name != "eth0" {
				t.Fatalf("record %+v", r)
			}
		case pending:
			if len(md.Records) != 1 || md.Records[0].CPU.Limit != 2000 {
				t.Fatalf("default-sized group record %+v", md.Records)
			}
		}
	}
	// The single-group API samples a window every Period, only while running.
	var single struct {
		ContainerGroupId string
		Records          []MetricRecord
	}
	e.mustCall("DescribeContainerGroupMetric", map[string]string{"ContainerGroupId": running, "Period": "60",
		"StartTime": "2024-05-06T07:08:00Z", "EndTime": "2024-05-06T07:13:00Z"}, &single)
	if len(single.Records) != 5 || single.Records[0].Timestamp != "2024-05-06T07:09:00Z" {
		t.Fatalf("records %d first %+v", len(single.Records), single.Records)
	}
	if single.Records[4].CPU.UsageCoreNanoSeconds <= single.Records[0].CPU.UsageCoreNanoSeconds {
		t.Errorf("cumulative CPU must grow")
	}
	wantCode(t, e.call("DescribeMultiContainerGroupMetric", nil, nil), CodeMissingParameter, http.StatusBadRequest)
	wantCode(t, e.call("DescribeContainerGroupMetric", map[string]string{"ContainerGroupId": running, "Period": "30"}, nil),
		CodeInvalidParameter, http.StatusBadRequest)
}

func TestPendingGroupHasNoMetrics(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StartDelay = time.Minute })
	id := e.create("waiting", nil)
	var multi struct{ MonitorDatas []MonitorData }
	e.mustCall("DescribeMultiContainerGroupMetric", map[string]string{"ContainerGroupIds": `["` + id + `"]`}, &multi)
	if len(multi.MonitorDatas) != 1 || len(multi.MonitorDatas[0].Records) != 0 {
		t.Fatalf("pending group metrics %+v", multi.MonitorDatas)
	}
}

func TestImageCaches(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StartDelay = 10 * time.Second })
	var created struct{ ImageCacheId, ContainerGroupId string }
	e.mustCall("CreateImageCache", map[string]string{"ImageCacheName": "cache-a", "Image.1": "nginx:1.25",
		"Image.2": "redis:7", "SecurityGroupId": DefaultSecurityGroupID, "VSwitchId": "vsw-sim-h", "RetentionDays": "7",
		"Tag.1.Key": "owner", "Tag.1.Value": "uid-1", "Tag.2.Key": "team", "Tag.2.Value": "a"}, &created)
	var bad struct{ ImageCacheId string }
	e.mustCall("CreateImageCache", map[string]string{"ImageCacheName": "cache-b", "Image.1": "x/pull-fail",
		"SecurityGroupId": DefaultSecurityGroupID, "VSwitchId": "vsw-sim-h"}, &bad)

	status := func(id string) (string, ImageCache) {
		var out struct{ ImageCaches []ImageCache }
		e.mustCall("DescribeImageCaches", map[string]string{"ImageCacheId": id}, &out)
		if len(out.ImageCaches) != 1 {
			t.Fatalf("describe %s: %+v", id, out)
		}
		return out.ImageCaches[0].Status, out.ImageCaches[0]
	}
	for _, step := range []struct {
		advance   time.Duration
		good, bad string
	}{
		{0, "Preparing", "Preparing"},
		{10 * time.Second, "Creating", "Failed"},
		{10 * time.Second, "Ready", "Failed"},
	} {
		e.clock.Advance(step.advance)
		if got, _ := status(created.ImageCacheId); got != step.good {
			t.Fatalf("good cache %s, want %s", got, step.good)
		}
		if got, _ := status(bad.ImageCacheId); got != step.bad {
			t.Fatalf("bad cache %s, want %s", got, step.bad)
		}
	}
	_, ic := status(created.ImageCacheId)
	if ic.SnapshotId == "" || ic.Progress != "100%" || len(ic.Images) != 2 || ic.ExpireDateTime != "2024-05-13T07:08:09Z" {
		t.Fatalf("ready cache %+v", ic)
	}
	var byImage struct{ ImageCaches []ImageCache }
	e.mustCall("DescribeImageCaches", map[string]string{"Image": "redis:7"}, &byImage)
	if len(byImage.ImageCaches) != 1 {
		t.Fatalf("by image: %+v", byImage)
	}
	// Tag.N filters: every tag asked for must match.
	for _, tc := range []struct {
		tags map[string]string
		want int
	}{
		{map[string]string{"Tag.1.Key": "owner", "Tag.1.Value": "uid-1"}, 1},
		{map[string]string{"Tag.1.Key": "owner", "Tag.1.Value": "uid-1", "Tag.2.Key": "team", "Tag.2.Value": "a"}, 1},
		{map[string]string{"Tag.1.Key": "owner", "Tag.1.Value": "uid-1", "Tag.2.Key": "team", "Tag.2.Value": "b"}, 0},
		{map[string]string{"Tag.1.Key": "owner", "Tag.1.Value": "uid-2"}, 0},
	} {
		var byTag struct{ ImageCaches []ImageCache }
		e.mustCall("DescribeImageCaches", tc.tags, &byTag)
		if len(byTag.ImageCaches) != tc.want || (tc.want == 1 && byTag.ImageCaches[0].ImageCacheId != created.ImageCacheId) {
			t.Errorf("by tags %v: %d caches %+v, want %d", tc.tags, len(byTag.ImageCaches), byTag.ImageCaches, tc.want)
		}
	}
	e.mustCall("DeleteImageCache", map[string]string{"ImageCacheId": created.ImageCacheId}, nil)
	wantCode(t, e.call("DeleteImageCache", map[string]string{"ImageCacheId": created.ImageCacheId}, nil),
		CodeImageCacheNotFound, http.StatusNotFound)
	wantCode(t, e.call("CreateImageCache", map[string]string{"ImageCacheName": "c", "Image.1": "x",
		"SecurityGroupId": DefaultSecurityGroupID, "VSwitchId": "vsw-sim-h"}, nil), CodeInvalidParameter, http.StatusBadRequest)
}

// TestImageCacheBuildUsesStock: a cache's build instance (2 vCPU, 4 GiB,
// as the vendor documents) takes its zone's stock while it builds, so a
// zone without stock refuses the cache (NoStock naming the zones tried),
// a building cache keeps a group out, and a finished build frees it.
func TestImageCacheBuildUsesStock(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StartDelay = 10 * time.Second })
	cache := func(name, vsw string) error {
		return e.call("CreateImageCache", map[string]string{"ImageCacheName": name, "Image.1": "nginx:1.25",
			"SecurityGroupId": DefaultSecurityGroupID, "VSwitchId": vsw}, nil)
	}
	if err := e.sim.SetStock("cn-hangzhou-h", 0, 0); err != nil {
		t.Fatal(err)
	}
	se := wantCode(t, cache("no-stock", "vsw-sim-h"), CodeNoStock, http.StatusForbidden)
	if !strings.Contains(se.Message(), "cn-hangzhou-h") {
		t.Errorf("NoStock message %q does not name the zone", se.Message())
	}
	// Another vSwitch of the request has stock: the build goes there.
	if err := cache("second-zone", "vsw-sim-h,vsw-sim-i"); err != nil {
		t.Fatalf("cache with a second vSwitch in stock: %v", err)
	}

	if err := e.sim.SetStock("cn-hangzhou-h", 2, 4); err != nil {
		t.Fatal(err)
	}
	if err := cache("building", "vsw-sim-h"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.call("CreateContainerGroup", createParams("while-building", nil), nil), CodeNoStock, http.StatusForbidden)
	wantCode(t, cache("another", "vsw-sim-h"), CodeNoStock, http.StatusForbidden)
	e.clock.Advance(20 * time.Second) // Ready: the build instance is gone
	e.create("after-build", nil)
}
