package kubeletapi

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
)

// Cloud is the part of the ECI API the kubelet API uses.
type Cloud interface {
	DescribeContainerGroups(ctx context.Context, req *eci.DescribeContainerGroupsRequest) (*eci.DescribeContainerGroupsResponse, error)
	DescribeContainerGroupStatus(ctx context.Context, req *eci.DescribeContainerGroupStatusRequest) (*eci.DescribeContainerGroupStatusResponse, error)
	DescribeContainerLog(ctx context.Context, req *eci.DescribeContainerLogRequest) (*eci.DescribeContainerLogResponse, error)
	ExecContainerCommand(ctx context.Context, req *eci.ExecContainerCommandRequest) (*eci.ExecContainerCommandResponse, error)
	DescribeMultiContainerGroupMetric(ctx context.Context, req *eci.DescribeMultiContainerGroupMetricRequest) (*eci.DescribeMultiContainerGroupMetricResponse, error)
}

// Pods is the provider's table of the node's pods and their groups.
type Pods interface {
	// GroupOf returns the container group of pod namespace/name and a
	// copy of the pod; an errdefs NotFound error when the pod is unknown
	// or has no group yet.
	GroupOf(namespace, name string) (groupID string, pod *corev1.Pod, err error)
	// EachPod calls f for every pod with its group id ("" while it has
	// none) and when its group was created. f must neither keep nor
	// change pod, and must not call back into Pods.
	EachPod(f func(pod *corev1.Pod, groupID string, created time.Time))
}

// API serves the kubelet API of one virtual node.
type API struct {
	nodeName string
	cloud    Cloud
	pods     Pods
	// logPolls is shared by every follower of this node: together they
	// stay under DescribeContainerLog's quota (500 calls/min per account),
	// each polling more slowly when many follow at once.
	logPolls *rate.Limiter
	metrics  metricsCache
	// statusRefusedAt is when the RAM policy last refused
	// DescribeContainerGroupStatus (unix ns; 0: never), see runStateOf.
	statusRefusedAt atomic.Int64
}

// statusRetryAfter is how long runStateOf goes without the status call
// after the RAM policy refused it.
const statusRetryAfter = 10 * time.Minute

// followerCallsPerMinute is the part of DescribeContainerLog's 500/min
// that followers may use together; the rest stays free for one-shot
// `kubectl logs` calls.
const followerCallsPerMinute = 400

// New returns the kubelet API of node nodeName, whose pods are in pods.
func New(nodeName string, cloud Cloud, pods Pods) *API {
	return &API{nodeName: nodeName, cloud: cloud, pods: pods,
		logPolls: rate.NewLimiter(rate.Limit(followerCallsPerMinute/60.0), 10)}
}

// apiError converts a cloud error into what the kubelet API handlers
// understand: vk's errdefs follow Cause(), not Unwrap(), so the class has
// to be turned into an errdefs error here, at the boundary.
func apiError(err error) error {
	switch eci.ClassOf(err) {
	case eci.ClassNotFound:
		return errdefs.AsNotFound(err)
	case eci.ClassInvalid:
		return errdefs.AsInvalidInput(err)
	}
	return err
}

// isGone reports whether err says the group (or pod) no longer exists.
func isGone(err error) bool { return eci.IsNotFound(err) || errdefs.IsNotFound(err) }

// hidden refuses the kube-proxy container the provider runs in groups
// (translate.KubeProxyContainer): it is not the pod's, so logs, exec and
// attach answer as for any container the pod does not have.
func hidden(namespace, podName, container string) error {
	if container == translate.KubeProxyContainer {
		return errdefs.NotFoundf("container %q not found in pod %s/%s", container, namespace, podName)
	}
	return nil
}
