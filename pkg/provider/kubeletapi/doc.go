// Package kubeletapi serves the kubelet API of a virtual node from the ECI
// API: `kubectl logs` (DescribeContainerLog, followed by polling within
// the account's quota), `kubectl exec` (ExecContainerCommand's WebSocket),
// `kubectl attach` without stdin (the log, followed), /stats/summary and
// /metrics/resource (DescribeMultiContainerGroupMetric, cached). Port
// forwarding is refused: the node has no network path into a group.
//
// It reads the node's pods and their groups through Pods, which the
// provider implements with its pod table.
package kubeletapi
