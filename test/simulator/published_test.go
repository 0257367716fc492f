package simulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/published"
)

// Every action the simulator serves has a published table, so no action
// escapes the parameter check.
func TestServedActionsArePublished(t *testing.T) {
	for action := range operations {
		if _, ok := published.Lookup(action); !ok {
			t.Errorf("the simulator serves %s, which has no published table in test/simulator/published", action)
		}
	}
}

func TestUnpublishedParameterRefused(t *testing.T) {
	e := newEnv(t, nil)
	// Indexed names match the tables' N at any depth, and the common
	// parameters the SDK adds (Signature*, Timestamp, ...) are accepted.
	id := e.create("published", map[string]string{
		"Container.1.EnvironmentVar.12.Key":   "A",
		"Container.1.EnvironmentVar.12.Value": "b",
		"HostAliase.2.Ip":                     "10.0.0.9",
		"HostAliase.2.Hostname.3":             "db",
	})

	for _, tc := range []struct {
		action string
		params map[string]string
		name   string
	}{
		// Published for containers, not for init containers.
		{"CreateContainerGroup", createParams("bad", map[string]string{
			"InitContainer.1.Name": "init", "InitContainer.1.Image": "busybox",
			"InitContainer.1.ReadinessProbe.PeriodSeconds": "5"}), "InitContainer.1.ReadinessProbe.PeriodSeconds"},
		// Published for CreateContainerGroup, not for UpdateContainerGroup.
		{"UpdateContainerGroup", map[string]string{"ContainerGroupId": id,
			"Volume.1.Name": "v", "Volume.1.Type": "ConfigFileVolume",
			"Volume.1.ConfigFileVolume.DefaultMode": "420"}, "Volume.1.ConfigFileVolume.DefaultMode"},
		{"DescribeContainerGroups", map[string]string{"PageSize": "10"}, "PageSize"},
		{"DescribeContainerLog", map[string]string{"ContainerGroupId": id, "ContainerName": "main", "Follow": "true"}, "Follow"},
	} {
		err := e.call(tc.action, tc.params, nil)
		se := wantCode(t, err, CodeUnknownParameter, http.StatusBadRequest)
		if !strings.Contains(se.Message(), `"`+tc.name+`"`) || !strings.Contains(se.Message(), tc.action) {
			t.Errorf("%s: the error names neither %q nor the action: %s", tc.action, tc.name, se.Message())
		}
	}
	// Nothing was created or changed by the refused calls.
	if n := len(e.sim.Groups()); n != 1 {
		t.Errorf("%d groups after refused creates, want 1", n)
	}
}

// rawBody calls action and returns the raw JSON answer.
func (e *testEnv) rawBody(action string, params map[string]string) []byte {
	e.t.Helper()
	resp, err := e.client.ProcessCommonRequest(e.request(action, params))
	if err != nil {
		e.t.Fatalf("%s: %v", action, err)
	}
	return resp.GetHttpContentBytes()
}

// TestResponsesMatchPublishedShapes calls every served action on groups
// that exercise every rendered field (init containers, probes, a
// restarted container, volumes of each kind, events, metrics, image
// caches) and checks each answer, field by field, against the published
// response table: the names (exact case) and the JSON types.
func TestResponsesMatchPublishedShapes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StartDelay = 2 * time.Second })
	params := createParams("shapes", map[string]string{
		"RestartPolicy": "Always", "Cpu": "2.000000", "Memory": "4.000000", "ClientToken": "tok-shapes",
		"Tag.1.Key": TagPodName, "Tag.1.Value": "shapes", "Tag.2.Key": TagPodNamespace, "Tag.2.Value": "default",
		"Tag.3.Key": TagPodUID, "Tag.3.Value": "uid-1",
		"Container.1.Cpu": "1.000000", "Container.1.Memory": "2.000000", "Container.1.Gpu": "0",
		"Container.1.WorkingDir": "/srv", "Container.1.ImagePullPolicy": "IfNotPresent",
		"Container.1.Command.1": "sh", "Container.1.Command.2": "-c", "Container.1.Arg.1": "echo up; sleep 3; exit 2",
		"Container.1.Port.1.Port": "80", "Container.1.Port.1.Protocol": "TCP",
		"Container.1.EnvironmentVar.1.Key": "MODE", "Container.1.EnvironmentVar.1.Value": "prod",
		"Container.1.EnvironmentVar.2.Key": "POD_IP", "Container.1.EnvironmentVar.2.FieldRef.FieldPath": "status.podIP",
		"Container.1.VolumeMount.1.Name": "cfg", "Container.1.VolumeMount.1.MountPath": "/etc/cfg",
		"Container.1.VolumeMount.1.ReadOnly": "true", "Container.1.VolumeMount.1.SubPath": "app.conf",
		"Container.1.VolumeMount.1.MountPropagation": "None",
		"Container.1.ReadinessProbe.HttpGet.Path":    "/healthz", "Container.1.ReadinessProbe.HttpGet.Port": "80",
		"Container.1.ReadinessProbe.HttpGet.Scheme": "HTTP", "Container.1.ReadinessProbe.PeriodSeconds": "5",
		"Container.1.LivenessProbe.TcpSocket.Port": "80", "Container.1.LivenessProbe.InitialDelaySeconds": "3",
		"Container.2.Name": "side", "Container.2.Image": "busybox",
		"Container.2.LivenessProbe.Exec.Command.1": "true", "Container.2.ReadinessProbe.TcpSocket.Port": "81",
		"Container.1.SecurityContext.RunAsUser": "1000", "Container.1.SecurityContext.ReadOnlyRootFilesystem": "true",
		"Container.1.SecurityContext.Capability.Add.1": "NET_ADMIN",
		"Container.1.Stdin":                            "true", "Container.1.StdinOnce": "true", "Container.1.Tty": "true",
		"InitContainer.1.Name": "init", "InitContainer.1.Image": "busybox",
		"InitContainer.1.Command.1": "sh", "InitContainer.1.Command.2": "-c", "InitContainer.1.Arg.1": "echo init",
		"InitContainer.1.Port.1.Port": "9000", "InitContainer.1.EnvironmentVar.1.Key": "A",
		"InitContainer.1.EnvironmentVar.1.Value": "b", "InitContainer.1.VolumeMount.1.Name": "scratch",
		"InitContainer.1.VolumeMount.1.MountPath": "/scratch", "InitContainer.1.SecurityContext.RunAsUser": "0",
		"InitContainer.1.SecurityContext.Capability.Add.1": "SYS_TIME",
		"Volume.1.Name": "cfg", "Volume.1.Type": "ConfigFileVolume", "Volume.1.ConfigFileVolume.DefaultMode": "420",
		"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path": "app.conf", "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Mode": "256",
		"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content": "a2V5PXZhbHVl",
		"Volume.2.Name": "scratch", "Volume.2.Type": "EmptyDirVolume", "Volume.2.EmptyDirVolume.Medium": "Memory",
		"Volume.2.EmptyDirVolume.SizeLimit": "1Gi",
		"Volume.3.Name":                     "nfs", "Volume.3.Type": "NFSVolume", "Volume.3.NFSVolume.Server": "nas.example.com",
		"Volume.3.NFSVolume.Path": "/share", "Volume.3.NFSVolume.ReadOnly": "true",
		"Volume.4.Name": "disk", "Volume.4.Type": "DiskVolume", "Volume.4.DiskVolume.DiskId": "d-1",
		"Volume.4.DiskVolume.FsType": "ext4", "Volume.4.DiskVolume.DiskSize": "20",
		"Volume.5.Name": "flex", "Volume.5.Type": "FlexVolume", "Volume.5.FlexVolume.Driver": "alicloud/disk",
		"Volume.5.FlexVolume.FsType": "ext4", "Volume.5.FlexVolume.Options": `{"volumeId":"d-2"}`,
		"Volume.6.Name": "host", "Volume.6.Type": "HostPathVolume", "Volume.6.HostPathVolume.Path": "/var/log",
		"Volume.6.HostPathVolume.Type": "Directory",
		"DnsConfig.NameServer.1":       "10.0.0.10", "DnsConfig.Search.1": "svc.cluster.local",
		"DnsConfig.Option.1.Name": "ndots", "DnsConfig.Option.1.Value": "5",
		"HostAliase.1.Ip": "10.1.1.1", "HostAliase.1.Hostname.1": "db.local",
		"ImageRegistryCredential.1.Server": "registry.example.com", "ImageRegistryCredential.1.UserName": "u",
		"ImageRegistryCredential.1.Password": "p",
		"SecurityContext.Sysctl.1.Name":      "net.ipv4.ping_group_range", "SecurityContext.Sysctl.1.Value": "0 2147483647",
		"SpotStrategy": "SpotWithPriceLimit", "SpotPriceLimit": "0.5", "RamRoleName": "role", "ResourceGroupId": "rg-1",
		"EphemeralStorage": "20", "ComputeCategory.1": "economy", "ActiveDeadlineSeconds": "36000",
		"InstanceType": "ecs.c6.large",
	})
	check := func(action string, body []byte) {
		t.Helper()
		op, ok := published.Lookup(action)
		if !ok {
			t.Fatalf("%s: no published table", action)
		}
		for _, p := range op.CheckJSON(body) {
			t.Error(p)
		}
	}
	body := e.rawBody("CreateContainerGroup", params)
	check("CreateContainerGroup", body)
	var created struct{ ContainerGroupId string }
	if err := json.Unmarshal(body, &created); err != nil || created.ContainerGroupId == "" {
		t.Fatalf("create: %s", body)
	}
	id := created.ContainerGroupId
	e.create("pulling", map[string]string{"Container.1.Image": "example.com/pull-fail:1"})
	e.clock.Advance(10 * time.Second) // main exited once and restarted: a previous state
	ids := `["` + id + `"]`

	check("DescribeContainerGroups", e.rawBody("DescribeContainerGroups", map[string]string{"WithEvent": "true"}))
	check("DescribeContainerGroupStatus", e.rawBody("DescribeContainerGroupStatus", map[string]string{"ContainerGroupIds": ids}))
	check("DescribeContainerLog", e.rawBody("DescribeContainerLog", map[string]string{"ContainerGroupId": id,
		"ContainerName": "main", "Timestamps": "true", "LastTime": "true"}))
	check("ExecContainerCommand", e.rawBody("ExecContainerCommand", map[string]string{"ContainerGroupId": id,
		"ContainerName": "side", "Command": `["echo","hi"]`, "Sync": "true"}))
	check("ExecContainerCommand", e.rawBody("ExecContainerCommand", map[string]string{"ContainerGroupId": id,
		"ContainerName": "side", "Command": `["sh"]`, "TTY": "true"}))
	check("DescribeMultiContainerGroupMetric", e.rawBody("DescribeMultiContainerGroupMetric",
		map[string]string{"ContainerGroupIds": ids, "MetricType": "summary"}))
	check("DescribeContainerGroupMetric", e.rawBody("DescribeContainerGroupMetric", map[string]string{"ContainerGroupId": id}))
	check("UpdateContainerGroup", e.rawBody("UpdateContainerGroup", map[string]string{"ContainerGroupId": id,
		"UpdateType": "IncrementalUpdate", "Tag.1.Key": "k", "Tag.1.Value": "v"}))
	check("RestartContainerGroup", e.rawBody("RestartContainerGroup", map[string]string{"ContainerGroupId": id}))

	body = e.rawBody("CreateImageCache", map[string]string{"ImageCacheName": "cache-a", "Image.1": "nginx:1.25",
		"SecurityGroupId": DefaultSecurityGroupID, "VSwitchId": "vsw-sim-h", "RetentionDays": "7"})
	check("CreateImageCache", body)
	var cache struct{ ImageCacheId string }
	_ = json.Unmarshal(body, &cache)
	e.clock.Advance(10 * time.Second)
	check("DescribeImageCaches", e.rawBody("DescribeImageCaches", nil))
	check("DeleteImageCache", e.rawBody("DeleteImageCache", map[string]string{"ImageCacheId": cache.ImageCacheId}))
	check("DeleteContainerGroup", e.rawBody("DeleteContainerGroup", map[string]string{"ContainerGroupId": id}))
}
