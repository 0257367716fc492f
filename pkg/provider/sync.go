package provider

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"slices"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// lostGrace is how long a freshly created group may be missing from a full
// listing before the provider calls it lost; a listing that started before
// the create returned cannot contain it.
const lostGrace = 30 * time.Second

// fullListSpacing is the interval between full status listings per call
// one listing takes (see Run).
const fullListSpacing = 5 * time.Second

// ownTags select the groups of this cluster and node.
func (p *Provider) ownTags() []eci.Tag {
	return []eci.Tag{{Key: translate.TagClusterID, Value: p.opts.ClusterID}, {Key: translate.TagNodeName, Value: p.opts.NodeName}}
}

// Run pushes status changes until ctx ends. Every StatusInterval it asks the
// cloud only for groups whose status changed recently (SinceSecond), one
// call per 200 changed groups whatever the pod count, then describes just
// those groups in batches of 20; every ResyncInterval it lists the status of
// all of this node's groups to notice lost ones. When the RAM policy
// refuses DescribeContainerGroupStatus it polls with DescribeContainerGroups
// instead (fallback.go).
func (p *Provider) Run(ctx context.Context) {
	// The node's pods count in vnode_pods while it runs here.
	p.metrics.pods.track(p)
	defer p.metrics.pods.untrack(p)
	select {
	case <-ctx.Done():
		return
	case <-p.ready:
	}
	p.mu.Lock()
	p.runCtx = ctx
	p.mu.Unlock()
	logger := klog.FromContext(ctx).WithName("status")
	// The timer is made at the first wait, so a fake clock in tests
	// has a waiter only while the loop waits.
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	budget := newStatusBudget(p.opts.StatusCallRate)
	lastFull := time.Time{}
	lastOK := time.Time{}
	resync := p.opts.ResyncInterval
	var fb fallbackState
	var repeated refusalLog
	for {
		interval := p.opts.StatusInterval
		if p.starting(p.clock.Now()) {
			interval = p.opts.FastStatusInterval
		}
		p.refreshTokens(ctx)
		start := p.clock.Now()
		next := start.Add(interval)
		if fb.on {
			// DescribeContainerGroupStatus is refused: see fallback.go.
			if p.clock.Now().After(fb.reprobeAt) {
				if p.reprobe(ctx) {
					p.leaveFallback(logger, &fb)
					lastFull = time.Time{}
					continue
				}
				fb.reprobeAt = p.clock.Now().Add(statusReprobeInterval)
			}
			if err := p.syncFallback(ctx, &fb, interval); err != nil && !repeated.refused(err) {
				logger.Error(err, "status sync (DescribeContainerGroups fallback) failed", "class", eci.ClassOf(err))
			} else if err == nil {
				repeated = refusalLog{}
			}
		} else {
			full := p.clock.Since(lastFull) >= resync
			since := 0
			if !full {
				// Cover the time since the last successful poll, with slack
				// for clock skew and call latency.
				since = int(p.clock.Since(lastOK).Seconds()) + 5
			}
			budget.credit(p.clock.Now(), p.started.Swap(0))
			calls, err := p.syncStatus(ctx, since)
			budget.spend(p.clock.Now(), calls)
			// The next poll is fast only while a pod still waits (this
			// one may have seen it start), and only as far as the
			// budget allows; the normal poll runs regardless.
			next = start.Add(p.opts.StatusInterval)
			if now := p.clock.Now(); p.starting(now) {
				budget.credit(now, p.started.Swap(0))
				next = budget.fastPoll(now, start.Add(p.opts.FastStatusInterval), next)
			}
			switch action, refused := eci.PermissionDenied(err); {
			case refused && action == statusAction:
				p.enterFallback(logger, &fb, err)
				continue
			case err != nil:
				if !repeated.refused(err) {
					logger.Error(err, "status sync failed", "full", full, "class", eci.ClassOf(err))
				}
			default:
				repeated = refusalLog{}
				lastOK = start
				if full {
					lastFull = start
					// A full listing costs one call per 200 groups; spacing
					// listings by fullListSpacing per call keeps a node with
					// 10,000 pods within the same status-call budget as a
					// small one, at the price of noticing a lost group later.
					resync = max(p.opts.ResyncInterval, time.Duration(calls)*fullListSpacing)
				}
			}
		}
		// Wait for the next poll; a pod that gets its group meanwhile
		// (p.kick) brings it forward to the fast interval, as far as the
		// budget allows, or a node that was idle would notice it start
		// only at the normal interval.
	wait:
		for {
			d := next.Sub(p.clock.Now())
			if d <= 0 {
				if ctx.Err() != nil {
					return
				}
				break
			}
			if timer == nil {
				timer = p.clock.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-ctx.Done():
				return
			case <-timer.C():
				break wait
			case <-p.kick:
				if !timer.Stop() {
					select {
					case <-timer.C():
					default:
					}
				}
				now := p.clock.Now()
				// A kick with a group just created needs no scan of every
				// pod (6 % of the node's CPU at 10,000 pods and 10 creates
				// a second): that group is starting.
				if p.started.Load() == 0 && !p.starting(now) {
					continue
				}
				fast := start.Add(p.opts.FastStatusInterval)
				if !fb.on {
					budget.credit(now, p.started.Swap(0))
					fast = budget.fastPoll(now, fast, next)
				}
				if fast.Before(next) {
					next = fast
				}
			}
		}
	}
}

// kickStatus tells the status loop a pod got its group, so it polls
// fast (Run) and credits its budget with FastCallsPerStart.
func (p *Provider) kickStatus() {
	p.started.Add(1)
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// DefaultFastStatusWindow is how long after its group was created a pod
// that has not started keeps the status poll fast. ECI starts most groups
// well within it; one that takes longer (a large image, a group that
// never starts) is seen at the normal interval, and no longer holds the
// whole node's poll at the fast rate.
const DefaultFastStatusWindow = time.Minute

// DefaultStatusCallRate is the average DescribeContainerGroupStatus calls
// per second the fast poll may bring a node's status loop up to, however
// many pods start or fail to: 1/s, 60 of the account's 10,000 a minute.
// Each group created adds FastCallsPerStart to it.
const DefaultStatusCallRate = 1.0

// FastCallsPerStart is how many DescribeContainerGroupStatus calls each
// group created adds to the status loop's budget, on top of StatusCallRate.
// At 1 call/s alone a start was seen up to a second late (p99 1.5 s from
// create to Running in a paced run), so a node that creates pods polls at
// the fast interval while it does: at 20 creates/s (the account's
// CreateContainerGroup quota) the credit is 40 calls/s and the fast
// interval (4/s) is the bound. The calls stay proportional to the pods
// created, and with none created the loop is back at StatusCallRate within
// statusBudgetBurst calls, whatever the pods do.
const FastCallsPerStart = 2.0

// statusBudgetBurst is how many calls the budget saves up while the loop
// polls at its normal rate: a pod created on a quiet node is polled at the
// fast interval for its first second or so.
const statusBudgetBurst = 4

// groupStarting reports whether e's pod has a group that has not started
// yet (the pod is still Pending); the caller holds p.mu.
func (e *entry) groupStarting() bool {
	return e.groupID != "" && (e.pod.Status.Phase == corev1.PodPending || e.pod.Status.Phase == "")
}

// starting reports whether a pod of this node has a group that has not
// started yet (its pod is still Pending), created less than
// FastStatusWindow before now: only then is the fast poll worth its calls.
func (p *Provider) starting(now time.Time) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, e := range p.pods {
		if e.groupStarting() && now.Sub(e.created) < p.opts.FastStatusWindow {
			return true
		}
	}
	return false
}

// statusBudget is a token bucket over the status loop's
// DescribeContainerGroupStatus calls: it fills at rate calls a second, up
// to statusBudgetBurst, and every call spends one token, fast or normal,
// incremental or full listing. A fast poll waits for a whole token; the
// normal poll (every StatusInterval) and the full listings never wait, so
// they run as before and the fast polls take what they leave: the loop
// averages at most rate calls a second while its normal polls need less
// (by default 0.5/s, plus one call per 200 groups changed and the
// listings spaced by fullListSpacing per call).
type statusBudget struct {
	rate   float64
	tokens float64
	at     time.Time
}

func newStatusBudget(rate float64) *statusBudget {
	return &statusBudget{rate: rate, tokens: statusBudgetBurst}
}

func (b *statusBudget) fill(now time.Time) {
	if !b.at.IsZero() && now.After(b.at) {
		b.tokens = min(statusBudgetBurst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	}
	if now.After(b.at) {
		b.at = now
	}
}

// credit adds FastCallsPerStart for each of n groups created, up to
// statusBudgetBurst.
func (b *statusBudget) credit(now time.Time, n int64) {
	if n <= 0 {
		return
	}
	b.fill(now)
	b.tokens = min(statusBudgetBurst, b.tokens+float64(n)*FastCallsPerStart)
}

// spend records calls made at now; the budget may go below zero (a poll
// that took several pages), which holds the fast polls back longer.
func (b *statusBudget) spend(now time.Time, calls int) {
	b.fill(now)
	b.tokens -= float64(calls)
}

// fastPoll returns when the next poll runs when a fast one is wanted at
// fast and the normal one is due at normal: fast if a token is saved up by
// then, else as soon as one is, and never after normal.
func (b *statusBudget) fastPoll(now, fast, normal time.Time) time.Time {
	b.fill(now)
	at := fast
	if b.tokens < 1 {
		if saved := now.Add(time.Duration((1 - b.tokens) / b.rate * float64(time.Second))); saved.After(at) {
			at = saved
		}
	}
	if at.After(normal) {
		return normal
	}
	return at
}

func signature(g *eci.GroupStatus) uint64 {
	h := fnv.New64a()
	b, _ := json.Marshal(g)
	_, _ = h.Write(b)
	return h.Sum64()
}

// syncStatus fetches group statuses (all of this node's, or those changed
// in the last sinceSecond seconds), describes the groups whose status
// changed and pushes the pods whose status changed.
func (p *Provider) syncStatus(ctx context.Context, sinceSecond int) (calls int, err error) {
	listStart := p.clock.Now()
	seen := map[string]bool{}
	changed := map[string]uint64{}
	var untracked []eci.GroupStatus
	req := &eci.DescribeContainerGroupStatusRequest{Tags: p.ownTags(), SinceSecond: sinceSecond, Limit: eci.MaxStatusLimit}
	for {
		resp, err := p.opts.Cloud.DescribeContainerGroupStatus(ctx, req)
		calls++
		if err != nil {
			return calls, err
		}
		p.mu.RLock()
		for i := range resp.Data {
			g := &resp.Data[i]
			seen[g.ContainerGroupId] = true
			k, ok := p.byGroup[g.ContainerGroupId]
			if !ok {
				untracked = append(untracked, *g)
				continue
			}
			if sig := signature(g); sig != p.pods[k].statusSig {
				changed[g.ContainerGroupId] = sig
			}
		}
		p.mu.RUnlock()
		if resp.NextToken == "" || len(resp.Data) == 0 {
			break
		}
		req.NextToken = resp.NextToken
	}
	if err := p.refresh(ctx, changed); err != nil {
		return calls, err
	}
	if sinceSecond == 0 {
		p.markLost(ctx, seen, listStart)
		p.sweep(ctx, untracked)
		p.housekeep(ctx)
	}
	return calls, nil
}

// refresh describes the given groups in batches of 20 and applies them; a
// group's signature is recorded only once its full description is applied,
// so a failed batch is retried on the next poll.
func (p *Provider) refresh(ctx context.Context, sigs map[string]uint64) error {
	ids := make([]string, 0, len(sigs))
	for id := range sigs {
		ids = append(ids, id)
	}
	return p.describeBatches(ctx, ids, func(_ []string, groups []eci.ContainerGroup, err error) error {
		if err != nil {
			return err
		}
		for i := range groups {
			p.apply(&groups[i], sigs[groups[i].ContainerGroupId])
		}
		return nil
	})
}

// describeBatches describes groups ids, as many per call as the API takes,
// and hands each batch's answer to f; an error f returns stops the walk.
func (p *Provider) describeBatches(ctx context.Context, ids []string, f func(batch []string, groups []eci.ContainerGroup, err error) error) error {
	for len(ids) > 0 {
		n := min(len(ids), eci.MaxIDsPerCall)
		batch := ids[:n]
		ids = ids[n:]
		resp, err := p.opts.Cloud.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{ContainerGroupIds: batch, Limit: eci.MaxDescribeLimit,
			WithEvent: true}) // apply forwards the groups' events to their pods
		var groups []eci.ContainerGroup
		if err == nil {
			groups = resp.ContainerGroups
		}
		if err := f(batch, groups, err); err != nil {
			return err
		}
	}
	return nil
}

// apply merges one group into its pod, forwards new cloud events and
// pushes the pod if its status changed.
func (p *Provider) apply(g *eci.ContainerGroup, sig uint64) {
	p.mu.Lock()
	k, ok := p.byGroup[g.ContainerGroupId]
	if !ok {
		p.mu.Unlock()
		return
	}
	e := p.pods[k]
	e.statusSig = sig
	events := p.newEvents(e, kubeProxyEventsHidden(g))
	var placement map[string]string
	if !e.placed && g.ZoneId != "" {
		if e.requested != "" {
			p.zones.landed(e.requested, g.VSwitchId)
			e.requested = "" // read only here: not kept for the pod's lifetime
		}
		// Where the group landed is only known once the cloud placed it;
		// record it on the pod once, as users look for it there.
		e.placed = true
		placement = map[string]string{translate.AnnotationZoneID: g.ZoneId, translate.AnnotationVSwitchID: g.VSwitchId, translate.AnnotationVPC: g.VpcId}
		// The core writes status with the whole stored pod, and the
		// apiserver keeps its metadata: the stored copy must carry the
		// annotations too or the next status write drops them.
		e.pod = e.pod.DeepCopy()
		if e.pod.Annotations == nil {
			e.pod.Annotations = map[string]string{}
		}
		for k, v := range placement {
			e.pod.Annotations[k] = v
		}
	}
	// The group's annotations go out with this push, in the same write as
	// the placement when the cloud has placed the group, which it has by
	// the first status poll. Every change of a pod's metadata makes
	// virtual-kubelet's pod controller sync the pod again, which compares
	// the whole pod with go-cmp (podsEffectivelyEqual: about 400 KB of
	// garbage per call for a small pod, BenchmarkPodsEffectivelyEqual;
	// 13 % of the heap profile at 10,000 pods) and fetches it with GetPod;
	// recording the group at create time and its placement later made
	// two such changes per pod (TestOneMetadataWritePerStart).
	mark := !e.marked
	e.marked = true
	next := podStatus(e.pod, g, e.created)
	keepTransitions(&next, &e.pod.Status)
	changed := false
	if !equality.Semantic.DeepEqual(next, e.pod.Status) {
		if next.Phase == corev1.PodRunning && e.pod.Status.Phase != corev1.PodRunning && !e.created.IsZero() {
			p.metrics.podRunningDelay.Observe(p.clock.Since(e.created).Seconds())
		}
		e.pod.Status = next
		changed = true
	}
	pod := e.pod
	p.mu.Unlock()
	for _, ev := range events {
		typ := corev1.EventTypeNormal
		if ev.Type == "Warning" {
			typ = corev1.EventTypeWarning
		}
		reason := ev.Reason
		if reason == "" {
			reason = "ContainerInstanceEvent"
		}
		p.event(pod, typ, reason, "%s", ev.Message)
	}
	if placement != nil {
		p.checkVPC(pod, g)
	}
	// New annotations are pushed even when the status did not change: the
	// core writes status with the stored pod, metadata included, and that
	// write is what records the placement annotations. The status loop
	// makes no apiserver request of its own, so it never waits behind the
	// creates in the client's rate limit.
	if changed || placement != nil || mark {
		p.pushLatest(k, e)
	}
}

// newEvents returns the cloud events not yet forwarded for this pod, or
// whose count grew; the caller holds p.mu.
func (p *Provider) newEvents(e *entry, evs []eci.Event) []eci.Event {
	var out []eci.Event
	for _, ev := range evs {
		// A hash, not the text: a node holds every pod's events, and
		// the messages are long.
		h := fnv.New64a()
		for _, part := range []string{ev.Name, ev.Reason, ev.FirstTimestamp, ev.Message} {
			_, _ = h.Write([]byte(part))
			_, _ = h.Write([]byte{0})
		}
		id := h.Sum64()
		i := slices.IndexFunc(e.events, func(s seenEvent) bool { return s.id == id })
		if i < 0 {
			e.events = append(e.events, seenEvent{id: id})
			i = len(e.events) - 1
		}
		if seen := &e.events[i]; ev.Count > seen.count || (ev.Count == 0 && seen.count == 0) {
			seen.count = max(ev.Count, 1)
			out = append(out, ev)
		}
	}
	return out
}

// seenEvent is a cloud event already forwarded to a pod: a hash of its
// identity and its count then. A pod has a handful, so a slice (16 bytes
// each) holds them in a fraction of a map's memory.
type seenEvent struct {
	id    uint64
	count int
}

func isTerminal(ph corev1.PodPhase) bool { return ph == corev1.PodSucceeded || ph == corev1.PodFailed }

// keepTransitions carries over condition transition times whose status did
// not change, so an unchanged pod compares equal and is not written again.
func keepTransitions(next, prev *corev1.PodStatus) {
	old := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range prev.Conditions {
		old[c.Type] = c
	}
	for i, c := range next.Conditions {
		if o, ok := old[c.Type]; ok && o.Status == c.Status {
			next.Conditions[i].LastTransitionTime = o.LastTransitionTime
		}
	}
	if prev.StartTime != nil && next.StartTime != nil && prev.StartTime.Equal(next.StartTime) {
		next.StartTime = prev.StartTime
	}
}
