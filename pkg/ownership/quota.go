package ownership

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// AnnotationQuotaShare is on every membership Lease: the share of the
// account's ECI API quotas its replica may use (0 to 1). It is an upper
// bound of what the replica uses: a replica writes a larger share before
// using it, and a smaller one after it shrank.
const AnnotationQuotaShare = "alibabacloud.com/eci-quota-share"

// AnnotationNodesRunning is on every membership Lease: how many virtual
// nodes its replica runs, the weight of its quota share.
const AnnotationNodesRunning = "alibabacloud.com/virtual-nodes-running"

// The account's ECI API quotas are split among the live replicas of the
// node set through their membership Leases, without any other server:
//
//   - each replica's target is its part of the nodes the live replicas
//     run (nodes of one replica share one client, so a replica running 3
//     of 5 nodes needs 3/5 of the quota, and a standby replica running
//     none needs nothing); while no replica runs a node yet, 1 / live
//     replicas;
//   - it may use at most 1 minus the shares the other live replicas
//     published in their Leases, so a newcomer (which publishes 0 when it
//     joins) grows only once the others have shrunk and said so; it
//     starts with empty buckets (eci.Client.SetShare(0));
//   - shrinking is applied at once and published after; growing is
//     published first and applied once written, and only as far as the
//     membership Leases read after that write leave room (grow). The published shares
//     therefore bound what every replica uses, and their sum stays at
//     most 1 while the replicas agree on who is alive;
//   - a replica that cannot renew its membership Lease for the renew
//     deadline uses nothing until it can (its peers free its share only
//     when its Lease has not been renewed for a whole Lease duration,
//     which is longer), unless no peer is alive: then it keeps its share
//     for the nodes it holds over; a replica that leaves uses nothing
//     before it deletes its Lease;
//   - a peer's share is freed when its membership Lease expires or is
//     deleted, not when it merely lets a node Lease expire (it may still
//     run other nodes).
//
// Shares are rounded down to quotaStep so that repeated splits add up to
// at most 1 and do not flap on floating-point noise.
//
// Known limit: if a replica joins while another dies, two replicas may
// for one retry period see different sets of live peers and both grow
// on stale figures; the cloud then answers Throttling, which the client
// backs off from.
const quotaStep = 1e-4

// quota is the share state of this replica.
type quota struct {
	set func(float64) // Options.Share; nil: not sharing

	mu        sync.Mutex
	applied   float64 // what the client uses now
	published float64 // what the membership Lease says (>= applied)
	fence     *time.Timer
	fenced    bool // the share was given up for want of renewals
}

func floorShare(s float64) float64 {
	return math.Max(0, math.Min(1, math.Floor(s/quotaStep+1e-9)/(1/quotaStep)))
}

// peer is what a live peer's membership Lease says for the quota.
type peer struct {
	share float64 // published share; -1: none (a replica of an older version)
	nodes int     // nodes it runs; -1: not said (counted as 1)
}

// splitShare is the share a replica running mine nodes may use: its
// target, its part of the nodes the live replicas run (1 / live replicas
// while none runs any), but at most what the others' published shares
// leave (a peer that published none counts at its own target).
func splitShare(mine int, others []peer) float64 {
	weight := func(n int) int {
		if n < 0 {
			return 1
		}
		return n
	}
	total := max(mine, 0)
	for _, p := range others {
		total += weight(p.nodes)
	}
	target := func(n int) float64 {
		if total == 0 {
			return floorShare(1 / float64(len(others)+1))
		}
		return floorShare(float64(n) / float64(total))
	}
	left := 1.0
	for _, p := range others {
		s := p.share
		if s < 0 {
			s = target(weight(p.nodes))
		}
		left -= s
	}
	return floorShare(math.Min(target(max(mine, 0)), left))
}

// parseNodes reads a Lease's running node count; -1 when absent or invalid.
func parseNodes(l *coordinationv1.Lease) int {
	n, err := strconv.Atoi(l.Annotations[AnnotationNodesRunning])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// applyLocked gives the client share s.
func (q *quota) applyLocked(s float64) {
	q.applied = s
	if q.set != nil {
		q.set(s)
	}
}

// parseShare reads a Lease's published share; -1 when absent or invalid.
func parseShare(l *coordinationv1.Lease) float64 {
	v, ok := l.Annotations[AnnotationQuotaShare]
	if !ok {
		return -1
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(s) || s < 0 || s > 1 {
		return -1
	}
	return s
}

func formatShare(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }

// renewed records a successful renewal of the membership Lease begun at
// start: the share stays usable until start + RenewDeadline unless the
// next renewal succeeds; then the replica fences itself (share 0).
func (m *manager) renewed(start time.Time) {
	q := &m.quota
	q.mu.Lock()
	defer q.mu.Unlock()
	d := m.opts.RenewDeadline - time.Since(start)
	if q.fence == nil {
		q.fence = time.AfterFunc(d, m.fenceQuota)
	} else {
		q.fence.Reset(d)
	}
}

// fenceQuota stops this replica's use of the quota: its membership Lease
// was not renewed for the renew deadline, so its peers may soon count it
// out and take its share.
func (m *manager) fenceQuota() {
	m.mu.Lock()
	alone := m.aloneLocked(time.Now())
	m.mu.Unlock()
	q := &m.quota
	q.mu.Lock()
	defer q.mu.Unlock()
	if alone {
		// No peer is alive to take the share: keeping it lets the nodes
		// held over (holdOver) go on polling the cloud. A replica started
		// meanwhile frees this share only once this membership Lease has
		// expired; the known cost is a few Throttling answers if both
		// then use the quota before this one can renew and see it.
		if q.applied > 0 {
			m.logger.Info("membership Lease not renewed within the renew deadline, and no other replica is alive: keeping the ECI API quota share", "share", q.applied)
		}
		return
	}
	if q.applied > 0 {
		m.logger.Info("membership Lease not renewed within the renew deadline: using none of the ECI API quota until it is", "share", q.applied)
		q.applyLocked(0)
	}
	// The next renewal publishes 0: the peers have taken (or are about to
	// take) this share, and must not shrink for a stale figure.
	q.fenced = true
}

// reshare moves this replica's share toward splitShare of the live peers'
// published shares (others), writing the membership Lease when its
// published share changes: after a shrink, before a growth.
func (m *manager) reshare(ctx context.Context, mine int, others []peer, renewedOK bool) {
	if m.opts.Share == nil {
		return
	}
	q := &m.quota
	want := splitShare(mine, others)
	q.mu.Lock()
	applied, published := q.applied, q.published
	if want < applied {
		q.applyLocked(want)
		m.logger.Info("ECI API quota share shrunk", "share", want, "liveReplicas", len(others)+1, "nodesRunning", mine)
	}
	q.mu.Unlock()
	if !renewedOK {
		return // growing without a fresh membership Lease would be unsafe
	}
	if want == published {
		if want > applied { // published earlier, not yet applied
			m.grow(ctx, want, len(others)+1, mine)
		}
		return
	}
	start := time.Now()
	if err := m.writeMembership(ctx, want, mine); err != nil {
		if ctx.Err() == nil {
			m.logger.Error(err, "publishing the ECI API quota share in the membership Lease failed; retrying at the next renewal", "share", want)
		}
		return
	}
	q.mu.Lock()
	q.published = want
	q.mu.Unlock()
	m.renewed(start)
	if want > applied {
		m.grow(ctx, want, len(others)+1, mine)
	}
}

// grow applies a published growth once the membership Leases, read again
// after this replica's own write, still leave room for it. Replicas that
// grow at the same time each decided on a listing taken before the
// others' writes (three replicas started together each saw 0 for the
// others and took 1/2, 1/2 and 1/3); their writes are ordered by the
// apiserver and each re-reads after its own write, so the last writer
// sees every earlier growth and takes only what it leaves: what they use
// adds up to at most 1. Without a fresh listing the growth waits for the
// next renewal.
func (m *manager) grow(ctx context.Context, want float64, live, mine int) {
	fresh, err := m.freshPeers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.logger.Error(err, "listing membership Leases before growing the ECI API quota share failed; retrying at the next renewal", "share", want)
		}
		return
	}
	if room := splitShare(mine, fresh); room < want {
		want = room
	}
	q := &m.quota
	q.mu.Lock()
	defer q.mu.Unlock()
	if want > q.applied && want <= q.published {
		q.applyLocked(want)
		m.logger.Info("ECI API quota share grown", "share", want, "liveReplicas", live, "nodesRunning", mine)
	}
}

// leaveQuota gives the share up before the membership Lease is deleted.
func (m *manager) leaveQuota() {
	q := &m.quota
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fence != nil {
		q.fence.Stop()
	}
	if m.opts.Share != nil {
		q.applyLocked(0)
	}
}

// writeMembership renews this replica's membership Lease with the share
// it publishes and the number of nodes it runs.
func (m *manager) writeMembership(ctx context.Context, share float64, nodes int) error {
	leases := m.opts.Kube.CoordinationV1().Leases(m.opts.Namespace)
	name := ReplicaLeaseName(m.opts.Identity)
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(m.opts.Identity),
		LeaseDurationSeconds: ptr.To(int32(m.opts.LeaseDuration / time.Second)),
		RenewTime:            &now,
	}
	labels := map[string]string{LabelNodeSet: m.set, LabelLeaseKind: "replica"}
	var ann map[string]string
	if m.opts.Share != nil {
		ann = map[string]string{AnnotationQuotaShare: formatShare(share), AnnotationNodesRunning: strconv.Itoa(nodes)}
	}
	cur, err := leases.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: ann},
			Spec:       spec,
		}, metav1.CreateOptions{})
	case err == nil:
		cur.Spec = spec
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		for k, v := range labels {
			cur.Labels[k] = v
		}
		if ann != nil {
			if cur.Annotations == nil {
				cur.Annotations = map[string]string{}
			}
			for k, v := range ann {
				cur.Annotations[k] = v
			}
		}
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
	}
	return err
}

// freshPeers lists the membership Leases again and returns the quota
// figures of every peer not known to have expired: one this replica has
// not seen yet counts (it may just have joined and published a share).
func (m *manager) freshPeers(ctx context.Context) ([]peer, error) {
	list, err := m.opts.Kube.CoordinationV1().Leases(m.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelNodeSet + "=" + m.set + "," + LabelLeaseKind + "=replica"})
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var out []peer
	for i := range list.Items {
		l := &list.Items[i]
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == m.opts.Identity {
			continue
		}
		mb := m.members[*l.Spec.HolderIdentity]
		if mb != nil && l.Spec.RenewTime != nil && mb.renew == l.Spec.RenewTime.UTC().Format(time.RFC3339Nano) &&
			now.Sub(mb.at) >= m.opts.LeaseDuration {
			continue // expired, not renewed since: its share is free
		}
		out = append(out, peer{share: parseShare(l), nodes: parseNodes(l)})
	}
	return out, nil
}
