package provider

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

func TestBuildRequest(t *testing.T) {
	prov := &Provider{opts: Options{NodeName: "vk", ClusterID: "c1", VSwitches: []string{"vsw-a", "vsw-b"}, SecurityGroup: "sg-1"}}
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
			wantErr: "spec.volumes[0] (host): this volume type is not supported on ECI",
		},
		{
			name:    "empty image refused",
			pod:     testPod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			wantErr: "spec.containers[0].image: is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := prov.buildRequest(context.Background(), tt.pod)
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
			tt.check(t, r)
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
