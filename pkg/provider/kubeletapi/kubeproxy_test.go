package kubeletapi

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
)

// addPodWithKubeProxy creates a group running "app" and the hidden
// kube-proxy container, and registers a pod whose spec has only "app", as
// the provider does.
func (e *apiEnv) addPodWithKubeProxy(ns, name string) string {
	e.t.Helper()
	id := e.addPod(ns, name, "Always",
		container{Name: "app", Script: "echo app-line; sleep infinity"},
		container{Name: translate.KubeProxyContainer, Script: "echo proxy-line; sleep infinity"})
	e.pods.mu.Lock()
	tp := e.pods.pods[ns+"/"+name]
	tp.pod.Spec.Containers = []corev1.Container{{Name: "app"}}
	e.pods.pods[ns+"/"+name] = tp
	e.pods.mu.Unlock()
	return id
}

// TestKubeProxyHidden: logs, exec and attach refuse the kube-proxy
// container as one the pod does not have, and stats leave it out, while
// the pod's own container is served.
func TestKubeProxyHidden(t *testing.T) {
	e := newAPIEnv(t)
	e.addPodWithKubeProxy("ns", "web")
	e.clock.Advance(time.Minute)
	ctx := context.Background()

	rc, err := e.p.GetContainerLogs(ctx, "ns", "web", "app", api.ContainerLogOpts{})
	if err != nil {
		t.Fatalf("logs of the pod's own container: %v", err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if string(out) != "app-line\n" {
		t.Errorf("app logs %q", out)
	}
	logCalls := e.calls("DescribeContainerLog")
	if _, err := e.p.GetContainerLogs(ctx, "ns", "web", translate.KubeProxyContainer, api.ContainerLogOpts{}); !errdefs.IsNotFound(err) {
		t.Errorf("logs of the kube-proxy container: %v, want not found", err)
	}
	execCalls := e.calls("ExecContainerCommand")
	buf := &testutil.SyncBuffer{}
	if err := e.p.RunInContainer(ctx, "ns", "web", translate.KubeProxyContainer, []string{"echo", "hi"}, &testAttach{out: buf}); !errdefs.IsNotFound(err) {
		t.Errorf("exec in the kube-proxy container: %v, want not found", err)
	}
	if err := e.p.AttachToContainer(ctx, "ns", "web", translate.KubeProxyContainer, &testAttach{out: buf}); !errdefs.IsNotFound(err) {
		t.Errorf("attach to the kube-proxy container: %v, want not found", err)
	}
	if e.calls("DescribeContainerLog") != logCalls || e.calls("ExecContainerCommand") != execCalls {
		t.Error("the cloud was asked about the kube-proxy container")
	}

	s, err := e.p.GetStatsSummary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Pods) != 1 || len(s.Pods[0].Containers) != 1 || s.Pods[0].Containers[0].Name != "app" {
		t.Fatalf("stats containers %+v, want only app", s.Pods)
	}
	fams, err := e.p.GetMetricsResource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "container" {
					seen++
					if l.GetValue() == translate.KubeProxyContainer {
						t.Errorf("metric %s shows the kube-proxy container", f.GetName())
					}
				}
			}
		}
	}
	if seen == 0 {
		t.Error("no container metrics at all: the check above proved nothing")
	}
}
