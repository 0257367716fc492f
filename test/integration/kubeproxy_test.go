package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// kubeProxyPod is a running pod with one sized container "app"; extra
// annotations go on the pod.
func kubeProxyPod(node, name string, annotations map[string]string) *corev1.Pod {
	tpl := onVirtualNode(node, nil, corev1.RestartPolicyAlways, "sh", "-c", "echo app-started; while true; do sleep 1; done")
	tpl.Spec.Containers[0].Name = "app"
	tpl.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")}}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Spec: tpl.Spec}
}

// runningGroup creates pod in ns, waits until it runs and returns it and
// the group the simulator holds for it.
func runningGroup(t *testing.T, env *testenv.Env, ns string, pod *corev1.Pod) (*corev1.Pod, simulator.ContainerGroup) {
	t.Helper()
	kube := env.Kube
	if _, err := kube.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	poll(t, "pod "+pod.Name+" Running", 90*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		got = p
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	g, ok := env.Simulator.Group(got.Annotations[translate.AnnotationInstanceID])
	if !ok {
		t.Fatalf("pod %s: group %q not in the simulator", pod.Name, got.Annotations[translate.AnnotationInstanceID])
	}
	return got, g
}

func simKubeProxy(g simulator.ContainerGroup) *simulator.Container {
	for i := range g.Containers {
		if g.Containers[i].Name == translate.KubeProxyContainer {
			return &g.Containers[i]
		}
	}
	return nil
}

// kubeProxyFiles returns the files of the group's kube-proxy volume.
func kubeProxyFiles(t *testing.T, sim *simulator.Simulator, groupID string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range simFiles(t, sim, groupID) {
		if name, ok := strings.CutPrefix(k, translate.KubeProxyVolume+"/"); ok {
			out[name] = v
		}
	}
	return out
}

// kubeProxyClient is a client built exactly from the group's kubeconfig,
// token and CA files, as kube-proxy in the group builds its own.
func kubeProxyClient(t *testing.T, files map[string]string) kubernetes.Interface {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kc, err := clientcmd.Load([]byte(files["kubeconfig"]))
	if err != nil {
		t.Fatalf("the group's kubeconfig: %v", err)
	}
	// The files sit under KubeProxyDir in the group and in dir here.
	for _, c := range kc.Clusters {
		c.CertificateAuthority = strings.Replace(c.CertificateAuthority, translate.KubeProxyDir, dir, 1)
	}
	for _, a := range kc.AuthInfos {
		a.TokenFile = strings.Replace(a.TokenFile, translate.KubeProxyDir, dir, 1)
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		t.Fatalf("the group's kubeconfig: %v", err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// TestKubeProxy runs pods on a node with ECI_KUBE_PROXY on (the default)
// and checks the whole path: the group holds a kube-proxy container in
// iptables mode with NET_ADMIN, the regional image and its size counted
// in the group's; the pod's status, logs and stats do not show it; its
// token authenticates as the dedicated identity, which may read what
// kube-proxy reads and not secrets; the token is renewed in the running
// group; a pod that opts out and a node with ECI_KUBE_PROXY=false get none.
func TestKubeProxy(t *testing.T) {
	t.Parallel()
	env := startShared(t, testenv.Options{})
	kube, ctx := env.Kube, context.Background()
	nodeName := uniqueName("vk-kproxy")
	cfg := env.NodeConfig(t, nodeName)
	cfg.TokenRefreshFraction = 0.002 // ~7 s of the one-hour token
	env.StartNode(t, cfg)
	ns := uniqueName("kproxy")
	createNamespace(t, kube, ns)

	pod, g := runningGroup(t, env, ns, kubeProxyPod(nodeName, "web", nil))

	t.Run("group spec", func(t *testing.T) {
		c := simKubeProxy(g)
		if c == nil {
			t.Fatalf("group %s has no %s container: %+v", g.ContainerGroupId, translate.KubeProxyContainer, g.Containers)
		}
		sv, err := kube.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		// The vendor's regional registry, the cluster's version.
		if want := "registry-" + cfg.Region + "-vpc.ack.aliyuncs.com/acs/kube-proxy:" + sv.GitVersion + "-aliyun.1"; c.Image != want {
			t.Errorf("image %q, want %q", c.Image, want)
		}
		args := strings.Join(append(append([]string{}, c.Commands...), c.Args...), " ")
		for _, want := range []string{"kube-proxy", "--proxy-mode=iptables", "--kubeconfig=" + translate.KubeProxyDir + "/kubeconfig", "--hostname-override=web"} {
			if !strings.Contains(args, want) {
				t.Errorf("command %q lacks %q", args, want)
			}
		}
		if c.SecurityContext == nil || !slices.Contains(c.SecurityContext.Capability.Adds, "NET_ADMIN") {
			t.Errorf("security context %+v, want capability NET_ADMIN", c.SecurityContext)
		}
		if c.Cpu != translate.KubeProxyCPU || c.Memory != translate.KubeProxyMemory {
			t.Errorf("kube-proxy size %v vCPU / %v GiB", c.Cpu, c.Memory)
		}
		if g.Cpu != 0.5+translate.KubeProxyCPU || g.Memory != 0.5+translate.KubeProxyMemory {
			t.Errorf("group size %v vCPU / %v GiB, want the app's 0.5/0.5 plus kube-proxy's", g.Cpu, g.Memory)
		}
	})

	t.Run("not on the pod", func(t *testing.T) {
		var names []string
		for _, cs := range append(pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses...) {
			names = append(names, cs.Name)
		}
		if !slices.Equal(names, []string{"app"}) {
			t.Errorf("pod container statuses %q, want only app", names)
		}
		// Straight to the node's kubelet API (the apiserver's node proxy
		// refuses this harness's loopback address, and its log endpoint
		// checks container names itself), as the cluster admin.
		rc := env.ControlPlane.RESTConfig()
		rc.TLSClientConfig.Insecure, rc.TLSClientConfig.CAData, rc.TLSClientConfig.CAFile = true, nil, "" // the node's self-signed serving cert
		tr, err := rest.TransportFor(rc)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		get := func(path string) (int, []byte) {
			t.Helper()
			resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d%s", cfg.KubeletPort, path))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		if code, out := get("/containerLogs/" + ns + "/web/app"); code != http.StatusOK || !strings.Contains(string(out), "app-started") {
			t.Errorf("app logs through the kubelet API: %d %q", code, out)
		}
		if code, out := get("/containerLogs/" + ns + "/web/" + translate.KubeProxyContainer); code != http.StatusNotFound {
			t.Errorf("kube-proxy logs through the kubelet API: %d %q, want 404", code, out)
		}
		code, raw := get("/stats/summary")
		if code != http.StatusOK {
			t.Fatalf("stats: %d %s", code, raw)
		}
		var sum statsv1alpha1.Summary
		if err := json.Unmarshal(raw, &sum); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ps := range sum.Pods {
			if ps.PodRef.Namespace != ns || ps.PodRef.Name != "web" {
				continue
			}
			found = true
			for _, c := range ps.Containers {
				if c.Name != "app" {
					t.Errorf("stats show container %q", c.Name)
				}
			}
		}
		if !found {
			t.Errorf("stats summary lacks pod %s/web", ns)
		}
	})

	files := kubeProxyFiles(t, env.Simulator, g.ContainerGroupId)
	t.Run("identity", func(t *testing.T) {
		if files["token"] == "" || files["kubeconfig"] == "" || files["ca.crt"] == "" {
			t.Fatalf("kube-proxy volume files %q", slices.Sorted(mapKeys(files)))
		}
		review, err := kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: files["token"]}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantUser := "system:serviceaccount:" + cfg.PodNamespace + ":" + nodeaccess.KubeProxyServiceAccountName
		if !review.Status.Authenticated || review.Status.User.Username != wantUser {
			t.Fatalf("token review %+v, want authenticated as %s", review.Status, wantUser)
		}
		for _, tc := range []struct {
			verb, group, resource string
			allowed               bool
		}{
			{"list", "", "services", true}, {"watch", "", "services", true},
			{"list", "discovery.k8s.io", "endpointslices", true}, {"watch", "discovery.k8s.io", "endpointslices", true},
			{"list", "", "nodes", true}, {"watch", "", "nodes", true},
			{"get", "", "secrets", false}, {"list", "", "secrets", false}, {"create", "", "secrets", false}, {"update", "", "secrets", false},
			{"create", "", "pods", false}, {"delete", "", "services", false},
		} {
			sar, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
				User: review.Status.User.Username, Groups: review.Status.User.Groups, UID: review.Status.User.UID,
				ResourceAttributes: &authzv1.ResourceAttributes{Verb: tc.verb, Group: tc.group, Resource: tc.resource, Namespace: ns},
			}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed != tc.allowed {
				t.Errorf("%s %s.%s: allowed %v, want %v (%s)", tc.verb, tc.resource, tc.group, sar.Status.Allowed, tc.allowed, sar.Status.Reason)
			}
		}
		// Real requests with the group's own kubeconfig, token and CA.
		kp := kubeProxyClient(t, files)
		if _, err := kp.CoreV1().Services(ns).List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("kube-proxy lists Services: %v", err)
		}
		if _, err := kp.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("kube-proxy lists EndpointSlices: %v", err)
		}
		if _, err := kp.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("kube-proxy lists Secrets: %v, want forbidden", err)
		}
		if _, err := kp.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("kube-proxy creates a Secret: %v, want forbidden", err)
		}
	})

	t.Run("renewal", func(t *testing.T) {
		first := files["token"]
		var renewed map[string]string
		poll(t, "a renewed kube-proxy token in the group", 90*time.Second, func(ctx context.Context) (bool, error) {
			renewed = kubeProxyFiles(t, env.Simulator, g.ContainerGroupId)
			return renewed["token"] != "" && renewed["token"] != first, nil
		})
		review, err := kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: renewed["token"]}}, metav1.CreateOptions{})
		if err != nil || !review.Status.Authenticated || !strings.HasSuffix(review.Status.User.Username, ":"+nodeaccess.KubeProxyServiceAccountName) {
			t.Fatalf("renewed token: %+v %v", review, err)
		}
		if exp := tokenExpiry(t, first); !time.Now().Before(exp) {
			t.Errorf("the token was renewed only after it expired at %v", exp)
		}
		if renewed["kubeconfig"] != files["kubeconfig"] || renewed["ca.crt"] != files["ca.crt"] {
			t.Error("renewal changed the kubeconfig or the CA")
		}
		now, _ := env.Simulator.Group(g.ContainerGroupId)
		if now.Status != simulator.StatusRunning || simKubeProxy(now) == nil {
			t.Errorf("group %s after renewal, kube-proxy present %v", now.Status, simKubeProxy(now) != nil)
		}
	})

	t.Run("a Job's pod completes", func(t *testing.T) {
		// kube-proxy never exits on its own: as an ECI sidecar it is
		// stopped when the pod's containers are done, and its exit code
		// does not fail the pod.
		job := kubeProxyPod(nodeName, "job", nil)
		job.Spec.RestartPolicy = corev1.RestartPolicyNever
		job.Spec.Containers[0].Command = []string{"sh", "-c", "echo done; sleep 1"}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var p *corev1.Pod
		poll(t, "pod job Succeeded", 90*time.Second, func(ctx context.Context) (bool, error) {
			var err error
			p, err = kube.CoreV1().Pods(ns).Get(ctx, "job", metav1.GetOptions{})
			if err == nil && p.Status.Phase == corev1.PodFailed {
				t.Fatalf("pod job failed: %+v", p.Status)
			}
			return err == nil && p.Status.Phase == corev1.PodSucceeded, err
		})
		g, _ := env.Simulator.Group(p.Annotations[translate.AnnotationInstanceID])
		if simKubeProxy(g) == nil || g.Status != simulator.StatusSucceeded {
			t.Errorf("group %s, kube-proxy present %v", g.Status, simKubeProxy(g) != nil)
		}
	})

	t.Run("pod opt-out", func(t *testing.T) {
		_, g := runningGroup(t, env, ns, kubeProxyPod(nodeName, "optout", map[string]string{translate.AnnotationKubeProxyEnabled: "false"}))
		assertNoKubeProxy(t, g)
	})

	t.Run("ECI_KUBE_PROXY=false", func(t *testing.T) {
		offNode := uniqueName("vk-kproxy-off")
		off := env.NodeConfig(t, offNode)
		off.KubeProxy = false
		env.StartNode(t, off)
		_, g := runningGroup(t, env, ns, kubeProxyPod(offNode, "off", nil))
		assertNoKubeProxy(t, g)
		// The annotation turns it on for one pod.
		_, g = runningGroup(t, env, ns, kubeProxyPod(offNode, "optin", map[string]string{translate.AnnotationKubeProxyEnabled: "true"}))
		if simKubeProxy(g) == nil {
			t.Error("annotation true on an ECI_KUBE_PROXY=false node: no kube-proxy container")
		}
	})
}

func assertNoKubeProxy(t *testing.T, g simulator.ContainerGroup) {
	t.Helper()
	if simKubeProxy(g) != nil {
		t.Errorf("group %s has a kube-proxy container", g.ContainerGroupId)
	}
	for _, v := range g.Volumes {
		if v.Name == translate.KubeProxyVolume {
			t.Errorf("group %s has the kube-proxy volume", g.ContainerGroupId)
		}
	}
	if g.Cpu != 0.5 || g.Memory != 0.5 {
		t.Errorf("group size %v/%v, want the app's 0.5/0.5", g.Cpu, g.Memory)
	}
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// tokenExpiry reads the exp claim of a service-account JWT.
func tokenExpiry(t *testing.T, jwt string) time.Time {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == 0 {
		t.Fatalf("JWT claims %s: %v", payload, err)
	}
	return time.Unix(claims.Exp, 0)
}
