// Package ownership gives each virtual node of a set exactly one owner among
// the replicas of the controller Deployment, through one
// coordination.k8s.io Lease per node driven by client-go leader election.
//
// The replica holding a node's Lease runs the node; when it loses the Lease
// (it cannot renew within the renew deadline) it stops the node before
// anyone else may take it, and when it is shut down (SIGTERM) it stops its
// nodes and releases their Leases so a rolling update hands over at once.
// A replica that dies (kill -9, node failure) stops renewing, and the others
// take its nodes once the Lease duration has passed.
//
// Alone, a replica does not stop a node whose Lease it cannot renew: when
// no other replica is alive to take the node (one replica, or a
// StatefulSet pod serving its own node), an apiserver that stalls past the
// renew deadline leaves the node running and its groups tracked, and the
// Lease is renewed when the apiserver answers; stopping would only make
// the same replica re-adopt every group. If another replica holds the
// Lease by then, the node is stopped at once (see holdOver).
//
// Spreading: every replica also renews a membership Lease, so each knows how
// many replicas are alive and its fair share, ceil(nodes / replicas). A
// replica takes a free Lease at once while it runs fewer nodes than its fair
// share; above it, it leaves a free Lease to the others for a few retry
// periods and takes it only if nobody did (so no node stays without an
// owner). A replica that runs more than its fair share while the membership
// has been stable for a Lease duration hands one node over at a time
// (stops it, releases its Lease), so a replica that starts late, or comes
// back, gets its share. The holder of an expired node Lease is counted dead
// at once, so the survivors take all of its nodes without waiting for its
// membership Lease to expire.
package ownership

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

const (
	// NodeLeasePrefix prefixes the name of a node's ownership Lease:
	// ack-virtual-node-<node>.
	NodeLeasePrefix = "ack-virtual-node-"
	// ReplicaLeasePrefix prefixes a replica's membership Lease:
	// ack-virtual-node-replica-<identity>.
	ReplicaLeasePrefix = "ack-virtual-node-replica-"
	// LabelNodeSet is on every Lease of one node set (a hash of the node
	// names), so replicas serving other nodes are not counted as peers.
	LabelNodeSet = "alibabacloud.com/virtual-node-set"
	// LabelLeaseKind is "node" on ownership Leases and "replica" on
	// membership Leases.
	LabelLeaseKind = "alibabacloud.com/virtual-node-lease"
)

// Options configure Run.
type Options struct {
	// Kube talks to the apiserver about Leases only. Give it a rate limiter
	// of its own, so renewals never queue behind pod traffic.
	Kube kubernetes.Interface
	// Namespace holds the Leases (the controller's namespace).
	Namespace string
	// Identity names this replica in the Leases (the pod name); two live
	// replicas must never share one.
	Identity string
	// Names are the virtual nodes of the set, the same list in every replica.
	Names []string
	// LeaseDuration, RenewDeadline and RetryPeriod are the leader-election
	// timings (LeaseDuration > RenewDeadline > 1.2 × RetryPeriod).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Run runs one node while this replica owns it. Its context ends when
	// the Lease is lost or released; Run must then stop the node (without
	// touching its pods or container groups) and return. An error, or a
	// return before the context ends, gives the Lease up and backs off.
	Run func(ctx context.Context, name string) error
	// Recorder, if set, records Lease events (became leader, stopped).
	Recorder record.EventRecorder
	// Metrics receive the running nodes, live replicas and transitions;
	// nil means a private set nobody serves.
	Metrics *Metrics
	// Share, if set, is given this replica's share (0 to 1) of the
	// account's ECI API quotas whenever it changes: its part of the nodes
	// the live replicas run (1 / live replicas while none runs any),
	// reached only once the others have published that they shrank (see
	// AnnotationQuotaShare). The caller starts its client at share 0
	// (eci.Client.SetShare), and Run calls Share(0) before it returns.
	Share func(share float64)
	// Set, if not empty, replaces SetID(Names) as the node set's id: the
	// ordinal pods of one StatefulSet each run their own nodes but count
	// each other as peers of one set, so they split the account's quota.
	Set string
	// Exclusive says Names are this replica's alone (a StatefulSet ordinal
	// pod's own nodes): it takes them at once and never hands them over
	// to share the load; peers only split the quota with it.
	Exclusive bool
}

// NodeLeaseName is the name of a node's ownership Lease.
func NodeLeaseName(node string) string { return leaseName(NodeLeasePrefix, node) }

// ReplicaLeaseName is the name of a replica's membership Lease.
func ReplicaLeaseName(identity string) string { return leaseName(ReplicaLeasePrefix, identity) }

// SetID identifies a node set: the same names give the same id everywhere.
func SetID(names []string) string {
	s := append([]string(nil), names...)
	sort.Strings(s)
	h := fnv.New64a()
	_, _ = h.Write([]byte(strings.Join(s, "\n")))
	return fmt.Sprintf("%016x", h.Sum64())
}

func setID(opts Options) string {
	if opts.Set != "" {
		return opts.Set
	}
	return SetID(opts.Names)
}

var invalidNameChars = regexp.MustCompile(`[^a-z0-9.-]+`)

// leaseName makes prefix+s a valid object name: lower case, at most 253
// characters (long names keep a hash of the whole), alphanumeric at the end.
func leaseName(prefix, s string) string {
	clean := invalidNameChars.ReplaceAllString(strings.ToLower(s), "-")
	n := prefix + clean
	if clean != s || len(n) > 253 {
		h := fnv.New64a()
		_, _ = h.Write([]byte(s))
		suffix := fmt.Sprintf("-%016x", h.Sum64())
		if len(n) > 253-len(suffix) {
			n = n[:253-len(suffix)]
		}
		n = strings.TrimRight(n, "-.") + suffix
	}
	return n
}

// stopReason says why a node's election round ended on this replica's side.
type stopReason int

const (
	stopNone     stopReason = iota // the Lease was lost (renewal failed)
	stopShutdown                   // the replica is shutting down
	stopHandover                   // handed over to share the load
	stopExited                     // the node stopped by itself (failure)
)

// member is what a replica knows of a peer's membership Lease.
type member struct {
	renew string    // the last renewTime seen
	at    time.Time // local time it was first seen with that renewTime
	dead  bool      // holds an expired node Lease: dead until it renews again
	quota peer      // what it published for the quota split
}

type backoff struct {
	delay time.Duration
	until time.Time
}

type manager struct {
	opts    Options
	set     string
	logger  klog.Logger
	metrics *Metrics

	mu           sync.Mutex
	owned        map[string]bool             // reserved or running
	running      map[string]func(stopReason) // running nodes: stop with a reason
	deferredAt   map[string]deferral         // first refusal of a free Lease, by node
	backoffs     map[string]backoff          // nodes that failed here
	handedOver   map[string]time.Time        // nodes this replica gave up to share the load
	held         map[string]*nodeRun         // nodes kept running after their Lease lapsed (see holdOver)
	members      map[string]*member          // peers by identity
	liveKey      string                      // the live peers, to see membership changes
	liveSince    time.Time                   // when liveKey last changed
	lastHandover time.Time

	quota quota // this replica's share of the account's ECI API quotas
}

type deferral struct {
	record string // the Lease record refused (holder and renew time)
	since  time.Time
}

// Run runs the ownership of opts.Names until ctx ends, then stops the nodes
// this replica runs, releases their Leases and deletes its membership
// Lease. It returns an error only for invalid options.
func Run(ctx context.Context, opts Options) error {
	switch {
	case opts.Kube == nil || opts.Run == nil:
		return errors.New("ownership: Kube and Run are required")
	case opts.Identity == "" || opts.Namespace == "":
		return errors.New("ownership: Identity and Namespace are required")
	case len(opts.Names) == 0:
		return errors.New("ownership: no node names")
	case opts.LeaseDuration < time.Second || opts.RenewDeadline >= opts.LeaseDuration ||
		float64(opts.RetryPeriod)*leaderelection.JitterFactor >= float64(opts.RenewDeadline) || opts.RetryPeriod <= 0:
		return fmt.Errorf("ownership: lease duration %s > renew deadline %s > 1.2 × retry period %s does not hold",
			opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod)
	}
	m := &manager{
		opts: opts, set: setID(opts),
		logger:     klog.FromContext(ctx).WithValues("replica", opts.Identity),
		owned:      map[string]bool{},
		running:    map[string]func(stopReason){},
		deferredAt: map[string]deferral{},
		backoffs:   map[string]backoff{},
		handedOver: map[string]time.Time{},
		held:       map[string]*nodeRun{},
		members:    map[string]*member{},
		liveSince:  time.Now(),
		metrics:    opts.Metrics,
		quota:      quota{set: opts.Share},
	}
	if m.metrics == nil {
		m.metrics = NewMetrics(nil)
	}
	for _, name := range opts.Names {
		m.metrics.nodeRunning.WithLabelValues(name).Set(0)
	}
	if opts.Share != nil {
		opts.Share(0) // nothing until the others have made room
	}
	ctx = klog.NewContext(ctx, m.logger)
	m.logger.Info("sharing virtual nodes through Leases", "nodes", opts.Names, "namespace", opts.Namespace,
		"leaseDuration", opts.LeaseDuration, "renewDeadline", opts.RenewDeadline, "retryPeriod", opts.RetryPeriod)

	m.heartbeat(ctx)
	if len(opts.Names) > 1 {
		// Replicas started together see each other before taking nodes,
		// so the first one up does not take them all.
		select {
		case <-ctx.Done():
		case <-time.After(opts.RetryPeriod):
		}
		m.heartbeat(ctx)
	}

	var wg sync.WaitGroup
	for _, name := range opts.Names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.runNode(ctx, name)
		}()
	}
	tick := time.NewTicker(opts.RetryPeriod)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			m.heartbeat(ctx)
			m.balance()
		}
	}
	wg.Wait()
	m.leaveQuota()
	m.leave()
	return nil
}

// runNode runs election rounds for one node until ctx ends.
func (m *manager) runNode(ctx context.Context, name string) {
	lock := &gatedLock{
		LeaseLock: rl.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: m.opts.Namespace, Name: NodeLeaseName(name)},
			Client:     m.opts.Kube.CoordinationV1(),
			LockConfig: rl.ResourceLockConfig{Identity: m.opts.Identity, EventRecorder: m.opts.Recorder},
			Labels:     map[string]string{LabelNodeSet: m.set, LabelLeaseKind: "node"},
		},
		m: m, node: name,
	}
	for ctx.Err() == nil {
		m.round(ctx, name, lock)
	}
	if nr := m.takeHeld(name); nr != nil {
		// Shut down while holding the node over: stop it, then release
		// the Lease if it is still this replica's.
		nr.stop()
		rctx, cancel := context.WithTimeout(klog.NewContext(context.Background(), m.logger), m.opts.RenewDeadline)
		if err := lock.release(rctx); err != nil {
			m.logger.Error(err, "releasing the node's Lease failed; another replica takes the node when the Lease expires", "node", name)
		}
		cancel()
		m.metrics.transitions.WithLabelValues(name, "released").Inc()
		m.stopped(name)
	}
}

// nodeRun is one run of Options.Run for a node. It normally lasts one
// election round; a node held over (see holdOver) runs on across rounds.
type nodeRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	since  time.Time // when the Lease lapsed, for a held run
}

// startRun starts Options.Run for a node under ctx (the manager's, not the
// election round's: the round may end while the node runs on).
func (m *manager) startRun(ctx context.Context, name string) *nodeRun {
	rctx, cancel := context.WithCancel(ctx)
	nr := &nodeRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(nr.done)
		nr.err = m.opts.Run(rctx, name)
	}()
	return nr
}

// stop stops the run and waits for it to end.
func (nr *nodeRun) stop() {
	nr.cancel()
	<-nr.done
}

// holdOver keeps a node running whose Lease was not renewed within the
// renew deadline when no other replica is alive to take it over (one
// replica, or a StatefulSet pod serving its own node): stopping the node
// would only make this same replica re-adopt every group once the
// apiserver answers again. The node cannot read or write the apiserver
// meanwhile; everything it would delete is confirmed there first
// (housekeeping, the orphan sweep, lost groups), and a create repeated by
// a next owner is the same group (ClientToken is the pod UID). The next
// round renews the Lease (it is still this replica's) and takes the run
// back; if another replica holds the Lease by then, the node is stopped
// at once (dropHeld).
func (m *manager) holdOver(name string, nr *nodeRun) {
	m.mu.Lock()
	defer m.mu.Unlock()
	nr.since = time.Now()
	m.held[name] = nr
	m.running[name] = func(stopReason) { m.dropHeld(name, "asked to stop") }
	m.metrics.nodesUnrenewed.Inc()
}

// takeHeld returns the held-over run of a node, if any, and forgets it.
func (m *manager) takeHeld(name string) *nodeRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	nr := m.held[name]
	if nr != nil {
		delete(m.held, name)
		m.metrics.nodesUnrenewed.Dec()
	}
	return nr
}

// dropHeld stops a node held over, because why (another replica holds its
// Lease now, or this replica is asked to stop it).
func (m *manager) dropHeld(name, why string) {
	nr := m.takeHeld(name)
	if nr == nil {
		return
	}
	m.logger.Info("stopping the node held over without a renewed Lease", "node", name, "reason", why, "heldFor", time.Since(nr.since).Round(time.Millisecond))
	nr.stop()
	m.metrics.transitions.WithLabelValues(name, "lost").Inc()
	m.stopped(name)
}

// aloneLocked says whether no other replica of the set is counted alive.
func (m *manager) aloneLocked(now time.Time) bool {
	n, _ := m.liveLocked(now)
	return n == 1
}

// round runs one leader election for a node: wait for the Lease, run the
// node while it is held, stop the node, and release the Lease unless it
// was lost.
func (m *manager) round(ctx context.Context, name string, lock *gatedLock) {
	logger := m.logger.WithValues("node", name, "lease", m.opts.Namespace+"/"+NodeLeaseName(name))
	electCtx, cancelElect := context.WithCancel(klog.NewContext(ctx, quietDeferrals(logger)))
	defer cancelElect()
	var (
		reasonMu sync.Mutex
		reason   = stopNone
		runErr   error
		heldOver bool // the node runs on without a renewed Lease
		done     = make(chan struct{})
	)
	stop := func(r stopReason) {
		reasonMu.Lock()
		if reason == stopNone {
			reason = r
		}
		reasonMu.Unlock()
		cancelElect()
	}
	lock.acquired = false
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: m.opts.LeaseDuration, RenewDeadline: m.opts.RenewDeadline, RetryPeriod: m.opts.RetryPeriod,
		Name: NodeLeaseName(name),
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				defer close(done)
				if lctx.Err() != nil {
					return
				}
				nr := m.takeHeld(name)
				m.started(name, stop, nr != nil)
				if nr == nil {
					logger.Info("owning virtual node: starting it")
					nr = m.startRun(ctx, name)
				} else {
					logger.Info("renewed the node's Lease: the node kept running while it could not be renewed", "unrenewedFor", time.Since(nr.since).Round(time.Millisecond))
				}
				select {
				case <-lctx.Done():
				case <-nr.done:
				}
				if lctx.Err() == nil { // the node stopped by itself
					runErr = nr.err
					if runErr == nil {
						runErr = fmt.Errorf("virtual node %s stopped by itself", name)
					}
					stop(stopExited)
					return
				}
				reasonMu.Lock()
				lost := reason == stopNone
				reasonMu.Unlock()
				m.mu.Lock()
				// Exclusive nodes (a StatefulSet pod's own) have no other
				// replica that could take them, whatever its peers.
				alone := m.aloneLocked(time.Now()) || m.opts.Exclusive
				m.mu.Unlock()
				if lost && alone && ctx.Err() == nil {
					m.holdOver(name, nr)
					heldOver = true
					return
				}
				nr.stop() // stopped because asked to, or the Lease is lost to others
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil { // Run validated the timings: not expected
		logger.Error(err, "cannot run leader election for the node")
		sleep(ctx, m.opts.RetryPeriod)
		return
	}
	le.Run(electCtx)
	if ctx.Err() != nil {
		stop(stopShutdown)
	}
	if !lock.acquired {
		m.unreserve(name)
		return
	}
	<-done // the node has stopped: only now may another replica start it
	reasonMu.Lock()
	r := reason
	reasonMu.Unlock()
	if heldOver {
		m.metrics.transitions.WithLabelValues(name, "held_over").Inc()
		logger.Info("the node's Lease was not renewed within the renew deadline (the apiserver does not answer in time) and no other replica is alive to take the node: " +
			"keeping it running, and renewing the Lease as soon as the apiserver answers")
		return
	}
	switch r {
	case stopNone:
		m.metrics.transitions.WithLabelValues(name, "lost").Inc()
		logger.Info("lost the node's Lease (not renewed within the renew deadline): stopped the node; pods and container groups are left to the next owner")
	case stopExited:
		m.metrics.transitions.WithLabelValues(name, "failed").Inc()
		d := m.fail(name)
		logger.Error(runErr, "virtual node failed: releasing its Lease so another replica can run it", "retryAfter", d)
	case stopHandover:
		m.metrics.transitions.WithLabelValues(name, "handed_over").Inc()
		logger.Info("handed the node over to share the load")
	case stopShutdown:
		m.metrics.transitions.WithLabelValues(name, "released").Inc()
	}
	if r != stopNone {
		rctx, cancel := context.WithTimeout(klog.NewContext(context.Background(), logger), m.opts.RenewDeadline)
		if err := lock.release(rctx); err != nil {
			logger.Error(err, "releasing the node's Lease failed; another replica takes the node when the Lease expires")
		} else {
			logger.Info("released the node's Lease")
		}
		cancel()
	}
	m.stopped(name)
	if r == stopExited {
		sleep(ctx, m.opts.RetryPeriod) // the gate holds it off; do not spin
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// started records that this replica runs a node (resumed: a node held
// over whose Lease is renewed again).
func (m *manager) started(name string, stop func(stopReason), resumed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owned[name] = true
	if _, ok := m.running[name]; !ok {
		m.metrics.nodesRunning.Inc()
	}
	m.running[name] = stop
	delete(m.deferredAt, name)
	event := "acquired"
	if resumed {
		event = "resumed"
	}
	m.metrics.transitions.WithLabelValues(name, event).Inc()
	m.metrics.nodeRunning.WithLabelValues(name).Set(1)
}

// stopped records that a node no longer runs here.
func (m *manager) stopped(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.running[name]; ok {
		m.metrics.nodesRunning.Dec()
		m.metrics.nodeRunning.WithLabelValues(name).Set(0)
	}
	delete(m.running, name)
	delete(m.owned, name)
}

func (m *manager) unreserve(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.running[name]; !ok {
		delete(m.owned, name)
	}
}

// fail backs a node that failed here off exponentially (up to 2 minutes),
// so another replica gets to try it and this one does not spin.
func (m *manager) fail(name string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.backoffs[name]
	b.delay = min(max(2*b.delay, m.opts.RetryPeriod), 2*time.Minute)
	b.until = time.Now().Add(b.delay)
	m.backoffs[name] = b
	return b.delay
}

// liveLocked counts the live replicas of the set, this one included.
func (m *manager) liveLocked(now time.Time) (int, []string) {
	ids := []string{m.opts.Identity}
	for id, mb := range m.members {
		if id != m.opts.Identity && !mb.dead && now.Sub(mb.at) < m.opts.LeaseDuration {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return len(ids), ids
}

func (m *manager) fairShareLocked(now time.Time) (fair, live int) {
	live, _ = m.liveLocked(now)
	return (len(m.opts.Names) + live - 1) / live, live
}

// errDeferred is a refusal of the gate: the Lease is left to other replicas
// for now.
type errDeferred struct{ msg string }

func (e *errDeferred) Error() string { return e.msg }

// mayAcquire is the gate in front of every write that would take a node's
// Lease (rec is the record seen, nil when the Lease does not exist yet).
// It reserves the node when it lets the write through.
func (m *manager) mayAcquire(name string, rec *rl.LeaderElectionRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	key := ""
	if rec != nil {
		key = rec.HolderIdentity + "@" + rec.RenewTime.UTC().Format(time.RFC3339Nano)
		if h := rec.HolderIdentity; h != "" && h != m.opts.Identity {
			// Its Lease expired: that replica is dead or cut off. Count it
			// out now rather than when its membership Lease expires, so
			// the survivors' fair share covers all of its nodes.
			if mb := m.members[h]; mb != nil && !mb.dead {
				mb.dead = true
				m.logger.Info("replica let a node Lease expire: counting it as gone", "peer", h, "node", name)
			}
		}
	}
	if b, ok := m.backoffs[name]; ok && now.Before(b.until) {
		return &errDeferred{fmt.Sprintf("not taking node %s: it failed on this replica; retrying after %s", name, b.until.Sub(now).Round(time.Second))}
	}
	if m.owned[name] || m.opts.Exclusive {
		m.owned[name] = true
		return nil
	}
	held := len(m.owned)
	fair, live := m.fairShareLocked(now)
	wait := 3 * m.opts.RetryPeriod // other replicas retry within 2.2 retry periods
	if t, ok := m.handedOver[name]; ok && now.Sub(t) < 2*m.opts.LeaseDuration {
		wait = m.opts.LeaseDuration // given away on purpose: leave it longer
	} else if held < fair {
		wait = 0
	}
	d, ok := m.deferredAt[name]
	if !ok || d.record != key {
		d = deferral{record: key, since: now}
		m.deferredAt[name] = d
	}
	if waited := now.Sub(d.since); waited < wait {
		return &errDeferred{fmt.Sprintf("leaving free node %s to other replicas for %s: this replica runs %d of %d nodes (fair share %d among %d live replicas)",
			name, (wait - waited).Round(100*time.Millisecond), held, len(m.opts.Names), fair, live)}
	}
	delete(m.deferredAt, name)
	m.owned[name] = true
	return nil
}

// balance hands one node over when this replica runs more than its fair
// share and the membership has been stable for a Lease duration.
func (m *manager) balance() {
	if m.opts.Exclusive {
		return
	}
	m.mu.Lock()
	now := time.Now()
	fair, live := m.fairShareLocked(now)
	var names []string
	for n := range m.running {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) <= fair || now.Sub(m.liveSince) < m.opts.LeaseDuration || now.Sub(m.lastHandover) < m.opts.LeaseDuration {
		m.mu.Unlock()
		return
	}
	victim := names[len(names)-1]
	stop := m.running[victim]
	m.handedOver[victim] = now
	m.lastHandover = now
	m.mu.Unlock()
	m.logger.Info("running more than the fair share: handing a node over", "node", victim, "running", len(names), "fairShare", fair, "liveReplicas", live)
	stop(stopHandover)
}

// heartbeat renews this replica's membership Lease, reads the others' and
// deletes membership Leases expired long ago (replicas that died).
func (m *manager) heartbeat(ctx context.Context) {
	leases := m.opts.Kube.CoordinationV1().Leases(m.opts.Namespace)
	name := ReplicaLeaseName(m.opts.Identity)
	m.quota.mu.Lock()
	published, fenced := m.quota.published, m.quota.fenced
	if fenced {
		published = 0 // applied is 0 too: publish what is used
	}
	m.quota.mu.Unlock()
	m.mu.Lock()
	running := len(m.running)
	m.mu.Unlock()
	start := time.Now()
	err := m.writeMembership(ctx, published, running)
	renewedOK := err == nil
	if renewedOK {
		m.quota.mu.Lock()
		if fenced && m.quota.applied == 0 {
			m.quota.published, m.quota.fenced = 0, false
		}
		m.quota.mu.Unlock()
		m.renewed(start)
	} else if ctx.Err() == nil {
		m.logger.Error(err, "renewing the membership Lease failed; peers may count this replica out", "lease", m.opts.Namespace+"/"+name)
	}
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: LabelNodeSet + "=" + m.set + "," + LabelLeaseKind + "=replica"})
	if err != nil {
		if ctx.Err() == nil {
			m.logger.Error(err, "listing membership Leases failed")
		}
		return
	}
	m.mu.Lock()
	t := time.Now()
	seen := map[string]bool{}
	for i := range list.Items {
		l := &list.Items[i]
		if l.Spec.HolderIdentity == nil || l.Spec.RenewTime == nil {
			continue
		}
		id, renew := *l.Spec.HolderIdentity, l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
		seen[id] = true
		mb := m.members[id]
		switch {
		case mb == nil:
			// First sight: believe the renew time only as far as it says
			// the replica is gone; otherwise time it from now (clock skew).
			mb = &member{renew: renew, at: t}
			if t.Sub(l.Spec.RenewTime.Time) >= m.opts.LeaseDuration {
				mb.at = time.Time{}
			}
			m.members[id] = mb
		case mb.renew != renew:
			mb.renew, mb.at, mb.dead = renew, t, false
		}
		mb.quota = peer{share: parseShare(l), nodes: parseNodes(l)}
		if id != m.opts.Identity && t.Sub(l.Spec.RenewTime.Time) > 10*m.opts.LeaseDuration && t.Sub(mb.at) > 10*m.opts.LeaseDuration {
			err := leases.Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &l.UID, ResourceVersion: &l.ResourceVersion}})
			if err == nil {
				m.logger.Info("deleted the membership Lease of a replica gone long ago", "peer", id, "lease", l.Name)
			}
		}
	}
	for id := range m.members {
		if !seen[id] {
			delete(m.members, id)
		}
	}
	n, ids := m.liveLocked(t)
	if key := strings.Join(ids, ","); key != m.liveKey {
		if m.liveKey != "" {
			m.logger.Info("live replicas changed", "replicas", ids)
		}
		m.liveKey, m.liveSince = key, t
	}
	m.metrics.liveReplicas.Set(float64(n))
	others := m.quotaPeersLocked(t)
	m.mu.Unlock()
	// The count published with this renewal: the peers split by it.
	m.reshare(ctx, running, others, renewedOK)
}

// quotaPeersLocked returns the published quota figures of the peers whose
// membership Lease has not expired, dead or not: one that let a node Lease
// expire may still run other nodes, so its share is freed only with its
// membership.
func (m *manager) quotaPeersLocked(now time.Time) []peer {
	var out []peer
	for id, mb := range m.members {
		if id != m.opts.Identity && now.Sub(mb.at) < m.opts.LeaseDuration {
			out = append(out, mb.quota)
		}
	}
	return out
}

// leave deletes this replica's membership Lease at shutdown, so the others
// count it out at once.
func (m *manager) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.RenewDeadline)
	defer cancel()
	err := m.opts.Kube.CoordinationV1().Leases(m.opts.Namespace).Delete(ctx, ReplicaLeaseName(m.opts.Identity), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		m.logger.Error(err, "deleting the membership Lease failed; it expires by itself")
	}
}

// gatedLock is the node's Lease lock with the fair-share gate in front of
// the writes that would take it; renewals and releases pass straight.
type gatedLock struct {
	rl.LeaseLock
	m    *manager
	node string
	// last is the record last read or written, to tell taking the Lease
	// from renewing it.
	last *rl.LeaderElectionRecord
	// acquired says a write made this replica the holder in this round.
	acquired bool
}

// Get reads the Lease and remembers the record.
func (l *gatedLock) Get(ctx context.Context) (*rl.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.LeaseLock.Get(ctx)
	if err == nil {
		l.last = rec
		if h := rec.HolderIdentity; h != "" && h != l.Identity() {
			l.m.dropHeld(l.node, "replica "+h+" holds the node's Lease now")
		}
	} else if apierrors.IsNotFound(err) {
		l.last = nil
	}
	return rec, raw, err
}

// Create creates the Lease, if the gate lets this replica take the node.
func (l *gatedLock) Create(ctx context.Context, rec rl.LeaderElectionRecord) error {
	if err := l.m.mayAcquire(l.node, nil); err != nil {
		return err
	}
	if err := l.LeaseLock.Create(ctx, rec); err != nil {
		l.m.unreserve(l.node)
		return err
	}
	l.wrote(rec)
	return nil
}

// Update writes the Lease; taking it from someone (or from nobody) goes
// through the gate first.
func (l *gatedLock) Update(ctx context.Context, rec rl.LeaderElectionRecord) error {
	me := l.Identity()
	taking := rec.HolderIdentity == me && (l.last == nil || l.last.HolderIdentity != me)
	if taking {
		if err := l.m.mayAcquire(l.node, l.last); err != nil {
			return err
		}
	}
	if err := l.LeaseLock.Update(ctx, rec); err != nil {
		if taking {
			l.m.unreserve(l.node)
		}
		return err
	}
	l.wrote(rec)
	return nil
}

func (l *gatedLock) wrote(rec rl.LeaderElectionRecord) {
	r := rec
	l.last = &r
	if rec.HolderIdentity == l.Identity() {
		l.acquired = true
	}
}

// release gives the Lease up (no holder, a one-second duration) if this
// replica still holds it, so the next owner need not wait for it to expire.
func (l *gatedLock) release(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		rec, _, err := l.Get(ctx)
		if err != nil {
			return fmt.Errorf("read Lease %s: %w", l.Describe(), err)
		}
		if rec.HolderIdentity != l.Identity() {
			return nil // already someone else's
		}
		now := metav1.NewTime(time.Now())
		err = l.Update(ctx, rl.LeaderElectionRecord{
			LeaseDurationSeconds: 1, RenewTime: now, AcquireTime: now, LeaderTransitions: rec.LeaderTransitions,
		})
		if err == nil || !apierrors.IsConflict(err) || attempt >= 3 {
			if err != nil {
				return fmt.Errorf("release Lease %s: %w", l.Describe(), err)
			}
			return nil
		}
		sleep(ctx, time.Duration(50+rand.IntN(100))*time.Millisecond)
	}
}
