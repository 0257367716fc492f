package simulator

import (
	"net/http"
	"strings"
	"testing"

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
