package provider

import (
	"regexp"
	"strings"

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

// kubeProxyNamed matches a message naming the kube-proxy container (and not
// a container whose name merely starts with it).
var kubeProxyNamed = regexp.MustCompile(`(^|[^a-z0-9-])` + regexp.QuoteMeta(translate.KubeProxyContainer) + `($|[^a-z0-9-])`)

// kubeProxyEventsHidden returns the group's events without the routine
// (Normal) ones about the hidden kube-proxy container: pulling its image,
// creating and starting it are not the pod's business. Its Warnings stay,
// as they may be why the pod waits.
func kubeProxyEventsHidden(g *eci.ContainerGroup) []eci.Event {
	image := ""
	for _, c := range g.Containers {
		if c.Name == translate.KubeProxyContainer {
			image = c.Image
		}
	}
	if image == "" {
		return g.Events
	}
	out := make([]eci.Event, 0, len(g.Events))
	for _, ev := range g.Events {
		if ev.Type != "Warning" && (kubeProxyNamed.MatchString(ev.Message) || strings.Contains(ev.Message, `"`+image+`"`)) {
			continue
		}
		out = append(out, ev)
	}
	return out
}
