package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/imagecache/api"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// chartProcess runs the controller binary the way the kubelet would run the
// chart's Deployment: the container env of the live Deployment, with
// secretKeyRef read from the installed Secret and the downward API filled
// in, and the ServiceAccount's token as its only credential.
type chartProcess struct {
	t       *testing.T
	bin     string
	kube    kubernetes.Interface
	kubecfg string
	proc    *testutil.Process // nil when stopped
	env     map[string]string
}

// serviceAccountKubeconfig writes a kubeconfig holding a TokenRequest token
// of kube-system/<sa>: the identity the pod would have in-cluster.
func serviceAccountKubeconfig(t *testing.T, env *testenv.Env, ns, sa string) string {
	t.Helper()
	tr, err := env.Kube.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", ns, sa, err)
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: %q, certificate-authority: %q}
contexts:
- name: c
  context: {cluster: c, user: sa, namespace: %s}
current-context: c
users:
- name: sa
  user: {token: %q}
`, env.ControlPlane.APIServerURL(), env.ControlPlane.CAFile(), ns, tr.Status.Token)
	p := filepath.Join(t.TempDir(), "kubeconfig-"+sa)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// resolvedEnv turns a container's env into the process environment as the
// kubelet would, for a pod named podName.
func resolvedEnv(t *testing.T, kube kubernetes.Interface, ns, podName string, c corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, err := kube.CoreV1().Secrets(ns).Get(context.Background(), ref.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("env %s: secretKeyRef %s: %v", e.Name, ref.Name, err)
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				t.Fatalf("env %s: secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			out[e.Name] = string(v)
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				out[e.Name] = podName
			case "metadata.namespace":
				out[e.Name] = ns
			case "status.podIP":
				out[e.Name] = "127.0.0.1"
			default:
				t.Fatalf("env %s: fieldRef %s not resolved by this test", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom.ResourceFieldRef != nil:
			// As the kubelet does for a container with a limit: the limit
			// divided by the divisor, rounded up.
			ref := e.ValueFrom.ResourceFieldRef
			name, ok := strings.CutPrefix(ref.Resource, "limits.")
			q, set := c.Resources.Limits[corev1.ResourceName(name)]
			if !ok || !set || ref.Divisor.Value() <= 0 {
				t.Fatalf("env %s: resourceFieldRef %s (divisor %s) not resolved by this test: the container's limits are %v", e.Name, ref.Resource, ref.Divisor.String(), c.Resources.Limits)
			}
			out[e.Name] = strconv.FormatInt((q.Value()+ref.Divisor.Value()-1)/ref.Divisor.Value(), 10)
		default:
			t.Fatalf("env %s: valueFrom %+v not resolved by this test", e.Name, e.ValueFrom)
		}
	}
	return out
}

// start runs the binary with env (plus KUBECONFIG, which stands in for the
// in-cluster config, and KUBELET_LISTEN_IP so the test host's kubelet port
// stays on loopback) and args.
func (p *chartProcess) start(env map[string]string, args ...string) {
	p.t.Helper()
	p.env = env
	environ := []string{"KUBECONFIG=" + p.kubecfg, "KUBELET_LISTEN_IP=127.0.0.1", "HOME=" + p.t.TempDir()}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	p.proc = testutil.StartProcess(p.t, filepath.Base(p.bin), p.bin, environ, args...)
}

// stop sends SIGTERM (what the kubelet sends) and waits.
func (p *chartProcess) stop() {
	p.t.Helper()
	if p.proc == nil {
		return
	}
	p.proc.Stop(p.t, syscall.SIGTERM, 30*time.Second)
	// Any request the chart's RBAC does not allow shows up as "forbidden"
	// in the log even when the pod still ran (events, leases, tokens).
	for _, line := range strings.Split(p.proc.Out.String(), "\n") {
		if strings.Contains(line, "forbidden") {
			p.t.Errorf("the controller was denied a request, the chart's RBAC is short: %s", line)
		}
	}
	p.proc = nil
}

// deploymentEnv is the controller container's env of the live Deployment,
// resolved for a pod of generation gen.
func deploymentEnv(t *testing.T, kube kubernetes.Interface, gen int) map[string]string {
	t.Helper()
	d, err := kube.AppsV1().Deployments("kube-system").Get(context.Background(), addon.ControllerDeployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == addon.ControllerContainer {
			return resolvedEnv(t, kube, "kube-system", fmt.Sprintf("%s-gen%d", addon.ControllerDeployment, gen), c)
		}
	}
	t.Fatalf("deployment %s has no container %s", addon.ControllerDeployment, addon.ControllerContainer)
	return nil
}

// TestAddonLifecycle installs the chart with the Helm SDK into the real
// apiserver, runs the controller with exactly the env the Deployment gives
// it as the chart's ServiceAccount, and follows the add-on through upgrade,
// `kubectl edit deployment`, and uninstall.
func TestAddonLifecycle(t *testing.T) {
	t.Parallel()
	// A control plane of its own: the add-on installs a cluster-wide
	// MutatingWebhookConfiguration, RBAC and kube-system/eci-profile.
	// The chart installs the kube-proxy identity itself.
	env := testenv.Start(t, testenv.Options{NoKubeProxyIdentity: true})
	bin := testutil.BuildCommand(t, "virtual-node")
	kube := env.Kube
	ctx := context.Background()
	var vsw []string
	for _, z := range env.SimulatorConfig.Zones {
		vsw = append(vsw, z.VSwitches[0].VSwitchId)
	}
	if len(vsw) < 3 {
		t.Fatalf("simulator has %d zones, the test needs 3", len(vsw))
	}
	ac, err := addon.New(addon.Options{RESTConfig: env.ControlPlane.RESTConfig(), Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"region": env.SimulatorConfig.RegionId, "vSwitches": []any{vsw[0]}, "securityGroup": env.SimulatorConfig.SecurityGroups[0],
		"eciEndpoint": env.SimulatorURL, "clusterId": "test-cluster",
		"controller": map[string]any{
			"statusInterval": "500ms", "resyncInterval": "10s",
			"kubeletPort": testenv.FreePort(t), "metricsPort": testenv.FreePort(t),
		},
		"drain": map[string]any{"timeoutSeconds": 120, "podTimeout": "60s", "groupTimeout": "30s"},
	}

	t.Run("install refuses with what is missing", func(t *testing.T) {
		err := func() error { _, err := ac.Install(ctx, map[string]any{"vSwitches": []any{"subnet-1"}}); return err }()
		var pe *addon.PreflightError
		if !errors.As(err, &pe) {
			t.Fatalf("install without prerequisites: %v, want a PreflightError", err)
		}
		for _, want := range []string{"region is empty", `vSwitches: "subnet-1" is not a vSwitch id`, "securityGroup is empty",
			"AccessKey Secret kube-system/alibaba-addon-secret not found", "kubectl -n kube-system create secret generic alibaba-addon-secret"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("preflight error does not say %q:\n%v", want, err)
			}
		}
		if _, err := kube.AppsV1().Deployments("kube-system").Get(ctx, addon.ControllerDeployment, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a refused install created the Deployment (err %v)", err)
		}
	})

	// The user's step 1: the AccessKey Secret, as the vendor documents it.
	akID := testenv.SimAccessKeyID(env.SimulatorConfig)
	if _, err := kube.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "alibaba-addon-secret"},
		Data:       map[string][]byte{"access-key-id": []byte(akID), "access-key-secret": []byte(env.SimulatorConfig.AccessKeys[akID])},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rel, err := ac.Install(ctx, values)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	// Every object of the release exists in the apiserver.
	dyn := dynamic.NewForConfigOrDie(env.ControlPlane.RESTConfig())
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery()))
	n := 0
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil || u.Object == nil {
			continue
		}
		m, err := mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			t.Fatalf("%s: %v", u.GetKind(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if u.GetNamespace() != "" {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		if _, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{}); err != nil {
			t.Errorf("%s %s/%s of the release: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		n++
	}
	if n < 15 {
		t.Errorf("release has only %d objects", n)
	}
	st, err := ac.Status(ctx)
	if err != nil || st.Release.Info.Status != "deployed" {
		t.Fatalf("status: %v %+v", err, st)
	}

	// No kubelet runs the Deployment here: run its container as a process,
	// as the chart's ServiceAccount (least privilege proven sufficient).
	proc := &chartProcess{t: t, bin: bin, kube: kube, kubecfg: serviceAccountKubeconfig(t, env, "kube-system", addon.ControllerServiceAccount)}
	defer proc.stop()
	proc.start(deploymentEnv(t, kube, 1))

	// The webhook's Deployment, likewise, as its ServiceAccount: it fills
	// the configuration the chart created empty and keeps its certificate
	// Secret. Only its listen addresses move to free loopback ports.
	wd, err := kube.AppsV1().Deployments("kube-system").Get(ctx, "ack-virtual-node-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wenv := resolvedEnv(t, kube, "kube-system", "ack-virtual-node-webhook-0", wd.Spec.Template.Spec.Containers[0])
	wenv["WEBHOOK_LISTEN_ADDR"] = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	wenv["WEBHOOK_METRICS_ADDR"] = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	wh := &chartProcess{t: t, bin: testutil.BuildCommand(t, "vnode-webhook"), kube: kube, kubecfg: serviceAccountKubeconfig(t, env, "kube-system", "ack-virtual-node-webhook")}
	defer wh.stop()
	wh.start(wenv)
	var caBundle []byte
	poll(t, "webhook fills its MutatingWebhookConfiguration", 60*time.Second, func(ctx context.Context) (bool, error) {
		m, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "virtual-node-affinity-admission-controller", metav1.GetOptions{})
		if err != nil || len(m.Webhooks) == 0 {
			return false, err
		}
		caBundle = m.Webhooks[0].ClientConfig.CABundle
		return len(caBundle) > 0, nil
	})
	certBefore, err := kube.CoreV1().Secrets("kube-system").Get(ctx, "ack-virtual-node-webhook-cert", metav1.GetOptions{})
	if err != nil || len(certBefore.Data["tls.crt"]) == 0 || certBefore.Annotations["meta.helm.sh/release-name"] != "ack-virtual-node" {
		t.Fatalf("webhook certificate Secret %v: want the release's Secret filled by the webhook", err)
	}
	waitNodeReady(t, kube)
	if st, _ := ac.Status(ctx); st == nil || st.NodeReady != "True" {
		t.Errorf("status does not report the node Ready: %+v", st)
	}

	// The chart installed the ImageCache CRD (crds/) and the controller
	// runs the ImageCache controller as its ServiceAccount: an ImageCache
	// becomes Ready, and its deletion deletes the cloud cache.
	imc := uniqueName("addon-imc")
	createImageCache(t, dyn, imc, api.ImageCacheSpec{Images: []string{"registry.example.com/library/nginx:1.25"}}, nil)
	imcID := waitImageCache(t, dyn, imc, "Ready, built by the chart's controller", func(ic *api.ImageCache) bool {
		return ic.Status.Phase == api.PhaseReady && ic.Status.ImageCacheId != ""
	}).Status.ImageCacheId
	if err := dyn.Resource(api.GVR).Delete(ctx, imc, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "ImageCache "+imc+" deleted with its cloud cache", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(api.GVR).Get(ctx, imc, metav1.GetOptions{})
		return apierrors.IsNotFound(err) && cloudCache(t, env.Cloud, imcID) == nil, nil
	})

	ns := "addon"
	createNamespace(t, kube, ns)
	runPod := func(name string) *corev1.Pod {
		t.Helper()
		tpl := onVirtualNode("", nil, corev1.RestartPolicyAlways)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: tpl.Spec}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var got *corev1.Pod
		poll(t, name+" Running on ECI", 90*time.Second, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			got = p
			return err == nil && p.Status.Phase == corev1.PodRunning && p.Annotations[translate.AnnotationInstanceID] != "", err
		})
		return got
	}
	groupVSwitch := func(p *corev1.Pod) string {
		g, ok := env.Simulator.Group(p.Annotations[translate.AnnotationInstanceID])
		if !ok {
			t.Fatalf("pod %s: group %s not in the simulator", p.Name, p.Annotations[translate.AnnotationInstanceID])
		}
		return g.VSwitchId
	}
	// untouched checks that earlier pods kept their groups, still Running in
	// their vSwitch.
	type placed struct {
		pod   *corev1.Pod
		group string
		vsw   string
	}
	var running []placed
	untouched := func() {
		t.Helper()
		for _, p := range running {
			g, ok := env.Simulator.Group(p.group)
			if !ok || g.Status != "Running" || g.VSwitchId != p.vsw {
				t.Errorf("pod %s: group %s now %+v (present %v), want Running in %s", p.pod.Name, p.group, g.Status, ok, p.vsw)
			}
			cur, err := kube.CoreV1().Pods(ns).Get(ctx, p.pod.Name, metav1.GetOptions{})
			if err != nil || cur.Annotations[translate.AnnotationInstanceID] != p.group {
				t.Errorf("pod %s: %v, instance %q, want %s", p.pod.Name, err, cur.Annotations[translate.AnnotationInstanceID], p.group)
			}
		}
	}
	place := func(name, wantVSwitch string) {
		t.Helper()
		p := runPod(name)
		if got := groupVSwitch(p); got != wantVSwitch {
			t.Fatalf("pod %s landed in %s, want %s", name, got, wantVSwitch)
		}
		running = append(running, placed{p, p.Annotations[translate.AnnotationInstanceID], wantVSwitch})
	}
	place("first", vsw[0])

	// helm upgrade --set vSwitches={B}: the Deployment's env and checksum
	// change, so the kubelet would restart the container.
	before, _ := kube.AppsV1().Deployments("kube-system").Get(ctx, addon.ControllerDeployment, metav1.GetOptions{})
	if _, err := ac.Upgrade(ctx, map[string]any{"vSwitches": []any{vsw[1]}}); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	after, _ := kube.AppsV1().Deployments("kube-system").Get(ctx, addon.ControllerDeployment, metav1.GetOptions{})
	if before.Spec.Template.Annotations["checksum/config"] == after.Spec.Template.Annotations["checksum/config"] {
		t.Error("upgrade changed ECI_VSWITCH but not the checksum: the pods would not roll")
	}
	if m, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "virtual-node-affinity-admission-controller", metav1.GetOptions{}); err != nil ||
		len(m.Webhooks) == 0 || !bytes.Equal(m.Webhooks[0].ClientConfig.CABundle, caBundle) {
		t.Errorf("helm upgrade touched the webhook's entries or caBundle: %v", err)
	}
	if c, err := kube.CoreV1().Secrets("kube-system").Get(ctx, "ack-virtual-node-webhook-cert", metav1.GetOptions{}); err != nil ||
		!bytes.Equal(c.Data["tls.crt"], certBefore.Data["tls.crt"]) || !bytes.Equal(c.Data["ca.key"], certBefore.Data["ca.key"]) {
		t.Errorf("helm upgrade reset the webhook's certificate Secret: %v", err)
	}
	proc.stop()
	proc.start(deploymentEnv(t, kube, 2))
	if proc.env["ECI_VSWITCH"] != vsw[1] {
		t.Fatalf("after upgrade ECI_VSWITCH=%q, want %s", proc.env["ECI_VSWITCH"], vsw[1])
	}
	waitNodeReady(t, kube)
	place("after-upgrade", vsw[1])
	untouched()

	// kubectl -n kube-system edit deployment ack-virtual-node-controller:
	// ECI_VSWITCH=C.
	// The deployment controller writes the Deployment too: retried on a
	// conflict, as kubectl edit does.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := kube.AppsV1().Deployments("kube-system").Get(ctx, addon.ControllerDeployment, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i := range d.Spec.Template.Spec.Containers[0].Env {
			if e := &d.Spec.Template.Spec.Containers[0].Env[i]; e.Name == "ECI_VSWITCH" {
				e.Value = vsw[2]
			}
		}
		_, err = kube.AppsV1().Deployments("kube-system").Update(ctx, d, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	proc.stop()
	proc.start(deploymentEnv(t, kube, 3))
	waitNodeReady(t, kube)
	place("after-edit", vsw[2])
	untouched()

	// The user also edits eci-profile; then an unrelated upgrade must keep
	// both edits.
	cm, err := kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "eci-profile", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["vpcId"] = "vpc-edited"
	if _, err := kube.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := ac.Upgrade(ctx, map[string]any{"controller": map[string]any{"podCapacity": 2500}})
	if err != nil {
		t.Fatalf("second upgrade: %v", err)
	}
	if got, ok := res.KeptEdits["vSwitches"].([]any); !ok || len(got) != 1 || got[0] != vsw[2] {
		t.Errorf("upgrade kept edits %v, want vSwitches=[%s]", res.KeptEdits, vsw[2])
	}
	if e := deploymentEnv(t, kube, 4); e["ECI_VSWITCH"] != vsw[2] || e["ECI_POD_CAPACITY"] != "2500" {
		t.Errorf("after upgrade ECI_VSWITCH=%q ECI_POD_CAPACITY=%q: the edit must survive and the new value apply", e["ECI_VSWITCH"], e["ECI_POD_CAPACITY"])
	}
	if cm, err := kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "eci-profile", metav1.GetOptions{}); err != nil || cm.Data["vpcId"] != "vpc-edited" {
		t.Errorf("upgrade overwrote the edited eci-profile: %v %v", err, cm.Data)
	}
	untouched()

	t.Run("uninstall with pods running leaves no group", func(t *testing.T) {
		if len(env.Simulator.Groups()) < 3 {
			t.Fatalf("only %d groups before uninstall", len(env.Simulator.Groups()))
		}
		uninstallWithDrain(t, env, ac, bin, proc, wh)
	})
}

func waitNodeReady(t *testing.T, kube kubernetes.Interface) {
	t.Helper()
	poll(t, "node "+nodeName+" Ready", 60*time.Second, func(ctx context.Context) (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		return err == nil && testutil.NodeReady(n), err
	})
}

// uninstallWithDrain uninstalls through the SDK while playing the kubelet
// for the pre-delete hook: when the Job's pod appears, it runs the pod's
// container (the controller image with args [drain]) as a process with the
// pod's env and ServiceAccount, and reports its exit as the pod's status.
func uninstallWithDrain(t *testing.T, env *testenv.Env, ac *addon.Client, bin string, running ...*chartProcess) {
	kube := env.Kube
	ctx := context.Background()
	// A node the hook pod can be scheduled to: the uninstall stops early
	// on a hook pod that is Unschedulable.
	workerNode(t, kube, "worker")
	var wg sync.WaitGroup
	var unErr error
	var res *addon.UninstallResult
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, unErr = ac.Uninstall(ctx)
	}()
	var hookPod *corev1.Pod
	poll(t, "drain hook pod scheduled", 60*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=drain"})
		if err != nil || len(pods.Items) == 0 || pods.Items[0].Spec.NodeName == "" {
			return false, err
		}
		hookPod = &pods.Items[0]
		return true, nil
	})
	c := hookPod.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "drain" || hookPod.Spec.ServiceAccountName != addon.ControllerServiceAccount {
		t.Fatalf("hook pod runs %v as %s", c.Args, hookPod.Spec.ServiceAccountName)
	}
	drain := &chartProcess{t: t, bin: bin, kube: kube, kubecfg: serviceAccountKubeconfig(t, env, "kube-system", addon.ControllerServiceAccount)}
	drain.start(resolvedEnv(t, kube, "kube-system", hookPod.Name, c), c.Args...)
	select {
	case <-drain.proc.Exited():
	case <-time.After(3 * time.Minute):
		drain.proc.Kill(t)
		t.Fatalf("drain did not finish within 3 minutes:\n%s", drain.proc.Out.String())
	}
	code := 0
	if ee, ok := drain.proc.Err().(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err := drain.proc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("drain exited %d:\n%s", code, drain.proc.Out.String())
	// Once the hook succeeds Helm deletes the Deployment and the RBAC
	// together; a kubelet would stop the container at that moment, so
	// stop it now, while its RBAC still exists (what it does after its
	// RBAC is gone cannot succeed in any cluster). The same for the webhook.
	for _, p := range running {
		p.stop()
	}
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	now := metav1.Now()
	// Others write the pod too (the Job controller, the pod GC): the
	// status write is retried on a conflict with a fresh copy, as a
	// kubelet's is.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := kube.CoreV1().Pods("kube-system").Get(ctx, hookPod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Phase = phase
		cur.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: c.Name, Image: c.Image, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), StartedAt: now, FinishedAt: now},
		}}}
		_, err = kube.CoreV1().Pods("kube-system").UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatalf("report the drain pod's exit: %v", err)
	}
	wg.Wait()
	if code != 0 || unErr != nil {
		t.Fatalf("drain exit %d, uninstall: %v", code, unErr)
	}
	t.Logf("uninstall: %s", res.Info)
	var left []string
	for _, g := range env.Simulator.Groups() {
		if g.Status != "Deleted" {
			left = append(left, g.ContainerGroupId+"="+g.Status)
		}
	}
	if len(left) > 0 {
		t.Errorf("%d groups left after uninstall: %v", len(left), left)
	}
	if _, err := kube.AppsV1().Deployments("kube-system").Get(ctx, addon.ControllerDeployment, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("controller Deployment after uninstall: %v", err)
	}
	if _, err := kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "eci-profile", metav1.GetOptions{}); err != nil {
		t.Errorf("eci-profile not kept on uninstall: %v", err)
	}
	if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "virtual-node-affinity-admission-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the webhook's MutatingWebhookConfiguration outlived the release: %v", err)
	}
	if _, err := kube.CoreV1().Secrets("kube-system").Get(ctx, "ack-virtual-node-webhook-cert", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the webhook's certificate Secret outlived the release: %v", err)
	}
}
