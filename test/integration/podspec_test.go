package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// waitEvent polls until pod ns/name has an event of type typ and reason
// whose message contains every part, and returns the pod's events with
// that reason.
func waitEvent(t *testing.T, kube kubernetes.Interface, ns, name, typ, reason string, parts ...string) []corev1.Event {
	t.Helper()
	var found []corev1.Event
	poll(t, fmt.Sprintf("%s event %s on %s", typ, reason, name), 60*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := podEvents(ctx, kube, ns, name)
		if err != nil {
			return false, err
		}
		found = found[:0]
		ok := false
		for _, e := range evs {
			if e.Reason != reason {
				continue
			}
			found = append(found, e)
			all := e.Type == typ
			for _, p := range parts {
				all = all && strings.Contains(e.Message, p)
			}
			ok = ok || all
		}
		return ok, nil
	})
	return found
}

// podGroup waits for the pod's group and returns it as the simulator
// holds it.
func podGroup(t *testing.T, kube kubernetes.Interface, sim *simulator.Simulator, ns, name string) simulator.ContainerGroup {
	t.Helper()
	var id string
	poll(t, "group of "+name, 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		id = p.Annotations[translate.AnnotationInstanceID]
		return id != "", nil
	})
	g, ok := sim.Group(id)
	if !ok {
		t.Fatalf("group %s of %s not in the simulator", id, name)
	}
	return g
}

func containerNames[C any](cs []C, name func(C) string) string {
	var out []string
	for _, c := range cs {
		out = append(out, name(c))
	}
	return strings.Join(out, ",")
}

// TestPodSpecOnPublishedAPI runs pods whose fields the published ECI API
// expresses differently from the pod (native sidecars, security contexts,
// sysctls) and checks what the simulated cloud holds, what the pod reports
// and the events that say how the pod was adapted.
func TestPodSpecOnPublishedAPI(t *testing.T) {
	t.Parallel()
	env, nodeName, ns := sharedNodeAndNamespace(t, "vk-podspec", "podspec")
	kube := env.Kube
	ctx := context.Background()
	loop := []string{"sh", "-c", "while true; do sleep 1; done"}

	t.Run("native sidecar runs beside the app and the pod gets Ready", func(t *testing.T) {
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, loop...)
		spec := tpl.Spec
		spec.InitContainers = []corev1.Container{
			{Name: "setup", Image: "busybox", Command: []string{"sh", "-c", "echo ready"}, Stdin: true},
			{Name: "proxy", Image: "busybox", Command: loop, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 1}},
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sidecar", Namespace: ns}, Spec: spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var got *corev1.Pod
		poll(t, "sidecar pod Running and Ready", 90*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "sidecar", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got = p
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return p.Status.Phase == corev1.PodRunning, nil
				}
			}
			return false, nil
		})
		if n := containerNames(got.Status.ContainerStatuses, func(c corev1.ContainerStatus) string { return c.Name }); n != "main" {
			t.Errorf("containerStatuses %s, want main only", n)
		}
		if n := containerNames(got.Status.InitContainerStatuses, func(c corev1.ContainerStatus) string { return c.Name }); n != "setup,proxy" {
			t.Fatalf("initContainerStatuses %s, want setup,proxy", n)
		}
		if s := got.Status.InitContainerStatuses[0].State.Terminated; s == nil || s.ExitCode != 0 {
			t.Errorf("setup state %+v, want terminated with 0", got.Status.InitContainerStatuses[0].State)
		}
		side := got.Status.InitContainerStatuses[1]
		if side.State.Running == nil || side.Started == nil || !*side.Started || !side.Ready {
			t.Errorf("sidecar status %+v, want running, started and ready", side)
		}
		g := podGroup(t, kube, env.Simulator, ns, "sidecar")
		if n := containerNames(g.InitContainers, func(c simulator.InitContainer) string { return c.Name }); n != "setup" {
			t.Errorf("group init containers %s, want setup", n)
		}
		// The pod's containers, sidecars first, then the hidden kube-proxy
		// (ECI_KUBE_PROXY, TestKubeProxy).
		if n := containerNames(g.Containers, func(c simulator.Container) string { return c.Name }); n != "proxy,main,"+translate.KubeProxyContainer {
			t.Errorf("group containers %s, want proxy,main (sidecars first), then %s", n, translate.KubeProxyContainer)
		}
		// ECI's documented sidecar settings: kube-proxy starts first, then
		// the sidecar, then the app container; they exit in reverse order.
		vars := map[string]map[string]string{}
		for _, c := range g.Containers {
			vars[c.Name] = map[string]string{}
			for _, e := range c.EnvironmentVars {
				vars[c.Name][e.Key] = e.Value
			}
		}
		if e := vars["proxy"]; e[translate.EnvContainerType] != translate.ContainerTypeSidecar || e[translate.EnvIgnoreExitCode] != "true" ||
			e[translate.EnvLaunchPriority] != "999" || e[translate.EnvExitPriority] != "-999" {
			t.Errorf("sidecar's ECI settings %v, want type sidecar, exit code ignored, launch priority 999, exit priority -999", e)
		}
		if e := vars["main"]; e[translate.EnvContainerType] != "" || e[translate.EnvLaunchPriority] != "" || e[translate.EnvExitPriority] != "" {
			t.Errorf("app container got ECI settings %v, want none (ECI's defaults)", e)
		}
		// The simulated cloud started them in that order (launch priority).
		var started []string
		for _, e := range g.Events {
			if e.Reason == "Started" {
				started = append(started, strings.TrimPrefix(e.Message, "Started container "))
			}
		}
		if n := strings.Join(started, ","); n != "setup,"+translate.KubeProxyContainer+",proxy,main" {
			t.Errorf("containers started in the order %s, want setup, then %s, proxy, main", n, translate.KubeProxyContainer)
		}
		waitEvent(t, kube, ns, "sidecar", corev1.EventTypeNormal, provider.ReasonPodSpecAdapted,
			"native sidecar spec.initContainers[1] (proxy)", "runs as a regular container of the group", "ECI starts it before the app containers")
		waitEvent(t, kube, ns, "sidecar", corev1.EventTypeWarning, provider.ReasonPodSpecIgnored,
			"stdin is not supported for ECI init containers", "spec.initContainers[0] setup")
		// On the wire: InitContainer.N carries none of the parameters the
		// published API does not define for it, although the sidecar has a
		// probe and the init container stdin.
		var sent map[string]string
		for _, r := range env.Simulator.Requests("CreateContainerGroup") {
			if r.Params["ContainerGroupName"] == g.ContainerGroupName {
				sent = r.Params
			}
		}
		if sent == nil {
			t.Fatalf("no CreateContainerGroup recorded for group %s", g.ContainerGroupName)
		}
		for k := range sent {
			if !strings.HasPrefix(k, "InitContainer.") {
				continue
			}
			for _, bad := range []string{"Probe", "Lifecycle", "Stdin", "Tty", "SecurityContextPrivileged", "SecurityContextRunAs"} {
				if strings.Contains(k, bad) {
					t.Errorf("CreateContainerGroup sent %s=%s, which InitContainer.N does not have", k, sent[k])
				}
			}
		}
		if sent["Container.1.Name"] != "proxy" || sent["Container.1.ReadinessProbe.Exec.Command.1"] != "true" {
			t.Errorf("the sidecar's Container.1 is not proxy with its probe: %v", sent)
		}
	})

	t.Run("native sidecar in a Job's pod (restartPolicy Never) is stopped after the app, and the pod succeeds", func(t *testing.T) {
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyNever, "sh", "-c", "sleep 1; echo done")
		spec := tpl.Spec
		spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "busybox", Command: loop, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "job-sidecar", Namespace: ns}, Spec: spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var got *corev1.Pod
		poll(t, "Job's pod with a native sidecar Succeeded", 90*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "job-sidecar", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got = p
			if p.Status.Phase == corev1.PodFailed {
				return false, fmt.Errorf("pod failed: %s %s", p.Status.Reason, p.Status.Message)
			}
			return p.Status.Phase == corev1.PodSucceeded, nil
		})
		if n := containerNames(got.Status.InitContainerStatuses, func(c corev1.ContainerStatus) string { return c.Name }); n != "proxy" {
			t.Fatalf("initContainerStatuses %s, want proxy", n)
		}
		if s := got.Status.InitContainerStatuses[0].State.Terminated; s == nil {
			t.Errorf("sidecar state %+v, want terminated: ECI stops it once the app has exited", got.Status.InitContainerStatuses[0].State)
		}
		if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Terminated == nil || got.Status.ContainerStatuses[0].State.Terminated.ExitCode != 0 {
			t.Errorf("containerStatuses %+v, want main terminated with 0", got.Status.ContainerStatuses)
		}
		waitEvent(t, kube, ns, "job-sidecar", corev1.EventTypeNormal, provider.ReasonPodSpecAdapted,
			"native sidecar spec.initContainers[0] (proxy)", "so a pod that must complete does", "It is not restarted when it exits, as the pod's restartPolicy is Never")
		evs, err := podEvents(ctx, kube, ns, "job-sidecar")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Reason == "UnsupportedPodSpec" {
				t.Errorf("the pod was refused: %s", e.Message)
			}
		}
		g := podGroup(t, kube, env.Simulator, ns, "job-sidecar")
		if g.Status != simulator.StatusSucceeded {
			t.Errorf("group status %s, want %s", g.Status, simulator.StatusSucceeded)
		}
	})

	t.Run("security context and sysctls reach the group; unexpressible fields give one warning", func(t *testing.T) {
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, loop...)
		spec := tpl.Spec
		spec.SecurityContext = &corev1.PodSecurityContext{
			RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](3000), RunAsNonRoot: ptr.To(true), FSGroup: ptr.To[int64](2000),
			Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ping_group_range", Value: "0 2147483647"}, {Name: "net.core.somaxconn", Value: "1024"}},
		}
		spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true),
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"MKNOD"}}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "secure", Namespace: ns}, Spec: spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		g := podGroup(t, kube, env.Simulator, ns, "secure")
		if s := g.EciSecurityContext.Sysctls; len(s) != 1 || s[0].Name != "net.ipv4.ping_group_range" {
			t.Errorf("SecurityContext.Sysctl %+v, want only the safe net.ipv4.ping_group_range", s)
		}
		if s := g.EciSecurityContext.HostSysctls; len(s) != 1 || s[0] != (simulator.Sysctl{Name: "net.core.somaxconn", Value: "1024"}) {
			t.Errorf("HostSecurityContext.Sysctl %+v, want net.core.somaxconn=1024", s)
		}
		sc := g.Containers[0].SecurityContext
		if sc == nil || !sc.Privileged || sc.RunAsUser != 1000 || sc.RunAsGroup == nil || *sc.RunAsGroup != 3000 || !sc.RunAsNonRoot ||
			len(sc.Capability.Adds) != 1 || sc.Capability.Adds[0] != "NET_ADMIN" {
			t.Errorf("container security context in the group %+v", sc)
		}
		evs := waitEvent(t, kube, ns, "secure", corev1.EventTypeWarning, provider.ReasonPodSpecIgnored,
			"spec.securityContext.fsGroup 2000 is not supported by ECI", "files in volumes keep their owner",
			"securityContext.capabilities.drop [MKNOD] is not supported by ECI", "spec.containers[0] main")
		if len(evs) != 1 || evs[0].Count > 1 {
			t.Errorf("%d %s events (count %d), want one for the pod", len(evs), provider.ReasonPodSpecIgnored, evs[0].Count)
		}
		poll(t, "privileged pod Running", 60*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "secure", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return p.Status.Phase == corev1.PodRunning, nil
		})
	})

	t.Run("the cloud's refusal of a privileged container reaches the pod", func(t *testing.T) {
		// The API takes SecurityContextPrivileged, but an account may not
		// be allowed to use it: the cloud's answer is what the user sees,
		// in an event and the pod's status.
		const refusal = "privileged containers are not enabled for this account"
		if err := env.Simulator.InjectFault(simulator.Fault{Action: "CreateContainerGroup", ErrorRate: 1,
			Code: simulator.CodeInvalidParameter, Message: refusal}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := env.Simulator.InjectFault(simulator.Fault{Action: "CreateContainerGroup"}); err != nil {
				t.Error(err)
			}
		}()
		tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, loop...)
		spec := tpl.Spec
		spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "refused-privileged", Namespace: ns}, Spec: spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, kube, ns, "refused-privileged", corev1.EventTypeWarning, "ContainerGroupCreateFailed", refusal)
		poll(t, "refused pod's status carries the cloud's answer", 30*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, "refused-privileged", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return strings.Contains(p.Status.Message, refusal), nil
		})
	})
}
