package provider

import (
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
)

// kubeProxyWaiting says why the hidden kube-proxy container of a pending
// group waits (e.g. its image cannot be pulled), for the pod's status
// message: the container is not in the pod's status, yet a pod held up by
// it must not wait without a reason.
func kubeProxyWaiting(g *eci.ContainerGroup) string {
	for _, c := range g.Containers {
		if c.Name != translate.KubeProxyContainer || c.CurrentState.State != "Waiting" {
			continue
		}
		reason := c.CurrentState.Reason
		if reason == "" {
			reason = c.CurrentState.DetailStatus
		}
		if reason == "" || reason == "ContainerCreating" || reason == "PodInitializing" {
			return ""
		}
		msg := "kube-proxy (ECI_KUBE_PROXY, image " + c.Image + "): " + reason
		if c.CurrentState.Message != "" {
			msg += ": " + c.CurrentState.Message
		}
		return msg + "; set ECI_KUBE_PROXY_IMAGE to an image the VPC can pull, or annotation " +
			translate.AnnotationKubeProxyEnabled + `: "false" on pods that need no ClusterIP Services`
	}
	return ""
}
