package eci

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/klog/v2"
)

// Cloud limits the client enforces before sending, so a caller gets a
// clear error instead of a server-side InvalidParameter.
const (
	// MaxIDsPerCall is the most ContainerGroupIds one describe call takes.
	MaxIDsPerCall = 20
	// MaxDescribeLimit is the page size cap of DescribeContainerGroups.
	MaxDescribeLimit = 20
	// MaxStatusLimit is the page size cap of DescribeContainerGroupStatus.
	MaxStatusLimit = 200
)

// CreateContainerGroup creates a group. Retries inside the client reuse the
// request's ClientToken, so a lost response never creates a second group.
func (c *Client) CreateContainerGroup(ctx context.Context, req *CreateContainerGroupRequest) (*CreateContainerGroupResponse, error) {
	out := &CreateContainerGroupResponse{}
	if err := c.call(ctx, "CreateContainerGroup", encodeParams(req), out); err != nil {
		return nil, err
	}
	return out, nil
}

// paramsWithIDs encodes a describe request whose ContainerGroupIds travel
// as one JSON array, refusing more ids than the cloud takes per call.
func paramsWithIDs(action string, req any, ids []string) (map[string]string, error) {
	if len(ids) > MaxIDsPerCall {
		return nil, &Error{Action: action, Class: ClassInvalid,
			Message: fmt.Sprintf("ContainerGroupIds: %d ids given, at most %d per call", len(ids), MaxIDsPerCall)}
	}
	params := encodeParams(req)
	if len(ids) > 0 {
		params["ContainerGroupIds"] = jsonList(ids)
	}
	return params, nil
}

// DescribeContainerGroups returns one page of groups.
func (c *Client) DescribeContainerGroups(ctx context.Context, req *DescribeContainerGroupsRequest) (*DescribeContainerGroupsResponse, error) {
	params, err := paramsWithIDs("DescribeContainerGroups", req, req.ContainerGroupIds)
	if err != nil {
		return nil, err
	}
	out := &DescribeContainerGroupsResponse{}
	if err := c.call(ctx, "DescribeContainerGroups", params, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeContainerGroupStatus returns one page of group statuses.
func (c *Client) DescribeContainerGroupStatus(ctx context.Context, req *DescribeContainerGroupStatusRequest) (*DescribeContainerGroupStatusResponse, error) {
	params, err := paramsWithIDs("DescribeContainerGroupStatus", req, req.ContainerGroupIds)
	if err != nil {
		return nil, err
	}
	out := &DescribeContainerGroupStatusResponse{}
	if err := c.call(ctx, "DescribeContainerGroupStatus", params, out); err != nil {
		return nil, err
	}
	for i := range out.Data {
		c.reportUndecoded("DescribeContainerGroupStatus", out.Data[i].ContainerGroupId, out.Data[i].Undecoded)
	}
	return out, nil
}

// DeleteContainerGroup deletes a group. A group that is already gone
// returns an error of ClassNotFound, which callers treat as done.
func (c *Client) DeleteContainerGroup(ctx context.Context, id string) error {
	return c.call(ctx, "DeleteContainerGroup", map[string]string{"ContainerGroupId": id}, nil)
}

// DescribeContainerLog returns the log text of one container.
func (c *Client) DescribeContainerLog(ctx context.Context, req *DescribeContainerLogRequest) (*DescribeContainerLogResponse, error) {
	out := &DescribeContainerLogResponse{}
	if err := c.call(ctx, "DescribeContainerLog", encodeParams(req), out); err != nil {
		return nil, err
	}
	return out, nil
}

// Int returns a pointer to v, for optional integer parameters.
func Int(v int64) *int64 { return &v }

// reportUndecoded logs, once per field and client, the fields of an answer
// that had an unexpected type and were left empty, so a change of the
// cloud's answers is seen without failing the calls that carry them.
func (c *Client) reportUndecoded(action, groupID string, fields []string) {
	for _, f := range fields {
		name, _, _ := strings.Cut(f, " ")
		if _, seen := c.undecoded.LoadOrStore(action+"."+name, true); seen {
			continue
		}
		klog.InfoS("ECI answer field has an unexpected type; it is left empty", "action", action,
			"group", groupID, "field", f)
	}
}
