package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Reasons a pod waiting for, or refused, its group shows.
const (
	ReasonScheduleFailed = "ContainerInstanceScheduleFailed"
	ReasonNoStock        = "ContainerGroup.NoStock"
	ReasonCreateRetrying = "ContainerGroupCreateRetrying"
	// ReasonPodSpecAdapted (Normal) lists the pod fields that were mapped
	// onto something ECI has rather than copied; ReasonPodSpecIgnored
	// (Warning) those ECI has no parameter for, which were left out, each
	// with what that changes.
	ReasonPodSpecAdapted = "PodSpecAdapted"
	ReasonPodSpecIgnored = "PodSpecIgnored"
	// ReasonMissingClusterDNS (Warning, the kubelet's reason): a
	// ClusterFirst pod got the VPC resolver because the cluster DNS
	// Service is missing or has no address.
	ReasonMissingClusterDNS = "MissingClusterDNS"
	retryBackoffBase        = 5 * time.Second
	retryBackoffCap         = 2 * time.Minute
)

// CreatePod creates the pod's container group. The ClientToken is the pod
// UID (with the spec index when eci-use-specs offers several sizes), so a
// retry after a lost response returns the same group instead of a second.
//
// A pod the cloud cannot take right now (stock-out under fail-back,
// throttling, cloud errors, credentials being rotated) stays Pending with a
// condition that says why and is retried with backoff until
// eci-max-pending-minute; the virtual-kubelet core would otherwise leave it
// Pending forever after one failure.
func (p *Provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	defer func(start time.Time) { p.metrics.podCreateDuration.Observe(time.Since(start).Seconds()) }(time.Now())
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			p.metrics.podSyncDelay.Observe(time.Since(c.LastTransitionTime.Time).Seconds())
		}
	}
	if p.refuseDaemonSetPod(pod) {
		return nil
	}
	tr, err := p.buildRequest(ctx, pod)
	if err != nil {
		var inv *translate.InvalidPodError
		if errors.As(err, &inv) {
			p.event(pod, corev1.EventTypeWarning, "UnsupportedPodSpec", "%s", err.Error())
			return errdefs.AsInvalidInput(err)
		}
		if reason, _ := missingSourceReason(err); reason != "" {
			// Like a kubelet, the pod waits for its ConfigMap or Secret.
			p.event(pod, corev1.EventTypeWarning, reason, "%s", err.Error())
			return p.scheduleRetry(createAttempt{pod: pod, since: time.Now(), n: 1}, reason, err)
		}
		// Reading the cluster failed otherwise (an unbound PVC, a token
		// refused): the pod can still start once that is fixed.
		p.event(pod, corev1.EventTypeWarning, "ProviderCreateFailed", "preparing the container group: %s", err.Error())
		return p.scheduleRetry(createAttempt{pod: pod, since: time.Now(), n: 1}, "ContainerGroupPrepareFailed", err)
	}
	p.optionalSourceEvents(pod, tr.MissingOptional)
	// One event per pod and kind, however many fields were adapted.
	if len(tr.Notes) > 0 {
		p.event(pod, corev1.EventTypeNormal, ReasonPodSpecAdapted, "%s", strings.Join(tr.Notes, "; "))
	}
	if len(tr.Warnings) > 0 {
		p.event(pod, corev1.EventTypeWarning, ReasonPodSpecIgnored, "%s", strings.Join(tr.Warnings, "; "))
	}
	if tr.MissingClusterDNS != "" {
		p.event(pod, corev1.EventTypeWarning, ReasonMissingClusterDNS, "%s", tr.MissingClusterDNS)
	}
	return p.attempt(ctx, createAttempt{pod: pod, tr: tr, since: time.Now(), n: 1})
}

// createAttempt is one try at creating a pod's group.
type createAttempt struct {
	pod *corev1.Pod
	tr  *translate.Translation // nil when the translation failed
	// since is the time of the first attempt, n this attempt's number
	// (1 for the first).
	since time.Time
	n     int
	// retry says the attempt runs from a retry timer, beside the pod
	// controller: the pod may have been deleted meanwhile.
	retry bool
}

// create sends CreateContainerGroup, trying each eci-use-specs size in turn
// while the cloud answers with a stock-out, and returns the spec used.
func (p *Provider) create(ctx context.Context, pod *corev1.Pod, tr *translate.Translation) (*eci.CreateContainerGroupResponse, string, error) {
	specs := tr.Specs
	if len(specs) == 0 {
		var s translate.InstanceSpec
		if tr.Req.Cpu > 0 || tr.Req.Memory > 0 {
			s = translate.InstanceSpec{CPU: tr.Req.Cpu, Memory: tr.Req.Memory}
		} else {
			s = translate.InstanceSpec{CPU: 2, Memory: 4} // the cloud's default size
		}
		specs = []translate.InstanceSpec{s}
	}
	var lastErr error
	for i, s := range specs {
		req := *tr.Req
		if len(tr.Specs) > 0 {
			s.Apply(&req)
		}
		req.ClientToken = string(pod.UID)
		if i > 0 {
			req.ClientToken = fmt.Sprintf("%s-%d", pod.UID, i)
		}
		resp, err := p.opts.Cloud.CreateContainerGroup(ctx, &req)
		if eci.ClassOf(err) == eci.ClassConflict {
			// An earlier attempt for this pod UID created the group (its
			// parameters, e.g. a freshly minted token, differ): take it.
			g, gerr := p.groupOfPod(ctx, string(pod.UID))
			if gerr == nil && g != nil {
				return &eci.CreateContainerGroupResponse{ContainerGroupId: g.ContainerGroupId}, s.String(), nil
			}
			// The group could not be found yet (the lookup failed, or the
			// listing lags the create): that is worth another attempt, not
			// a failed pod, so the retryable lookup error (or a transient
			// one) is returned instead of the conflict.
			if gerr == nil {
				gerr = &eci.Error{Action: "DescribeContainerGroups", Class: eci.ClassTransient,
					Message: "the group an earlier create made for this pod is not listed yet", Err: err}
			}
			return nil, "", fmt.Errorf("find the group of an earlier create (%v): %w", err, gerr)
		}
		if err == nil {
			return resp, s.String(), nil
		}
		lastErr = err
		if eci.ClassOf(err) != eci.ClassStockOut || i == len(specs)-1 {
			break
		}
		p.event(pod, corev1.EventTypeNormal, "SpecOutOfStock", "no stock for spec %s, trying %s", s, specs[i+1])
	}
	return nil, "", lastErr
}

// attempt sends the create and decides what a failure means for the pod.
func (p *Provider) attempt(ctx context.Context, a createAttempt) error {
	pod := a.pod
	logger := klog.FromContext(ctx).WithValues("pod", key(pod.Namespace, pod.Name), "uid", pod.UID, "attempt", a.n)
	resp, spec, err := p.create(ctx, pod, a.tr)
	if err == nil {
		p.created(ctx, a, resp, spec)
		return nil
	}
	class := eci.ClassOf(err)
	logger.Error(err, "create container group failed", "class", class, "requestId", eci.RequestIDOf(err))
	strategy, _ := translate.FailStrategy(pod) // validated during translation
	switch {
	case class == eci.ClassInvalid:
		p.event(pod, corev1.EventTypeWarning, "ContainerGroupCreateFailed", "%s", eci.StableText(err))
		return errdefs.AsInvalidInput(err)
	case class == eci.ClassStockOut && strategy == translate.FailStrategyFailFast:
		p.event(pod, corev1.EventTypeWarning, "NoStock", "%s (eci-fail-strategy fail-fast)", eci.StableText(err))
		p.fail(pod, a.retry, ReasonScheduleFailed, ReasonNoStock, "no zone of the pod's vSwitches has stock: "+eci.StableText(err))
		return nil
	case class.RetryCreate():
		reason := ReasonCreateRetrying
		if class == eci.ClassStockOut {
			reason = ReasonNoStock
			p.event(pod, corev1.EventTypeWarning, "NoStock", "%s; retrying (eci-fail-strategy fail-back)", eci.StableText(err))
		} else if !p.permissionEvent(pod, err, "creating the container group (retried until the policy allows it)") {
			p.event(pod, corev1.EventTypeWarning, "ContainerGroupCreateFailed", "%s; retrying", eci.StableText(err))
		}
		return p.scheduleRetry(a, reason, err)
	default:
		p.event(pod, corev1.EventTypeWarning, "ContainerGroupCreateFailed", "%s", eci.StableText(err))
		return err
	}
}

// maxPending is how long a pod may wait for its group.
func maxPending(pod *corev1.Pod) time.Duration {
	if v, err := strconv.Atoi(pod.Annotations[translate.AnnotationMaxPendingMinute]); err == nil && v > 0 {
		return time.Duration(v) * time.Minute
	}
	return translate.DefaultMaxPendingMinutes * time.Minute
}

// scheduleRetry records a pod that has no group yet after attempt a,
// shows why, and schedules the next attempt; past eci-max-pending-minute
// the pod fails instead.
func (p *Provider) scheduleRetry(a createAttempt, reason string, cause error) error {
	pod, since, n := a.pod, a.since, a.n
	_, miss := missingSourceReason(cause)
	if miss != nil {
		// Waiting for a ConfigMap or Secret is the user's to end, as on a
		// kubelet: eci-max-pending-minute counts from when the pod could
		// be created.
		since = time.Now()
	}
	if time.Since(since) >= maxPending(pod) {
		p.fail(pod, n > 1, ReasonScheduleFailed, reason, fmt.Sprintf("no container group after %s (eci-max-pending-minute): %s", maxPending(pod), eci.StableText(cause)))
		return nil
	}
	k := key(pod.Namespace, pod.Name)
	stored := pod.DeepCopy()
	stored.Status = initialStatus(stored, "", since)
	stored.Status.Reason = reason
	stored.Status.Message = eci.StableText(cause)
	for i, c := range stored.Status.Conditions {
		if c.Type == ConditionContainerInstanceCreated {
			stored.Status.Conditions[i].Reason = reason
			stored.Status.Conditions[i].Message = eci.StableText(cause)
		}
	}
	p.mu.Lock()
	if n > 1 && p.goneDuringRetry(k, pod.UID) {
		// A retry (attempt n > 1) of a pod deleted or replaced while its
		// create ran: recording it again would retry for a pod that is
		// gone, and make a group nothing deletes.
		p.mu.Unlock()
		return nil
	}
	prev := p.pods[k]
	e := &entry{pod: stored, created: since, pendingSince: since, attempts: n}
	p.pods[k] = e
	p.mu.Unlock()
	// A retry that fails as the last did shows the same status: not
	// pushed again (see pushLatest).
	out := statusCopy(stored)
	sum := pushSum(out)
	e.pushed.Store(sum)
	if prev == nil || prev.pushed.Load() != sum {
		p.push(out)
	}

	uid := pod.UID
	if miss == nil {
		time.AfterFunc(createRetryDelay(n), func() { p.retry(k, uid) })
		return nil
	}
	// Its informer event starts the pod as soon as the object exists
	// (SourceChanged); the timer covers an event that came meanwhile.
	timer := time.AfterFunc(min(createRetryDelay(n), sourceRetryCap), func() { p.retry(k, uid) })
	p.sources.wait(k, uid, sourceKey(miss.Kind, miss.Namespace, miss.Name), timer)
	return nil
}

// createRetryDelay is the wait before create attempt n+1 of a pod: 5 s
// doubled per attempt up to 2 minutes, jittered within [d/2, d] so the
// retries of a burst of pods spread out.
func createRetryDelay(n int) time.Duration {
	d := min(retryBackoffBase<<min(n-1, 10), retryBackoffCap)
	return d/2 + rand.N(d/2+1)
}

// MinCreateRetryDelay is the shortest wait before create attempt n+1 of a
// pod. With eci.DefaultMaxAttempts it bounds how many CreateContainerGroup
// calls one pod can cause in a given time, which the error-storm test
// checks against the simulator's counters.
func MinCreateRetryDelay(n int) time.Duration {
	return min(retryBackoffBase<<min(n-1, 10), retryBackoffCap) / 2
}

// retry makes the next attempt for a waiting pod, unless it was deleted,
// replaced or got its group meanwhile.
func (p *Provider) retry(k string, uid types.UID) {
	p.sources.done(k, uid)
	p.mu.RLock()
	e, ok := p.pods[k]
	ctx := p.runCtx
	p.mu.RUnlock()
	if ctx == nil {
		ctx = context.Background()
	}
	if !ok || e.groupID != "" || e.pod.UID != uid || isTerminal(e.pod.Status.Phase) || ctx.Err() != nil {
		return
	}
	pod := e.pod.DeepCopy()
	tr, err := p.buildRequest(ctx, pod)
	if err != nil {
		var inv *translate.InvalidPodError
		if errors.As(err, &inv) {
			p.fail(pod, true, "UnsupportedPodSpec", "UnsupportedPodSpec", err.Error())
			return
		}
		reason := "ContainerGroupPrepareFailed"
		if r, _ := missingSourceReason(err); r != "" {
			reason = r
			// Shown again when the pod waits for another object, and
			// otherwise at attempts 2, 4, 8...: the recorder counts the
			// repeats on one Event, and a pod waiting for hours does not
			// spend the recorder's per-object budget (25 events, then one
			// per 5 minutes), which its creation events need later.
			if n := e.attempts + 1; e.pod.Status.Message != eci.StableText(err) || n&(n-1) == 0 {
				p.event(pod, corev1.EventTypeWarning, reason, "%s", eci.StableText(err))
			}
		}
		_ = p.scheduleRetry(createAttempt{pod: pod, since: e.pendingSince, n: e.attempts + 1, retry: true}, reason, err)
		return
	}
	p.optionalSourceEvents(pod, tr.MissingOptional)
	if err := p.attempt(ctx, createAttempt{pod: pod, tr: tr, since: e.pendingSince, n: e.attempts + 1, retry: true}); err != nil {
		p.fail(pod, true, "ProviderFailed", "ContainerGroupCreateFailed", eci.StableText(err))
	}
}

// fail records a pod that will not get a group and reports it Failed, so
// its controller replaces it. A retry (retry true) of a pod deleted or
// replaced meanwhile records and reports nothing, and so does a pod whose
// deletion is under way: it has no group, and its deletion removes it.
func (p *Provider) fail(pod *corev1.Pod, retry bool, reason, condReason, msg string) {
	k := key(pod.Namespace, pod.Name)
	p.mu.RLock()
	cur, lister := p.pods[k], p.podLister
	same := cur != nil && cur.pod.UID == pod.UID
	p.mu.RUnlock()
	if pod.DeletionTimestamp != nil || (same && p.isTerminating(cur, pod.UID, lister, pod.Namespace, pod.Name)) {
		klog.Background().Info("pod's deletion is under way; not failing it", "pod", k, "reason", reason, "message", msg)
		return
	}
	stored := pod.DeepCopy()
	stored.Status = initialStatus(stored, "", time.Now())
	stored.Status.Phase = corev1.PodFailed
	stored.Status.Reason = reason
	stored.Status.Message = msg
	for i, c := range stored.Status.Conditions {
		if c.Type == ConditionContainerInstanceCreated {
			stored.Status.Conditions[i].Reason = condReason
			stored.Status.Conditions[i].Message = msg
		}
	}
	for i := range stored.Status.ContainerStatuses {
		stored.Status.ContainerStatuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: reason, Message: msg, FinishedAt: metav1.Now()}}
	}
	p.mu.Lock()
	if retry && p.goneDuringRetry(k, pod.UID) {
		p.mu.Unlock()
		return
	}
	e := &entry{created: p.clock.Now()}
	e.keep(stored) // failed: never created again
	p.pods[k] = e
	p.mu.Unlock()
	p.event(pod, corev1.EventTypeWarning, reason, "%s", msg)
	p.push(statusCopy(stored))
}

// created records the group attempt a created on the pod. A retry runs
// beside the pod controller, so the pod may have been deleted while its
// create was in flight: then the group is deleted at once instead of
// leaking (deleteLateGroup).
func (p *Provider) created(ctx context.Context, a createAttempt, resp *eci.CreateContainerGroupResponse, spec string) {
	pod := a.pod
	tokens, requested := a.tr.Tokens, a.tr.Req
	logger := klog.FromContext(ctx).WithValues("pod", key(pod.Namespace, pod.Name), "uid", pod.UID)
	k := key(pod.Namespace, pod.Name)
	marks := map[string]string{translate.AnnotationInstanceID: resp.ContainerGroupId, translate.AnnotationRequestID: resp.RequestId, translate.AnnotationInstanceSpec: spec}
	now := p.clock.Now()
	// pendingSince keeps the first attempt: a pod that waited for stock
	// has been Pending since then (vnode_pod_pending_max_age_seconds).
	e := &entry{groupID: resp.ContainerGroupId, created: now, pendingSince: a.since, tokens: tokens}
	e.keep(pod)
	stored := e.pod
	if stored.Annotations == nil {
		stored.Annotations = map[string]string{}
	}
	for name, v := range marks {
		stored.Annotations[name] = v
	}
	stored.Status = initialStatus(stored, resp.ContainerGroupId, now)

	p.mu.Lock()
	if a.retry && p.goneDuringRetry(k, pod.UID) {
		p.mu.Unlock()
		p.deleteLateGroup(ctx, pod, resp.ContainerGroupId)
		return
	}
	if requested.ScheduleStrategy == "VSwitchOrdered" {
		e.requested = requested.VSwitchId
	}
	p.pods[k] = e
	p.byGroup[resp.ContainerGroupId] = k
	p.mu.Unlock()
	p.kickStatus()

	logger.Info("created container group", "group", resp.ContainerGroupId, "requestId", resp.RequestId, "spec", spec)
	p.event(pod, corev1.EventTypeNormal, "ContainerInstanceCreated", "created ECI container group %s (%s)", resp.ContainerGroupId, spec)
	// This push reports the group created; the annotations that record it
	// go out with the first status poll's push, with the placement (see
	// apply), so the pod's metadata changes once. They reach the apiserver
	// with a push: the core writes status with the stored pod, metadata
	// included, and the pods/status endpoint keeps its annotations. A
	// PATCH of its own would cost an apiserver request per pod, waiting
	// behind every other create in the client's rate limit.
	p.pushLatest(k, e)
}

// pushLatest pushes the status the provider holds now for entry e of pod k,
// unless the entry was replaced or removed. Pushes of one pod come from
// the create path and the status loop at once; pushing a copy taken
// earlier could deliver a stale Pending after the loop's Running, and the
// core keeps the last status it was given, so the pod would stay Pending
// while its group runs. Reading the entry and pushing under e.pushMu makes
// the last push carry the latest status.
func (p *Provider) pushLatest(k string, e *entry) {
	e.pushMu.Lock()
	defer e.pushMu.Unlock()
	p.mu.RLock()
	var out *corev1.Pod
	if cur := p.pods[k]; cur == e {
		out = statusCopy(e.pod)
		if !e.marked {
			// Held back until the first status poll (see apply).
			for _, a := range createdAnnotations {
				delete(out.Annotations, a)
			}
		}
	}
	p.mu.RUnlock()
	if out == nil {
		return
	}
	// A push identical to the last one is not made: the core would only
	// note that it skipped it, and then write the status again at the
	// pod's next informer event whose labels or annotations differ from
	// the push's, which they always do since a push carries none but the
	// provider's (pushMeta). The create and the status loop both push a
	// pod that starts at once, often the same status.
	sum := pushSum(out)
	if e.pushed.Load() == sum {
		return
	}
	e.pushed.Store(sum)
	p.push(out)
}

// pushSum fingerprints a pod to push (statusCopy): its status and
// metadata.
func pushSum(pod *corev1.Pod) uint64 {
	b, _ := json.Marshal(struct {
		M metav1.ObjectMeta
		S corev1.PodStatus
	}{pod.ObjectMeta, pod.Status})
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}
