package provider_test

// Unit tests of the create/retry state machine: CreatePod, the retries it
// schedules, DeletePod and the status loop (Run), against the fake cloud
// (pkg/provider/fake) and the package's shared real apiserver, through the
// provider's exported API only.

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/fake"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// What users see, written out: these names are the provider's contract
// with them (and kept here as literals so the tests survive moves of the
// constants inside the provider).
const (
	annFailStrategy   = "k8s.aliyun.com/eci-fail-strategy"
	annInstanceID     = "k8s.aliyun.com/eci-instance-id"
	annZoneID         = "k8s.aliyun.com/eci-zone-id"
	annVSwitchID      = "k8s.aliyun.com/eci-vswitch-id"
	condCreated       = "ContainerInstanceCreated"
	reasonRetrying    = "ContainerGroupCreateRetrying"
	reasonNoStock     = "ContainerGroup.NoStock"
	reasonSchedFailed = "ContainerInstanceScheduleFailed"
	reasonNotFound    = "ContainerInstanceNotFound"
	tagPodUID         = "PodUID"
)

const (
	nodeName  = "vk-fake"
	clusterID = "c-fake"
	// waitFor bounds every wait: far above the first create retry (at
	// most 5 s) even on a loaded machine; tests wait for states, never
	// for a time.
	waitFor = 30 * time.Second
)

// smEnv is a running provider of node vk-fake with a fake cloud of three
// zones (zone-a, -b, -c; vSwitches vsw-a, -b, -c), the shared apiserver as
// its cluster (and the sink of its events) and a namespace of its own.
type smEnv struct {
	t     *testing.T
	ctx   context.Context
	cloud *fake.Cloud
	kube  kubernetes.Interface
	cp    *controlplane.ControlPlane
	ns    string
	p     *provider.Provider
	// rec is the provider's recorder (events go to the apiserver).
	rec record.EventRecorder

	mu     sync.Mutex
	pushes []*corev1.Pod
}

func newSMEnv(t *testing.T, vswitches ...string) *smEnv {
	t.Helper()
	cp := provider.SharedControlPlane(t)
	kube := cp.Clientset()
	// The pods are bound to node vk-fake, which must exist or the pod
	// garbage collector deletes them under the test (see RegisterNode).
	provider.RegisterNode(t, kube, nodeName)
	e := &smEnv{t: t, cloud: fake.New(), kube: kube, cp: cp, ns: controlplane.TestNamespace(t, kube, "createsm")}
	for _, z := range []string{"a", "b", "c"} {
		e.cloud.AddVSwitch("vsw-"+z, "zone-"+z)
	}
	if len(vswitches) == 0 {
		vswitches = []string{"vsw-a"}
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown)
	e.rec = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "virtual-kubelet", Host: nodeName})
	p, err := provider.New(provider.Options{
		NodeName: nodeName, ClusterID: clusterID, VSwitches: vswitches, SecurityGroup: "sg-fake",
		Cloud: e.cloud, Kube: kube,
		Recorder:       e.rec,
		StatusInterval: 50 * time.Millisecond, ResyncInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx = ctx
	p.NotifyPods(ctx, func(pod *corev1.Pod) {
		e.mu.Lock()
		e.pushes = append(e.pushes, pod.DeepCopy())
		e.mu.Unlock()
	})
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// newPod creates pod name on the virtual node in the apiserver; token
// says whether it mounts a service-account token (minted anew for every
// create attempt, as the provider does).
func (e *smEnv) newPod(name string, annotations map[string]string, token bool) *corev1.Pod {
	e.t.Helper()
	if token {
		if err := e.cp.WaitForNamespace(e.ctx, e.ns); err != nil {
			e.t.Fatal(err)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{NodeName: nodeName, RestartPolicy: corev1.RestartPolicyAlways, AutomountServiceAccountToken: &token,
			Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}}}},
	}
	created, err := e.kube.CoreV1().Pods(e.ns).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return created
}

// passThrough answers a call with the default behaviour.
func passThrough(_ context.Context, _ any, base func() (any, error)) (any, error) { return base() }

// holdNextCreate queues a handler that holds the next unscripted create
// until release is called, then answers it by default: the test checks the
// state before a retry without racing it.
func (e *smEnv) holdNextCreate() (release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	e.t.Cleanup(release)
	e.cloud.Script(fake.OpCreate, func(ctx context.Context, _ any, base func() (any, error)) (any, error) {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return base()
	})
	return release
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", waitFor, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastPush returns the latest status pushed for pod name (what the core
// writes to the apiserver), nil if none.
func (e *smEnv) lastPush(name string) *corev1.Pod {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.pushes) - 1; i >= 0; i-- {
		if e.pushes[i].Name == name {
			return e.pushes[i].DeepCopy()
		}
	}
	return nil
}

// pushed returns every push of pod name, oldest first.
func (e *smEnv) pushed(name string) []*corev1.Pod {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*corev1.Pod
	for _, p := range e.pushes {
		if p.Name == name {
			out = append(out, p.DeepCopy())
		}
	}
	return out
}

// waitPush waits until the latest push of pod name satisfies ok.
func (e *smEnv) waitPush(name, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	e.t.Helper()
	var last *corev1.Pod
	eventually(e.t, fmt.Sprintf("pod %s %s", name, what), func() bool {
		last = e.lastPush(name)
		return last != nil && ok(last)
	})
	return last
}

// running says a pushed pod is Running and Ready.
func running(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning {
		return false
	}
	c := condition(pod.Status, string(corev1.PodReady))
	return c != nil && c.Status == corev1.ConditionTrue
}

func condition(st corev1.PodStatus, typ string) *corev1.PodCondition {
	for i := range st.Conditions {
		if string(st.Conditions[i].Type) == typ {
			return &st.Conditions[i]
		}
	}
	return nil
}

// status returns the provider's status of pod name.
func (e *smEnv) status(name string) corev1.PodStatus {
	e.t.Helper()
	st, err := e.p.GetPodStatus(e.ctx, e.ns, name)
	if err != nil {
		e.t.Fatalf("GetPodStatus(%s): %v", name, err)
	}
	return *st
}

// waitEvent waits for an event of type typ and reason on pod name in the
// apiserver and returns it.
func (e *smEnv) waitEvent(name, typ, reason string) corev1.Event {
	e.t.Helper()
	var found corev1.Event
	eventually(e.t, fmt.Sprintf("%s event %s on pod %s", typ, reason, name), func() bool {
		list, err := e.kube.CoreV1().Events(e.ns).List(e.ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String()})
		if err != nil {
			return false
		}
		for _, ev := range list.Items {
			if ev.Type == typ && ev.Reason == reason {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// waitGroups waits until the cloud holds n groups and returns them.
func (e *smEnv) waitGroups(n int) []eci.ContainerGroup {
	e.t.Helper()
	var groups []eci.ContainerGroup
	eventually(e.t, fmt.Sprintf("%d container groups", n), func() bool {
		groups = e.cloud.Groups()
		return len(groups) == n
	})
	return groups
}

// start moves group id to Running and waits for pod name to be pushed
// Running and Ready with the group's id.
func (e *smEnv) start(name, id string) {
	e.t.Helper()
	if err := e.cloud.SetStatus(id, eci.StatusRunning); err != nil {
		e.t.Fatal(err)
	}
	e.waitPush(name, "Running with group "+id, func(p *corev1.Pod) bool {
		return running(p) && p.Annotations[annInstanceID] == id
	})
}

// checkCreates checks that every create of the test was for pod: its UID
// as ClientToken, tags naming it, the vSwitches configured.
func checkCreates(t *testing.T, reqs []*eci.CreateContainerGroupRequest, pod *corev1.Pod, vswitches string) {
	t.Helper()
	for i, r := range reqs {
		uid := ""
		for _, tag := range r.Tags {
			if tag.Key == tagPodUID {
				uid = tag.Value
			}
		}
		if r.ClientToken != string(pod.UID) || uid != string(pod.UID) || r.VSwitchId != vswitches || r.ScheduleStrategy != "VSwitchOrdered" {
			t.Errorf("create %d: ClientToken %q, PodUID tag %q, VSwitchId %q, ScheduleStrategy %q; want the pod UID %s twice, %q, VSwitchOrdered",
				i+1, r.ClientToken, uid, r.VSwitchId, r.ScheduleStrategy, pod.UID, vswitches)
		}
	}
}

// TestCreateRetried: a create the cloud answers with a server error, a
// throttle or not at all is retried (the virtual-kubelet core would not);
// meanwhile the pod is Pending and says why; the retry creates exactly one
// group and the pod runs.
func TestCreateRetried(t *testing.T) {
	tests := []struct {
		name string
		err  *eci.Error
	}{
		{"internal error", fake.InternalError(fake.OpCreate)},
		{"service unavailable", fake.ServiceUnavailable(fake.OpCreate)},
		{"throttled", fake.Throttled(fake.OpCreate)},
		{"no answer, no effect", fake.NoResponse(fake.OpCreate)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSMEnv(t)
			pod := e.newPod("web", nil, false)
			e.cloud.NextError(fake.OpCreate, tt.err)
			release := e.holdNextCreate()
			if err := e.p.CreatePod(e.ctx, pod); err != nil {
				t.Fatalf("CreatePod: %v; want the failure handled by a retry", err)
			}
			st := e.status("web")
			c := condition(st, condCreated)
			if st.Phase != corev1.PodPending || st.Reason != reasonRetrying || !strings.Contains(st.Message, eci.StableText(tt.err)) ||
				strings.Contains(st.Message, "RequestId") || c == nil || c.Status != corev1.ConditionFalse || c.Reason != reasonRetrying {
				t.Errorf("status while waiting: phase %s, reason %q, message %q, %s %+v; want Pending, %s and the error without its request id",
					st.Phase, st.Reason, st.Message, condCreated, c, reasonRetrying)
			}
			if p := e.lastPush("web"); p == nil || p.Status.Reason != reasonRetrying {
				t.Errorf("pushed %+v, want the Pending status with reason %s", p, reasonRetrying)
			}
			ev := e.waitEvent("web", corev1.EventTypeWarning, "ContainerGroupCreateFailed")
			if !strings.Contains(ev.Message, "retrying") {
				t.Errorf("event message %q does not say the create is retried", ev.Message)
			}

			release()
			g := e.waitGroups(1)[0]
			e.start("web", g.ContainerGroupId)
			reqs := e.cloud.CreateRequests()
			if len(reqs) != 2 {
				t.Fatalf("%d creates, want the failed one and one retry", len(reqs))
			}
			checkCreates(t, reqs, pod, "vsw-a")
			e.waitEvent("web", corev1.EventTypeNormal, "ContainerInstanceCreated")
			if n := len(e.cloud.Groups()); n != 1 || len(e.cloud.DeletedIDs()) != 0 {
				t.Errorf("%d groups, deletes %v; want one group, none deleted", n, e.cloud.DeletedIDs())
			}
		})
	}
}

// TestCreateStockOut: the provider offers every configured vSwitch in
// order (VSwitchOrdered), so the cloud places the group in the first zone
// with stock; when no zone has any, the pod's eci-fail-strategy decides:
// fail-back (the default) waits and retries, fail-fast fails the pod.
func TestCreateStockOut(t *testing.T) {
	t.Run("first zone out of stock: the next vSwitch", func(t *testing.T) {
		t.Parallel()
		e := newSMEnv(t, "vsw-a", "vsw-b", "vsw-c")
		e.cloud.SetStock("zone-a", false)
		pod := e.newPod("web", nil, false)
		if err := e.p.CreatePod(e.ctx, pod); err != nil {
			t.Fatal(err)
		}
		g := e.waitGroups(1)[0]
		if g.VSwitchId != "vsw-b" {
			t.Errorf("group placed in %s, want vsw-b, the first with stock", g.VSwitchId)
		}
		p := e.waitPush("web", "with its placement", func(p *corev1.Pod) bool { return p.Annotations[annVSwitchID] != "" })
		if p.Annotations[annZoneID] != "zone-b" || p.Annotations[annVSwitchID] != "vsw-b" {
			t.Errorf("placement annotations %v, want zone-b and vsw-b", p.Annotations)
		}
		e.start("web", g.ContainerGroupId)
		checkCreates(t, e.cloud.CreateRequests(), pod, "vsw-a,vsw-b,vsw-c")

		// The skipped vSwitch goes to the back of the list for the next
		// pods, sparing them the same failed try.
		db := e.newPod("db", nil, false)
		if err := e.p.CreatePod(e.ctx, db); err != nil {
			t.Fatal(err)
		}
		reqs := e.cloud.CreateRequests()
		if len(reqs) != 2 || reqs[1].VSwitchId != "vsw-b,vsw-c,vsw-a" {
			t.Errorf("creates %d, the second with VSwitchId %q; want 2, the second vsw-b,vsw-c,vsw-a", len(reqs), reqs[len(reqs)-1].VSwitchId)
		}
	})

	tests := []struct {
		name        string
		annotations map[string]string
		// wantRetry: the pod waits for stock (fail-back); else it fails.
		wantRetry bool
	}{
		{name: "fail-back by default", wantRetry: true},
		{name: "fail-back", annotations: map[string]string{annFailStrategy: "fail-back"}, wantRetry: true},
		{name: "fail-fast", annotations: map[string]string{annFailStrategy: "fail-fast"}},
	}
	for _, tt := range tests {
		t.Run("every zone out of stock, "+tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSMEnv(t, "vsw-a", "vsw-b")
			e.cloud.SetStock("zone-a", false)
			e.cloud.SetStock("zone-b", false)
			pod := e.newPod("web", tt.annotations, false)
			e.cloud.Script(fake.OpCreate, passThrough)
			release := e.holdNextCreate()
			if err := e.p.CreatePod(e.ctx, pod); err != nil {
				t.Fatalf("CreatePod: %v; a stock-out is no error of the pod spec", err)
			}
			st := e.status("web")
			c := condition(st, condCreated)
			pushed := e.lastPush("web")
			if pushed == nil || pushed.Status.Phase != st.Phase || pushed.Status.Reason != st.Reason {
				t.Errorf("pushed %+v, want the provider's status %s/%s", pushed, st.Phase, st.Reason)
			}
			ev := e.waitEvent("web", corev1.EventTypeWarning, "NoStock")
			if !tt.wantRetry {
				if st.Phase != corev1.PodFailed || st.Reason != reasonSchedFailed || c == nil || c.Reason != reasonNoStock {
					t.Errorf("status: phase %s, reason %q, %s %+v; want Failed, %s, condition reason %s",
						st.Phase, st.Reason, condCreated, c, reasonSchedFailed, reasonNoStock)
				}
				if !strings.Contains(ev.Message, "fail-fast") {
					t.Errorf("NoStock event %q does not name the fail-fast strategy", ev.Message)
				}
				e.waitEvent("web", corev1.EventTypeWarning, reasonSchedFailed)
				if n := e.cloud.CallCount(fake.OpCreate); n != 1 || len(e.cloud.Groups()) != 0 {
					t.Errorf("%d creates, groups %v; want one create and no group", n, e.cloud.Groups())
				}
				for _, cs := range st.ContainerStatuses {
					if cs.State.Terminated == nil {
						t.Errorf("container %s of a failed pod is not terminated: %+v", cs.Name, cs.State)
					}
				}
				return
			}
			if st.Phase != corev1.PodPending || st.Reason != reasonNoStock || c == nil || c.Status != corev1.ConditionFalse || c.Reason != reasonNoStock {
				t.Errorf("status: phase %s, reason %q, %s %+v; want Pending, %s", st.Phase, st.Reason, condCreated, c, reasonNoStock)
			}
			if !strings.Contains(ev.Message, "fail-back") {
				t.Errorf("NoStock event %q does not say the pod waits (fail-back)", ev.Message)
			}
			if len(e.cloud.Groups()) != 0 {
				t.Fatalf("a group exists with no zone in stock: %v", e.cloud.Groups())
			}
			// Stock returns in the second zone: the next retry lands there.
			e.cloud.SetStock("zone-b", true)
			release()
			g := e.waitGroups(1)[0]
			if g.VSwitchId != "vsw-b" {
				t.Errorf("group placed in %s, want vsw-b", g.VSwitchId)
			}
			e.start("web", g.ContainerGroupId)
			calls := e.cloud.Calls(fake.OpCreate)
			if len(calls) != 2 || eci.ClassOf(calls[0].Err) != eci.ClassStockOut || calls[1].Err != nil {
				t.Errorf("creates %+v; want a stock-out and a retry that succeeds", calls)
			}
			checkCreates(t, e.cloud.CreateRequests(), pod, "vsw-a,vsw-b")
		})
	}
}

// havePodUIDTag says a DescribeContainerGroups request looks for the
// groups of one pod UID (the provider's lookup after a conflict).
func havePodUIDTag(req any, uid string) bool {
	r, ok := req.(*eci.DescribeContainerGroupsRequest)
	if !ok {
		return false
	}
	for _, tag := range r.Tags {
		if tag.Key == tagPodUID && tag.Value == uid {
			return true
		}
	}
	return false
}

// earlierGroup stores the group an earlier create made for pod (another
// process, or an attempt whose answer was lost) with the pod's UID as
// ClientToken but other parameters, as the provider tags it.
func (e *smEnv) earlierGroup(pod *corev1.Pod) string {
	e.t.Helper()
	id, err := e.cloud.AddGroup(&eci.CreateContainerGroupRequest{
		SecurityGroupId: "sg-fake", VSwitchId: "vsw-a", ScheduleStrategy: "VSwitchOrdered",
		ContainerGroupName: pod.Name + "-earlier", ClientToken: string(pod.UID),
		Tags: []eci.Tag{{Key: "ClusterId", Value: clusterID}, {Key: "NodeName", Value: nodeName},
			{Key: "PodNamespace", Value: pod.Namespace}, {Key: "PodName", Value: pod.Name}, {Key: tagPodUID, Value: string(pod.UID)}},
		Containers: []eci.Container{{Name: "app", Image: "busybox"}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestCreateConflict: a create answered IdempotentParameterMismatch means a
// group already exists for the pod's UID (made with other parameters, e.g.
// an older service-account token); the provider takes that group instead of
// making a second, and retries while the listing does not show it yet.
func TestCreateConflict(t *testing.T) {
	t.Run("the group of an earlier create is adopted", func(t *testing.T) {
		t.Parallel()
		e := newSMEnv(t)
		pod := e.newPod("web", nil, false)
		earlier := e.earlierGroup(pod)
		if err := e.p.CreatePod(e.ctx, pod); err != nil {
			t.Fatal(err)
		}
		calls := e.cloud.Calls(fake.OpCreate)
		if len(calls) != 1 || eci.ClassOf(calls[0].Err) != eci.ClassConflict {
			t.Fatalf("creates %+v; want one, answered with the conflict", calls)
		}
		if n := countCalls(e.cloud, fake.OpDescribe, func(c fake.Call) bool { return havePodUIDTag(c.Req, string(pod.UID)) }); n != 1 {
			t.Errorf("%d lookups of the pod's groups by its UID tag, want 1", n)
		}
		e.start("web", earlier)
		if groups := e.cloud.Groups(); len(groups) != 1 || len(e.cloud.DeletedIDs()) != 0 {
			t.Errorf("groups %v, deleted %v; want the earlier group alone, none deleted", groups, e.cloud.DeletedIDs())
		}
		e.waitEvent("web", corev1.EventTypeNormal, "ContainerInstanceCreated")
	})

	t.Run("the earlier group is not listed yet: retried, then adopted", func(t *testing.T) {
		t.Parallel()
		e := newSMEnv(t)
		pod := e.newPod("web", nil, false)
		earlier := e.earlierGroup(pod)
		// The first lookup by the pod's UID lags behind the create.
		var lagged func(ctx context.Context, req any, base func() (any, error)) (any, error)
		lagged = func(_ context.Context, req any, base func() (any, error)) (any, error) {
			if !havePodUIDTag(req, string(pod.UID)) {
				e.cloud.Script(fake.OpDescribe, lagged) // not the lookup: wait for it
				return base()
			}
			return &eci.DescribeContainerGroupsResponse{ContainerGroups: []eci.ContainerGroup{}}, nil
		}
		e.cloud.Script(fake.OpDescribe, lagged)
		e.cloud.Script(fake.OpCreate, passThrough)
		release := e.holdNextCreate()
		if err := e.p.CreatePod(e.ctx, pod); err != nil {
			t.Fatal(err)
		}
		st := e.status("web")
		if st.Phase != corev1.PodPending || st.Reason != reasonRetrying {
			t.Errorf("status while the group is not listed: %s, %q (%s); want Pending, %s", st.Phase, st.Reason, st.Message, reasonRetrying)
		}
		release()
		e.start("web", earlier)
		calls := e.cloud.Calls(fake.OpCreate)
		if len(calls) != 2 || eci.ClassOf(calls[0].Err) != eci.ClassConflict || eci.ClassOf(calls[1].Err) != eci.ClassConflict {
			t.Errorf("creates %+v; want two, both answered with the conflict", calls)
		}
		if groups := e.cloud.Groups(); len(groups) != 1 || len(e.cloud.DeletedIDs()) != 0 {
			t.Errorf("groups %v, deleted %v; want the earlier group alone", groups, e.cloud.DeletedIDs())
		}
	})

	t.Run("answer lost, the retry carries a fresh token", func(t *testing.T) {
		t.Parallel()
		e := newSMEnv(t)
		pod := e.newPod("web", nil, true)
		e.cloud.LoseAnswer(fake.OpCreate, fake.NoResponse(fake.OpCreate))
		release := e.holdNextCreate()
		if err := e.p.CreatePod(e.ctx, pod); err != nil {
			t.Fatal(err)
		}
		first := e.waitGroups(1)[0]
		if st := e.status("web"); st.Phase != corev1.PodPending || st.Reason != reasonRetrying {
			t.Errorf("status after the lost answer: %s, %q; want Pending, %s", st.Phase, st.Reason, reasonRetrying)
		}
		release()
		e.start("web", first.ContainerGroupId)
		calls := e.cloud.Calls(fake.OpCreate)
		if len(calls) != 2 || eci.ClassOf(calls[0].Err) != eci.ClassTransient || eci.ClassOf(calls[1].Err) != eci.ClassConflict {
			t.Fatalf("creates %+v; want the lost one and a retry answered with the conflict", calls)
		}
		a, b := calls[0].Req.(*eci.CreateContainerGroupRequest), calls[1].Req.(*eci.CreateContainerGroupRequest)
		ta, tb := tokenFile(a), tokenFile(b)
		if a.ClientToken != string(pod.UID) || b.ClientToken != a.ClientToken || ta == "" || ta == tb {
			t.Errorf("ClientTokens %q and %q, service-account token files %.20q and %.20q; want the pod UID twice and a fresh token in the retry",
				a.ClientToken, b.ClientToken, ta, tb)
		}
		if groups := e.cloud.Groups(); len(groups) != 1 {
			t.Errorf("groups %v, want the first create's alone", groups)
		}
	})
}

// tokenFile returns the content of the service-account token file a
// create request carries ("" if none).
func tokenFile(r *eci.CreateContainerGroupRequest) string {
	for _, v := range r.Volumes {
		for _, f := range v.ConfigFileToPaths {
			if path.Base(f.Path) == "token" {
				return f.Content
			}
		}
	}
	return ""
}

func countCalls(c *fake.Cloud, op string, match func(fake.Call) bool) int {
	n := 0
	for _, call := range c.Calls(op) {
		if match(call) {
			n++
		}
	}
	return n
}

// TestCreateLost: what becomes of a pod whose create or group goes
// missing. A create whose answer was lost is sent again with the same
// ClientToken and gets the same group. A group missing from the status
// listing soon after its create is not given up (the listing may have
// begun before it existed); a group confirmed gone fails its pod, which
// its controller replaces; the provider never makes a second group.
func TestCreateLost(t *testing.T) {
	t.Run("answer lost: the retry gets the same group", func(t *testing.T) {
		t.Parallel()
		e := newSMEnv(t)
		pod := e.newPod("web", nil, false)
		e.cloud.LoseAnswer(fake.OpCreate, fake.NoResponse(fake.OpCreate))
		release := e.holdNextCreate()
		if err := e.p.CreatePod(e.ctx, pod); err != nil {
			t.Fatal(err)
		}
		if st := e.status("web"); st.Phase != corev1.PodPending || st.Reason != reasonRetrying {
			t.Errorf("status after the lost answer: %s, %q; want Pending, %s", st.Phase, st.Reason, reasonRetrying)
		}
		release()
		g := e.waitGroups(1)[0]
		e.start("web", g.ContainerGroupId)
		calls := e.cloud.Calls(fake.OpCreate)
		if len(calls) != 2 || calls[1].Err != nil || calls[1].Resp.(*eci.CreateContainerGroupResponse).ContainerGroupId != g.ContainerGroupId {
			t.Errorf("creates %+v; want the lost one and a retry answered with the same group %s", calls, g.ContainerGroupId)
		}
		checkCreates(t, e.cloud.CreateRequests(), pod, "vsw-a")
		if n := len(e.cloud.Groups()); n != 1 {
			t.Errorf("%d groups, want 1", n)
		}
	})

	t.Run("missing just after the create: not given up yet", func(t *testing.T) {
		t.Parallel()
		e := newSMEnv(t)
		pod := e.newPod("web", nil, false)
		if err := e.p.CreatePod(e.ctx, pod); err != nil {
			t.Fatal(err)
		}
		g := e.waitGroups(1)[0]
		e.cloud.Lose(g.ContainerGroupId)
		// Full listings (SinceSecond 0), started and done; calls are
		// recorded when they start.
		full := func(done bool) int {
			return countCalls(e.cloud, fake.OpDescribeStatus, func(c fake.Call) bool {
				return (c.Done || !done) && c.Req.(*eci.DescribeContainerGroupStatusRequest).SinceSecond == 0
			})
		}
		// Wait for a full listing begun after the loss to end.
		after := full(false) + 1
		eventually(t, "a full status listing begun after the loss", func() bool { return full(true) >= after })
		st := e.status("web")
		if st.Phase != corev1.PodPending || condition(st, condCreated).Status != corev1.ConditionTrue {
			t.Errorf("status %s (%s: %s); want the pod still Pending with its group created", st.Phase, st.Reason, st.Message)
		}
		if n := e.cloud.CallCount(fake.OpCreate); n != 1 {
			t.Errorf("%d creates, want 1", n)
		}
	})

	t.Run("adopted group confirmed gone: the pod fails", func(t *testing.T) {
		t.Parallel()
		e := newSMEnv(t)
		pod := e.newPod("web", nil, false)
		id := e.earlierGroup(pod)
		// Created an hour ago by an earlier process of this node.
		if err := e.cloud.UpdateGroup(id, func(g *eci.ContainerGroup) {
			g.CreationTime = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		}); err != nil {
			t.Fatal(err)
		}
		if adopted, deleted, err := e.p.Adopt(e.ctx); err != nil || adopted != 1 || deleted != 0 {
			t.Fatalf("Adopt: %d adopted, %d deleted, %v; want the group adopted", adopted, deleted, err)
		}
		// The pod's annotations are the apiserver's (this one never got
		// the instance id): only the phase is waited for.
		if err := e.cloud.SetStatus(id, eci.StatusRunning); err != nil {
			t.Fatal(err)
		}
		e.waitPush("web", "Running", running)
		e.cloud.Lose(id)
		p := e.waitPush("web", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if p.Status.Reason != reasonNotFound || !strings.Contains(p.Status.Message, id) {
			t.Errorf("failed pod: reason %q, message %q; want %s naming %s", p.Status.Reason, p.Status.Message, reasonNotFound, id)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated == nil || cs.Ready {
				t.Errorf("container %s of the lost group: %+v, ready %v; want terminated", cs.Name, cs.State, cs.Ready)
			}
		}
		e.waitEvent("web", corev1.EventTypeWarning, reasonNotFound)
		// Confirmed by id before giving up, and never recreated.
		if n := countCalls(e.cloud, fake.OpDescribe, func(c fake.Call) bool {
			r := c.Req.(*eci.DescribeContainerGroupsRequest)
			return c.Done && c.Err == nil && len(r.ContainerGroupIds) == 1 && r.ContainerGroupIds[0] == id && len(c.Resp.(*eci.DescribeContainerGroupsResponse).ContainerGroups) == 0
		}); n == 0 {
			t.Error("the pod failed without its group being described by id first")
		}
		if n := e.cloud.CallCount(fake.OpCreate); n != 0 {
			t.Errorf("%d creates, want none", n)
		}
	})
}

// TestDeleteWhileCreating: a pod deleted while a retried create is in
// flight leaves nothing behind: a group the create makes is deleted, and a
// create that fails neither schedules a further attempt for the deleted pod
// nor reports it failed. A new pod of the same name, created meanwhile,
// keeps its own group and status.
func TestDeleteWhileCreating(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		// fail, if set, is the slow create's answer instead of a group.
		fail error
		// recreate: a new pod of the same name is created (and its group
		// made) before the slow create returns.
		recreate bool
	}{
		{name: "the create succeeds"},
		{name: "the create fails", fail: fake.InternalError(fake.OpCreate)},
		{name: "the create finds no stock, fail-fast", annotations: map[string]string{annFailStrategy: "fail-fast"},
			fail: fake.NoStock(fake.OpCreate, "zone-a")},
		{name: "the create is refused as invalid", fail: fake.InvalidParameter(fake.OpCreate, "Container.1.Image", "not an image reference")},
		{name: "the create succeeds, a new pod of that name", recreate: true},
		{name: "the create fails, a new pod of that name", fail: fake.InternalError(fake.OpCreate), recreate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSMEnv(t)
			pod := e.newPod("web", tt.annotations, false)
			e.cloud.NextError(fake.OpCreate, fake.InternalError(fake.OpCreate))
			started, release := make(chan struct{}), make(chan struct{})
			e.cloud.Script(fake.OpCreate, func(_ context.Context, _ any, base func() (any, error)) (any, error) {
				close(started)
				<-release
				if tt.fail != nil {
					return nil, tt.fail
				}
				return base()
			})
			if err := e.p.CreatePod(e.ctx, pod); err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(waitFor):
				t.Fatal("the create was not retried")
			}
			// The pod is deleted while the retry's create is under way.
			if err := e.p.DeletePod(e.ctx, pod); err != nil {
				t.Fatalf("DeletePod: %v", err)
			}
			if _, err := e.kube.CoreV1().Pods(e.ns).Get(e.ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("pod still in the apiserver after DeletePod: %v", err)
			}
			var fresh *corev1.Pod
			if tt.recreate {
				fresh = e.newPod("web", nil, false)
				if err := e.p.CreatePod(e.ctx, fresh); err != nil {
					t.Fatal(err)
				}
			}
			pushes := len(e.pushed("web"))
			close(release)
			eventually(t, "the slow create to return", func() bool {
				calls := e.cloud.Calls(fake.OpCreate)
				return len(calls) >= 2 && calls[1].Done
			})
			if tt.fail == nil {
				id := e.cloud.Calls(fake.OpCreate)[1].Resp.(*eci.CreateContainerGroupResponse).ContainerGroupId
				eventually(t, "the group of the deleted pod to be deleted", func() bool {
					_, exists := e.cloud.Group(id)
					ids := e.cloud.DeletedIDs()
					return !exists && len(ids) == 1 && ids[0] == id
				})
			}
			got, err := e.p.GetPod(e.ctx, e.ns, "web")
			groups := e.cloud.Groups()
			if !tt.recreate {
				// Nothing is left to retry: the provider forgot the pod.
				if !errdefs.IsNotFound(err) {
					t.Errorf("GetPod after the deletion: %v, status %+v; want not found "+
						"(the provider still holds the deleted pod)", err, got.Status)
				}
				if len(groups) != 0 {
					t.Errorf("groups left: %v", groups)
				}
			} else {
				if err != nil || got.UID != fresh.UID || condition(got.Status, condCreated).Status != corev1.ConditionTrue {
					t.Errorf("GetPod: %v, %v; want the new pod %s with its group", got, err, fresh.UID)
				}
				if len(groups) != 1 || groups[0].ContainerGroupId != got.Annotations[annInstanceID] {
					t.Errorf("groups %v; want the new pod's alone", groups)
				}
			}
			for _, p := range e.pushed("web")[pushes:] {
				if p.UID == pod.UID {
					t.Errorf("status %s/%s pushed for the deleted pod", p.Status.Phase, p.Status.Reason)
				}
			}
		})
	}
}

// TestCreateInvalid: a request the cloud refuses as invalid is not retried:
// CreatePod returns an invalid-input error (the core records it) and an
// event says why.
func TestCreateInvalid(t *testing.T) {
	t.Parallel()
	e := newSMEnv(t)
	pod := e.newPod("web", nil, false)
	e.cloud.NextError(fake.OpCreate, fake.InvalidParameter(fake.OpCreate, "Container.1.Image", "not an image reference"))
	err := e.p.CreatePod(e.ctx, pod)
	if !errdefs.IsInvalidInput(err) {
		t.Fatalf("CreatePod: %v; want an invalid-input error", err)
	}
	if !strings.Contains(err.Error(), fake.CodeInvalidParameter) {
		t.Errorf("CreatePod error %q does not carry the cloud's InvalidParameter", err)
	}
	ev := e.waitEvent("web", corev1.EventTypeWarning, "ContainerGroupCreateFailed")
	if !strings.Contains(ev.Message, "Container.1.Image") {
		t.Errorf("event %q does not name the parameter", ev.Message)
	}
	if n := e.cloud.CallCount(fake.OpCreate); n != 1 || len(e.cloud.Groups()) != 0 {
		t.Errorf("%d creates, groups %v; want one refused create", n, e.cloud.Groups())
	}
}

// TestCreateTokenFails: a pod whose service-account token cannot be minted
// (its ServiceAccount does not exist) gets no group: it waits Pending,
// retried, with a message that names the token and why.
func TestCreateTokenFails(t *testing.T) {
	e := newSMEnv(t)
	yes := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "no-sa", UID: "uid-no-sa"},
		Spec: corev1.PodSpec{NodeName: nodeName, ServiceAccountName: "missing", AutomountServiceAccountToken: &yes,
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
			Volumes: []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}}},
	}
	if err := e.p.CreatePod(e.ctx, pod); err != nil {
		t.Fatalf("CreatePod: %v; want the pod kept and retried", err)
	}
	if n := e.cloud.CallCount(fake.OpCreate); n != 0 {
		t.Errorf("%d CreateContainerGroup calls for a pod without its token, want none", n)
	}
	got := e.waitPush("no-sa", "Pending with a message", func(p *corev1.Pod) bool { return p.Status.Message != "" })
	want := "spec.volumes[0] (kube-api-access): service account token for " + e.ns + "/missing"
	if got.Status.Phase != corev1.PodPending || !strings.Contains(got.Status.Message, want) || !strings.Contains(got.Status.Message, "not found") {
		t.Errorf("pod status %s %q, want Pending with a message naming %q and why", got.Status.Phase, got.Status.Message, want)
	}
	if c := condition(got.Status, condCreated); c == nil || c.Reason != "ContainerGroupPrepareFailed" {
		t.Errorf("condition %s: %+v, want reason ContainerGroupPrepareFailed", condCreated, c)
	}
}

// TestAdoptOneListing: adoption reads the node's pods with one listing
// (paged), not one GET per group, and still tells the groups apart: those
// whose pod is on the node are adopted, those whose pod is gone or was
// replaced by a pod of the same name (another UID) are deleted.
func TestAdoptOneListing(t *testing.T) {
	t.Parallel()
	e := newSMEnv(t)
	const keep = 5
	var kept []*corev1.Pod
	for i := range keep {
		pod := e.newPod(fmt.Sprintf("web-%d", i), nil, false)
		e.earlierGroup(pod)
		kept = append(kept, pod)
	}
	gone := e.newPod("gone", nil, false)
	goneGroup := e.earlierGroup(gone)
	replaced := e.newPod("replaced", nil, false)
	replacedGroup := e.earlierGroup(replaced)
	for _, p := range []*corev1.Pod{gone, replaced} {
		if err := e.kube.CoreV1().Pods(e.ns).Delete(e.ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
	}
	again := e.newPod("replaced", nil, false) // same name, new UID, no group
	if again.UID == replaced.UID {
		t.Fatal("the recreated pod has the old UID")
	}

	// A provider of the same node whose apiserver requests are counted.
	var mu sync.Mutex
	requests := map[string]int{}
	kube, err := e.cp.ClientWith(func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		if strings.Contains(r.URL.Path, "/pods") {
			mu.Lock()
			requests[r.Method+" "+r.URL.Path]++
			mu.Unlock()
		}
		return next.RoundTrip(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(provider.Options{
		NodeName: nodeName, ClusterID: clusterID, VSwitches: []string{"vsw-a"}, SecurityGroup: "sg-fake",
		Cloud: e.cloud, Kube: kube, Recorder: e.rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	adopted, deleted, err := p.Adopt(e.ctx)
	if err != nil || adopted != keep || deleted != 2 {
		t.Fatalf("Adopt: %d adopted, %d deleted, %v; want %d adopted, 2 deleted", adopted, deleted, err, keep)
	}
	left := map[string]bool{}
	for _, g := range e.cloud.Groups() {
		left[g.ContainerGroupId] = true
	}
	if left[goneGroup] || left[replacedGroup] || len(left) != keep {
		t.Errorf("groups left %v: want the %d adopted ones only (not %s of the deleted pod, nor %s of the replaced one)", left, keep, goneGroup, replacedGroup)
	}
	for _, pod := range kept {
		if _, err := p.GetPod(e.ctx, pod.Namespace, pod.Name); err != nil {
			t.Errorf("pod %s not adopted: %v", pod.Name, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := requests["GET /api/v1/pods"]; n != 1 || len(requests) != 1 {
		t.Errorf("apiserver pod requests %v: want one listing of the node's pods (GET /api/v1/pods) and nothing else", requests)
	}
}
