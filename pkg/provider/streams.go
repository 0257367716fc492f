package provider

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// GetContainerLogs returns what the container printed, through
// DescribeContainerLog.
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	groupID, _, err := p.groupOf(namespace, podName)
	if err != nil {
		return nil, err
	}
	req := &eci.DescribeContainerLogRequest{
		ContainerGroupId: groupID, ContainerName: containerName,
		Tail: opts.Tail, SinceSeconds: opts.SinceSeconds, Timestamps: opts.Timestamps,
		LimitBytes: int64(opts.LimitBytes),
	}
	if !opts.SinceTime.IsZero() {
		req.StartTime = opts.SinceTime.UTC().Format(time.RFC3339)
	}
	resp, err := p.opts.Cloud.DescribeContainerLog(ctx, req)
	if err != nil {
		if eci.IsNotFound(err) {
			return nil, errdefs.AsNotFound(err)
		}
		return nil, err
	}
	return io.NopCloser(strings.NewReader(resp.Content)), nil
}

// RunInContainer is not available yet; it says so instead of hanging.
func (p *Provider) RunInContainer(context.Context, string, string, string, []string, api.AttachIO) error {
	return errdefs.InvalidInput("exec is not supported by this virtual node version yet")
}

// AttachToContainer is not available yet; it says so instead of hanging.
func (p *Provider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errdefs.InvalidInput("attach is not supported by this virtual node version yet")
}

// PortForward is not possible to an ECI group through the node.
func (p *Provider) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errdefs.InvalidInput("port-forward is not supported on ECI pods")
}

// GetStatsSummary reports the node and its pods with no usage figures yet.
func (p *Provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	now := metav1.Now()
	s := &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: p.opts.NodeName, StartTime: now}}
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, e := range p.pods {
		s.Pods = append(s.Pods, statsv1alpha1.PodStats{
			PodRef:    statsv1alpha1.PodReference{Name: e.pod.Name, Namespace: e.pod.Namespace, UID: string(e.pod.UID)},
			StartTime: metav1.NewTime(e.created),
		})
	}
	return s, nil
}

// GetMetricsResource reports no resource metrics yet.
func (p *Provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}
