package translate

import (
	"context"
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// sourcesPod refers to a ConfigMap and a Secret in every way a pod can,
// mandatory and optional, and to an optional ConfigMap only optionally.
func sourcesPod() *corev1.Pod {
	return tokenPod(func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes,
			corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}},
			corev1.Volume{Name: "extra", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "extra"}, Optional: ptr.To(true)}},
				// optional here, mandatory in env: mandatory
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Optional: ptr.To(true)}},
			}}}})
		p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "extra"}, Optional: ptr.To(true)}}}
	})
}

func TestPodSources(t *testing.T) {
	got := podSources(sourcesPod())
	want := []Source{
		{Kind: KindConfigMap, Name: "cfg"},
		{Kind: KindConfigMap, Name: "extra", Optional: true},
		{Kind: KindSecret, Name: "db"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("podSources = %+v, want %+v", got, want)
	}
}

// TestMissingSources: a missing mandatory object fails the translation
// with a MissingSourceError before any token is minted; missing optional
// ones are listed and the pod translates.
func TestMissingSources(t *testing.T) {
	cfg := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}, Data: map[string]string{"port": "8080"}}
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}, Data: map[string][]byte{"pw": []byte("x")}}

	c := newMemCluster(t) // nothing exists
	_, err := New(Options{NodeName: "vk", ClusterID: "c1"}, c).build(context.Background(), sourcesPod())
	var miss *MissingSourceError
	if !errors.As(err, &miss) || miss.Kind != KindConfigMap || miss.Name != "cfg" || miss.Namespace != "default" || !apierrors.IsNotFound(err) {
		t.Fatalf("err = %v, want a MissingSourceError for ConfigMap default/cfg that is NotFound", err)
	}
	if _, n := c.recorded(); n != 0 {
		t.Errorf("%d tokens minted for a pod that must wait, want 0", n)
	}

	c = newMemCluster(t, cfg)
	_, err = New(Options{NodeName: "vk", ClusterID: "c1"}, c).build(context.Background(), sourcesPod())
	if !errors.As(err, &miss) || miss.Kind != KindSecret || miss.Name != "db" {
		t.Fatalf("err = %v, want a MissingSourceError for Secret db", err)
	}
	if got, want := miss.Error(), `secret "db" not found in namespace default: the pod starts once it is created`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}

	c = newMemCluster(t, cfg, db)
	tr, err := New(Options{NodeName: "vk", ClusterID: "c1"}, c).build(context.Background(), sourcesPod())
	if err != nil {
		t.Fatal(err)
	}
	if want := []Source{{Kind: KindConfigMap, Name: "extra", Optional: true}}; !reflect.DeepEqual(tr.MissingOptional, want) {
		t.Errorf("MissingOptional = %+v, want %+v", tr.MissingOptional, want)
	}
}
