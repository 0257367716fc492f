package translate

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
)

// Kinds of the objects a pod's volumes and environment are filled from.
const (
	KindConfigMap = "ConfigMap"
	KindSecret    = "Secret"
)

// Source is a ConfigMap or Secret a pod refers to (volumes, projected
// volumes, envFrom, env valueFrom), in the pod's namespace.
type Source struct {
	Kind string // KindConfigMap or KindSecret
	Name string
	// Optional is true when every reference to the object is optional.
	Optional bool
}

// String is the object as the kubelet names it in its events, e.g.
// `configmap "app-config"`.
func (s Source) String() string {
	if s.Kind == KindSecret {
		return fmt.Sprintf("secret %q", s.Name)
	}
	return fmt.Sprintf("configmap %q", s.Name)
}

// MissingSourceError says a ConfigMap or Secret the pod needs (not
// optional) does not exist. The pod is not refused: like a kubelet, the
// provider waits for the object and creates the group once it exists.
type MissingSourceError struct {
	Source
	Namespace string
	Err       error // the NotFound error
}

func (e *MissingSourceError) Error() string {
	return fmt.Sprintf("%s not found in namespace %s: the pod starts once it is created", e.Source, e.Namespace)
}

func (e *MissingSourceError) Unwrap() error { return e.Err }

// podSources lists the ConfigMaps and Secrets the pod refers to, each once,
// sorted by kind and name; an object is optional only if every reference
// to it is.
func podSources(pod *corev1.Pod) []Source {
	seen := map[Source]int{} // Source with Optional false -> index
	var out []Source
	add := func(kind, name string, optional *bool) {
		if name == "" {
			return
		}
		k := Source{Kind: kind, Name: name}
		opt := ptr.Deref(optional, false)
		if i, ok := seen[k]; ok {
			out[i].Optional = out[i].Optional && opt
			return
		}
		seen[k] = len(out)
		out = append(out, Source{Kind: kind, Name: name, Optional: opt})
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			add(KindConfigMap, v.ConfigMap.Name, v.ConfigMap.Optional)
		case v.Secret != nil:
			add(KindSecret, v.Secret.SecretName, v.Secret.Optional)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				switch {
				case s.ConfigMap != nil:
					add(KindConfigMap, s.ConfigMap.Name, s.ConfigMap.Optional)
				case s.Secret != nil:
					add(KindSecret, s.Secret.Name, s.Secret.Optional)
				}
			}
		}
	}
	containers := func(cs []corev1.Container) {
		for _, c := range cs {
			for _, ef := range c.EnvFrom {
				switch {
				case ef.ConfigMapRef != nil:
					add(KindConfigMap, ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional)
				case ef.SecretRef != nil:
					add(KindSecret, ef.SecretRef.Name, ef.SecretRef.Optional)
				}
			}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom == nil:
				case e.ValueFrom.ConfigMapKeyRef != nil:
					add(KindConfigMap, e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Optional)
				case e.ValueFrom.SecretKeyRef != nil:
					add(KindSecret, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Optional)
				}
			}
		}
	}
	containers(pod.Spec.InitContainers)
	containers(pod.Spec.Containers)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// checkSources reads every ConfigMap and Secret the pod refers to before
// anything else of the cluster is touched (no token is minted for a pod
// that must wait): a missing mandatory one is a *MissingSourceError (the
// first, in podSources order), missing optional ones are returned.
func (t *Translator) checkSources(ctx context.Context, pod *corev1.Pod) ([]Source, error) {
	var missing []Source
	for _, s := range podSources(pod) {
		var err error
		if s.Kind == KindSecret {
			_, err = t.cluster.Secret(ctx, pod.Namespace, s.Name)
		} else {
			_, err = t.cluster.ConfigMap(ctx, pod.Namespace, s.Name)
		}
		switch {
		case err == nil:
		case apierrors.IsNotFound(err) && s.Optional:
			missing = append(missing, s)
		case apierrors.IsNotFound(err):
			return nil, &MissingSourceError{Source: s, Namespace: pod.Namespace, Err: err}
		default:
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	return missing, nil
}
