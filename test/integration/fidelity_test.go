package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	authnv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func podEvents(ctx context.Context, kube kubernetes.Interface, ns, name string) ([]corev1.Event, error) {
	l, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// simFiles returns the ConfigFileVolume files the simulator stored for the
// group, decoded, keyed by volume name and path.
func simFiles(t *testing.T, sim *simulator.Simulator, groupID string) map[string]string {
	t.Helper()
	g, ok := sim.Group(groupID)
	if !ok {
		t.Fatalf("group %s not in the simulator", groupID)
	}
	out := map[string]string{}
	for _, v := range g.Volumes {
		for _, f := range v.ConfigFileVolumeConfigFileToPaths {
			b, err := base64.StdEncoding.DecodeString(f.Content)
			if err != nil {
				t.Fatalf("volume %s file %s: content is not base64: %v", v.Name, f.Path, err)
			}
			out[v.Name+"/"+f.Path] = string(b)
		}
	}
	return out
}

// TestPodFidelity runs pods that use what real workloads use and checks the
// cloud got it and the pod reports it.
func TestPodFidelity(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-fidelity")
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) { c.StartDelay = 300 * time.Millisecond }})
	env.StartNode(t, env.NodeConfig(t, nodeName))
	kube := env.Kube
	ctx := context.Background()
	ns := uniqueName("fidelity")
	createNamespace(t, kube, ns)

	t.Run("init containers, configMap, secret, SA token, readiness probe and status.podIP", func(t *testing.T) {
		if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "app-config"}, Data: map[string]string{"app.conf": "mode=eci\n"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "app-secret"}, StringData: map[string]string{"password": "s3cret"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, "sh", "-c", "echo ip=$MY_IP; while true; do sleep 1; done")
		spec := tpl.Spec
		spec.InitContainers = []corev1.Container{
			{Name: "init-a", Image: "busybox", Command: []string{"sh", "-c", "echo first"}},
			{Name: "init-b", Image: "busybox", Command: []string{"sh", "-c", "echo second"}},
		}
		c := &spec.Containers[0]
		c.Env = []corev1.EnvVar{{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 1}
		c.VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "secret", MountPath: "/etc/secret", ReadOnly: true}}
		spec.Volumes = []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
			{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-secret", DefaultMode: ptr.To[int32](0o400)}}},
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "full", Namespace: ns}, Spec: spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var got *corev1.Pod
		defer func() {
			if t.Failed() && got != nil {
				t.Logf("pod: %+v", got.Status)
			}
		}()
		poll(t, "pod Ready", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "full", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got = p
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if len(got.Status.InitContainerStatuses) != 2 {
			t.Fatalf("init container statuses = %+v", got.Status.InitContainerStatuses)
		}
		for _, cs := range got.Status.InitContainerStatuses {
			if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
				t.Errorf("init container %s state %+v, want terminated with 0", cs.Name, cs.State)
			}
		}
		groupID := got.Annotations[translate.AnnotationInstanceID]
		if spec := got.Annotations[translate.AnnotationInstanceSpec]; spec == "" {
			t.Errorf("annotation %s not written back", translate.AnnotationInstanceSpec)
		}
		files := simFiles(t, env.Simulator, groupID)
		if files["config/app.conf"] != "mode=eci\n" || files["secret/password"] != "s3cret" {
			t.Errorf("config files in the group = %v", files)
		}
		// The default projected volume carries a real, bound token.
		var token, saVolume string
		for k, v := range files {
			if strings.HasSuffix(k, "/token") && strings.HasPrefix(k, "kube-api-access-") {
				token, saVolume = v, k
			}
		}
		if token == "" {
			t.Fatalf("no projected service-account token among %v", keys(files))
		}
		if files[strings.TrimSuffix(saVolume, "token")+"namespace"] != ns || !strings.Contains(files[strings.TrimSuffix(saVolume, "token")+"ca.crt"], "BEGIN CERTIFICATE") {
			t.Errorf("projected volume lacks namespace or ca.crt: %v", keys(files))
		}
		review, err := kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:"+ns+":default" {
			t.Errorf("token review = %+v", review.Status)
		}
		if pn := review.Status.User.Extra["authentication.kubernetes.io/pod-name"]; len(pn) != 1 || pn[0] != "full" {
			t.Errorf("token is not bound to the pod: extra = %v", review.Status.User.Extra)
		}
		// status.podIP reached the container.
		poll(t, "log line with the pod IP", 30*time.Second, func(ctx context.Context) (bool, error) {
			out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", env.ControlPlane.Kubeconfig(), "-n", ns, "logs", "full").CombinedOutput()
			if err != nil {
				return false, fmt.Errorf("%v: %s", err, out)
			}
			return strings.Contains(string(out), "ip="+got.Status.PodIP+"\n") && got.Status.PodIP != "", nil
		})
	})

	t.Run("hostPath is refused with an Event naming hostPath and no group", func(t *testing.T) {
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		tpl.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hostpath", Namespace: ns}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "UnsupportedPodSpec event", 30*time.Second, func(ctx context.Context) (bool, error) {
			evs, err := podEvents(ctx, kube, ns, "hostpath")
			if err != nil {
				return false, err
			}
			for _, e := range evs {
				if e.Reason == "UnsupportedPodSpec" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "hostPath") {
					return true, nil
				}
			}
			return false, nil
		})
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "hostpath", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Status.Message, "hostPath") {
			t.Errorf("pod status message %q does not name hostPath", p.Status.Message)
		}
		if id := p.Annotations[translate.AnnotationInstanceID]; id != "" {
			t.Errorf("a group %s was created for a refused pod", id)
		}
	})

	t.Run("eci-use-specs falls back to the next spec when the first is out of stock", func(t *testing.T) {
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "specs", Namespace: ns,
			Annotations: map[string]string{translate.AnnotationUseSpecs: "64-256Gi,2-4Gi"}}, Spec: tpl.Spec}
		// No zone holds 64 vCPU more than the pods already use.
		for _, z := range env.SimulatorConfig.Zones {
			if err := env.Simulator.SetStock(z.ZoneId, 40, 1000); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var got *corev1.Pod
		poll(t, "pod Running", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "specs", metav1.GetOptions{})
			got = p
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
		if s := got.Annotations[translate.AnnotationInstanceSpec]; s != "2-4Gi" {
			t.Errorf("%s = %q, want 2-4Gi", translate.AnnotationInstanceSpec, s)
		}
		g, _ := env.Simulator.Group(got.Annotations[translate.AnnotationInstanceID])
		if g.Cpu != 2 || g.Memory != 4 {
			t.Errorf("group size %v/%v, want 2/4", g.Cpu, g.Memory)
		}
	})

	t.Run("a crashing Always container is restarted and counted", func(t *testing.T) {
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, "sh", "-c", "echo crash; exit 1")
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "crasher", Namespace: ns}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "restart count ≥ 1 with the last exit code", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "crasher", metav1.GetOptions{})
			if err != nil || len(p.Status.ContainerStatuses) == 0 {
				return false, err
			}
			cs := p.Status.ContainerStatuses[0]
			last := cs.LastTerminationState.Terminated
			return cs.RestartCount >= 1 && last != nil && last.ExitCode == 1 && p.Status.Phase == corev1.PodRunning, nil
		})
	})

	t.Run("cloud events reach the pod and explain an image pull failure", func(t *testing.T) {
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways)
		tpl.Spec.Containers[0].Image = "registry.example.com/pull-fail/app:1"
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "badimage", Namespace: ns}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "pull failure on the pod", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "badimage", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			evs, err := podEvents(ctx, kube, ns, "badimage")
			if err != nil {
				return false, err
			}
			warned := false
			for _, e := range evs {
				if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "pull") {
					warned = true
				}
			}
			return warned && p.Status.Phase == corev1.PodPending && strings.Contains(p.Status.Message, "ImagePull"), nil
		})
	})

	t.Run("a CronJob's Jobs complete", func(t *testing.T) {
		cj := &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: ns},
			Spec: batchv1.CronJobSpec{
				Schedule: "* * * * *",
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
					BackoffLimit: ptr.To[int32](0),
					Template:     onVirtualNode(nodeName, map[string]string{"cron": "tick"}, corev1.RestartPolicyOnFailure, "sh", "-c", "echo tick; exit 0"),
				}},
			},
		}
		if _, err := kube.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "a completed Job of the CronJob", 150*time.Second, func(ctx context.Context) (bool, error) {
			l, err := kube.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, j := range l.Items {
				if len(j.OwnerReferences) == 1 && j.OwnerReferences[0].Name == "tick" && j.Status.Succeeded == 1 {
					return true, nil
				}
			}
			return false, nil
		})
	})
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
