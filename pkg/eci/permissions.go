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
	{"CreateContainerGroup", "create a pod's container group", true},
	{"DeleteContainerGroup", "delete a pod's container group (and orphans, and on drain)", true},
	{"DescribeContainerGroups", "pod status, adoption at start-up, orphan clean-up, drain", true},
	{"UpdateContainerGroup", "renew projected service-account tokens in running pods", true},
	{"DescribeContainerLog", "kubectl logs", true},
	{"ExecContainerCommand", "kubectl exec and attach", true},
	{"DescribeMultiContainerGroupMetric", "kubectl top, /stats/summary and /metrics/resource", true},
	{"DescribeContainerGroupStatus", "cheaper status polling (optional: without it status is polled with DescribeContainerGroups)", false},
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

// Probe sends action with params once (no retry) and returns the cloud's
// error, for diagnostics (`vnodectl doctor`) that tell an allowed action
// (any answer but Forbidden.RAM) from a refused one with harmless calls.
func (c *Client) Probe(ctx context.Context, action string, params map[string]string) error {
	_, err := c.once(ctx, action, params)
	if err != nil {
		return err
	}
	return nil
}
