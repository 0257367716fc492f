package eci

import (
	"context"
	"encoding/json"
)

// ActionUse is one ECI action the controller calls and what for.
type ActionUse struct {
	Action string
	// Use says what the action does for the controller (and what stops
	// without it).
	Use string
	// Without says what stops working when the RAM policy refuses it (the
	// Node's ContainerInstancePermissions condition names it).
	Without string
	// Required: the controller cannot work fully without it. The one
	// optional action, DescribeContainerGroupStatus, only saves calls:
	// without it pod status is polled with DescribeContainerGroups.
	Required bool
}

// ControllerActions are the ECI actions the controller (ack-virtual-node-
// controller and `virtual-node drain`) calls: every one is in the product
// documentation's custom RAM policy except DescribeContainerGroupStatus,
// which is optional.
var ControllerActions = []ActionUse{
	{"CreateContainerGroup", "create a pod's container group", "new pods stay Pending", true},
	{"DeleteContainerGroup", "delete a pod's container group (and orphans, and on drain)", "deleted pods' container groups keep running and billing", true},
	{"DescribeContainerGroups", "pod status, adoption at start-up, orphan clean-up, drain", "pod status, adoption and orphan clean-up", true},
	{"UpdateContainerGroup", "renew projected service-account tokens in running pods", "service-account token renewal", true},
	{"DescribeContainerLog", "kubectl logs", "kubectl logs", true},
	{"ExecContainerCommand", "kubectl exec and attach", "kubectl exec", true},
	{"DescribeMultiContainerGroupMetric", "kubectl top, /stats/summary and /metrics/resource", "kubectl top and /stats/summary", true},
	{"CreateImageCache", "build the cloud image cache of an ImageCache object", "ImageCache objects stay Pending", true},
	{"DescribeImageCaches", "ImageCache status, adoption of caches after a restart", "ImageCache status and adoption", true},
	{"DeleteImageCache", "delete the cloud image cache of a deleted ImageCache object", "deleted ImageCache objects keep their cloud caches (and their snapshot billing)", true},
	{"DescribeContainerGroupStatus", "cheaper status polling (optional: without it status is polled with DescribeContainerGroups)", "pod status", false},
}

// WithoutAction is what stops working when the RAM policy refuses action
// (ControllerActions' Without), or "" for an action the controller does
// not use.
func WithoutAction(action string) string {
	for _, a := range ControllerActions {
		if a.Action == action {
			return a.Without
		}
	}
	return ""
}

// MinimalPolicy is the RAM policy document that allows every action the
// controller needs, the optional one included, indented for people.
func MinimalPolicy() string {
	actions := make([]string, len(ControllerActions))
	for i, a := range ControllerActions {
		actions[i] = "eci:" + a.Action
	}
	doc := map[string]any{"Version": "1", "Statement": []map[string]any{{
		"Effect": "Allow", "Action": actions, "Resource": []string{"*"},
	}}}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return string(b)
}

// probeGroupID names no container group: the probes that take an id
// describe, update or delete it, which the cloud answers NotFound when
// the action is allowed and Forbidden.RAM when it is not, and which
// changes nothing either way.
const probeGroupID = "eci-probe-permission-only"

// ProbeParams are harmless calls of every action in ControllerActions: a
// dry-run create, a listing of one group, and calls on a group id that
// does not exist. Only published parameters.
var ProbeParams = map[string]map[string]string{
	"CreateContainerGroup":              {"DryRun": "true"},
	"DeleteContainerGroup":              {"ContainerGroupId": probeGroupID},
	"DescribeContainerGroups":           {"Limit": "1"},
	"DescribeContainerGroupStatus":      {"Limit": "1"},
	"UpdateContainerGroup":              {"ContainerGroupId": probeGroupID},
	"DescribeContainerLog":              {"ContainerGroupId": probeGroupID, "ContainerName": "probe"},
	"ExecContainerCommand":              {"ContainerGroupId": probeGroupID, "ContainerName": "probe", "Command": `["true"]`},
	"DescribeMultiContainerGroupMetric": {"ContainerGroupIds": `["` + probeGroupID + `"]`},
	// Without the required ImageCacheName the cloud refuses the create
	// (MissingParameter) once the RAM policy allowed it: nothing is built.
	"CreateImageCache":    {"Image.1": "probe"},
	"DescribeImageCaches": {"Limit": "1"},
	"DeleteImageCache":    {"ImageCacheId": "imc-probe-permission-only"},
}

// Probe sends the harmless call of action (ProbeParams) once, without
// retry, and returns the cloud's error: PermissionDenied tells a refused
// action from an allowed one (any other answer). Health sees the outcome,
// so an action the policy allows again leaves Health.Refused.
func (c *Client) Probe(ctx context.Context, action string) error {
	params, ok := ProbeParams[action]
	if !ok {
		return &Error{Action: action, Class: ClassInvalid, Message: "no harmless probe is known for this action"}
	}
	_, err := c.once(ctx, action, params)
	c.health.observe(action, err)
	if err != nil {
		return err
	}
	return nil
}
