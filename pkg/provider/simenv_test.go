package provider

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// container is a test container running `sh -c script` (image busybox
// unless set; an init container if init).
type container struct {
	name, script, image string
	init                bool
}

// addPod creates a group with the containers (the restart policy given, a
// config volume "cfg" holding app.conf mounted at /etc/app) and registers
// pod ns/name for it.
func (e *simEnv) addPod(ns, name string, restart string, ctrs ...container) string {
	e.t.Helper()
	req := &eci.CreateContainerGroupRequest{
		SecurityGroupId: simulator.DefaultSecurityGroupID, VSwitchId: "vsw-sim-h",
		ContainerGroupName: name, RestartPolicy: restart,
		Volumes: []eci.Volume{{Name: "cfg", Type: eci.VolumeConfigFile, ConfigFileToPaths: []eci.ConfigFileToPath{
			{Path: "app.conf", Content: base64.StdEncoding.EncodeToString([]byte("key=value\n"))}}}},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(name + "-uid")}}
	for _, c := range ctrs {
		if c.image == "" {
			c.image = "busybox"
		}
		ec := eci.Container{Name: c.name, Image: c.image, Cpu: 1, Memory: 2,
			Commands: []string{"sh", "-c", c.script}, VolumeMounts: []eci.VolumeMount{{Name: "cfg", MountPath: "/etc/app"}}}
		if c.init {
			req.InitContainers = append(req.InitContainers, ec)
			pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: c.name})
			continue
		}
		req.Containers = append(req.Containers, ec)
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c.name})
	}
	resp, err := e.cloud.CreateContainerGroup(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.p.mu.Lock()
	e.p.pods[key(ns, name)] = &entry{pod: pod, groupID: resp.ContainerGroupId, created: time.Now()}
	e.p.byGroup[resp.ContainerGroupId] = key(ns, name)
	e.p.mu.Unlock()
	return resp.ContainerGroupId
}

// calls returns how many times action was called, whatever the outcome.
func (e *simEnv) calls(action string) int {
	n := 0
	for _, c := range e.sim.Calls()[action] {
		n += c
	}
	return n
}
