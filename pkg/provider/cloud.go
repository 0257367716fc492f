package provider

import (
	"context"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
)

// Cloud is the slice of the ECI OpenAPI the provider uses. The provider owns
// this interface; *eci.Client implements it against the real endpoint or the
// simulator, and unit tests may implement it themselves.
type Cloud interface {
	CreateContainerGroup(ctx context.Context, req *eci.CreateContainerGroupRequest) (*eci.CreateContainerGroupResponse, error)
	DescribeContainerGroups(ctx context.Context, req *eci.DescribeContainerGroupsRequest) (*eci.DescribeContainerGroupsResponse, error)
	DescribeContainerGroupStatus(ctx context.Context, req *eci.DescribeContainerGroupStatusRequest) (*eci.DescribeContainerGroupStatusResponse, error)
	DeleteContainerGroup(ctx context.Context, id string) error
	// UpdateContainerGroup refreshes projected token files in place.
	UpdateContainerGroup(ctx context.Context, req *eci.UpdateContainerGroupRequest) error

	// The kubelet API: logs (the current and the previous run), exec and
	// the metrics behind /stats/summary and /metrics/resource.
	DescribeContainerLog(ctx context.Context, req *eci.DescribeContainerLogRequest) (*eci.DescribeContainerLogResponse, error)
	ExecContainerCommand(ctx context.Context, req *eci.ExecContainerCommandRequest) (*eci.ExecContainerCommandResponse, error)
	DescribeMultiContainerGroupMetric(ctx context.Context, req *eci.DescribeMultiContainerGroupMetricRequest) (*eci.DescribeMultiContainerGroupMetricResponse, error)
}

var _ Cloud = (*eci.Client)(nil)
