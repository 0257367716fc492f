package eci

import "context"

// MetricTypeSummary is the only MetricType DescribeMultiContainerGroupMetric
// documents: the latest sample of each group.
const MetricTypeSummary = "summary"

// DescribeMultiContainerGroupMetricRequest asks for the latest sample of up
// to 20 groups (quota 2,000 calls/min).
type DescribeMultiContainerGroupMetricRequest struct {
	ContainerGroupIds []string `eci:"-"`
	// MetricType defaults to "summary".
	MetricType string `eci:"MetricType"`
}

// DescribeMultiContainerGroupMetricResponse holds one MonitorData per known
// group; groups that are not running have no Records.
type DescribeMultiContainerGroupMetricResponse struct {
	RequestId    string        `json:"RequestId"`
	MonitorDatas []MonitorData `json:"MonitorDatas"`
}

// MonitorData is the samples of one group.
type MonitorData struct {
	ContainerGroupId string         `json:"ContainerGroupId"`
	Records          []MetricRecord `json:"Records"`
}

// MetricRecord is one sample of a group. Timestamp is RFC 3339.
type MetricRecord struct {
	Timestamp  string            `json:"Timestamp"`
	CPU        CPUStats          `json:"CPU"`
	Memory     MemoryStats       `json:"Memory"`
	Network    NetworkStats      `json:"Network"`
	Containers []ContainerMetric `json:"Containers"`
}

// ContainerMetric is the per-container part of a MetricRecord.
type ContainerMetric struct {
	Name   string      `json:"Name"`
	CPU    CPUStats    `json:"CPU"`
	Memory MemoryStats `json:"Memory"`
}

// CPUStats is CPU usage: UsageNanoCores is the current rate,
// UsageCoreNanoSeconds the cumulative time; Limit is in millicores. The
// figures are signed as the cloud sends them; callers clamp at zero.
type CPUStats struct {
	UsageNanoCores       int64 `json:"UsageNanoCores"`
	UsageCoreNanoSeconds int64 `json:"UsageCoreNanoSeconds"`
	Load                 int64 `json:"Load"`
	Limit                int64 `json:"Limit"`
}

// MemoryStats is memory usage in bytes.
type MemoryStats struct {
	AvailableBytes int64 `json:"AvailableBytes"`
	UsageBytes     int64 `json:"UsageBytes"`
	Cache          int64 `json:"Cache"`
	WorkingSet     int64 `json:"WorkingSet"`
	Rss            int64 `json:"Rss"`
}

// NetworkStats lists the group's interfaces.
type NetworkStats struct {
	Interfaces []NetworkInterface `json:"Interfaces"`
}

// NetworkInterface is the cumulative traffic of one interface.
type NetworkInterface struct {
	Name     string `json:"Name"`
	RxBytes  int64  `json:"RxBytes"`
	TxBytes  int64  `json:"TxBytes"`
	RxErrors int64  `json:"RxErrors"`
	TxErrors int64  `json:"TxErrors"`
}

// DescribeMultiContainerGroupMetric returns the latest sample of each
// listed group. Unknown ids are left out of the answer, not an error.
func (c *Client) DescribeMultiContainerGroupMetric(ctx context.Context, req *DescribeMultiContainerGroupMetricRequest) (*DescribeMultiContainerGroupMetricResponse, error) {
	const action = "DescribeMultiContainerGroupMetric"
	if len(req.ContainerGroupIds) == 0 {
		return nil, &Error{Action: action, Class: ClassInvalid, Message: "ContainerGroupIds: at least one id is required"}
	}
	q := *req
	if q.MetricType == "" {
		q.MetricType = MetricTypeSummary
	}
	params, err := paramsWithIDs(action, &q, q.ContainerGroupIds)
	if err != nil {
		return nil, err
	}
	out := &DescribeMultiContainerGroupMetricResponse{}
	if err := c.call(ctx, action, params, out); err != nil {
		return nil, err
	}
	return out, nil
}
