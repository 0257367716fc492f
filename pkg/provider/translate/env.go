package translate

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// cloudFields are the downward-API fields only the cloud knows, once the
// group exists; they travel as FieldRef.FieldPath and ECI fills them in.
var cloudFields = map[string]string{
	"status.podIP": "status.podIP", "status.podIPs": "status.podIP",
	"status.hostIP": "status.hostIP", "status.hostIPs": "status.hostIP",
}

// envValue is one resolved variable: a value, or a field the cloud fills.
type envValue struct {
	value, fieldPath string
}

// resolveEnv computes a container's environment as the kubelet would:
// envFrom, then env in order with $(VAR) expansion, then Service link
// variables. The virtual-kubelet core's own resolution is switched off
// because it fails on status.podIP, which only the cloud can provide.
func (t *Translator) resolveEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, field string) ([]eci.EnvVar, error) {
	vars := map[string]envValue{}
	for i, src := range c.EnvFrom {
		f := fmt.Sprintf("%s.envFrom[%d]", field, i)
		var data map[string]string
		switch {
		case src.ConfigMapRef != nil:
			d, err := t.configMapData(ctx, pod.Namespace, src.ConfigMapRef.Name, ptr.Deref(src.ConfigMapRef.Optional, false))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			data = d
		case src.SecretRef != nil:
			d, err := t.secretData(ctx, pod.Namespace, src.SecretRef.Name, ptr.Deref(src.SecretRef.Optional, false))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			data = map[string]string{}
			for k, v := range d {
				data[k] = string(v)
			}
		}
		for k, v := range data {
			vars[src.Prefix+k] = envValue{value: v}
		}
	}
	services := t.serviceEnv(pod)
	lookup := func(name string) (string, bool) {
		if v, ok := vars[name]; ok && v.fieldPath == "" {
			return v.value, true
		}
		v, ok := services[name]
		return v, ok
	}
	for i, e := range c.Env {
		f := envField(field, i, e.Name)
		if e.ValueFrom == nil {
			vars[e.Name] = envValue{value: expand(e.Value, lookup)}
			continue
		}
		v, err := t.envFrom(ctx, pod, c, e.ValueFrom, f)
		if err != nil {
			return nil, err
		}
		if v != nil {
			vars[e.Name] = *v
		}
	}
	for k, v := range services {
		if _, ok := vars[k]; !ok {
			vars[k] = envValue{value: v}
		}
	}
	// Sorted, so the same pod always sends the same parameters (the
	// ClientToken's idempotency compares them).
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]eci.EnvVar, 0, len(names))
	for _, k := range names {
		out = append(out, eci.EnvVar{Key: k, Value: vars[k].value, FieldPath: vars[k].fieldPath})
	}
	return out, nil
}

// envFrom resolves one valueFrom; nil means an optional source is absent.
func (t *Translator) envFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src *corev1.EnvVarSource, field string) (*envValue, error) {
	if v, local, err := localEnv(pod, c, src, field); local {
		return v, err
	}
	switch {
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		optional := ptr.Deref(ref.Optional, false)
		data, err := t.configMapData(ctx, pod.Namespace, ref.Name, optional)
		return keyRef(field, "configMap "+ref.Name, ref.Key, optional, data, err)
	default: // src.SecretKeyRef != nil
		ref := src.SecretKeyRef
		optional := ptr.Deref(ref.Optional, false)
		raw, err := t.secretData(ctx, pod.Namespace, ref.Name, optional)
		data := make(map[string]string, len(raw))
		for k, v := range raw {
			data[k] = string(v)
		}
		return keyRef(field, "secret "+ref.Name, ref.Key, optional, data, err)
	}
}

// localEnv resolves a valueFrom from the pod alone (fieldRef,
// resourceFieldRef) and refuses one that names no source; local false
// means it needs the cluster (configMapKeyRef, secretKeyRef).
func localEnv(pod *corev1.Pod, c *corev1.Container, src *corev1.EnvVarSource, field string) (v *envValue, local bool, err error) {
	switch {
	case src.FieldRef != nil:
		path := src.FieldRef.FieldPath
		if cloud, ok := cloudFields[path]; ok {
			return &envValue{fieldPath: cloud}, true, nil
		}
		v, err := podField(pod, path)
		if err != nil {
			return nil, true, &InvalidPodError{Field: field + ".valueFrom.fieldRef", Reason: err.Error()}
		}
		return &envValue{value: v}, true, nil
	case src.ResourceFieldRef != nil:
		v, err := resourceField(c, src.ResourceFieldRef)
		if err != nil {
			return nil, true, &InvalidPodError{Field: field + ".valueFrom.resourceFieldRef", Reason: err.Error()}
		}
		return &envValue{value: v}, true, nil
	case src.ConfigMapKeyRef != nil, src.SecretKeyRef != nil:
		return nil, false, nil
	}
	return nil, true, &InvalidPodError{Field: field + ".valueFrom", Reason: "names no source"}
}

// checkEnv refuses, before the cluster is read, the env entries of
// container c that cannot be resolved whatever the cluster holds.
func checkEnv(pod *corev1.Pod, c *corev1.Container, field string) error {
	for i, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if _, _, err := localEnv(pod, c, e.ValueFrom, envField(field, i, e.Name)); err != nil {
			return err
		}
	}
	return nil
}

func envField(container string, i int, name string) string {
	return fmt.Sprintf("%s.env[%d] (%s)", container, i, name)
}

// keyRef picks one key of a ConfigMap's or Secret's data for an env var;
// nil means an optional key is absent.
func keyRef(field, what, key string, optional bool, data map[string]string, err error) (*envValue, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	v, ok := data[key]
	if !ok {
		if optional {
			return nil, nil
		}
		return nil, &InvalidPodError{Field: field, Reason: fmt.Sprintf("%s has no key %q", what, key), Fix: "add the key or mark it optional"}
	}
	return &envValue{value: v}, nil
}

// podField resolves the metadata and spec fields of the downward API.
func podField(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels['": pod.Labels, "metadata.annotations['": pod.Annotations} {
		if strings.HasPrefix(path, prefix) && strings.HasSuffix(path, "']") {
			return m[strings.TrimSuffix(strings.TrimPrefix(path, prefix), "']")], nil
		}
	}
	return "", fmt.Errorf("fieldPath %q is not supported", path)
}

// resourceField renders limits/requests with the divisor, rounding up as
// the kubelet does.
func resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("resource %q is not limits.X or requests.X", ref.Resource)
	}
	list := c.Resources.Requests
	if kind == "limits" {
		list = c.Resources.Limits
	}
	q, found := list[corev1.ResourceName(name)]
	if !found && kind == "limits" {
		q, found = c.Resources.Requests[corev1.ResourceName(name)]
	}
	if !found {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	v := (q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
	return strconv.FormatInt(v, 10), nil
}

// expand replaces $(VAR) with defined values, keeps undefined references
// as written and turns $$ into $, like the kubelet.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// serviceEnv is the Service link environment: the kubernetes Service of the
// default namespace always, the pod's namespace's Services unless
// enableServiceLinks is false.
func (t *Translator) serviceEnv(pod *corev1.Pod) map[string]string {
	out := map[string]string{}
	links := ptr.Deref(pod.Spec.EnableServiceLinks, corev1.DefaultEnableServiceLinks)
	svcs, err := t.cluster.Services(metav1.NamespaceDefault)
	if err != nil {
		return out
	}
	if links && pod.Namespace != metav1.NamespaceDefault {
		more, err := t.cluster.Services(pod.Namespace)
		if err != nil {
			return out
		}
		svcs = append(slices.Clip(svcs), more...)
	}
	chosen := map[string]*corev1.Service{}
	for _, s := range svcs {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		if s.Namespace == metav1.NamespaceDefault && s.Name == "kubernetes" {
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		} else if links && s.Namespace == pod.Namespace {
			chosen[s.Name] = s
		}
	}
	for _, s := range chosen {
		name := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		ip := s.Spec.ClusterIP
		for i, port := range s.Spec.Ports {
			proto := strings.ToLower(string(port.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			num := strconv.Itoa(int(port.Port))
			if i == 0 {
				out[name+"_SERVICE_HOST"] = ip
				out[name+"_SERVICE_PORT"] = num
				out[name+"_PORT"] = proto + "://" + ip + ":" + num
			}
			if port.Name != "" {
				out[name+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(port.Name, "-", "_"))] = num
			}
			prefix := name + "_PORT_" + num + "_" + strings.ToUpper(proto)
			out[prefix] = proto + "://" + ip + ":" + num
			out[prefix+"_PROTO"] = proto
			out[prefix+"_PORT"] = num
			out[prefix+"_ADDR"] = ip
		}
	}
	return out
}

// configMapData reads a ConfigMap. An absent optional one is empty.
func (t *Translator) configMapData(ctx context.Context, ns, name string, optional bool) (map[string]string, error) {
	cm, err := t.cluster.ConfigMap(ctx, ns, name)
	if apierrors.IsNotFound(err) && optional {
		return map[string]string{}, nil
	}
	if apierrors.IsNotFound(err) {
		return nil, &MissingSourceError{Source: Source{Kind: KindConfigMap, Name: name}, Namespace: ns, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("configMap %s/%s: %w", ns, name, err)
	}
	out := map[string]string{}
	for k, v := range cm.Data {
		out[k] = v
	}
	for k, v := range cm.BinaryData {
		out[k] = string(v)
	}
	return out, nil
}

// secretData reads a Secret like configMapData.
func (t *Translator) secretData(ctx context.Context, ns, name string, optional bool) (map[string][]byte, error) {
	s, err := t.cluster.Secret(ctx, ns, name)
	if apierrors.IsNotFound(err) && optional {
		return map[string][]byte{}, nil
	}
	if apierrors.IsNotFound(err) {
		return nil, &MissingSourceError{Source: Source{Kind: KindSecret, Name: name}, Namespace: ns, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	return s.Data, nil
}
