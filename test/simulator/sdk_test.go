package simulator

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/responses"
)

// TestSDKCreateAndDescribe proves that the unmodified SDK core client can
// create a group with a rich parameter set and read every field back.
func TestSDKCreateAndDescribe(t *testing.T) {
	e := newEnv(t, nil)
	params := createParams("web-1", map[string]string{
		"RestartPolicy":                      "OnFailure",
		"Cpu":                                "2.000000",
		"Memory":                             "4.000000",
		"ClientToken":                        "tok-1",
		"Tag.1.Key":                          "PodName",
		"Tag.1.Value":                        "web-1",
		"Tag.2.Key":                          "PodNamespace",
		"Tag.2.Value":                        "default",
		"Container.1.Cpu":                    "1.000000",
		"Container.1.Memory":                 "2.000000",
		"Container.1.WorkingDir":             "/srv",
		"Container.1.ImagePullPolicy":        "IfNotPresent",
		"Container.1.Command.1":              "nginx",
		"Container.1.Arg.1":                  "-g",
		"Container.1.Arg.2":                  "daemon off;",
		"Container.1.Port.1.Port":            "80",
		"Container.1.Port.1.Protocol":        "TCP",
		"Container.1.EnvironmentVar.1.Key":   "MODE",
		"Container.1.EnvironmentVar.1.Value": "prod",
		"Container.1.EnvironmentVar.2.Key":   "POD_IP",
		"Container.1.EnvironmentVar.2.FieldRef.FieldPath":      "status.podIP",
		"Container.1.VolumeMount.1.Name":                       "cfg",
		"Container.1.VolumeMount.1.MountPath":                  "/etc/cfg",
		"Container.1.VolumeMount.1.ReadOnly":                   "true",
		"Container.1.ReadinessProbe.HttpGet.Path":              "/healthz",
		"Container.1.ReadinessProbe.HttpGet.Port":              "80",
		"Container.1.ReadinessProbe.PeriodSeconds":             "5",
		"Container.1.SecurityContext.RunAsUser":                "1000",
		"Container.1.SecurityContext.Capability.Add.1":         "NET_ADMIN",
		"Container.1.Tty":                                      "true",
		"InitContainer.1.Name":                                 "init",
		"InitContainer.1.Image":                                "busybox",
		"InitContainer.1.Command.1":                            "sh",
		"InitContainer.1.Command.2":                            "-c",
		"InitContainer.1.Command.3":                            "echo init done",
		"Volume.1.Name":                                        "cfg",
		"Volume.1.Type":                                        "ConfigFileVolume",
		"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path":    "app.conf",
		"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content": "a2V5PXZhbHVl",
		"Volume.2.Name":                                        "scratch",
		"Volume.2.Type":                                        "EmptyDirVolume",
		"Volume.2.EmptyDirVolume.Medium":                       "Memory",
		"DnsConfig.NameServer.1":                               "10.0.0.10",
		"DnsConfig.Search.1":                                   "default.svc.cluster.local",
		"DnsConfig.Option.1.Name":                              "ndots",
		"DnsConfig.Option.1.Value":                             "5",
		"HostAliase.1.Ip":                                      "10.1.1.1",
		"HostAliase.1.Hostname.1":                              "db.local",
		"ImageRegistryCredential.1.Server":                     "registry.example.com",
		"ImageRegistryCredential.1.UserName":                   "u",
		"ImageRegistryCredential.1.Password":                   "secret",
		"SecurityContext.Sysctl.1.Name":                        "net.ipv4.ping_group_range",
		"SecurityContext.Sysctl.1.Value":                       "0 1024",
		"HostSecurityContext.Sysctl.1.Name":                    "net.core.somaxconn",
		"HostSecurityContext.Sysctl.1.Value":                   "1024",
		"Container.1.SecurityContextRunAsGroup":                "3000",
		"Container.1.SecurityContextRunAsNonRoot":              "true",
		"Container.1.SecurityContextPrivileged":                "true",
		"SpotStrategy":                                         "SpotAsPriceGo",
		"ActiveDeadlineSeconds":                                "3600",
	})
	var created struct{ RequestId, ContainerGroupId string }
	e.mustCall("CreateContainerGroup", params, &created)
	if created.RequestId == "" || !strings.HasPrefix(created.ContainerGroupId, "eci-") {
		t.Fatalf("bad create response %+v", created)
	}

	g := e.describe(created.ContainerGroupId)
	checks := []struct{ name, got, want string }{
		{"Status", g.Status, StatusRunning},
		{"ContainerGroupName", g.ContainerGroupName, "web-1"},
		{"RegionId", g.RegionId, DefaultRegionID},
		{"ZoneId", g.ZoneId, "cn-hangzhou-h"},
		{"VSwitchId", g.VSwitchId, "vsw-sim-h"},
		{"VpcId", g.VpcId, DefaultVpcID},
		{"SecurityGroupId", g.SecurityGroupId, DefaultSecurityGroupID},
		{"RestartPolicy", g.RestartPolicy, "OnFailure"},
		{"SpotStrategy", g.SpotStrategy, "SpotAsPriceGo"},
		{"CreationTime", g.CreationTime, "2024-05-06T07:08:09Z"},
		{"Image", g.Containers[0].Image, "nginx:1.25"},
		{"WorkingDir", g.Containers[0].WorkingDir, "/srv"},
		{"Arg", strings.Join(g.Containers[0].Args, "|"), "-g|daemon off;"},
		{"FieldRef", g.Containers[0].EnvironmentVars[1].ValueFrom.FieldRef.FieldPath, "status.podIP"},
		{"Mount", g.Containers[0].VolumeMounts[0].MountPath, "/etc/cfg"},
		{"Probe", g.Containers[0].ReadinessProbe.HttpGet.Path, "/healthz"},
		{"Cap", g.Containers[0].SecurityContext.Capability.Adds[0], "NET_ADMIN"},
		{"InitState", g.InitContainers[0].CurrentState.State, StateTerminated},
		{"MainState", g.Containers[0].CurrentState.State, StateRunning},
		{"Volume", g.Volumes[0].ConfigFileVolumeConfigFileToPaths[0].Content, "a2V5PXZhbHVl"},
		{"Medium", g.Volumes[1].EmptyDirVolumeMedium, "Memory"},
		{"Dns", g.DnsConfig.Options[0].Value, "5"},
		{"HostAlias", g.HostAliases[0].Hostnames[0], "db.local"},
		{"Sysctl", g.EciSecurityContext.Sysctls[0].Value, "0 1024"},
		{"RunAsUser", fmt.Sprint(g.Containers[0].SecurityContext.RunAsUser), "1000"},
		{"Tag", g.Tags[0].Value, "web-1"},
	}
	// What the published Describe answer has no field for is kept, and
	// shown by the Go API only.
	stored, _ := e.sim.Group(created.ContainerGroupId)
	sc := stored.Containers[0].SecurityContext
	checks = append(checks, []struct{ name, got, want string }{
		{"HostSysctl", fmt.Sprint(stored.EciSecurityContext.HostSysctls), "[{net.core.somaxconn 1024}]"},
		{"RunAsGroup", fmt.Sprint(*sc.RunAsGroup), "3000"},
		{"RunAsNonRoot", fmt.Sprint(sc.RunAsNonRoot), "true"},
		{"Privileged", fmt.Sprint(sc.Privileged), "true"},
	}...)
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if g.Cpu != 2 || g.Memory != 4 || !strings.HasPrefix(g.IntranetIp, "192.168.1.") || !g.Containers[0].Ready {
		t.Errorf("cpu/mem/ip/ready = %v/%v/%v/%v", g.Cpu, g.Memory, g.IntranetIp, g.Containers[0].Ready)
	}
	if !g.Containers[0].Tty || g.Containers[0].Ports[0].Port != 80 {
		t.Errorf("container flags lost: %+v", g.Containers[0])
	}
	var reasons []string
	for _, ev := range g.Events {
		reasons = append(reasons, ev.Reason)
	}
	if got := strings.Join(reasons, ","); !strings.Contains(got, "Pulling") || !strings.Contains(got, "Started") {
		t.Errorf("events = %s", got)
	}
	// Events come only when asked for (WithEvent).
	var plain describeOut
	e.mustCall("DescribeContainerGroups", map[string]string{"ContainerGroupIds": `["` + created.ContainerGroupId + `"]`}, &plain)
	if len(plain.ContainerGroups) != 1 || len(plain.ContainerGroups[0].Events) != 0 {
		t.Errorf("without WithEvent: %d groups, events %+v; want the group without events", len(plain.ContainerGroups), plain.ContainerGroups)
	}
}

// TestSDKErrors checks that failures surface as *errors.ServerError with
// the right code and HTTP status through the real SDK.
func TestSDKErrors(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		client func() error
		code   string
		status int
	}{
		{"unknown group", func() error {
			return e.call("DeleteContainerGroup", map[string]string{"ContainerGroupId": "eci-nope"}, nil)
		}, CodeContainerGroupNotFound, http.StatusNotFound},
		{"tampered secret", func() error {
			return e.callWith(e.newClient(DefaultAccessKeyID, "wrong-secret"), "DescribeContainerGroups", nil, nil)
		}, CodeSignatureDoesNotMatch, http.StatusBadRequest},
		{"unknown access key", func() error {
			return e.callWith(e.newClient("nobody", DefaultAccessKeySecret), "DescribeContainerGroups", nil, nil)
		}, CodeInvalidAccessKeyID, http.StatusNotFound},
		{"unknown action", func() error {
			return e.call("LaunchRocket", nil, nil)
		}, CodeInvalidAction, http.StatusNotFound},
		{"wrong region", func() error {
			return e.call("DescribeContainerGroups", map[string]string{"RegionId": "cn-beijing"}, nil)
		}, CodeInvalidRegionID, http.StatusNotFound},
		{"missing parameter", func() error {
			return e.call("CreateContainerGroup", createParams("x1", map[string]string{"SecurityGroupId": ""}), nil)
		}, CodeMissingParameter, http.StatusBadRequest},
		{"bad name", func() error {
			return e.call("CreateContainerGroup", createParams("-bad-", nil), nil)
		}, CodeInvalidParameter, http.StatusBadRequest},
		{"unknown vswitch", func() error {
			return e.call("CreateContainerGroup", createParams("x2", map[string]string{"VSwitchId": "vsw-sim-h,vsw-nope"}), nil)
		}, CodeInvalidVSwitchID, http.StatusNotFound},
		{"unknown security group", func() error {
			return e.call("CreateContainerGroup", createParams("x3", map[string]string{"SecurityGroupId": "sg-nope"}), nil)
		}, CodeInvalidSecurityGroupID, http.StatusNotFound},
		{"bad restart policy", func() error {
			return e.call("CreateContainerGroup", createParams("x4", map[string]string{"RestartPolicy": "Sometimes"}), nil)
		}, CodeInvalidParameter, http.StatusBadRequest},
		{"too many ids", func() error {
			ids := `["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u"]`
			return e.call("DescribeContainerGroups", map[string]string{"ContainerGroupIds": ids}, nil)
		}, CodeInvalidParameter, http.StatusBadRequest},
		{"dry run", func() error {
			return e.call("CreateContainerGroup", createParams("x5", map[string]string{"DryRun": "true"}), nil)
		}, CodeDryRunOperation, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := wantCode(t, tc.client(), tc.code, tc.status)
			if se.RequestId() == "" || se.Message() == "" {
				t.Errorf("error without RequestId/Message: %v", se)
			}
		})
	}
	// The message of InvalidParameter names the parameter.
	err := e.call("CreateContainerGroup", createParams("-bad-", nil), nil)
	if se := serverError(t, err); !strings.Contains(se.Message(), "ContainerGroupName") {
		t.Errorf("message %q does not name ContainerGroupName", se.Message())
	}
	// A tampered secret is reported with the SDK's own diagnosis.
	err = e.callWith(e.newClient(DefaultAccessKeyID, "wrong-secret"), "DescribeContainerGroups", nil, nil)
	if se := serverError(t, err); !strings.Contains(se.Recommend(), "InvalidAccessKeySecret") {
		t.Errorf("recommend = %q; the server string to sign should match the SDK's", se.Recommend())
	}
	if len(e.sim.Groups()) != 0 {
		t.Errorf("failed or dry-run creates left groups behind")
	}
}

// TestSDKGetMethod checks GET requests (signed with the GET method).
func TestSDKGetMethod(t *testing.T) {
	e := newEnv(t, nil)
	req := e.request("DescribeContainerGroups", nil)
	req.Method = "GET"
	resp, err := e.client.ProcessCommonRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp.GetHttpContentString(), `"ContainerGroups":[]`) {
		t.Errorf("lists must be JSON arrays: %s", resp.GetHttpContentString())
	}
	var _ *responses.CommonResponse = resp
}

// TestRawProtocol covers protocol details the SDK never exercises.
func TestRawProtocol(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		params map[string]string
		secret string
		status int
		code   string
	}{
		{"ok", map[string]string{"Action": "DescribeContainerGroups"}, DefaultAccessKeySecret, 200, ""},
		{"bad version", map[string]string{"Action": "DescribeContainerGroups", "Version": "2014-05-26"}, DefaultAccessKeySecret, 400, CodeInvalidVersion},
		{"missing action", map[string]string{}, DefaultAccessKeySecret, 400, CodeMissingParameter},
		{"bad secret", map[string]string{"Action": "DescribeContainerGroups"}, "nope", 400, CodeSignatureDoesNotMatch},
		{"stale timestamp", map[string]string{"Action": "DescribeContainerGroups", "Timestamp": "2001-01-01T00:00:00Z"}, DefaultAccessKeySecret, 400, CodeInvalidTimestampExpired},
		{"bad method", map[string]string{"Action": "DescribeContainerGroups", "SignatureMethod": "HMAC-SHA256"}, DefaultAccessKeySecret, 400, CodeUnsupportedSignatureMethod},
		{"missing region", map[string]string{"Action": "DescribeContainerGroups", "RegionId": omit}, DefaultAccessKeySecret, 400, CodeMissingParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.rawCall(http.MethodGet, tc.params, tc.secret)
			if status != tc.status || (tc.code != "" && body["Code"] != tc.code) {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if body["RequestId"] == "" || body["RequestId"] == nil {
				t.Errorf("no RequestId in %v", body)
			}
			if tc.code != "" {
				for _, k := range []string{"HostId", "Code", "Message", "Recommend"} {
					if _, ok := body[k]; !ok {
						t.Errorf("error body lacks %s: %v", k, body)
					}
				}
			}
		})
	}

	// A replayed nonce is rejected.
	params := map[string]string{"Action": "DescribeContainerGroups", "SignatureNonce": "fixed-nonce"}
	if status, _ := e.rawCall(http.MethodPost, params, DefaultAccessKeySecret); status != 200 {
		t.Fatalf("first use of nonce: %d", status)
	}
	if status, body := e.rawCall(http.MethodPost, params, DefaultAccessKeySecret); status != 400 || body["Code"] != CodeSignatureNonceUsed {
		t.Fatalf("replayed nonce: %d %v", status, body)
	}
}

// TestSignatureVector pins the string-to-sign format against the SDK's
// documented encoding rules.
func TestSignatureVector(t *testing.T) {
	params := map[string]string{"Action": "Describe", "Name": "a b*c~d/e", "Empty": ""}
	got := StringToSign("POST", params)
	want := "POST&%2F&Action%3DDescribe%26Empty%3D%26Name%3Da%2520b%252Ac~d%252Fe"
	if got != want {
		t.Fatalf("StringToSign = %s\nwant            %s", got, want)
	}
	if sig := ComputeSignature(got, "secret"); len(sig) != 28 {
		t.Fatalf("signature %q is not base64 of 20 bytes", sig)
	}
}
