package addon

import (
	"context"
	"fmt"
	"strconv"
	"strings"

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
// the live controller workload and returns the values that reproduce the
// edits (`kubectl -n kube-system edit deployment ack-virtual-node-controller`,
// or in the StatefulSet form the vendor's `kubectl -n kube-system edit
// statefulset virtual-node-eci`).
func (c *Client) liveEdits(ctx context.Context, rel *release.Release) (map[string]any, error) {
	w, err := renderedController(rel.Manifest)
	if err != nil || w == nil {
		return map[string]any{}, err
	}
	var live *corev1.PodTemplateSpec
	switch w.kind {
	case "StatefulSet":
		s, err := c.kube.AppsV1().StatefulSets(c.opts.Namespace).Get(ctx, w.name, getOpts)
		if apierrors.IsNotFound(err) {
			return map[string]any{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read statefulset %s/%s: %w", c.opts.Namespace, w.name, err)
		}
		live = &s.Spec.Template
	default:
		d, err := c.kube.AppsV1().Deployments(c.opts.Namespace).Get(ctx, w.name, getOpts)
		if apierrors.IsNotFound(err) {
			return map[string]any{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read deployment %s/%s: %w", c.opts.Namespace, w.name, err)
		}
		live = &d.Spec.Template
	}
	kept := map[string]any{}
	for name, cur := range podEnv(live) {
		m, ok := editableEnv[name]
		if !ok || cur == nil || cur.ValueFrom != nil {
			continue
		}
		if old, ok := w.env[name]; ok && old.ValueFrom == nil && old.Value == cur.Value {
			continue
		}
		v, err := m.parse(cur.Value)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %s=%q was edited to a value the chart cannot express: %w", strings.ToLower(w.kind), w.name, name, cur.Value, err)
		}
		kept[m.value] = v
	}
	return kept, nil
}

// controllerWorkload is the controller's Deployment or StatefulSet in a
// release manifest.
type controllerWorkload struct {
	kind, name string
	env        map[string]*corev1.EnvVar
}

// renderedControllerEnv finds the controller container's env in a release
// manifest.
func renderedControllerEnv(manifest string) (map[string]*corev1.EnvVar, error) {
	w, err := renderedController(manifest)
	if err != nil || w == nil {
		return map[string]*corev1.EnvVar{}, err
	}
	return w.env, nil
}

// renderedController finds the controller workload in a release manifest:
// Deployment ack-virtual-node-controller, or the StatefulSet of
// controller.kind=StatefulSet (component controller); nil when neither.
func renderedController(manifest string) (*controllerWorkload, error) {
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			continue
		}
		switch {
		case head.Kind == "Deployment" && head.Metadata.Name == ControllerDeployment:
			var d appsv1.Deployment
			if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
				return nil, fmt.Errorf("release manifest of %s: %w", ControllerDeployment, err)
			}
			return &controllerWorkload{kind: head.Kind, name: head.Metadata.Name, env: podEnv(&d.Spec.Template)}, nil
		case head.Kind == "StatefulSet" && head.Metadata.Labels["app.kubernetes.io/component"] == "controller":
			var s appsv1.StatefulSet
			if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
				return nil, fmt.Errorf("release manifest of statefulset %s: %w", head.Metadata.Name, err)
			}
			return &controllerWorkload{kind: head.Kind, name: head.Metadata.Name, env: podEnv(&s.Spec.Template)}, nil
		}
	}
	return nil, nil
}

// controllerEnv is the controller container's env of a Deployment.
func controllerEnv(d *appsv1.Deployment) map[string]*corev1.EnvVar { return podEnv(&d.Spec.Template) }

// podEnv is the controller container's env of a pod template, by name.
func podEnv(tpl *corev1.PodTemplateSpec) map[string]*corev1.EnvVar {
	out := map[string]*corev1.EnvVar{}
	for i := range tpl.Spec.Containers {
		ct := &tpl.Spec.Containers[i]
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
