package translate

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func testPod(mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", UID: "11111111-2222-3333-4444-555555555555"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "app", Image: "nginx:1.25", Command: []string{"sh", "-c"}, Args: []string{"echo hi"},
				Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
				Env:   []corev1.EnvVar{{Name: "A", Value: "1"}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
				},
			}},
		},
	}
	if mut != nil {
		mut(p)
	}
	return p
}

// testTranslator returns a translator whose cluster holds the given
// objects and whose cluster DNS address is 10.96.0.10.
func testTranslator(t *testing.T, objs ...any) *Translator {
	t.Helper()
	return New(Options{NodeName: "vk", ClusterID: "c1", KubeProxy: true}, newMemCluster(t, objs...))
}

// build translates pod as a node placing pods in vsw-a,vsw-b and sg-1.
func (t *Translator) build(ctx context.Context, pod *corev1.Pod) (*Translation, error) {
	return t.BuildRequest(ctx, pod, []string{"vsw-a", "vsw-b"}, "sg-1")
}

func TestBuildRequest(t *testing.T) {
	prov := testTranslator(t)
	tests := []struct {
		name    string
		pod     *corev1.Pod
		wantErr string
		check   func(t *testing.T, r *eci.CreateContainerGroupRequest)
	}{
		{
			name: "basic pod",
			pod:  testPod(nil),
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if r.VSwitchId != "vsw-a,vsw-b" || r.SecurityGroupId != "sg-1" || r.ScheduleStrategy != "VSwitchOrdered" {
					t.Errorf("placement = %q %q %q", r.VSwitchId, r.SecurityGroupId, r.ScheduleStrategy)
				}
				if r.ClientToken != "11111111-2222-3333-4444-555555555555" {
					t.Errorf("ClientToken = %q, want the pod UID", r.ClientToken)
				}
				if r.RestartPolicy != "Never" || r.ContainerGroupName != "default-web-0" {
					t.Errorf("RestartPolicy %q name %q", r.RestartPolicy, r.ContainerGroupName)
				}
				c := r.Containers[0]
				if c.Cpu != 1 || c.Memory != 2 {
					t.Errorf("limits must win: cpu %v mem %v", c.Cpu, c.Memory)
				}
				if r.Cpu != 1 || r.Memory != 2 {
					t.Errorf("group size cpu %v mem %v", r.Cpu, r.Memory)
				}
				if c.Ports[0].Port != 80 || c.EnvironmentVars[0].Key != "A" || c.Args[0] != "echo hi" {
					t.Errorf("container = %+v", c)
				}
				tags := map[string]string{}
				for _, tg := range r.Tags {
					tags[tg.Key] = tg.Value
				}
				for k, v := range map[string]string{TagClusterID: "c1", TagNodeName: "vk", TagPodNamespace: "default", TagPodName: "web-0", TagPodUID: "11111111-2222-3333-4444-555555555555"} {
					if tags[k] != v {
						t.Errorf("tag %s = %q, want %q", k, tags[k], v)
					}
				}
			},
		},
		{
			name: "requests used without limits, default restart policy",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.RestartPolicy = ""
				p.Spec.Containers[0].Resources.Limits = nil
			}),
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if r.Containers[0].Cpu != 0.25 || r.Containers[0].Memory != 0.5 || r.RestartPolicy != "Always" {
					t.Errorf("cpu %v mem %v policy %q", r.Containers[0].Cpu, r.Containers[0].Memory, r.RestartPolicy)
				}
			},
		},
		{
			name: "emptyDir and downward status.podIP",
			pod: testPod(func(p *corev1.Pod) {
				size := resource.MustParse("1Gi")
				p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size}}}}
				p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}})
			}),
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				v := r.Volumes[0]
				if v.Type != eci.VolumeEmptyDir || v.EmptyDirMedium != "memory" || v.EmptyDirSizeLimit != "1Gi" {
					t.Errorf("volume = %+v", v)
				}
				if e := r.Containers[0].EnvironmentVars[1]; e.FieldPath != "status.podIP" {
					t.Errorf("env = %+v", e)
				}
			},
		},
		{
			name: "init containers keep their order",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "first", Image: "busybox"}, {Name: "second", Image: "busybox"}}
			}),
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if len(r.InitContainers) != 2 || r.InitContainers[0].Name != "first" || r.InitContainers[1].Name != "second" {
					t.Errorf("init containers = %+v", r.InitContainers)
				}
			},
		},
		{
			name: "hostPath refused with the field",
			pod: testPod(func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var"}}}}
			}),
			wantErr: "spec.volumes[0] (host).hostPath: hostPath volumes are not supported on ECI",
		},
		{
			name:    "empty image refused",
			pod:     testPod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			wantErr: "spec.containers[0].image: is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := prov.build(context.Background(), tt.pod)
			if tt.wantErr != "" {
				var inv *InvalidPodError
				if err == nil || !errors.As(err, &inv) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want InvalidPodError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, tr.Req)
		})
	}
}

func TestGroupName(t *testing.T) {
	tests := []struct{ ns, name, want string }{
		{"default", "web-0", "default-web-0"},
		{"Team.A", "svc.v1", "team-a-svc-v1"},
		{"x", strings.Repeat("a", 200), "x-" + strings.Repeat("a", 126)},
	}
	for _, tt := range tests {
		got := groupName(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: tt.ns, Name: tt.name}})
		if got != tt.want {
			t.Errorf("groupName(%s/%s) = %q, want %q", tt.ns, tt.name, got, tt.want)
		}
	}
}

func TestDownwardFiles(t *testing.T) {
	pod := testPod(func(p *corev1.Pod) { p.Labels = map[string]string{"b": "2", "a": "1"} })
	files, err := downwardFiles(pod, []corev1.DownwardAPIVolumeFile{
		{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(files[0].data) != "web-0" || string(files[1].data) != "a=\"1\"\nb=\"2\"\n" {
		t.Errorf("files = %q %q", files[0].data, files[1].data)
	}
	if _, err := downwardFiles(pod, []corev1.DownwardAPIVolumeFile{{Path: "x", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}); err == nil {
		t.Error("unsupported fieldPath accepted")
	}
}

func TestTranslateFields(t *testing.T) {
	tests := []struct {
		name     string
		pod      func(*corev1.Pod)
		original func(*corev1.Pod) // the pod as stored, when it differs
		wantErr  string
		wantNote string
		check    func(t *testing.T, tr *Translation)
	}{
		{
			name: "env: valueFrom, envFrom, $(VAR), status.podIP and Service links",
			pod: func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}
				c.Env = append(c.Env,
					corev1.EnvVar{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
					corev1.EnvVar{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					corev1.EnvVar{Name: "PASS", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "pw"}}},
					corev1.EnvVar{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
					corev1.EnvVar{Name: "URL", Value: "http://$(POD):$(CFG_port)/$(MISSING)$$(ESC)"},
				)
			},
			check: func(t *testing.T, tr *Translation) {
				env := map[string]eci.EnvVar{}
				var order []string
				for _, e := range tr.Req.Containers[0].EnvironmentVars {
					env[e.Key] = e
					order = append(order, e.Key)
				}
				if !sort.StringsAreSorted(order) {
					t.Errorf("env not sorted: %v", order)
				}
				want := map[string]string{"A": "1", "CFG_port": "8080", "POD": "web-0", "PASS": "pw1", "MEM": "2048",
					"URL": "http://web-0:8080/$(MISSING)$(ESC)", "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
					"KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}
				for k, v := range want {
					if env[k].Value != v {
						t.Errorf("env %s = %q, want %q", k, env[k].Value, v)
					}
				}
				if e := env["MY_IP"]; e.FieldPath != "status.podIP" || e.Value != "" {
					t.Errorf("MY_IP = %+v, want FieldRef status.podIP", e)
				}
			},
		},
		{
			name: "probes, named ports and lifecycle hooks",
			pod: func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.Ports = append(c.Ports, corev1.ContainerPort{Name: "http", ContainerPort: 8080})
				c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}, PeriodSeconds: 5}
				c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, InitialDelaySeconds: 3}
				c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 2, FailureThreshold: 10}
				c.Lifecycle = &corev1.Lifecycle{
					PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo started"}}},
					PreStop:   &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/stop", Port: intstr.FromString("http")}},
				}
			},
			wantNote: "startupProbe: ECI has no startup probe; the liveness probe starts 20s later",
			check: func(t *testing.T, tr *Translation) {
				c := tr.Req.Containers[0]
				if r := c.ReadinessProbe; r == nil || r.HTTPGetPath != "/ready" || r.HTTPGetPort != 8080 || r.PeriodSeconds != 5 {
					t.Errorf("readiness = %+v", r)
				}
				if l := c.LivenessProbe; l == nil || l.TCPSocketPort != 80 || l.InitialDelaySeconds != 23 {
					t.Errorf("liveness = %+v (initial delay must include the startup budget)", l)
				}
				if len(c.PostStartExec) != 3 || c.PreStopHTTPPath != "/stop" || c.PreStopHTTPPort != 8080 {
					t.Errorf("hooks = %+v %q %d", c.PostStartExec, c.PreStopHTTPPath, c.PreStopHTTPPort)
				}
			},
		},
		{
			name: "probe naming an undeclared port is refused",
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("metrics")}}}
			},
			wantErr: `spec.containers[0].readinessProbe.httpGet.port: names port "metrics"`,
		},
		{
			name: "security context, sysctls, GPU, DNS and host aliases",
			pod: func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), Sysctls: []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}}}
				p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}
				p.Spec.Containers[0].Resources.Limits[GPUResource] = resource.MustParse("2")
				p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.0.0.1", Hostnames: []string{"db"}}}
				p.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: []string{"corp.example"}}
			},
			check: func(t *testing.T, tr *Translation) {
				c := tr.Req.Containers[0]
				if c.SecurityContext == nil || *c.SecurityContext.RunAsUser != 1000 || c.SecurityContext.CapabilityAdd[0] != "NET_ADMIN" {
					t.Errorf("security context = %+v", c.SecurityContext)
				}
				if c.Gpu != 2 {
					t.Errorf("gpu = %d", c.Gpu)
				}
				if len(tr.Req.HostSysctls) != 1 || len(tr.Req.Sysctls) != 0 || tr.Req.HostAliases[0].Hostnames[0] != "db" {
					t.Errorf("sysctls %+v host sysctls %+v aliases %+v", tr.Req.Sysctls, tr.Req.HostSysctls, tr.Req.HostAliases)
				}
				d := tr.Req.DNSConfig
				if tr.Req.DnsPolicy != "None" || d == nil || d.NameServers[0] != "10.96.0.10" || d.Searches[0] != "default.svc.cluster.local" || d.Searches[3] != "corp.example" {
					t.Errorf("dns policy %q config %+v", tr.Req.DnsPolicy, d)
				}
			},
		},
		{
			name: "spec annotations and placement overrides",
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{
					AnnotationUseSpecs: "2-4Gi, ecs.c6.xlarge", AnnotationVSwitch: "vsw-x,vsw-y", AnnotationSecurityGroup: "sg-9",
					AnnotationScheduleStrategy: "VSwitchRandom", AnnotationSpotStrategy: "SpotAsPriceGo", AnnotationCustomTags: "team:a,env:prod",
					AnnotationWithEIP: "true", AnnotationNTPServer: "100.100.3.1", AnnotationAutoIMC: "true", AnnotationMaxPendingMinute: "30",
					AnnotationComputeCategory: "economy", AnnotationRAMRoleName: "role-1",
				}
			},
			check: func(t *testing.T, tr *Translation) {
				r := tr.Req
				if len(tr.Specs) != 2 || tr.Specs[0].String() != "2-4Gi" || tr.Specs[1].String() != "ecs.c6.xlarge" || r.Cpu != 2 || r.Memory != 4 {
					t.Errorf("specs %v cpu %v mem %v", tr.Specs, r.Cpu, r.Memory)
				}
				if r.VSwitchId != "vsw-x,vsw-y" || r.SecurityGroupId != "sg-9" || r.ScheduleStrategy != "VSwitchRandom" || r.SpotStrategy != "SpotAsPriceGo" {
					t.Errorf("placement %+v", r)
				}
				if !r.AutoCreateEip || r.NtpServers[0] != "100.100.3.1" || !r.AutoMatchImageCache || r.MaxPendingMinute != 30 || r.ComputeCategories[0] != "economy" || r.RamRoleName != "role-1" {
					t.Errorf("annotations not applied: %+v", r)
				}
				if r.Tags[len(r.Tags)-1] != (eci.Tag{Key: "env", Value: "prod"}) {
					t.Errorf("custom tags = %+v", r.Tags)
				}
			},
		},
		{name: "bad spec annotation", pod: func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationUseSpecs: "big"} }, wantErr: "metadata.annotations[k8s.aliyun.com/eci-use-specs]"},
		{name: "too many custom tags", pod: func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationCustomTags: "a:1,b:2,c:3,d:4"} }, wantErr: "eci-custom-tags]: has 4 tags"},
		{name: "custom tag clashing with ours", pod: func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationCustomTags: "PodName:x"} }, wantErr: "used by the virtual node"},
		{name: "bad fail strategy", pod: func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationFailStrategy: "retry"} }, wantErr: "eci-fail-strategy"},
		{name: "max pending out of range", pod: func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationMaxPendingMinute: "5"} }, wantErr: "eci-max-pending-minute"},
		{name: "spot price required", pod: func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationSpotStrategy: "SpotWithPriceLimit"} }, wantErr: "eci-spot-price-limit"},
		{name: "host network refused", pod: func(p *corev1.Pod) { p.Spec.HostNetwork = true }, wantErr: "spec.hostNetwork"},
		{
			name: "init containers size the group when larger",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "big", Image: "busybox", Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("1Gi")}}}}
			},
			check: func(t *testing.T, tr *Translation) {
				if tr.Req.Cpu != 4 || tr.Req.Memory != 2 {
					t.Errorf("group cpu %v mem %v, want max(init, sum) = 4 / 2", tr.Req.Cpu, tr.Req.Memory)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod(tt.pod)
			tr, err := testTranslator(t,
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}, Data: map[string]string{"port": "8080"}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "sec"}, Data: map[string][]byte{"pw": []byte("pw1")}},
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"},
					Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}}},
			).build(context.Background(), pod)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantNote != "" && !strings.Contains(strings.Join(tr.Notes, "\n"), tt.wantNote) {
				t.Errorf("notes %q lack %q", tr.Notes, tt.wantNote)
			}
			tt.check(t, tr)
		})
	}
}

func TestKubeProxyOffUsesVPCResolver(t *testing.T) {
	prov := testTranslator(t)
	prov.opts.KubeProxy = false
	tr, err := prov.build(context.Background(), testPod(nil))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Req.DnsPolicy != "Default" || tr.Req.DNSConfig != nil {
		t.Errorf("dns policy %q config %+v, want the VPC resolver", tr.Req.DnsPolicy, tr.Req.DNSConfig)
	}
	if !strings.Contains(strings.Join(tr.Notes, "\n"), "ECI_KUBE_PROXY is false") {
		t.Errorf("no note explains the DNS change: %q", tr.Notes)
	}
}
