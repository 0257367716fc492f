package provider

import (
	"context"
	"io"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/kubeletapi"
	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// The provider is what the virtual-kubelet core drives, and it serves the
// kubelet API by handing each call to package kubeletapi.
var (
	_ node.PodLifecycleHandler          = (*Provider)(nil)
	_ node.PodNotifier                  = (*Provider)(nil)
	_ api.ContainerLogsHandlerFunc      = (*Provider)(nil).GetContainerLogs
	_ api.ContainerExecHandlerFunc      = (*Provider)(nil).RunInContainer
	_ api.ContainerAttachHandlerFunc    = (*Provider)(nil).AttachToContainer
	_ api.PortForwardHandlerFunc        = (*Provider)(nil).PortForward
	_ api.PodStatsSummaryHandlerFunc    = (*Provider)(nil).GetStatsSummary
	_ api.PodMetricsResourceHandlerFunc = (*Provider)(nil).GetMetricsResource
	_ kubeletapi.Cloud                  = Cloud(nil)
	_ kubeletapi.Pods                   = kubeletPods{}
)

// GetContainerLogs serves `kubectl logs` (kubeletapi.API.GetContainerLogs).
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	rc, err := p.kubelet.GetContainerLogs(ctx, namespace, podName, containerName, opts)
	p.refusedOnPod(namespace, podName, err, "kubectl logs")
	return rc, err
}

// RunInContainer serves `kubectl exec` (kubeletapi.API.RunInContainer).
func (p *Provider) RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error {
	err := p.kubelet.RunInContainer(ctx, namespace, podName, containerName, cmd, attach)
	p.refusedOnPod(namespace, podName, err, "kubectl exec")
	return err
}

// refusedOnPod records the pod event of a kubelet API call the RAM policy
// refused; the caller's error text already names the action and the fix.
func (p *Provider) refusedOnPod(namespace, name string, err error, what string) {
	if _, refused := eci.PermissionDenied(err); !refused {
		return
	}
	if pod, gerr := p.GetPod(context.Background(), namespace, name); gerr == nil {
		p.permissionEvent(pod, err, what)
	}
}

// AttachToContainer serves `kubectl attach` (kubeletapi.API.AttachToContainer).
func (p *Provider) AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error {
	return p.kubelet.AttachToContainer(ctx, namespace, podName, containerName, attach)
}

// PortForward is refused (kubeletapi.API.PortForward).
func (p *Provider) PortForward(ctx context.Context, namespace, podName string, port int32, stream io.ReadWriteCloser) error {
	return p.kubelet.PortForward(ctx, namespace, podName, port, stream)
}

// GetStatsSummary serves /stats/summary (kubeletapi.API.GetStatsSummary).
func (p *Provider) GetStatsSummary(ctx context.Context) (*statsv1alpha1.Summary, error) {
	return p.kubelet.GetStatsSummary(ctx)
}

// GetMetricsResource serves /metrics/resource (kubeletapi.API.GetMetricsResource).
func (p *Provider) GetMetricsResource(ctx context.Context) ([]*dto.MetricFamily, error) {
	return p.kubelet.GetMetricsResource(ctx)
}

// kubeletPods shows the provider's pod table to the kubelet API.
type kubeletPods struct{ p *Provider }

func (k kubeletPods) GroupOf(namespace, name string) (string, *corev1.Pod, error) {
	return k.p.groupOf(namespace, name)
}

func (k kubeletPods) EachPod(f func(pod *corev1.Pod, groupID string, created time.Time)) {
	k.p.mu.RLock()
	defer k.p.mu.RUnlock()
	for _, e := range k.p.pods {
		f(e.pod, e.groupID, e.created)
	}
}
