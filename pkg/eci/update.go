package eci

import "context"

// Update types of UpdateContainerGroup.
const (
	// UpdateIncremental patches the named containers and volumes only.
	UpdateIncremental = "IncrementalUpdate"
)

// UpdateContainerGroupRequest holds the parameters of UpdateContainerGroup
// the provider uses: volumes (refreshed files) and containers (images).
type UpdateContainerGroupRequest struct {
	ContainerGroupId string      `eci:"ContainerGroupId"`
	UpdateType       string      `eci:"UpdateType"`
	ClientToken      string      `eci:"ClientToken"`
	Volumes          []Volume    `eci:"Volume"`
	Containers       []Container `eci:"Container"`
}

// UpdateContainerGroup changes a Pending or Running group.
func (c *Client) UpdateContainerGroup(ctx context.Context, req *UpdateContainerGroupRequest) error {
	return c.call(ctx, "UpdateContainerGroup", encodeParams(req), nil)
}
