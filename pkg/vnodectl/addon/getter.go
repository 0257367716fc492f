package addon

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// restGetter is the genericclioptions.RESTClientGetter Helm's kube client
// needs, built from a rest.Config so callers can hand in any identity
// (kubeconfig, in-cluster, a test's client certificate) without a helm
// binary or a kubeconfig file.
type restGetter struct {
	cfg       *rest.Config
	namespace string
	mapper    meta.RESTMapper
	disc      discovery.CachedDiscoveryInterface
}

func newRESTGetter(cfg *rest.Config, namespace string) (*restGetter, error) {
	cfg = rest.CopyConfig(cfg)
	// Helm sends many small requests (one per object, then waits); the
	// client-go defaults of 5 QPS would make an install crawl.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(dc)
	return &restGetter{
		cfg: cfg, namespace: namespace, disc: cached,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(cached),
	}, nil
}

// ToRESTConfig returns a copy of the configuration.
func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

// ToDiscoveryClient returns the shared cached discovery client.
func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.disc, nil
}

// ToRESTMapper returns a mapper over the cached discovery.
func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

// ToRawKubeConfigLoader only serves the namespace: Helm asks it for the
// default namespace of objects that do not name one.
func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return clientcmd.NewDefaultClientConfig(*clientcmdapi.NewConfig(), &clientcmd.ConfigOverrides{
		Context: clientcmdapi.Context{Namespace: g.namespace},
	})
}
