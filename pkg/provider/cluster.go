package provider

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

var _ translate.Resolver = (*cluster)(nil)

// cluster is how translation reads the cluster: the virtual-kubelet
// informer caches first (SetListers), the apiserver when the cache has
// not seen an object yet; tokens and claims from the apiserver.
type cluster struct {
	kube kubernetes.Interface

	mu         sync.RWMutex
	configMaps corev1listers.ConfigMapLister
	secrets    corev1listers.SecretLister
	services   corev1listers.ServiceLister

	dns clusterDNS
}

// clusterDNS is where ClusterFirst pods' resolvers come from: fixed
// addresses (CLUSTER_DNS), else the ClusterIP of a Service
// (CLUSTER_DNS_SERVICE), read from the informer cache or, when the cache
// does not have it, from the apiserver at most once per TTL (a lookup per
// pod would cost an apiserver call for every create).
type clusterDNS struct {
	ips                []string // fixed resolvers; none: the Service's ClusterIP
	namespace, service string

	mu      sync.Mutex
	cached  []string
	err     error
	fetched time.Time
}

const (
	clusterDNSTTL        = time.Minute
	clusterDNSMissingTTL = 10 * time.Second // a Service created after a miss is seen soon
)

func newCluster(opts Options) *cluster {
	c := &cluster{kube: opts.Kube}
	c.dns.ips = opts.ClusterDNS
	if ns, name, ok := strings.Cut(opts.ClusterDNSService, "/"); ok {
		c.dns.namespace, c.dns.service = ns, name
	}
	return c
}

func (c *cluster) setListers(cm corev1listers.ConfigMapLister, sec corev1listers.SecretLister, svc corev1listers.ServiceLister) {
	c.mu.Lock()
	c.configMaps, c.secrets, c.services = cm, sec, svc
	c.mu.Unlock()
}

func (c *cluster) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	c.mu.RLock()
	l := c.configMaps
	c.mu.RUnlock()
	if l != nil {
		if cm, err := l.ConfigMaps(ns).Get(name); err == nil {
			return cm, nil
		}
	}
	return c.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

func (c *cluster) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	c.mu.RLock()
	l := c.secrets
	c.mu.RUnlock()
	if l != nil {
		if s, err := l.Secrets(ns).Get(name); err == nil {
			return s, nil
		}
	}
	return c.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

// Services lists from the informer cache only: without one (a provider
// used outside the virtual-kubelet core) pods get no Service links.
func (c *cluster) Services(ns string) ([]*corev1.Service, error) {
	c.mu.RLock()
	l := c.services
	c.mu.RUnlock()
	if l == nil {
		return nil, nil
	}
	return l.Services(ns).List(labels.Everything())
}

func (c *cluster) ClusterDNS(ctx context.Context) ([]string, error) {
	d := &c.dns
	if len(d.ips) > 0 {
		return d.ips, nil
	}
	ns, name := d.namespace, d.service
	if name == "" {
		ns, name = metav1.NamespaceSystem, DefaultClusterDNSService
	}
	c.mu.RLock()
	l := c.services
	c.mu.RUnlock()
	if l != nil {
		if svc, err := l.Services(ns).Get(name); err == nil {
			return serviceResolvers(svc)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ttl := clusterDNSTTL
	if d.err != nil {
		ttl = clusterDNSMissingTTL
	}
	if !d.fetched.IsZero() && time.Since(d.fetched) < ttl {
		return d.cached, d.err
	}
	svc, err := c.kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		d.cached, d.err = nil, fmt.Errorf("the cluster DNS Service %s/%s does not exist", ns, name)
	case err != nil:
		// Not cached: the next pod asks again.
		return nil, fmt.Errorf("cannot read the cluster DNS Service %s/%s: %w", ns, name, err)
	default:
		d.cached, d.err = serviceResolvers(svc)
	}
	d.fetched = time.Now()
	return d.cached, d.err
}

// DefaultClusterDNSService is the cluster DNS Service's name in
// kube-system when CLUSTER_DNS_SERVICE is not set (CoreDNS keeps the
// kube-dns name).
const DefaultClusterDNSService = "kube-dns"

// serviceResolvers returns the resolver addresses of a DNS Service: its
// ClusterIPs (both families on a dual-stack Service).
func serviceResolvers(svc *corev1.Service) ([]string, error) {
	var ips []string
	for _, ip := range svc.Spec.ClusterIPs {
		if ip != "" && ip != corev1.ClusterIPNone {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		ips = []string{svc.Spec.ClusterIP}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("the cluster DNS Service %s/%s has no ClusterIP (a headless Service cannot be a resolver)", svc.Namespace, svc.Name)
	}
	return ips, nil
}

func (c *cluster) Token(ctx context.Context, ns, sa string, req *authv1.TokenRequest) (*authv1.TokenRequest, error) {
	return c.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, req, metav1.CreateOptions{})
}

func (c *cluster) PersistentVolumeClaim(ctx context.Context, ns, name string) (*corev1.PersistentVolumeClaim, error) {
	return c.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
}

func (c *cluster) PersistentVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	return c.kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
}
