package provider

import (
	"context"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
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

// clusterDNS caches the cluster DNS Service address; a lookup per pod
// would cost an apiserver call for every create.
type clusterDNS struct {
	mu      sync.Mutex
	ip      string
	fetched time.Time
}

const clusterDNSTTL = time.Minute

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

func (c *cluster) ClusterDNSIP(ctx context.Context) string {
	d := &c.dns
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.fetched) < clusterDNSTTL {
		return d.ip
	}
	d.ip = ""
	svc, err := c.kube.CoreV1().Services(metav1.NamespaceSystem).Get(ctx, "kube-dns", metav1.GetOptions{})
	if err == nil && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		d.ip = svc.Spec.ClusterIP
	}
	d.fetched = time.Now()
	return d.ip
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
