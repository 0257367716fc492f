package provider

import (
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
)

// simEnv is a provider whose cloud is the simulator on a fake clock. Pods
// can be registered directly (see addPod), without the creation path.
type simEnv struct {
	t     *testing.T
	sim   *simulator.Simulator
	clock *simulator.FakeClock
	cloud *eci.Client
	p     *Provider
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	clock := simulator.NewFakeClock(time.Now())
	cfg := simulator.DefaultConfig()
	cfg.Clock = clock
	cfg.StartDelay = 0
	cfg.RestartBackoff = time.Second
	cfg.QuotaScale = 0
	sim, url := simtest.Start(t, cfg)
	cloud := simtest.Client(t, url, eci.Config{RegionId: cfg.RegionId, Backoff: 5 * time.Millisecond})
	p, err := New(Options{NodeName: "vk", ClusterID: "test", Cloud: cloud, Kube: controlplane.NoAPIServer(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &simEnv{t: t, sim: sim, clock: clock, cloud: cloud, p: p}
}

// simEnv's Kube is controlplane.NoAPIServer unless a test sets p.opts.Kube:
// any apiserver request fails the test.

// container is a test container (simtest.Container).
type container = simtest.Container

// addPod creates a group with the containers (the restart policy given, a
// config volume "cfg" holding app.conf mounted at /etc/app) and registers
// pod ns/name for it.
func (e *simEnv) addPod(ns, name string, restart string, ctrs ...container) string {
	e.t.Helper()
	id, pod := simtest.Group(e.t, e.cloud, ns, name, restart, ctrs...)
	e.p.mu.Lock()
	e.p.pods[key(ns, name)] = &entry{pod: pod, groupID: id, created: time.Now()}
	e.p.byGroup[id] = key(ns, name)
	e.p.mu.Unlock()
	return id
}

// calls returns how many times action was called, whatever the outcome.
func (e *simEnv) calls(action string) int { return simtest.Calls(e.sim, action) }

// onAPIServer points e's provider at the shared apiserver, with its node
// registered (or the pod garbage collector may delete the test's pods), a
// namespace of its own and a pod lister the test fills (podIndexer).
func (e *simEnv) onAPIServer(t *testing.T, nsPrefix string) (kubernetes.Interface, string, cache.Indexer) {
	t.Helper()
	kube := shared.Get(t).Clientset()
	ns := controlplane.TestNamespace(t, kube, nsPrefix)
	e.p.opts.Kube = kube
	registerNode(t, kube, e.p.opts.NodeName)
	return kube, ns, podIndexer(e.p)
}

// podIndexer gives p a pod lister over an indexer the test fills, in
// place of the informer.
func podIndexer(p *Provider) cache.Indexer {
	informer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	p.SetPodLister(corev1listers.NewPodLister(informer))
	return informer
}
