package kubeletapi

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	cred, err := eci.StaticCredential(simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := eci.NewClient(eci.Config{RegionId: cfg.RegionId, Endpoint: srv.URL, Credential: cred, Backoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pods := &podTable{pods: map[string]tracked{}}
	return &apiEnv{t: t, sim: sim, clock: clock, cloud: cloud, pods: pods, p: New("vk", cloud, pods)}
}

// The kubelet API handlers (logs, exec, attach, port-forward, stats) work
// from the provider's pod table and the cloud alone: they have no
// apiserver client.

// container is a test container running `sh -c script` (image busybox
// unless set; an init container if init).
type container struct {
	name, script, image string
	init                bool
}

// addPod creates a group with the containers (the restart policy given, a
// config volume "cfg" holding app.conf mounted at /etc/app) and registers
// pod ns/name for it.
func (e *apiEnv) addPod(ns, name string, restart string, ctrs ...container) string {
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
	e.pods.mu.Lock()
	e.pods.pods[ns+"/"+name] = tracked{pod: pod, groupID: resp.ContainerGroupId, created: time.Now()}
	e.pods.mu.Unlock()
	return resp.ContainerGroupId
}

// calls returns how many times action was called, whatever the outcome.
func (e *apiEnv) calls(action string) int {
	n := 0
	for _, c := range e.sim.Calls()[action] {
		n += c
	}
	return n
}
