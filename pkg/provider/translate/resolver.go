package translate

import (
	"context"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
)

// Resolver is how translation reads the cluster: the objects a pod refers
// to (ConfigMaps, Secrets, Services, claims) and the service-account tokens
// it mounts. The provider implements it with its informer caches and its
// apiserver client; tests with a few objects in memory.
//
// Contract:
//   - A missing object is reported with an error for which
//     k8s.io/apimachinery/pkg/api/errors.IsNotFound is true; translation
//     then honours `optional` and refuses or waits otherwise.
//   - Returned objects are shared (informer caches): callers never change them.
//   - Token is the only method with a side effect (every call mints a
//     token). Translation calls no method at all for a pod it refuses on
//     its own (spec fields, annotations, unsupported volumes), so an
//     invalid pod mints nothing and reads nothing.
//   - Methods are called concurrently, for many pods at once, and within
//     one translation: a pod's tokens are all requested at once, while its
//     other objects are read (mint.go).
type Resolver interface {
	// ConfigMap returns ConfigMap namespace/name.
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	// Secret returns Secret namespace/name.
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// Services returns the Services of namespace, for the Service link
	// variables; none (and no error) when they are not known.
	Services(namespace string) ([]*corev1.Service, error)
	// ClusterDNS returns the cluster DNS resolvers for ClusterFirst pods
	// (CLUSTER_DNS, else the ClusterIP of CLUSTER_DNS_SERVICE), or an
	// error saying why there are none (the Service is missing or has no
	// ClusterIP), which the pod's events show.
	ClusterDNS(ctx context.Context) ([]string, error)
	// Token mints a token of service account namespace/serviceAccount
	// with the TokenRequest API, as the kubelet does, and returns the
	// answered request (Status.Token, Status.ExpirationTimestamp).
	Token(ctx context.Context, namespace, serviceAccount string, req *authv1.TokenRequest) (*authv1.TokenRequest, error)
	// PersistentVolumeClaim returns claim namespace/name.
	PersistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error)
	// PersistentVolume returns volume name.
	PersistentVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error)
}
