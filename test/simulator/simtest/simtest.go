// Package simtest serves the ECI simulator to a test: an HTTP server on
// 127.0.0.1 and, when asked, a real ECI client (SDK signing and transport)
// with the simulator's default AccessKey. Both stop when the test ends.
package simtest

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Start runs a simulator with cfg on a loopback HTTP server until the test
// ends and returns it with its endpoint URL.
func Start(t testing.TB, cfg simulator.Config) (*simulator.Simulator, string) {
	t.Helper()
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return sim, srv.URL
}

// Client returns an ECI client of the simulator at url: c with its region
// (when empty, the simulator's default), endpoint and credential (the
// simulator's default AccessKey) filled in.
func Client(t testing.TB, url string, c eci.Config) *eci.Client {
	t.Helper()
	cred, err := eci.StaticCredential(simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	if c.RegionId == "" {
		c.RegionId = simulator.DefaultRegionID
	}
	c.Endpoint, c.Credential = url, cred
	client, err := eci.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// Container is a test container running `sh -c Script` (image busybox
// unless Image is set; an init container if Init).
type Container struct {
	Name, Script, Image string
	Init                bool
}

// Group creates, through c, a container group named name with the
// containers, the restart policy given and a config volume "cfg" holding
// app.conf (key=value) mounted at /etc/app in each. It returns the group
// id and a pod ns/name (UID name-uid) whose spec names the same containers,
// for tests that track the group as a pod's.
func Group(t testing.TB, c *eci.Client, ns, name, restart string, ctrs ...Container) (string, *corev1.Pod) {
	t.Helper()
	req := &eci.CreateContainerGroupRequest{
		SecurityGroupId: simulator.DefaultSecurityGroupID, VSwitchId: "vsw-sim-h",
		ContainerGroupName: name, RestartPolicy: restart,
		Volumes: []eci.Volume{{Name: "cfg", Type: eci.VolumeConfigFile, ConfigFileToPaths: []eci.ConfigFileToPath{
			{Path: "app.conf", Content: base64.StdEncoding.EncodeToString([]byte("key=value\n"))}}}},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(name + "-uid")}}
	for _, ctr := range ctrs {
		if ctr.Image == "" {
			ctr.Image = "busybox"
		}
		ec := eci.Container{Name: ctr.Name, Image: ctr.Image, Cpu: 1, Memory: 2,
			Commands: []string{"sh", "-c", ctr.Script}, VolumeMounts: []eci.VolumeMount{{Name: "cfg", MountPath: "/etc/app"}}}
		if ctr.Init {
			req.InitContainers = append(req.InitContainers, eci.InitContainer{Name: ec.Name, Image: ec.Image, Cpu: ec.Cpu,
				Memory: ec.Memory, Commands: ec.Commands, VolumeMounts: ec.VolumeMounts})
			pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: ctr.Name})
			continue
		}
		req.Containers = append(req.Containers, ec)
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: ctr.Name})
	}
	resp, err := c.CreateContainerGroup(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ContainerGroupId, pod
}

// Calls returns how many times sim answered action, whatever the outcome.
func Calls(sim *simulator.Simulator, action string) int {
	n := 0
	for _, c := range sim.Calls()[action] {
		n += c
	}
	return n
}
