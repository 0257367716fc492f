package provider

import (
	"context"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// TestClusterResolver: translation reads the informer caches first and the
// apiserver for what they have not seen yet; a missing object is NotFound
// (so `optional` can be honoured); tokens are minted by the apiserver.
func TestClusterResolver(t *testing.T) {
	cp := shared.Get(t)
	kube := cp.Clientset()
	ns := controlplane.TestNamespace(t, kube, "resolver")
	ctx := context.Background()

	for _, name := range []string{"cached", "apiserver-only"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string]string{"from": "apiserver"}}
		if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	c := &cluster{kube: kube}
	// Without informer caches everything comes from the apiserver, and
	// there are no Services to link.
	if cm, err := c.ConfigMap(ctx, ns, "cached"); err != nil || cm.Data["from"] != "apiserver" {
		t.Errorf("ConfigMap without a cache = %v, %v; want the apiserver's", cm, err)
	}
	if svcs, err := c.Services(ns); err != nil || len(svcs) != 0 {
		t.Errorf("Services without a cache = %v, %v; want none", svcs, err)
	}

	newIdx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	cms, secs, svcs := newIdx(), newIdx(), newIdx()
	for _, err := range []error{
		cms.Add(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cached"}, Data: map[string]string{"from": "cache"}}),
		svcs.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.20"}}),
		svcs.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "db"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.21"}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.setListers(corev1listers.NewConfigMapLister(cms), corev1listers.NewSecretLister(secs), corev1listers.NewServiceLister(svcs))

	if cm, err := c.ConfigMap(ctx, ns, "cached"); err != nil || cm.Data["from"] != "cache" {
		t.Errorf("cached ConfigMap = %v, %v; want the cache's", cm, err)
	}
	if cm, err := c.ConfigMap(ctx, ns, "apiserver-only"); err != nil || cm.Data["from"] != "apiserver" {
		t.Errorf("ConfigMap the cache has not seen = %v, %v; want the apiserver's", cm, err)
	}
	if _, err := c.ConfigMap(ctx, ns, "missing"); !apierrors.IsNotFound(err) {
		t.Errorf("missing ConfigMap: err = %v, want NotFound", err)
	}
	if _, err := c.Secret(ctx, ns, "missing"); !apierrors.IsNotFound(err) {
		t.Errorf("missing Secret: err = %v, want NotFound", err)
	}
	if got, err := c.Services(ns); err != nil || len(got) != 1 || got[0].Name != "web" {
		t.Errorf("Services(%s) = %v, %v; want web only", ns, got, err)
	}

	tok, err := c.Token(ctx, ns, "app", &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{Audiences: []string{"test"}}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Status.Token == "" || tok.Status.ExpirationTimestamp.IsZero() {
		t.Errorf("token status = %+v, want a token and its expiry", tok.Status)
	}
}
