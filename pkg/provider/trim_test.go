package provider

import (
	"context"
	"reflect"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// fullPod is a bound pod with every field trimPod drops set, beside the
// ones the node reads (annotations of ours and kubectl's, env, volumes,
// probes, status).
func fullPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "web-0", UID: "uid-1", ResourceVersion: "42",
			Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{
				"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","kind":"Pod"}`,
				"k8s.aliyun.com/eci-use-specs":                     "2-4Gi",
				"k8s.aliyun.com/eci-instance-id":                   "eci-1",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply,
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}},
		},
		Spec: corev1.PodSpec{
			NodeName: "virtual-kubelet", RestartPolicy: corev1.RestartPolicyAlways, DNSPolicy: corev1.DNSDefault,
			AutomountServiceAccountToken: ptr.To(false), EnableServiceLinks: ptr.To(false), Hostname: "web-0", Subdomain: "web",
			HostAliases: []corev1.HostAlias{{IP: "10.0.0.1", Hostnames: []string{"db"}}},
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example.com/web:1", Command: []string{"serve"}, Args: []string{"--port=8080"},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}}},
				VolumeMounts:   []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			// What the scheduler read; the pod is bound.
			NodeSelector: map[string]string{"type": "virtual-kubelet"},
			Tolerations: []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)}},
			Affinity: &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "type", Operator: corev1.NodeSelectorOpIn, Values: []string{"virtual-kubelet"}}}}}}},
				PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100,
					PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "topology.kubernetes.io/zone", LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}}},
			},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone",
				WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
			SchedulingGates:   []corev1.PodSchedulingGate{{Name: "example.com/gate"}},
			SchedulerName:     "default-scheduler",
			PriorityClassName: "high", Priority: ptr.To[int32](1000), PreemptionPolicy: ptr.To(corev1.PreemptLowerPriority),
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.0.5", Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func TestTrimPod(t *testing.T) {
	pod := fullPod()
	got, err := TrimPod(pod.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	// Exactly these go; everything else, the whole of metadata (but
	// managedFields) and status included, stays as it was.
	want := pod.DeepCopy()
	want.ManagedFields = nil
	want.Spec.Affinity, want.Spec.Tolerations, want.Spec.NodeSelector = nil, nil, nil
	want.Spec.TopologySpreadConstraints, want.Spec.SchedulingGates = nil, nil
	want.Spec.SchedulerName, want.Spec.PriorityClassName = "", ""
	want.Spec.Priority, want.Spec.PreemptionPolicy = nil, nil
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("trimPod changed more (or less) than the scheduler's inputs and managedFields:\ngot  %+v\nwant %+v", got, want)
	}
	trimmed := got.(*corev1.Pod)
	if trimmed.Annotations["kubectl.kubernetes.io/last-applied-configuration"] == "" {
		t.Error("trimPod dropped kubectl's last-applied-configuration: the next status write would delete it from the pod")
	}

	// Anything else passes through untouched.
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", ManagedFields: pod.ManagedFields}}
	if out, err := TrimPod(other); err != nil || out != other || len(other.ManagedFields) != 1 {
		t.Errorf("TrimPod(ConfigMap) = %v, %v; want it unchanged", out, err)
	}
}

// TestTrimmedPodTranslatesTheSame: what trimPod drops is not read by the
// translation, so a trimmed pod gives the same CreateContainerGroup
// request, notes and warnings as the whole pod.
func TestTrimmedPodTranslatesTheSame(t *testing.T) {
	tr := translate.New(translate.Options{NodeName: "virtual-kubelet", ClusterID: "c1"}, emptyCluster{})
	whole, err := tr.BuildRequest(context.Background(), fullPod(), []string{"vsw-a", "vsw-b"}, "sg-a")
	if err != nil {
		t.Fatalf("translate the whole pod: %v", err)
	}
	obj, _ := TrimPod(fullPod())
	trimmed, err := tr.BuildRequest(context.Background(), obj.(*corev1.Pod), []string{"vsw-a", "vsw-b"}, "sg-a")
	if err != nil {
		t.Fatalf("translate the trimmed pod: %v", err)
	}
	if !reflect.DeepEqual(whole.Req, trimmed.Req) {
		t.Errorf("the trimmed pod's request differs:\nwhole   %+v\ntrimmed %+v", whole.Req, trimmed.Req)
	}
	if !reflect.DeepEqual(whole.Notes, trimmed.Notes) || !reflect.DeepEqual(whole.Warnings, trimmed.Warnings) {
		t.Errorf("notes/warnings differ: whole %q %q, trimmed %q %q", whole.Notes, whole.Warnings, trimmed.Notes, trimmed.Warnings)
	}
	if len(whole.Req.Containers) != 1 || whole.Req.Containers[0].Image != "registry.example.com/web:1" {
		t.Errorf("the request does not carry the pod's container: %+v", whole.Req.Containers)
	}
}

// emptyCluster is a cluster with no objects: the test pod refers to none.
type emptyCluster struct{}

func (emptyCluster) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), ns+"/"+name)
}
func (emptyCluster) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), ns+"/"+name)
}
func (emptyCluster) Services(string) ([]*corev1.Service, error)   { return nil, nil }
func (emptyCluster) ClusterDNS(context.Context) ([]string, error) { return nil, nil }
func (emptyCluster) Token(_ context.Context, ns, sa string, _ *authv1.TokenRequest) (*authv1.TokenRequest, error) {
	return nil, apierrors.NewNotFound(corev1.Resource("serviceaccounts"), ns+"/"+sa)
}
func (emptyCluster) PersistentVolumeClaim(_ context.Context, ns, name string) (*corev1.PersistentVolumeClaim, error) {
	return nil, apierrors.NewNotFound(corev1.Resource("persistentvolumeclaims"), ns+"/"+name)
}
func (emptyCluster) PersistentVolume(_ context.Context, name string) (*corev1.PersistentVolume, error) {
	return nil, apierrors.NewNotFound(corev1.Resource("persistentvolumes"), name)
}
