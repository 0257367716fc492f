// Package testenv is the one harness every integration test shares: a real
// control plane (etcd + kube-apiserver + kube-scheduler +
// kube-controller-manager on loopback ports) and the ECI simulator, with
// helpers to run virtual nodes against them.
//
// Start skips the test only when the control-plane binaries are missing and
// CI is not "true" (the skip message names the command that builds them);
// under CI=true a missing binary fails the test. With -short every
// integration test is skipped.
package testenv

import (
	"context"
	"errors"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/virtualnode"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/aliyun/credentials-go/credentials"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Env is a running control plane and ECI simulator.
type Env struct {
	// ControlPlane is the real Kubernetes control plane.
	ControlPlane *controlplane.ControlPlane
	// Kube is an admin client of the control plane.
	Kube kubernetes.Interface
	// Simulator is the ECI cloud; its Go API sets stock, faults, counters.
	Simulator *simulator.Simulator
	// SimulatorConfig is the configuration the simulator runs with.
	SimulatorConfig simulator.Config
	// SimulatorURL is the simulator's endpoint, e.g. http://127.0.0.1:34567.
	SimulatorURL string
	// Cloud is an ECI client (the real SDK path) pointed at the simulator.
	Cloud *eci.Client
	// Credential is the simulator's AccessKey, which virtual nodes of this
	// environment build their own ECI clients with.
	Credential credentials.Credential
}

// Options adjust the environment.
type Options struct {
	// Simulator edits the simulator configuration before it starts.
	Simulator func(*simulator.Config)
	// ControlPlane configures a private control plane (e.g. a short
	// ClusterSigningDuration for certificate rotation tests). It must be
	// zero when Shared is set.
	ControlPlane controlplane.Options
	// Shared, when set, is the package's control plane the environment
	// uses instead of starting one of its own (a start costs seconds of
	// both cores). The test then owns only what it creates: its
	// namespaces, its virtual nodes (unique names) and its simulator,
	// which every environment has for itself.
	Shared *controlplane.Shared
	// NoKubeProxyIdentity leaves out what Start otherwise installs as the
	// chart and `vnodectl kubeconfig` do: the ServiceAccount of the
	// kube-proxy in ECI pods (kube-system/ack-virtual-node-kube-proxy),
	// bound to system:node-proxier. Tests that install it themselves set
	// it (Helm refuses to adopt objects it did not create).
	NoKubeProxyIdentity bool
}

// Start starts the simulator and, unless opts.Shared is set, a control
// plane for t; what it started stops when the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	var cp *controlplane.ControlPlane
	if opts.Shared != nil {
		if !reflect.DeepEqual(opts.ControlPlane, controlplane.Options{}) {
			t.Fatal("testenv.Options: ControlPlane options need a private control plane; leave Shared nil")
		}
		cp = opts.Shared.Get(t)
	} else {
		cp = controlplane.StartForTest(t, opts.ControlPlane)
	}
	if !opts.NoKubeProxyIdentity {
		if _, err := nodeaccess.EnsureKubeProxyIdentity(context.Background(), cp.Clientset(), metav1.NamespaceSystem); err != nil {
			t.Fatalf("kube-proxy identity: %v", err)
		}
	}
	simCfg := simulator.DefaultConfig()
	if opts.Simulator != nil {
		opts.Simulator(&simCfg)
	}
	sim, err := simulator.New(simCfg)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("simulator listener: %v", err)
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		sim.Close()
	})
	url := "http://" + ln.Addr().String()
	cred, err := eci.StaticCredential(SimAccessKeyID(simCfg), simCfg.AccessKeys[SimAccessKeyID(simCfg)])
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := eci.NewClient(eci.Config{RegionId: simCfg.RegionId, Endpoint: url, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	return &Env{
		ControlPlane: cp, Kube: cp.Clientset(),
		Simulator: sim, SimulatorConfig: simCfg, SimulatorURL: url, Cloud: cloud, Credential: cred,
	}
}

// SimAccessKeyID returns the first configured AccessKey id of cfg.
func SimAccessKeyID(cfg simulator.Config) string {
	for id := range cfg.AccessKeys {
		return id
	}
	return ""
}

// NodeConfig returns a valid virtual-node configuration pointed at the
// simulator, with free loopback ports and every vSwitch of the simulator.
func (e *Env) NodeConfig(t testing.TB, name string) *config.Config {
	t.Helper()
	var vsw []string
	for _, z := range e.SimulatorConfig.Zones {
		for _, v := range z.VSwitches {
			vsw = append(vsw, v.VSwitchId)
		}
	}
	c := config.Defaults()
	c.VSwitches = vsw
	c.SecurityGroup = e.SimulatorConfig.SecurityGroups[0]
	c.Region = e.SimulatorConfig.RegionId
	c.Endpoint = e.SimulatorURL
	c.ClusterID = "test-cluster"
	c.NodeName = name
	c.NodeIP, c.NodeIPDetected = "127.0.0.1", false
	c.ListenIP = "127.0.0.1"
	c.KubeletPort = FreePort(t)
	c.MetricsAddr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	c.Kubeconfig = e.ControlPlane.Kubeconfig()
	c.PodCapacity = 500
	c.CPUCapacity = "2000"
	c.MemoryCapacity = "8Ti"
	c.StatusInterval = 500 * time.Millisecond
	c.ResyncInterval = 10 * time.Second
	if err := c.Validate(); err != nil {
		t.Fatalf("test node config: %v", err)
	}
	return c
}

// StartNode runs a virtual node in this process with cfg until the test
// ends, and waits until it is registered and Ready and its pods are handled
// (its container groups adopted).
func (e *Env) StartNode(t testing.TB, cfg *config.Config) {
	t.Helper()
	e.startNode(t, cfg, true)
}

// StartNodeNoWait runs a virtual node like StartNode without waiting for
// it: for a node that cannot adopt its groups yet (the cloud refuses the
// AccessKey), which registers and heartbeats but handles no pod.
func (e *Env) StartNodeNoWait(t testing.TB, cfg *config.Config) {
	t.Helper()
	e.startNode(t, cfg, false)
}

func (e *Env) startNode(t testing.TB, cfg *config.Config, wait bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- virtualnode.Run(ctx, virtualnode.Options{Config: cfg, Credential: e.Credential, Ready: ready})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("virtual node %s: %v", cfg.NodeName, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("virtual node %s did not stop within 30s", cfg.NodeName)
		}
	})
	if !wait {
		return
	}
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("virtual node %s exited before it was ready: %v", cfg.NodeName, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("virtual node %s not ready within 60s", cfg.NodeName)
	}
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
