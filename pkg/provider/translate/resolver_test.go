package translate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// memCluster is an in-memory Resolver: a few objects, the cluster DNS
// address 10.96.0.10, and tokens minted on demand. It records every call.
type memCluster struct {
	mu         sync.Mutex
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	services   map[string][]*corev1.Service // by namespace
	calls      []string
	tokens     int
}

var _ Resolver = (*memCluster)(nil)

func newMemCluster(t *testing.T, objs ...any) *memCluster {
	t.Helper()
	c := &memCluster{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, services: map[string][]*corev1.Service{}}
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			c.configMaps[o.Namespace+"/"+o.Name] = o
		case *corev1.Secret:
			c.secrets[o.Namespace+"/"+o.Name] = o
		case *corev1.Service:
			c.services[o.Namespace] = append(c.services[o.Namespace], o)
		default:
			t.Fatalf("unexpected object %T", o)
		}
	}
	return c
}

func (c *memCluster) record(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, fmt.Sprintf(format, args...))
}

func (c *memCluster) recorded() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...), c.tokens
}

func (c *memCluster) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	c.record("ConfigMap %s/%s", ns, name)
	if cm, ok := c.configMaps[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (c *memCluster) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	c.record("Secret %s/%s", ns, name)
	if s, ok := c.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func (c *memCluster) Services(ns string) ([]*corev1.Service, error) {
	c.record("Services %s", ns)
	return c.services[ns], nil
}

func (c *memCluster) ClusterDNS(context.Context) ([]string, error) {
	c.record("ClusterDNS")
	return []string{"10.96.0.10"}, nil
}

func (c *memCluster) Token(_ context.Context, ns, sa string, req *authv1.TokenRequest) (*authv1.TokenRequest, error) {
	c.record("Token %s/%s", ns, sa)
	c.mu.Lock()
	c.tokens++
	n := c.tokens
	c.mu.Unlock()
	out := req.DeepCopy()
	life := time.Duration(ptr.Deref(req.Spec.ExpirationSeconds, 3600)) * time.Second
	out.Status = authv1.TokenRequestStatus{Token: fmt.Sprintf("token-%d", n), ExpirationTimestamp: metav1.NewTime(time.Now().Add(life))}
	return out, nil
}

func (c *memCluster) PersistentVolumeClaim(_ context.Context, ns, name string) (*corev1.PersistentVolumeClaim, error) {
	c.record("PersistentVolumeClaim %s/%s", ns, name)
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumeclaims"}, name)
}

func (c *memCluster) PersistentVolume(_ context.Context, name string) (*corev1.PersistentVolume, error) {
	c.record("PersistentVolume %s", name)
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumes"}, name)
}

// tokenPod is testPod with a projected service-account token volume first
// and an env var from a ConfigMap, so translating it reads the cluster and
// mints a token.
func tokenPod(mut func(*corev1.Pod)) *corev1.Pod {
	return testPod(func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3600)}}}}}}}
		p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "PORT", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "port"}}})
		if mut != nil {
			mut(p)
		}
	})
}

// TestInvalidPodMintsNoToken: a pod translation refuses is refused before
// the cluster is read, so it mints no service-account token (each
// TokenRequest is an apiserver write) and reads nothing, whichever part of
// the pod is wrong and wherever it sits.
func TestInvalidPodMintsNoToken(t *testing.T) {
	cfg := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}, Data: map[string]string{"port": "8080"}}

	// The valid pod does read the cluster and mint a token: the cases
	// below differ from it in one field each.
	valid := newMemCluster(t, cfg)
	tr, err := New(Options{NodeName: "vk", ClusterID: "c1", KubeProxy: true}, valid).build(context.Background(), tokenPod(nil))
	if err != nil {
		t.Fatal(err)
	}
	if calls, tokens := valid.recorded(); tokens != 1 || len(calls) < 3 || len(tr.Req.Volumes) != 1 {
		t.Fatalf("valid pod: %d tokens, calls %q, volumes %+v; want 1 token, the ConfigMap and the DNS read", tokens, calls, tr.Req.Volumes)
	}

	tests := []struct {
		name    string
		pod     func(*corev1.Pod)
		wantErr string
	}{
		{"host network", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, "spec.hostNetwork"},
		{"dnsPolicy None without dnsConfig", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }, "spec.dnsConfig"},
		{"empty image of the last container", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side"})
		}, "spec.containers[1].image"},
		{"privileged init container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
		}, "spec.initContainers[0].securityContext.privileged"},
		{"env fieldRef ECI cannot fill", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostname"}}})
		}, "spec.containers[0].env[2] (X).valueFrom.fieldRef"},
		{"bad spec annotation", func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationUseSpecs: "big"} }, "eci-use-specs"},
		{"bad fail strategy", func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationFailStrategy: "retry"} }, "eci-fail-strategy"},
		{"unsupported volume after the token volume", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var"}}})
		}, "spec.volumes[1] (host).hostPath"},
		{"downward item ECI cannot fill, in the token's projection", func(p *corev1.Pod) {
			src := &p.Spec.Volumes[0].Projected.Sources
			*src = append(*src, corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}}})
		}, "spec.volumes[0] (token): downwardAPI item cpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster := newMemCluster(t, cfg)
			_, err := New(Options{NodeName: "vk", ClusterID: "c1", KubeProxy: true}, cluster).build(context.Background(), tokenPod(tt.pod))
			var inv *InvalidPodError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want an InvalidPodError containing %q", err, tt.wantErr)
			}
			if calls, tokens := cluster.recorded(); tokens != 0 || len(calls) != 0 {
				t.Errorf("refused pod minted %d tokens and made calls %q; want none", tokens, calls)
			}
		})
	}
}
