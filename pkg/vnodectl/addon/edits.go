package addon

import (
	"context"
	"fmt"
	"strconv"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"
)

// editableEnv maps the controller variables the vendor documents editing
// in the Deployment to the chart values that render them.
var editableEnv = map[string]struct {
	value string
	parse func(string) (any, error)
}{
	"ECI_VSWITCH":        {"vSwitches", func(s string) (any, error) { return toAnyList(splitList(s)), nil }},
	"ECI_SECURITY_GROUP": {"securityGroup", func(s string) (any, error) { return s, nil }},
	"ECI_KUBE_PROXY":     {"kubeProxy", func(s string) (any, error) { return strconv.ParseBool(s) }},
	"ECI_REGION":         {"region", func(s string) (any, error) { return s, nil }},
	"CLUSTER_ID":         {"clusterId", func(s string) (any, error) { return s, nil }},
	"ECI_ENDPOINT":       {"eciEndpoint", func(s string) (any, error) { return s, nil }},
}

// liveEdits compares the controller environment the release rendered with
// the live Deployment and returns the values that reproduce the edits
// (`kubectl -n kube-system edit deployment ack-virtual-node-controller`).
func (c *Client) liveEdits(ctx context.Context, rel *release.Release) (map[string]any, error) {
	rendered, err := renderedControllerEnv(rel.Manifest)
	if err != nil {
		return nil, err
	}
	live, err := c.kube.AppsV1().Deployments(c.opts.Namespace).Get(ctx, ControllerDeployment, getOpts)
	if apierrors.IsNotFound(err) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read deployment %s/%s: %w", c.opts.Namespace, ControllerDeployment, err)
	}
	kept := map[string]any{}
	for name, cur := range controllerEnv(live) {
		m, ok := editableEnv[name]
		if !ok || cur == nil || cur.ValueFrom != nil {
			continue
		}
		if old, ok := rendered[name]; ok && old.ValueFrom == nil && old.Value == cur.Value {
			continue
		}
		v, err := m.parse(cur.Value)
		if err != nil {
			return nil, fmt.Errorf("deployment %s: %s=%q was edited to a value the chart cannot express: %w", ControllerDeployment, name, cur.Value, err)
		}
		kept[m.value] = v
	}
	return kept, nil
}

// renderedControllerEnv finds the controller container's env in a release
// manifest.
func renderedControllerEnv(manifest string) (map[string]*corev1.EnvVar, error) {
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil || head.Kind != "Deployment" || head.Metadata.Name != ControllerDeployment {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			return nil, fmt.Errorf("release manifest of %s: %w", ControllerDeployment, err)
		}
		return controllerEnv(&d), nil
	}
	return map[string]*corev1.EnvVar{}, nil
}

func controllerEnv(d *appsv1.Deployment) map[string]*corev1.EnvVar {
	out := map[string]*corev1.EnvVar{}
	for i := range d.Spec.Template.Spec.Containers {
		ct := &d.Spec.Template.Spec.Containers[i]
		if ct.Name != ControllerContainer {
			continue
		}
		for j := range ct.Env {
			out[ct.Env[j].Name] = &ct.Env[j]
		}
	}
	return out
}

func toAnyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
