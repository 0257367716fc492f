package translate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// kubeProxyTranslator is testTranslator with kube-proxy configured, the
// eci-profile's enableClusterIp given by profile (nil: absent).
func kubeProxyTranslator(t *testing.T, envOn bool, profile *bool) (*Translator, *memCluster) {
	t.Helper()
	c := newMemCluster(t)
	return New(Options{NodeName: "vk", ClusterID: "c1", KubeProxy: envOn,
		ClusterIPDefault: func() *bool { return profile },
		KubeProxyConfig: &KubeProxyConfig{Image: "registry-cn-hangzhou-vpc.ack.aliyuncs.com/acs/kube-proxy:v1.30.1-aliyun.1",
			Server: "https://192.168.0.10:6443", CA: []byte(testCA), Namespace: "kube-system"},
	}, c), c
}

func kubeProxyOf(r *eci.CreateContainerGroupRequest) (*eci.Container, *eci.Volume) {
	var c *eci.Container
	var v *eci.Volume
	for i := range r.Containers {
		if r.Containers[i].Name == KubeProxyContainer {
			c = &r.Containers[i]
		}
	}
	for i := range r.Volumes {
		if r.Volumes[i].Name == KubeProxyVolume {
			v = &r.Volumes[i]
		}
	}
	return c, v
}

func volumeFiles(t *testing.T, v *eci.Volume) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range v.ConfigFileToPaths {
		b, err := base64.StdEncoding.DecodeString(f.Content)
		if err != nil {
			t.Fatalf("file %s: %v", f.Path, err)
		}
		out[f.Path] = string(b)
	}
	return out
}

func TestKubeProxyContainer(t *testing.T) {
	tl, cluster := kubeProxyTranslator(t, true, nil)
	pod := testPod(func(p *corev1.Pod) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}
	})
	tr, err := tl.build(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	r := tr.Req
	c, v := kubeProxyOf(r)
	if c == nil || v == nil {
		t.Fatalf("no kube-proxy container or volume: containers %d, volumes %d", len(r.Containers), len(r.Volumes))
	}
	if r.Containers[0].Name != "app" || r.Containers[len(r.Containers)-1].Name != KubeProxyContainer {
		t.Errorf("kube-proxy must come after the pod's containers: %s ... %s", r.Containers[0].Name, r.Containers[len(r.Containers)-1].Name)
	}
	if c.Image != "registry-cn-hangzhou-vpc.ack.aliyuncs.com/acs/kube-proxy:v1.30.1-aliyun.1" {
		t.Errorf("image %q", c.Image)
	}
	for _, want := range []string{"--proxy-mode=iptables", "--kubeconfig=/var/lib/eci-kube-proxy/kubeconfig", "--hostname-override=web-0", "--conntrack-max-per-core=0"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %q lack %q", c.Args, want)
		}
	}
	env := map[string]string{}
	for _, e := range c.EnvironmentVars {
		env[e.Key] = e.Value
	}
	if env["ECI_CONTAINER_TYPE"] != "sidecar" || env["ECI_CONTAINER_IGNORE_EXIT_CODE"] != "true" {
		t.Errorf("env %v: kube-proxy must be an ECI sidecar whose exit code is ignored, or Jobs never end", env)
	}
	if env["ECI_CONTAINER_LAUNCH_PRIORITY"] != "1000" || env["ECI_CONTAINER_EXIT_PRIORITY"] != "-1000" {
		t.Errorf("env %v: kube-proxy must start first and exit last", env)
	}
	if c.SecurityContext == nil || !slices.Equal(c.SecurityContext.CapabilityAdd, []string{"NET_ADMIN"}) {
		t.Errorf("security context %+v, want NET_ADMIN", c.SecurityContext)
	}
	if c.SecurityContext == nil || c.SecurityContext.RunAsUser == nil || *c.SecurityContext.RunAsUser != 0 {
		t.Errorf("kube-proxy must run as root whatever the pod's runAsUser: %+v", c.SecurityContext)
	}
	if u := r.Containers[0].SecurityContext; u == nil || u.RunAsUser == nil || *u.RunAsUser != 1000 {
		t.Errorf("the pod's own container lost its runAsUser: %+v", u)
	}
	if c.Cpu != KubeProxyCPU || c.Memory != KubeProxyMemory {
		t.Errorf("kube-proxy size %v/%v", c.Cpu, c.Memory)
	}
	// The app container is 1 vCPU / 2 GiB: the group holds both.
	if r.Cpu != 1+KubeProxyCPU || r.Memory != 2+KubeProxyMemory {
		t.Errorf("group size %v/%v, want %v/%v", r.Cpu, r.Memory, 1+KubeProxyCPU, 2+KubeProxyMemory)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != KubeProxyVolume || c.VolumeMounts[0].MountPath != KubeProxyDir || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("mounts %+v", c.VolumeMounts)
	}

	files := volumeFiles(t, v)
	if v.Type != eci.VolumeConfigFile || files["token"] != "token-1" || files["ca.crt"] != testCA {
		t.Errorf("volume %s: files %q", v.Type, files)
	}
	kc, err := clientcmd.Load([]byte(files["kubeconfig"]))
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	ctx := kc.Contexts[kc.CurrentContext]
	if ctx == nil || kc.Clusters[ctx.Cluster].Server != "https://192.168.0.10:6443" ||
		kc.Clusters[ctx.Cluster].CertificateAuthority != "/var/lib/eci-kube-proxy/ca.crt" ||
		kc.AuthInfos[ctx.AuthInfo].TokenFile != "/var/lib/eci-kube-proxy/token" {
		t.Errorf("kubeconfig %s", files["kubeconfig"])
	}
	calls, tokens := cluster.recorded()
	if tokens != 1 || !slices.Contains(calls, "Token kube-system/"+nodeaccess.KubeProxyServiceAccountName) {
		t.Errorf("token calls %q (%d), want one for kube-system/%s", calls, tokens, nodeaccess.KubeProxyServiceAccountName)
	}
	if !slices.Contains(tr.Tokens.Volumes, KubeProxyVolume) || tr.Tokens.At.IsZero() {
		t.Errorf("the kube-proxy token is not scheduled for renewal: %+v", tr.Tokens)
	}
	if r.DnsPolicy != "None" || r.DNSConfig == nil || r.DNSConfig.NameServers[0] != "10.96.0.10" {
		t.Errorf("ClusterFirst with kube-proxy must use the cluster DNS: %q %+v", r.DnsPolicy, r.DNSConfig)
	}
}

// TestKubeProxyDecision: the pod's annotation wins, then the eci-profile's
// enableClusterIp, then ECI_KUBE_PROXY; pods without kube-proxy get the
// VPC resolver and a note naming the setting.
func TestKubeProxyDecision(t *testing.T) {
	on, off := ptr.To(true), ptr.To(false)
	for _, tc := range []struct {
		name       string
		env        bool
		profile    *bool
		annotation string
		want       bool
		note       string
	}{
		{name: "ECI_KUBE_PROXY on", env: true, want: true},
		{name: "ECI_KUBE_PROXY off", env: false, want: false, note: "ECI_KUBE_PROXY is false"},
		{name: "profile off", env: true, profile: off, want: false, note: "enableClusterIp is false"},
		{name: "profile on", env: false, profile: on, want: true},
		{name: "annotation off", env: true, profile: on, annotation: "false", want: false, note: AnnotationKubeProxyEnabled + " is false"},
		{name: "annotation on", env: false, profile: off, annotation: "true", want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl, cluster := kubeProxyTranslator(t, tc.env, tc.profile)
			pod := testPod(func(p *corev1.Pod) {
				if tc.annotation != "" {
					p.Annotations = map[string]string{AnnotationKubeProxyEnabled: tc.annotation}
				}
			})
			tr, err := tl.build(context.Background(), pod)
			if err != nil {
				t.Fatal(err)
			}
			c, v := kubeProxyOf(tr.Req)
			if (c != nil) != tc.want || (v != nil) != tc.want {
				t.Fatalf("kube-proxy container %v volume %v, want %v", c != nil, v != nil, tc.want)
			}
			_, tokens := cluster.recorded()
			if tc.want {
				return
			}
			if tokens != 0 {
				t.Errorf("%d tokens minted for a pod without kube-proxy", tokens)
			}
			if tr.Req.DnsPolicy != "Default" || tr.Req.DNSConfig != nil {
				t.Errorf("dns %q %+v, want the VPC resolver", tr.Req.DnsPolicy, tr.Req.DNSConfig)
			}
			if !strings.Contains(strings.Join(tr.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", tr.Notes, tc.note)
			}
			if tr.Req.Cpu != 1 || tr.Req.Memory != 2 {
				t.Errorf("group size %v/%v without kube-proxy, want 1/2", tr.Req.Cpu, tr.Req.Memory)
			}
		})
	}
}

func TestKubeProxyRefusals(t *testing.T) {
	many := func(n int) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			for i := len(p.Spec.Containers); i < n; i++ {
				c := p.Spec.Containers[0]
				c.Name = fmt.Sprintf("c%d", i)
				p.Spec.Containers = append(p.Spec.Containers, c)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		env     bool
		mut     func(*corev1.Pod)
		wantErr string
	}{
		{name: "bad annotation", env: true, mut: func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationKubeProxyEnabled: "yes please"} },
			wantErr: AnnotationKubeProxyEnabled},
		{name: "reserved container name", env: false, mut: func(p *corev1.Pod) { p.Spec.Containers[0].Name = KubeProxyContainer },
			wantErr: `spec.containers[0].name: "eci-kube-proxy" is reserved`},
		{name: "reserved init container name", env: true, mut: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: KubeProxyContainer, Image: "busybox"}}
		}, wantErr: `spec.initContainers[0].name: "eci-kube-proxy" is reserved`},
		{name: "reserved volume name", env: true, mut: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: KubeProxyVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, wantErr: `spec.volumes[0].name: "eci-kube-proxy" is reserved`},
		{name: "no room for kube-proxy", env: true, mut: many(20), wantErr: "kube-proxy takes one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl, cluster := kubeProxyTranslator(t, tc.env, nil)
			_, err := tl.build(context.Background(), testPod(tc.mut))
			var invalid *InvalidPodError
			if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want an InvalidPodError with %q", err, tc.wantErr)
			}
			if calls, tokens := cluster.recorded(); len(calls) != 0 || tokens != 0 {
				t.Errorf("a refused pod read the cluster: %q", calls)
			}
		})
	}
	// Twenty containers are fine without kube-proxy.
	tl, _ := kubeProxyTranslator(t, false, nil)
	if _, err := tl.build(context.Background(), testPod(many(20))); err != nil {
		t.Errorf("20 containers without kube-proxy: %v", err)
	}
}

// TestKubeProxyUnsizedPod: a pod that sizes nothing keeps the cloud's
// default size, which holds kube-proxy as well.
func TestKubeProxyUnsizedPod(t *testing.T) {
	tl, _ := kubeProxyTranslator(t, true, nil)
	tr, err := tl.build(context.Background(), testPod(func(p *corev1.Pod) { p.Spec.Containers[0].Resources = corev1.ResourceRequirements{} }))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := kubeProxyOf(tr.Req); c == nil {
		t.Fatal("no kube-proxy container")
	}
	if tr.Req.Cpu != 0 || tr.Req.Memory != 0 {
		t.Errorf("group size %v/%v, want the cloud's default (0/0)", tr.Req.Cpu, tr.Req.Memory)
	}
}
