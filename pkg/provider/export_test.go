package provider

import (
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// SharedControlPlane hands the package's one shared control plane (see
// main_test.go) to the external test package provider_test, whose tests
// use the provider through its exported API only.
func SharedControlPlane(t testing.TB) *controlplane.ControlPlane { return shared.Get(t) }

// RegisterNode is registerNode (see main_test.go), for provider_test.
func RegisterNode(t testing.TB, kube kubernetes.Interface, name string) {
	t.Helper()
	registerNode(t, kube, name)
}

// SetClock makes p's status loop (Run) and the creation times of its pods
// follow c; call it before Run and CreatePod.
func SetClock(p *Provider, c clock.Clock) { p.clock = c }

// RetryCreate makes the next create attempt of waiting pod ns/name now,
// as its retry timer would later, so a test sees many attempts without
// waiting out the backoff.
func RetryCreate(p *Provider, ns, name string) {
	k := key(ns, name)
	p.mu.RLock()
	e, ok := p.pods[k]
	var uid types.UID
	if ok {
		uid = e.pod.UID
	}
	p.mu.RUnlock()
	if ok {
		p.retry(k, uid)
	}
}
