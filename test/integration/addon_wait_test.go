package integration

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	"helm.sh/helm/v3/pkg/action"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// workerNode registers a plain Node (labelled pool=general) that the scheduler can place pods on
// (Ready, with room, its Lease renewed so the node lifecycle controller
// keeps it schedulable) but that no kubelet runs: pods bound to it stay
// Pending until the test writes their status, as a kubelet would.
func workerNode(t *testing.T, kube kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	room := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	ready := func(created metav1.Time) corev1.NodeStatus {
		return corev1.NodeStatus{Capacity: room, Allocatable: room, Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: created}}}
	}
	// Registered with its status, as a kubelet does, so the scheduler
	// never sees it without room.
	n, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name, "pool": "general"}},
		Status:     ready(metav1.Now()),
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	heartbeat := func() error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Status = ready(n.CreationTimestamp)
			_, err = kube.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
			return err
		})
	}
	if err := heartbeat(); err != nil {
		t.Fatal(err)
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &metav1.MicroTime{Time: time.Now()}},
	}
	if _, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Second):
			}
			if l, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{}); err == nil {
				l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				_, _ = kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, l, metav1.UpdateOptions{})
			}
			_ = heartbeat()
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	// The scheduler has it in its cache once it binds a probe pod there.
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe-" + name, Namespace: metav1.NamespaceDefault},
		Spec: corev1.PodSpec{NodeSelector: map[string]string{corev1.LabelHostname: name}, AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
	}
	poll(t, "a probe pod bound to "+name, 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(probe.Namespace).Get(ctx, probe.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = kube.CoreV1().Pods(probe.Namespace).Create(ctx, probe, metav1.CreateOptions{})
			return false, err
		}
		return err == nil && p.Spec.NodeName == name, err
	})
	if err := kube.CoreV1().Pods(probe.Namespace).Delete(ctx, probe.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
}

// boundPod waits for a pod matching selector in kube-system that the
// scheduler bound to node, other than those already in seen (pods of a
// deleted Job stay Terminating on a node no kubelet runs), and adds it to
// seen.
func boundPod(t *testing.T, kube kubernetes.Interface, selector, node string, seen map[string]bool) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	poll(t, "a pod "+selector+" bound to "+node, 60*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; p.Spec.NodeName == node && p.DeletionTimestamp == nil && !seen[p.Name] {
				got = p
				seen[p.Name] = true
				return true, nil
			}
		}
		return false, nil
	})
	return got
}

// playKubelet writes status into a pod the way its kubelet would.
func playKubelet(t *testing.T, kube kubernetes.Interface, pod *corev1.Pod, edit func(*corev1.PodStatus)) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := kube.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		edit(&cur.Status)
		_, err = kube.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatalf("write the status of pod %s: %v", pod.Name, err)
	}
}

// TestVnodectlAddonWaits runs the vnodectl binary against the real control
// plane (scheduler and controllers included, no kubelet) with the add-on's
// own pods unable to start: install and uninstall stop within seconds
// naming the pod and its reason, status explains it, the stuck uninstall
// has a way out that names the container groups it leaves, and SIGINT and
// SIGTERM stop a wait promptly saying what state they leave.
func TestVnodectlAddonWaits(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	// A control plane of its own: the add-on installs cluster-wide objects.
	cp := controlplane.StartForTest(t, controlplane.Options{})
	kube := cp.Clientset()
	ctx := context.Background()
	bin := testutil.BuildCommand(t, "vnodectl")
	environ := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	kc := []string{"--kubeconfig", cp.Kubeconfig()}
	start := func(args ...string) *testutil.Process {
		t.Helper()
		return testutil.StartProcess(t, "vnodectl "+strings.Join(args[:2], " "), bin, environ, append(args, kc...)...)
	}
	finish := func(p *testutil.Process, within time.Duration) (string, int) {
		t.Helper()
		select {
		case <-p.Exited():
		case <-time.After(within):
			p.Kill(t)
			t.Fatalf("%s did not exit within %s:\n%s", p.Name, within, p.Out.String())
		}
		return p.Out.String(), p.ExitCode()
	}
	// Every wait gets --timeout 3m: an exit before that with code 3 is the
	// early stop, not the timeout (which exits 4).
	run := func(args ...string) (string, int) {
		t.Helper()
		return finish(start(args...), 4*time.Minute)
	}
	expect := func(step, out string, code, wantCode int, want ...string) {
		t.Helper()
		t.Logf("%s: exit %d\n%s", step, code, out)
		if code != wantCode {
			t.Fatalf("%s: exit %d, want %d\n%s", step, code, wantCode, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output does not say %q:\n%s", step, w, out)
			}
		}
	}
	releaseStatus := func() string {
		t.Helper()
		secrets, err := kube.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + addon.DefaultReleaseName})
		if err != nil {
			t.Fatal(err)
		}
		status, version := "not installed", 0
		for _, s := range secrets.Items {
			var v int
			for _, c := range s.Labels["version"] {
				v = v*10 + int(c-'0')
			}
			if v > version {
				status, version = s.Labels["status"], v
			}
		}
		return status
	}
	noDrainJob := func(step string) {
		t.Helper()
		if _, err := kube.BatchV1().Jobs("kube-system").Get(ctx, "ack-virtual-node-drain", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: the drain Job is still there (err %v): it would start later on its own", step, err)
		}
	}
	controllerExists := func(step string, want bool) {
		t.Helper()
		_, err := kube.AppsV1().Deployments("kube-system").Get(ctx, addon.ControllerDeployment, metav1.GetOptions{})
		if want && err != nil || !want && !apierrors.IsNotFound(err) {
			t.Errorf("%s: controller Deployment: %v (want present=%v)", step, err, want)
		}
	}

	if _, err := kube.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "alibaba-addon-secret"},
		Data:       map[string][]byte{"access-key-id": []byte("id"), "access-key-secret": []byte("secret")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	workerNode(t, kube, "worker")
	values := []string{"--region", "cn-hangzhou", "--vswitch", "vsw-aaa", "--security-group", "sg-aaa", "--timeout", "3m"}

	// 1. The controller (and so the drain hook, which shares its
	// placement) fits no node: install stops early, naming the pod.
	out, code := run(append([]string{"addon", "install", "--set", "controller.nodeSelector.pool=none"}, values...)...)
	expect("install with an unschedulable controller", out, code, 3,
		"installed ack-virtual-node", "pod kube-system/ack-virtual-node-controller-", "Unschedulable", "didn't match Pod's node affinity/selector",
		"State: release ack-virtual-node in kube-system: deployed (revision 1)", "installed but not ready", "vnodectl addon status")
	if s := releaseStatus(); s != "deployed" {
		t.Errorf("release after the stopped install: %s, want deployed", s)
	}

	// 2. status explains it from the pod's condition and events.
	poll(t, "status shows the scheduler's event", 60*time.Second, func(context.Context) (bool, error) {
		out, code = run("addon", "status")
		return code == 0 && strings.Contains(out, "FailedScheduling x"), nil
	})
	expect("status", out, code, 0, "deployment/ack-virtual-node-controller ready 0/1", "pod ack-virtual-node-controller-",
		"Pending (Unschedulable: 0/1 nodes are available", "FailedScheduling x", "virtual node virtual-kubelet Ready: not registered")

	// 3. The drain hook cannot be scheduled either: uninstall stops early,
	// deletes nothing, removes its Job and leaves the release deployed.
	out, code = run("addon", "uninstall", "--timeout", "3m")
	expect("uninstall with an unschedulable drain hook", out, code, 3,
		"pod kube-system/ack-virtual-node-drain-", "of job/ack-virtual-node-drain cannot start: Unschedulable", "didn't match Pod's node affinity/selector",
		"State: release ack-virtual-node in kube-system: deployed (revision 1)", "Nothing was deleted", "--skip-drain")
	noDrainJob("stopped uninstall")
	controllerExists("stopped uninstall", true)
	if s := releaseStatus(); s != "deployed" {
		t.Errorf("release after the stopped uninstall: %s, want deployed (never uninstalling)", s)
	}

	// 3a. An upgrade that schedules the controller but never rolls out (no
	// kubelet) runs out its --timeout: exit 4 with the last state. The old,
	// unschedulable pod is being replaced and does not stop the wait.
	out, code = run("addon", "upgrade", "--set", "controller.nodeSelector.pool=general", "--timeout", "5s")
	expect("upgrade that does not roll out within --timeout", out, code, 4,
		"upgraded ack-virtual-node", "revision 2", "not done within --timeout 5s", "last state: deployment/ack-virtual-node-controller ready 0/1",
		"on node worker, containers not started", "[old revision, being replaced]", "State: release ack-virtual-node in kube-system: deployed (revision 2)")
	out, code = run("addon", "upgrade", "--set", "controller.nodeSelector.pool=none", "--wait=false")
	expect("upgrade without waiting", out, code, 0, "revision 3")

	// 3b. What the issue saw: Helm's own uninstall waits out its timeout on
	// the hook that cannot be scheduled and leaves the release
	// "uninstalling" with the drain Job behind. status says so.
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = ptr.To(cp.Kubeconfig()), ptr.To("kube-system")
	helmCfg := new(action.Configuration)
	if err := helmCfg.Init(flags, "kube-system", "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	helmUninstall := action.NewUninstall(helmCfg)
	helmUninstall.Timeout = 3 * time.Second
	if _, err := helmUninstall.Run(addon.DefaultReleaseName); err == nil {
		t.Fatal("helm's uninstall with an unschedulable drain hook succeeded")
	}
	if s := releaseStatus(); s != "uninstalling" {
		t.Fatalf("release after helm's uninstall timed out: %s, want uninstalling (the state the issue reports)", s)
	}
	poll(t, "status explains the stuck uninstall", 60*time.Second, func(context.Context) (bool, error) {
		out, code = run("addon", "status")
		return code == 0 && strings.Contains(out, "FailedScheduling x"), nil
	})
	expect("status of a stuck uninstall", out, code, 0, "uninstalling (revision 3", "an uninstall stopped half-way", "--skip-drain",
		"job/ack-virtual-node-drain exists", "pod ack-virtual-node-drain-", "Unschedulable: 0/1 nodes are available")

	// 4. The way out: --skip-drain names the container groups it would
	// leave and refuses without --yes.
	if _, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "virtual-kubelet"},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "virtual-kubelet.io/provider", Value: "alibabacloud", Effect: corev1.TaintEffectNoSchedule}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createNamespace(t, kube, "apps")
	if _, err := kube.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "leftover", Annotations: map[string]string{translate.AnnotationInstanceID: "eci-leftover-1"}},
		Spec:       corev1.PodSpec{NodeName: "virtual-kubelet", Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, code = run("addon", "uninstall", "--skip-drain")
	expect("uninstall --skip-drain without --yes", out, code, 1,
		"LEAVES these pods and their ECI container groups RUNNING", "node virtual-kubelet  pod apps/leftover  container group eci-leftover-1",
		"nothing was changed", "--skip-drain --yes")
	controllerExists("refused --skip-drain", true)
	out, code = run("addon", "uninstall", "--skip-drain", "--yes")
	expect("uninstall --skip-drain --yes", out, code, 0,
		"container group eci-leftover-1", "deleted job/ack-virtual-node-drain left by an earlier uninstall", "uninstalled ack-virtual-node without the drain", "LEFT RUNNING: 1 container groups: eci-leftover-1")
	controllerExists("uninstall --skip-drain", false)
	noDrainJob("uninstall --skip-drain")
	if s := releaseStatus(); s != "not installed" {
		t.Errorf("release after uninstall --skip-drain: %s", s)
	}
	if err := kube.CoreV1().Pods("apps").Delete(ctx, "leftover", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if err := kube.CoreV1().Nodes().Delete(ctx, "virtual-kubelet", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// 5. Pods that fit the worker but never start (no kubelet): install
	// waits with progress; SIGINT stops it promptly, saying the state.
	p := start(append([]string{"addon", "install"}, values...)...)
	boundPod(t, kube, "app.kubernetes.io/component=controller", "worker", map[string]bool{})
	poll(t, "install prints its progress", 60*time.Second, func(context.Context) (bool, error) {
		return strings.Contains(p.Out.String(), "deployment/ack-virtual-node-controller ready 0/1"), nil
	})
	if err := p.Cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	out, code = finish(p, 30*time.Second)
	expect("install interrupted by SIGINT", out, code, 130,
		"waiting up to 3m0s", "on node worker, containers not started", "interrupted by SIGINT",
		"State: release ack-virtual-node in kube-system: deployed (revision 1)", "installed but not ready")

	// 6. The drain pod is scheduled but its image cannot be pulled:
	// uninstall stops early naming the pod and the kubelet's reason.
	drainPods := map[string]bool{}
	p = start("addon", "uninstall", "--timeout", "3m")
	drainPod := boundPod(t, kube, "app.kubernetes.io/component=drain", "worker", drainPods)
	playKubelet(t, kube, drainPod, func(s *corev1.PodStatus) {
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "drain", Image: drainPod.Spec.Containers[0].Image, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "pull access denied for the image"},
		}}}
	})
	out, code = finish(p, 60*time.Second)
	expect("uninstall with an image that cannot be pulled", out, code, 3,
		"pod kube-system/"+drainPod.Name+" of job/ack-virtual-node-drain cannot start: ErrImagePull: container drain: pull access denied",
		"State: release ack-virtual-node in kube-system: deployed (revision 1)", "Nothing was deleted")
	noDrainJob("uninstall stopped on ErrImagePull")
	controllerExists("uninstall stopped on ErrImagePull", true)

	// 7. SIGTERM while the drain Job runs: stops promptly, deletes the
	// Job, the release stays deployed.
	p = start("addon", "uninstall", "--timeout", "3m")
	boundPod(t, kube, "app.kubernetes.io/component=drain", "worker", drainPods)
	poll(t, "uninstall prints the drain's progress", 60*time.Second, func(context.Context) (bool, error) {
		return strings.Contains(p.Out.String(), "job/ack-virtual-node-drain: active 1"), nil
	})
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	out, code = finish(p, 30*time.Second)
	expect("uninstall interrupted by SIGTERM", out, code, 143,
		"node virtual-kubelet: 0 pods, 0 container groups left", "interrupted by SIGTERM",
		"State: release ack-virtual-node in kube-system: deployed (revision 1)", "Nothing of the release was deleted")
	noDrainJob("uninstall interrupted")
	if s := releaseStatus(); s != "deployed" {
		t.Errorf("release after the interrupted uninstall: %s, want deployed", s)
	}

	// 7b. The drain runs and fails (it reports groups it could not
	// delete): the uninstall fails, nothing is deleted, and the Job is
	// kept for its log. (backoffLimit lowered so one failure fails the
	// Job, as three would.)
	p = start("addon", "uninstall", "--timeout", "3m")
	drainPod = boundPod(t, kube, "app.kubernetes.io/component=drain", "worker", drainPods)
	if _, err := kube.BatchV1().Jobs("kube-system").Patch(ctx, "ack-virtual-node-drain", types.MergePatchType,
		[]byte(`{"spec":{"backoffLimit":0}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	playKubelet(t, kube, drainPod, func(s *corev1.PodStatus) {
		now := metav1.Now()
		s.Phase = corev1.PodFailed
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "drain", Image: drainPod.Spec.Containers[0].Image, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", StartedAt: now, FinishedAt: now},
		}}}
	})
	out, code = finish(p, 2*time.Minute)
	expect("uninstall whose drain fails", out, code, 1,
		"job/ack-virtual-node-drain failed: BackoffLimitExceeded", "State: release ack-virtual-node in kube-system: deployed (revision 1)",
		"the drain Job is kept for its log (kubectl -n kube-system logs job/ack-virtual-node-drain)")
	if _, err := kube.BatchV1().Jobs("kube-system").Get(ctx, "ack-virtual-node-drain", metav1.GetOptions{}); err != nil {
		t.Errorf("the failed drain Job was not kept for its log: %v", err)
	}
	controllerExists("uninstall whose drain failed", true)

	// 8. The drain succeeds: the uninstall goes through.
	p = start("addon", "uninstall", "--timeout", "3m")
	drainPod = boundPod(t, kube, "app.kubernetes.io/component=drain", "worker", drainPods)
	now := metav1.Now()
	playKubelet(t, kube, drainPod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodSucceeded
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "drain", Image: drainPod.Spec.Containers[0].Image, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now},
		}}}
	})
	out, code = finish(p, 2*time.Minute)
	expect("uninstall with a drain that succeeds", out, code, 0, "job/ack-virtual-node-drain: succeeded", "uninstalled ack-virtual-node")
	controllerExists("uninstall", false)
	noDrainJob("uninstall")
	if s := releaseStatus(); s != "not installed" {
		t.Errorf("release after uninstall: %s", s)
	}
	out, code = run("addon", "uninstall")
	expect("uninstall of nothing", out, code, 1, "release not installed: ack-virtual-node in kube-system")
	out, code = run("addon", "upgrade")
	expect("upgrade of nothing", out, code, 1, "release not installed: ack-virtual-node in kube-system (install it first)")
}
