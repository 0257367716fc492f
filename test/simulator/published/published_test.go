package published

import (
	"strings"
	"testing"
)

func TestTablesParse(t *testing.T) {
	ops, err := Operations()
	if err != nil {
		t.Fatal(err)
	}
	// The counts of tables/README.md.
	want := map[string][2]int{
		"CreateContainerGroup": {194, 2}, "UpdateContainerGroup": {127, 1},
		"DescribeContainerGroups": {18, 206}, "DescribeContainerGroupStatus": {10, 59},
		"DescribeContainerLog": {13, 3}, "ExecContainerCommand": {11, 4},
	}
	if len(ops) != 18 {
		t.Errorf("parsed %d operations, tables/README.md lists 18", len(ops))
	}
	for name, n := range want {
		op := ops[name]
		if op == nil {
			t.Errorf("operation %s missing", name)
			continue
		}
		if len(op.Params) != n[0] || len(op.Fields) != n[1] {
			t.Errorf("%s: %d params, %d fields; tables/README.md says %d and %d", name, len(op.Params), len(op.Fields), n[0], n[1])
		}
	}
	status, _ := Lookup("DescribeContainerGroupStatus")
	if f, ok := status.Field("Data[].Annotations"); !ok || f.Type != "string" {
		t.Errorf("Data[].Annotations = %+v, %v; want a string", f, ok)
	}
	if _, ok := status.Field("Data[].PodStatus.ContainerStatuses[].State.Running.StartedAt"); !ok {
		t.Error("the StartedAtstartedAt artefact is not found under its wire name StartedAt")
	}
}

func TestPatternMatchesIndexes(t *testing.T) {
	create, ok := Lookup("CreateContainerGroup")
	if !ok {
		t.Fatal("CreateContainerGroup not published")
	}
	for name, want := range map[string]string{
		"Container.3.EnvironmentVar.12.Key":      "Container.N.EnvironmentVar.N.Key",
		"HostAliase.1.Hostname.2":                "HostAliase.N.Hostname.N",
		"Volume.10.ConfigFileVolume.DefaultMode": "Volume.N.ConfigFileVolume.DefaultMode",
		"ContainerGroupName":                     "ContainerGroupName",
	} {
		if got := Pattern(name); got != want {
			t.Errorf("Pattern(%q) = %q, want %q", name, got, want)
		}
		if _, ok := create.Param(name); !ok {
			t.Errorf("%s is published for CreateContainerGroup but Param does not match it", name)
		}
	}
	for _, name := range []string{"InitContainer.1.ReadinessProbe.PeriodSeconds", "Container.1.Foo", "Container.x.Name"} {
		if _, ok := create.Param(name); ok {
			t.Errorf("%s matched a published CreateContainerGroup parameter", name)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	status, _ := Lookup("DescribeContainerGroupStatus")
	good := `{"RequestId":"r","TotalCount":1,"NextToken":"","Data":[{"ContainerGroupId":"eci-1","Annotations":"{\"a\":\"b\"}",
		"PodStatus":{"Phase":"Running","PodIps":[{"Ip":"10.0.0.1"}],"ContainerStatuses":[{"Name":"c","RestartCount":2,
		"State":{"Running":{"StartedAt":"2025-01-01T00:00:00Z"}}}]}}]}`
	if got := status.CheckJSON([]byte(good)); len(got) != 0 {
		t.Errorf("published answer refused: %v", got)
	}
	bad := `{"RequestId":"r","TotalCount":1.5,"Extra":1,"Data":[{"Annotations":{"a":"b"},"PodStatus":{"PodIps":"x"}}]}`
	got := strings.Join(status.CheckJSON([]byte(bad)), "\n")
	for _, want := range []string{"TotalCount is 1.5", "Extra is not a published", "Data[].Annotations is an object, published as string", "PodIps is a single value"} {
		if !strings.Contains(got, want) {
			t.Errorf("CheckJSON missed %q; got:\n%s", want, got)
		}
	}
}
