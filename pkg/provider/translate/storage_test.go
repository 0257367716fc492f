package translate

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func withEphemeral(req, limit string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	if req != "" {
		r.Requests[corev1.ResourceEphemeralStorage] = resource.MustParse(req)
	}
	if limit != "" {
		r.Limits[corev1.ResourceEphemeralStorage] = resource.MustParse(limit)
	}
	return r
}

// TestEphemeralStorage: the pod's ephemeral-storage request beyond the
// free 30 GiB becomes EphemeralStorage in whole GiB, the vendor's
// annotation adds its value, the larger of the two wins.
func TestEphemeralStorage(t *testing.T) {
	tr := testTranslator(t)
	for _, tc := range []struct {
		name      string
		mut       func(p *corev1.Pod)
		want      int
		wantErr   string
		wantNotes []string
	}{
		{name: "none", mut: func(p *corev1.Pod) {}, want: 0},
		{name: "within the free 30Gi", mut: func(p *corev1.Pod) { p.Spec.Containers[0].Resources = withEphemeral("20Gi", "") }, want: 0},
		{name: "beyond: the excess, rounded up", mut: func(p *corev1.Pod) { p.Spec.Containers[0].Resources = withEphemeral("50500Mi", "") }, want: 20,
			wantNotes: []string{"30Gi free plus 20 GiB added"}},
		{name: "containers add up", mut: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = withEphemeral("20Gi", "")
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "b", Image: "busybox", Resources: withEphemeral("20Gi", "")})
		}, want: 10},
		{name: "a bigger init container wins", mut: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = withEphemeral("10Gi", "")
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", Resources: withEphemeral("40Gi", "")}}
		}, want: 10},
		{name: "annotation", mut: func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationExtraEphemeralStorage: "50Gi"} }, want: 50},
		{name: "annotation and request: the larger", mut: func(p *corev1.Pod) {
			p.Annotations = map[string]string{AnnotationExtraEphemeralStorage: "5Gi"}
			p.Spec.Containers[0].Resources = withEphemeral("40Gi", "")
		}, want: 10},
		{name: "limit: noted as not enforced", mut: func(p *corev1.Pod) { p.Spec.Containers[0].Resources = withEphemeral("10Gi", "10Gi") }, want: 0,
			wantNotes: []string{"ECI does not enforce them per container"}},
		{name: "bad annotation", mut: func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationExtraEphemeralStorage: "lots"} },
			wantErr: AnnotationExtraEphemeralStorage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tr.build(context.Background(), testPod(tc.mut))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Req.EphemeralStorage != tc.want {
				t.Errorf("EphemeralStorage = %d, want %d", got.Req.EphemeralStorage, tc.want)
			}
			notes := strings.Join(got.Notes, "; ")
			for _, n := range tc.wantNotes {
				if !strings.Contains(notes, n) {
					t.Errorf("notes %q lack %q", notes, n)
				}
			}
		})
	}
}

// TestPublishedContainerFields: termination message settings, hook HTTP
// headers, mount propagation and a shared process namespace go to their
// published parameters.
func TestPublishedContainerFields(t *testing.T) {
	tr := testTranslator(t)
	pod := testPod(func(p *corev1.Pod) {
		p.Spec.ShareProcessNamespace = ptr.To(true)
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		c := &p.Spec.Containers[0]
		c.TerminationMessagePath = "/tmp/why"
		c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
		c.VolumeMounts = []corev1.VolumeMount{
			{Name: "data", MountPath: "/a", MountPropagation: ptr.To(corev1.MountPropagationHostToContainer)},
			{Name: "data", MountPath: "/b", MountPropagation: ptr.To(corev1.MountPropagationNone)},
		}
		c.Lifecycle = &corev1.Lifecycle{
			PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/up", Port: intstr.FromInt32(80),
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Hook", Value: "start"}}}},
			PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/down", Port: intstr.FromInt32(80),
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Hook", Value: "stop"}, {Name: "X-Two", Value: "2"}}}},
		}
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			TerminationMessagePath: corev1.TerminationMessagePathDefault}}
	})
	got, err := tr.build(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	r := got.Req
	if !r.ShareProcessNamespace {
		t.Error("ShareProcessNamespace not set")
	}
	var app eci.Container
	for _, c := range r.Containers {
		if c.Name == "app" {
			app = c
		}
	}
	if app.TerminationMessagePath != "/tmp/why" || app.TerminationMessagePolicy != "FallbackToLogsOnError" {
		t.Errorf("termination message %q %q", app.TerminationMessagePath, app.TerminationMessagePolicy)
	}
	if len(app.VolumeMounts) != 2 || app.VolumeMounts[0].MountPropagation != "HostToContainer" || app.VolumeMounts[1].MountPropagation != "" {
		t.Errorf("mounts %+v: want HostToContainer, then None left to the default", app.VolumeMounts)
	}
	if want := []eci.HTTPHeader{{Name: "X-Hook", Value: "start"}}; !reflect.DeepEqual(app.PostStartHTTPHeaders, want) {
		t.Errorf("postStart headers %+v, want %+v", app.PostStartHTTPHeaders, want)
	}
	if len(app.PreStopHTTPHeaders) != 2 || app.PreStopHTTPHeaders[1] != (eci.HTTPHeader{Name: "X-Two", Value: "2"}) {
		t.Errorf("preStop headers %+v", app.PreStopHTTPHeaders)
	}
	if len(r.InitContainers) != 1 || r.InitContainers[0].TerminationMessagePolicy != "FallbackToLogsOnError" || r.InitContainers[0].TerminationMessagePath != "" {
		t.Errorf("init container %+v: want the policy and the default path left out", r.InitContainers)
	}
	// Defaults (what the apiserver fills in) are not sent.
	plain, err := tr.build(context.Background(), testPod(func(p *corev1.Pod) {
		p.Spec.Containers[0].TerminationMessagePath = corev1.TerminationMessagePathDefault
		p.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c := plain.Req.Containers[0]; c.TerminationMessagePath != "" || c.TerminationMessagePolicy != "" || plain.Req.ShareProcessNamespace {
		t.Errorf("defaults sent: %q %q %v", c.TerminationMessagePath, c.TerminationMessagePolicy, plain.Req.ShareProcessNamespace)
	}
}
