package kubeletapi

import (
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
)

// apiEnv is a kubelet API whose cloud is the simulator on a fake clock.
// Pods are registered directly (see addPod): the kubelet API handlers only
// need the pod-to-group mapping, not the creation path.
type apiEnv struct {
	t     *testing.T
	sim   *simulator.Simulator
	clock *simulator.FakeClock
	cloud *eci.Client
	pods  *podTable
	p     *API
}

// podTable is an in-memory Pods.
type podTable struct {
	mu   sync.Mutex
	pods map[string]tracked
}

type tracked struct {
	pod     *corev1.Pod
	groupID string
	created time.Time
}

func (t *podTable) GroupOf(namespace, name string) (string, *corev1.Pod, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.pods[namespace+"/"+name]
	if !ok {
		return "", nil, errdefs.NotFoundf("pod %s/%s is not known to the provider", namespace, name)
	}
	return e.groupID, e.pod.DeepCopy(), nil
}

func (t *podTable) EachPod(f func(pod *corev1.Pod, groupID string, created time.Time)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.pods {
		f(e.pod, e.groupID, e.created)
	}
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	clock := simulator.NewFakeClock(time.Now())
	cfg := simulator.DefaultConfig()
	cfg.Clock = clock
	cfg.StartDelay = 0
	cfg.RestartBackoff = time.Second
	cfg.QuotaScale = 0
	sim, url := simtest.Start(t, cfg)
	cloud := simtest.Client(t, url, eci.Config{RegionId: cfg.RegionId, Backoff: 5 * time.Millisecond})
	pods := &podTable{pods: map[string]tracked{}}
	return &apiEnv{t: t, sim: sim, clock: clock, cloud: cloud, pods: pods, p: New("vk", cloud, pods)}
}

// The kubelet API handlers (logs, exec, attach, port-forward, stats) work
// from the provider's pod table and the cloud alone: they have no
// apiserver client.

// container is a test container (simtest.Container).
type container = simtest.Container

// addPod creates a group with the containers (the restart policy given, a
// config volume "cfg" holding app.conf mounted at /etc/app) and registers
// pod ns/name for it.
func (e *apiEnv) addPod(ns, name string, restart string, ctrs ...container) string {
	e.t.Helper()
	id, pod := simtest.Group(e.t, e.cloud, ns, name, restart, ctrs...)
	e.pods.mu.Lock()
	e.pods.pods[ns+"/"+name] = tracked{pod: pod, groupID: id, created: time.Now()}
	e.pods.mu.Unlock()
	return id
}

// calls returns how many times action was called, whatever the outcome.
func (e *apiEnv) calls(action string) int { return simtest.Calls(e.sim, action) }
