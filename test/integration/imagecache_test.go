package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/imagecache"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/imagecache/api"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/yaml"
)

// installImageCacheCRD applies the chart's CRD (crds/imagecaches.yaml) to
// the control plane, as Helm does before the templates, and waits until
// it is served.
func installImageCacheCRD(t *testing.T, env *testenv.Env, dyn dynamic.Interface) {
	t.Helper()
	raw, err := os.ReadFile("../../charts/ack-virtual-node/crds/imagecaches.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create the ImageCache CRD: %v", err)
	}
	poll(t, "ImageCache resource served", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(api.GVR).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
}

// imageCacheEvents returns the events of ImageCache name with reason
// (events of cluster-scoped objects are in namespace default).
func imageCacheEvents(ctx context.Context, kube kubernetes.Interface, name, reason string) ([]corev1.Event, error) {
	list, err := kube.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == api.Kind && e.InvolvedObject.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out, nil
}

func waitImageCacheEvent(t *testing.T, kube kubernetes.Interface, name, typ, reason string, parts ...string) {
	t.Helper()
	poll(t, typ+" event "+reason+" on ImageCache "+name, 60*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := imageCacheEvents(ctx, kube, name, reason)
		if err != nil {
			return false, err
		}
		for _, e := range evs {
			ok := e.Type == typ
			for _, p := range parts {
				ok = ok && strings.Contains(e.Message, p)
			}
			if ok {
				return true, nil
			}
		}
		return false, nil
	})
}

// getImageCache reads ImageCache name.
func getImageCache(ctx context.Context, dyn dynamic.Interface, name string) (*api.ImageCache, error) {
	u, err := dyn.Resource(api.GVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return api.FromUnstructured(u)
}

// waitImageCache polls ImageCache name until cond holds and returns it.
func waitImageCache(t *testing.T, dyn dynamic.Interface, name, what string, cond func(*api.ImageCache) bool) *api.ImageCache {
	t.Helper()
	var last *api.ImageCache
	poll(t, "ImageCache "+name+": "+what, 90*time.Second, func(ctx context.Context) (bool, error) {
		ic, err := getImageCache(ctx, dyn, name)
		if err != nil {
			return false, err
		}
		last = ic
		return cond(ic), nil
	})
	return last
}

func createImageCache(t *testing.T, dyn dynamic.Interface, name string, spec api.ImageCacheSpec, annotations map[string]string) {
	t.Helper()
	u, err := api.ToUnstructured(&api.ImageCache{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(api.GVR).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ImageCache %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(api.GVR).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// createRequests are the CreateImageCache calls the simulator received
// for ImageCache objects named name (by the controller's tag).
func createRequests(sim *simulator.Simulator, name string) []map[string]string {
	var out []map[string]string
	for _, r := range sim.Requests("CreateImageCache") {
		for k, v := range r.Params {
			if strings.HasPrefix(k, "Tag.") && strings.HasSuffix(k, ".Value") && v == name &&
				r.Params[strings.TrimSuffix(k, "Value")+"Key"] == imagecache.TagName {
				out = append(out, r.Params)
			}
		}
	}
	return out
}

// cloudCache is the simulator's cache id, or nil when it is gone.
func cloudCache(t *testing.T, cloud *eci.Client, id string) *eci.ImageCache {
	t.Helper()
	out, err := cloud.DescribeImageCaches(context.Background(), &eci.DescribeImageCachesRequest{ImageCacheId: id})
	if err != nil {
		t.Fatalf("DescribeImageCaches %s: %v", id, err)
	}
	for i := range out.ImageCaches {
		if out.ImageCaches[i].ImageCacheId == id {
			return &out.ImageCaches[i]
		}
	}
	return nil
}

// TestImageCache runs the ImageCache controller against the real control
// plane and the simulator, whose caches take 2 x StartDelay to build:
// an ImageCache becomes Ready with its cache id; a pod naming it sends
// that id as ImageSnapshotId; a change of images builds a new cache while
// pods keep the old one, and deletes the old (retried, with one Ready
// event, when the cloud refuses the first delete); a controller restarted
// after losing the status adopts the cache by its tags instead of
// creating another; deleting the object
// deletes the cloud cache and then the finalizer lets it go; an image the
// cloud cannot pull ends Failed with the cloud's reason (and a pod naming
// it waits with an event saying so); a missing pull secret is named by a
// condition and an event, and the cache is built once the secret exists;
// a zone without stock keeps it Pending with one counted event; a spec the
// cloud refuses ends Failed, is not retried until it changes, and builds
// once fixed; a delete the cloud fails a while gives one counted
// DeleteFailed event without request id, and the object goes after.
func TestImageCache(t *testing.T) {
	t.Parallel()
	env := startShared(t, testenv.Options{Simulator: func(c *simulator.Config) { c.StartDelay = 2 * time.Second }})
	kube := env.Kube
	dyn, err := dynamic.NewForConfig(env.ControlPlane.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	installImageCacheCRD(t, env, dyn)
	node := uniqueName("imc")
	nodeCfg := env.NodeConfig(t, node)
	env.StartNode(t, nodeCfg)
	ns := uniqueName("imc")
	createNamespace(t, kube, ns)
	clusterID := uniqueName("imc-cluster")

	broadcaster := record.NewBroadcaster()
	t.Cleanup(broadcaster.Shutdown)
	broadcaster.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "ack-virtual-node"})
	startController := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- imagecache.Run(ctx, imagecache.Options{Kube: kube, Dynamic: dyn, Cloud: env.Cloud, Recorder: recorder,
				ClusterID: clusterID, VSwitches: nodeCfg.VSwitches, SecurityGroup: nodeCfg.SecurityGroup,
				PollInterval: 250 * time.Millisecond, RetryInterval: time.Second})
		}()
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("ImageCache controller: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("ImageCache controller did not stop within 30s")
			}
		}
		t.Cleanup(stop)
		return stop
	}
	stop := startController()
	ctx := context.Background()

	// Create -> Ready.
	web := uniqueName("imc-web")
	createImageCache(t, dyn, web, api.ImageCacheSpec{Images: []string{"registry.example.com/library/nginx:1.25"},
		ImageCacheSize: 30, RetentionDays: 7}, nil)
	ic := waitImageCache(t, dyn, web, "Ready with a cache id", func(ic *api.ImageCache) bool {
		return ic.Status.Phase == api.PhaseReady && ic.Status.ImageCacheId != "" && meta.IsStatusConditionTrue(ic.Status.Conditions, api.ConditionReady)
	})
	firstID, webUID := ic.Status.ImageCacheId, string(ic.UID)
	if ic.Status.Progress != "100%" || ic.Status.ObservedGeneration != 1 || ic.Status.StartTime == nil || ic.Status.ExpireDateTime == nil || len(ic.Status.Events) == 0 {
		t.Errorf("Ready status %+v: want progress 100%%, generation 1, start and expiry times, the cloud's events", ic.Status)
	}
	if len(ic.Finalizers) != 1 || ic.Finalizers[0] != imagecache.Finalizer {
		t.Errorf("finalizers %v, want [%s]", ic.Finalizers, imagecache.Finalizer)
	}
	reqs := createRequests(env.Simulator, web)
	if len(reqs) != 1 {
		t.Fatalf("%d CreateImageCache calls for %s, want 1", len(reqs), web)
	}
	for k, want := range map[string]string{"ImageCacheName": imagecache.CloudName(web), "Image.1": "registry.example.com/library/nginx:1.25",
		"ImageCacheSize": "30", "RetentionDays": "7", "SecurityGroupId": nodeCfg.SecurityGroup, "VSwitchId": strings.Join(nodeCfg.VSwitches, ","),
		"ClientToken": string(ic.UID) + "-1"} {
		if reqs[0][k] != want {
			t.Errorf("CreateImageCache %s = %q, want %q", k, reqs[0][k], want)
		}
	}
	waitImageCacheEvent(t, kube, web, corev1.EventTypeNormal, imagecache.ReasonReady, firstID)

	// A pod naming it sends its cache id as ImageSnapshotId.
	tpl := onVirtualNode(node, nil, corev1.RestartPolicyAlways, "sleep", "3600")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cached", Namespace: ns,
		Annotations: map[string]string{translate.AnnotationImageCacheName: web}}, Spec: tpl.Spec}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	g := podGroup(t, kube, env.Simulator, ns, pod.Name)
	var sent string
	for _, r := range env.Simulator.Requests("CreateContainerGroup") {
		if r.Params["ContainerGroupName"] == g.ContainerGroupName {
			sent = r.Params["ImageSnapshotId"]
		}
	}
	if sent != firstID {
		t.Errorf("CreateContainerGroup of pod %s sent ImageSnapshotId %q, want the cache %s", pod.Name, sent, firstID)
	}

	// Update: a change of images builds a new cache and deletes the old.
	// The cloud refuses the first delete of the old cache (every attempt
	// the client makes): the status is written all the same, with one
	// Ready event, a DeleteFailed Warning says so, and the delete is
	// retried.
	if err := env.Simulator.InjectFault(simulator.Fault{Action: "DeleteImageCache", Times: eci.DefaultMaxAttempts, Code: "ServiceUnavailable"}); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"spec":{"images":["registry.example.com/library/nginx:1.25","registry.example.com/library/redis:7"]}}`)
	if _, err := dyn.Resource(api.GVR).Patch(ctx, web, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// While the new cache builds (2 x StartDelay, polled every 250ms),
	// pods keep the old one: the status names it readyImageCacheId, the
	// Ready condition stays True saying so, and the resolver the provider
	// uses answers with it.
	resolver := &imagecache.Resolver{Dynamic: dyn}
	sawRebuild := false
	ic = waitImageCache(t, dyn, web, "Ready for generation 2", func(ic *api.ImageCache) bool {
		st := ic.Status
		if !sawRebuild && st.ObservedGeneration == 2 && st.ImageCacheId != firstID && st.Phase != api.PhaseReady {
			if st.ReadyImageCacheId != firstID {
				t.Errorf("generation 2 building (%s %s): readyImageCacheId %q, want the old Ready cache %s", st.ImageCacheId, st.Phase, st.ReadyImageCacheId, firstID)
			}
			if c := meta.FindStatusCondition(st.Conditions, api.ConditionReady); c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, firstID) {
				t.Errorf("generation 2 building: Ready condition %+v, want True naming %s", c, firstID)
			}
			id, err := resolver.ImageCacheID(ctx, web)
			if err != nil {
				t.Errorf("during the rebuild the resolver refused %s: %v; want the old cache %s", web, err, firstID)
			} else if id != firstID && id != st.ImageCacheId {
				t.Errorf("during the rebuild the resolver answered %s, want the old cache %s (or the new %s once Ready)", id, firstID, st.ImageCacheId)
			}
			sawRebuild = true
		}
		return st.ObservedGeneration == 2 && st.Phase == api.PhaseReady && st.ImageCacheId != firstID
	})
	if !sawRebuild {
		t.Errorf("never saw generation 2 building in %s of polling: the rebuild's status went unobserved", 2*2*time.Second)
	}
	secondID := ic.Status.ImageCacheId
	if ic.Status.ReadyImageCacheId != secondID {
		t.Errorf("generation 2 Ready: readyImageCacheId %q, want %s", ic.Status.ReadyImageCacheId, secondID)
	}
	if c := cloudCache(t, env.Cloud, secondID); c == nil || len(c.Images) != 2 {
		t.Errorf("new cache %s: %+v, want the two images", secondID, c)
	}
	poll(t, "the old cache "+firstID+" deleted", 60*time.Second, func(context.Context) (bool, error) {
		return cloudCache(t, env.Cloud, firstID) == nil, nil
	})
	waitImageCacheEvent(t, kube, web, corev1.EventTypeNormal, imagecache.ReasonRebuilding, secondID, firstID)
	waitImageCacheEvent(t, kube, web, corev1.EventTypeWarning, imagecache.ReasonDeleteFailed, firstID, "ServiceUnavailable", "retrying")
	readyEvents, err := imageCacheEvents(ctx, kube, web, imagecache.ReasonReady)
	if err != nil {
		t.Fatal(err)
	}
	readyOf2 := 0
	for _, e := range readyEvents {
		if strings.Contains(e.Message, secondID) {
			readyOf2 += max(int(e.Count), 1)
		}
	}
	if readyOf2 != 1 {
		t.Errorf("ImageCacheReady for %s recorded %d times, want once (the status is written even when the old cache's delete fails)", secondID, readyOf2)
	}
	if n := len(createRequests(env.Simulator, web)); n != 2 {
		t.Errorf("%d CreateImageCache calls for %s after the update, want 2", n, web)
	}

	// Adoption: the controller restarts having lost the status (as after
	// a crash between the create and the status write); the next one
	// finds the cache by its tags and creates none.
	stop()
	ic, err = getImageCache(ctx, dyn, web)
	if err != nil {
		t.Fatal(err)
	}
	ic.Status = api.ImageCacheStatus{}
	u, err := api.ToUnstructured(ic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(api.GVR).UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	createsBefore := simtest.Calls(env.Simulator, "CreateImageCache")
	startController()
	ic = waitImageCache(t, dyn, web, "adopted and Ready", func(ic *api.ImageCache) bool {
		return ic.Status.Phase == api.PhaseReady && ic.Status.ImageCacheId != ""
	})
	if ic.Status.ImageCacheId != secondID {
		t.Errorf("after the restart the status names cache %s, want the adopted %s", ic.Status.ImageCacheId, secondID)
	}
	waitImageCacheEvent(t, kube, web, corev1.EventTypeNormal, imagecache.ReasonAdopted, secondID)
	if n := simtest.Calls(env.Simulator, "CreateImageCache"); n != createsBefore {
		t.Errorf("CreateImageCache called %d times after the restart, want none", n-createsBefore)
	}

	// Bad input: an image the cloud cannot pull.
	bad := uniqueName("imc-bad")
	createImageCache(t, dyn, bad, api.ImageCacheSpec{Images: []string{"registry.example.com/library/pull-fail:1"}}, nil)
	ic = waitImageCache(t, dyn, bad, "Failed", func(ic *api.ImageCache) bool { return ic.Status.Phase == api.PhaseFailed })
	if !strings.Contains(ic.Status.Message, "Failed to pull images") || meta.IsStatusConditionTrue(ic.Status.Conditions, api.ConditionReady) {
		t.Errorf("Failed status %+v: want the cloud's reason in the message and Ready False", ic.Status)
	}
	waitImageCacheEvent(t, kube, bad, corev1.EventTypeWarning, imagecache.ReasonFailed, ic.Status.ImageCacheId, "Failed to pull images")
	// A pod naming the failed cache waits, and its event says why.
	waiting := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "waits", Namespace: ns,
		Annotations: map[string]string{translate.AnnotationImageCacheName: bad}}, Spec: tpl.Spec}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, waiting, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, kube, ns, waiting.Name, corev1.EventTypeWarning, "ProviderCreateFailed", `ImageCache "`+bad+`"`, "is not Ready, phase Failed")
	if p, err := kube.CoreV1().Pods(ns).Get(ctx, waiting.Name, metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodPending {
		t.Errorf("pod naming a failed ImageCache: %v, phase %v, want Pending", err, p.Status.Phase)
	}

	// Bad input: a missing pull secret is named; the cache is built once
	// the secret exists, with its credentials.
	private := uniqueName("imc-private")
	createImageCache(t, dyn, private, api.ImageCacheSpec{Images: []string{"registry.example.com/private/app:1"},
		ImagePullSecrets: []string{ns + ":regcred"}}, nil)
	ic = waitImageCache(t, dyn, private, "PullSecretsResolved False", func(ic *api.ImageCache) bool {
		c := meta.FindStatusCondition(ic.Status.Conditions, api.ConditionPullSecretsResolved)
		return c != nil && c.Status == metav1.ConditionFalse
	})
	if c := meta.FindStatusCondition(ic.Status.Conditions, api.ConditionPullSecretsResolved); !strings.Contains(c.Message, ns+"/regcred") || ic.Status.Phase != api.PhasePending {
		t.Errorf("missing secret: condition %+v, phase %s; want the secret named and phase Pending", c, ic.Status.Phase)
	}
	waitImageCacheEvent(t, kube, private, corev1.EventTypeWarning, imagecache.ReasonPullSecretMissing, ns+"/regcred")
	if n := len(createRequests(env.Simulator, private)); n != 0 {
		t.Errorf("%d CreateImageCache calls for an ImageCache whose secret is missing, want 0", n)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: ns}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"username":"u","password":"p"}}}`)}}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitImageCache(t, dyn, private, "Ready once the secret exists", func(ic *api.ImageCache) bool {
		return ic.Status.Phase == api.PhaseReady && meta.IsStatusConditionTrue(ic.Status.Conditions, api.ConditionPullSecretsResolved)
	})
	if reqs := createRequests(env.Simulator, private); len(reqs) != 1 || reqs[0]["ImageRegistryCredential.1.Server"] != "registry.example.com" ||
		reqs[0]["ImageRegistryCredential.1.UserName"] != "u" {
		t.Errorf("CreateImageCache of %s: %v, want one call with the secret's credentials", private, reqs)
	}

	// No stock where the annotation builds it: the cloud refuses the build
	// instance, the object says why (one event, not one per retry), and
	// the cache is built once the zone has stock again.
	zone := env.SimulatorConfig.Zones[len(env.SimulatorConfig.Zones)-1]
	if err := env.Simulator.SetStock(zone.ZoneId, 0, 0); err != nil {
		t.Fatal(err)
	}
	noStock := uniqueName("imc-nostock")
	createImageCache(t, dyn, noStock, api.ImageCacheSpec{Images: []string{"registry.example.com/library/busybox:1.36"}},
		map[string]string{api.AnnotationVSwitch: zone.VSwitches[0].VSwitchId})
	ic = waitImageCache(t, dyn, noStock, "Pending with the cloud's NoStock", func(ic *api.ImageCache) bool {
		return ic.Status.Phase == api.PhasePending && ic.Status.Reason == imagecache.ReasonCreateFailed
	})
	if !strings.Contains(ic.Status.Message, "NoStock") || !strings.Contains(ic.Status.Message, zone.ZoneId) {
		t.Errorf("status message %q, want the cloud's NoStock naming zone %s", ic.Status.Message, zone.ZoneId)
	}
	waitImageCacheEvent(t, kube, noStock, corev1.EventTypeWarning, imagecache.ReasonCreateFailed, "NoStock", "retrying")
	poll(t, "a few retries of "+noStock, 30*time.Second, func(context.Context) (bool, error) {
		return len(createRequests(env.Simulator, noStock)) >= 3, nil
	})
	evs, err := imageCacheEvents(ctx, kube, noStock, imagecache.ReasonCreateFailed)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Errorf("%d CreateFailed events for one reason, want 1 (aggregated): %+v", len(evs), evs)
	}
	if err := env.Simulator.SetStock(zone.ZoneId, 1000, 4000); err != nil {
		t.Fatal(err)
	}
	waitImageCache(t, dyn, noStock, "Ready once the zone has stock", func(ic *api.ImageCache) bool {
		return ic.Status.Phase == api.PhaseReady && ic.Status.ImageCacheId != ""
	})

	// A spec the cloud refuses (a vSwitch that does not exist): the object
	// is Failed with the cloud's reason and the fix, the refusal is not
	// retried while nothing changes, and the cache is built once the
	// annotation is fixed.
	refused := uniqueName("imc-refused")
	createImageCache(t, dyn, refused, api.ImageCacheSpec{Images: []string{"registry.example.com/library/busybox:1.36"}},
		map[string]string{api.AnnotationVSwitch: "vsw-doesnotexist"})
	ic = waitImageCache(t, dyn, refused, "Failed with the cloud's refusal", func(ic *api.ImageCache) bool {
		return ic.Status.Phase == api.PhaseFailed && ic.Status.Reason == imagecache.ReasonCreateFailed
	})
	if m := ic.Status.Message; !strings.Contains(m, "InvalidVSwitchId.NotFound") || !strings.Contains(m, "fix the spec") || strings.Contains(m, "RequestId") {
		t.Errorf("status message %q: want the cloud's InvalidVSwitchId.NotFound and the fix, no request id", m)
	}
	if c := meta.FindStatusCondition(ic.Status.Conditions, api.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != imagecache.ReasonCreateFailed {
		t.Errorf("Ready condition %+v, want False/%s", c, imagecache.ReasonCreateFailed)
	}
	waitImageCacheEvent(t, kube, refused, corev1.EventTypeWarning, imagecache.ReasonCreateFailed, "InvalidVSwitchId.NotFound", "fix the spec")
	// RetryInterval is 1s here: a retried refusal would call 4 times or
	// more in 4s. Without retries the calls are the first create and at
	// most one more per status write (2) or conflict (3).
	time.Sleep(4 * time.Second)
	if n := len(createRequests(env.Simulator, refused)); n < 1 || n > 3 {
		t.Errorf("%d CreateImageCache calls for a refused spec in 4s, want 1-3 (not retried every RetryInterval)", n)
	}
	fix := []byte(`{"metadata":{"annotations":{"` + api.AnnotationVSwitch + `":"` + nodeCfg.VSwitches[0] + `"}}}`)
	if _, err := dyn.Resource(api.GVR).Patch(ctx, refused, types.MergePatchType, fix, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitImageCache(t, dyn, refused, "Ready once the annotation names a vSwitch that exists", func(ic *api.ImageCache) bool {
		return ic.Status.Phase == api.PhaseReady && ic.Status.ImageCacheId != "" && ic.Status.Reason == ""
	})

	// A delete the cloud fails for a while: the object stays, one
	// DeleteFailed event counts the failures (no request id, so repeats
	// aggregate), and the object goes once the cloud answers. The client
	// sends each call up to DefaultMaxAttempts times, so 3 failed deletes
	// of the controller take 3 x that many answers.
	if err := env.Simulator.InjectFault(simulator.Fault{Action: "DeleteImageCache", Times: 3 * eci.DefaultMaxAttempts, Code: "ServiceUnavailable"}); err != nil {
		t.Fatal(err)
	}
	if err := dyn.Resource(api.GVR).Delete(ctx, refused, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "ImageCache "+refused+" gone after the cloud answers again", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(api.GVR).Get(ctx, refused, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	env.Simulator.ClearFaults()
	var deleteFailed []corev1.Event
	poll(t, "the DeleteFailed event of "+refused+" counting the 3 failures", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := imageCacheEvents(ctx, kube, refused, imagecache.ReasonDeleteFailed)
		deleteFailed = evs
		if err != nil {
			return false, err
		}
		if len(evs) != 1 || max(evs[0].Count, 1) < 3 {
			var seen []string
			for _, e := range evs {
				seen = append(seen, fmt.Sprintf("%dx %q", e.Count, e.Message))
			}
			return false, fmt.Errorf("DeleteFailed events: %v", seen)
		}
		return true, nil
	})
	for _, e := range deleteFailed {
		if strings.Contains(e.Message, "RequestId") || !strings.Contains(e.Message, "ServiceUnavailable") {
			t.Errorf("DeleteFailed event %q: want the cloud's ServiceUnavailable and no request id", e.Message)
		}
	}

	// Delete: the cloud cache goes, then the object.
	if err := dyn.Resource(api.GVR).Delete(ctx, web, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "ImageCache "+web+" gone", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(api.GVR).Get(ctx, web, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if c := cloudCache(t, env.Cloud, secondID); c != nil {
		t.Errorf("cloud cache %s still exists after its ImageCache was deleted: %+v", secondID, c)
	}
	own, err := env.Cloud.DescribeImageCaches(ctx, &eci.DescribeImageCachesRequest{Tags: []eci.Tag{
		{Key: imagecache.TagClusterID, Value: clusterID}, {Key: imagecache.TagUID, Value: webUID}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(own.ImageCaches) != 0 {
		t.Errorf("caches of the deleted ImageCache %s left in the cloud: %+v", web, own.ImageCaches)
	}
}
