package provider

import (
	"context"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testPod is a pod with one container that translates without reading
// the cluster.
func testPod(mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", UID: "11111111-2222-3333-4444-555555555555"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "app", Image: "nginx:1.25"}},
		},
	}
	if mut != nil {
		mut(p)
	}
	return p
}

// testProvider returns a provider placing pods in vsw-a,vsw-b and sg-1
// whose translations read nothing from the cluster (KubeProxy off: no
// cluster DNS lookup); any apiserver request fails the test.
func testProvider(t *testing.T) *Provider {
	t.Helper()
	opts := Options{NodeName: "vk", ClusterID: "c1", VSwitches: []string{"vsw-a", "vsw-b"}, SecurityGroup: "sg-1", Kube: controlplane.NoAPIServer(t)}
	return &Provider{opts: opts, zones: newZoneMemory(0),
		translator: translate.New(translate.Options{NodeName: opts.NodeName, ClusterID: opts.ClusterID}, &cluster{kube: opts.Kube})}
}

func TestProfileDefaultsOverrideEnv(t *testing.T) {
	tests := []struct {
		name            string
		defaults        func() ([]string, string, bool)
		annotations     map[string]string
		wantVSW, wantSG string
	}{
		{name: "no profile", wantVSW: "vsw-a,vsw-b", wantSG: "sg-1"},
		{name: "profile not usable", defaults: func() ([]string, string, bool) { return nil, "", false }, wantVSW: "vsw-a,vsw-b", wantSG: "sg-1"},
		{name: "profile wins over env", defaults: func() ([]string, string, bool) { return []string{"vsw-p"}, "sg-p", true }, wantVSW: "vsw-p", wantSG: "sg-p"},
		{name: "profile sets only the security group", defaults: func() ([]string, string, bool) { return nil, "sg-p", true }, wantVSW: "vsw-a,vsw-b", wantSG: "sg-p"},
		{
			name: "pod annotation wins over profile", defaults: func() ([]string, string, bool) { return []string{"vsw-p"}, "sg-p", true },
			annotations: map[string]string{translate.AnnotationVSwitch: "vsw-pod"}, wantVSW: "vsw-pod", wantSG: "sg-p",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prov := testProvider(t)
			prov.opts.Defaults = tt.defaults
			tr, err := prov.buildRequest(context.Background(), testPod(func(p *corev1.Pod) { p.Annotations = tt.annotations }))
			if err != nil {
				t.Fatal(err)
			}
			if tr.Req.VSwitchId != tt.wantVSW || tr.Req.SecurityGroupId != tt.wantSG {
				t.Errorf("vswitch %q sg %q, want %q %q", tr.Req.VSwitchId, tr.Req.SecurityGroupId, tt.wantVSW, tt.wantSG)
			}
		})
	}
}
