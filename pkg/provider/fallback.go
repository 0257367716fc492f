package provider

import (
	"context"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"k8s.io/klog/v2"
)

// The status fallback. DescribeContainerGroupStatus is not in the product
// documentation's custom RAM policy (seed 002, step 1): under that policy
// the cheap status call is refused with Forbidden.RAM. The provider then
// polls with DescribeContainerGroups, which the policy allows: the node's
// groups by tag (ClusterId, NodeName), page by page, and between those
// listings the groups of pods still starting, by id. It is detected once
// (the first refusal), logged once, shown by the metric
// vnode_status_fallback{node} and on the Node (condition
// ContainerInstancePermissions, reason StatusFallback).
//
// Quota arithmetic (published quotas, pkg/eci/quotas.go): the fallback
// lives on DescribeContainerGroups' 2,000 calls/min per account, whose
// pages hold at most 20 groups (MaxDescribeLimit; the published maximum
// of Limit). A node of 10,000 pods takes 500 pages per listing.
//
//   - Full listings are spaced fallbackPageSpacing (60 ms) per page they
//     took, and at least StatusInterval: 500 pages every 30 s = 1,000
//     calls/min, half the quota, whatever the pod count (a node of 100
//     pods, 5 pages, lists every StatusInterval = 2 s: 150 calls/min).
//   - Pods still starting are described by id between listings, at most
//     fallbackStartingPerMinute (480) calls/min: 2 calls (40 pods) per
//     250 ms fast poll, 16 per 2 s poll.
//   - Together at most 1,480 calls/min, leaving 520/min for confirming
//     lost groups, adoption, create conflicts, kubectl logs and the drain.
//     Nodes of one controller share one client, whose token bucket
//     (eci.ClientLimits) keeps their sum under the quota, and replicas
//     split the quota among themselves (eci.Client.SetShare, package
//     ownership): more nodes or replicas make each listing slower, never
//     refused.
//
// The price: a running pod's change (a container restart, an exit) is
// seen within one listing period (30 s at 10,000 pods) instead of one
// poll. Every statusReprobeInterval the status call is tried again, so a
// policy that gains the action ends the fallback without a restart.
const (
	fallbackPageSpacing       = 60 * time.Millisecond
	fallbackStartingPerMinute = 480
	statusReprobeInterval     = 10 * time.Minute
)

// statusAction is the action whose refusal starts the fallback.
const statusAction = "DescribeContainerGroupStatus"

// fallbackState is the status loop's mode; only Run's goroutine writes it.
type fallbackState struct {
	on        bool
	lastFull  time.Time
	fullEvery time.Duration
	reprobeAt time.Time
}

// InStatusFallback reports whether pod status is polled with
// DescribeContainerGroups because DescribeContainerGroupStatus is refused.
func (p *Provider) InStatusFallback() bool { return p.fallbackOn.Load() }

// enterFallback switches the status loop to DescribeContainerGroups after
// the status call was refused (err), logging it once.
func (p *Provider) enterFallback(logger klog.Logger, fb *fallbackState, err error) {
	fb.on, fb.lastFull, fb.reprobeAt = true, time.Time{}, p.clock.Now().Add(statusReprobeInterval)
	p.fallbackOn.Store(true)
	p.metrics.statusFallback.Set(1)
	logger.Info("DescribeContainerGroupStatus is not allowed by the AccessKey's RAM policy (it is not in the documented policy); "+
		"polling pod status with DescribeContainerGroups instead. Adding eci:DescribeContainerGroupStatus to the policy saves API calls",
		"err", err.Error())
}

// leaveFallback returns to the status call once the policy allows it.
func (p *Provider) leaveFallback(logger klog.Logger, fb *fallbackState) {
	*fb = fallbackState{}
	p.fallbackOn.Store(false)
	p.metrics.statusFallback.Set(0)
	logger.Info("DescribeContainerGroupStatus is allowed again; pod status is polled with it")
}

// reprobe tries the status call once; it reports whether it is allowed.
func (p *Provider) reprobe(ctx context.Context) bool {
	_, err := p.opts.Cloud.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{Tags: p.ownTags(), Limit: 1})
	return err == nil
}

// fallbackListingPeriod is the time between the starts of two full
// listings that took pages calls: fallbackPageSpacing per page, at least
// the status interval.
func fallbackListingPeriod(pages int, statusInterval time.Duration) time.Duration {
	return max(statusInterval, time.Duration(pages)*fallbackPageSpacing)
}

// fallbackStartingCalls is how many describe-by-id calls one poll of
// period interval may make for starting pods: fallbackStartingPerMinute
// spread over the polls, at least one.
func fallbackStartingCalls(interval time.Duration) int {
	return max(1, int(interval.Seconds()*fallbackStartingPerMinute/60))
}

// syncFallback is one turn of the fallback status loop: a full listing by
// tag when one is due, else the starting pods' groups by id.
func (p *Provider) syncFallback(ctx context.Context, fb *fallbackState, interval time.Duration) error {
	if p.clock.Since(fb.lastFull) >= fb.fullEvery {
		start := p.clock.Now()
		pages, err := p.listFallback(ctx)
		if err != nil {
			return err
		}
		fb.lastFull = start
		fb.fullEvery = fallbackListingPeriod(pages, p.opts.StatusInterval)
		return nil
	}
	ids := p.startingGroups()
	if n := fallbackStartingCalls(interval) * eci.MaxIDsPerCall; len(ids) > n {
		ids = ids[:n]
	}
	return p.describeBatches(ctx, ids, func(_ []string, groups []eci.ContainerGroup, err error) error {
		if err != nil {
			return err
		}
		for i := range groups {
			p.apply(&groups[i], 0)
		}
		return nil
	})
}

// listFallback lists every group of this node by tag, applies each to its
// pod, and does what a full status listing does (lost groups, orphans,
// housekeeping). It returns the pages it took.
func (p *Provider) listFallback(ctx context.Context) (pages int, err error) {
	listStart := p.clock.Now()
	seen := map[string]bool{}
	var untracked []eci.GroupStatus
	// WithEvent: apply forwards the groups' events to their pods.
	req := &eci.DescribeContainerGroupsRequest{Tags: p.ownTags(), Limit: eci.MaxDescribeLimit, WithEvent: true}
	for {
		resp, err := p.opts.Cloud.DescribeContainerGroups(ctx, req)
		pages++
		if err != nil {
			return pages, err
		}
		for i := range resp.ContainerGroups {
			g := &resp.ContainerGroups[i]
			seen[g.ContainerGroupId] = true
			p.mu.RLock()
			_, tracked := p.byGroup[g.ContainerGroupId]
			p.mu.RUnlock()
			if !tracked {
				untracked = append(untracked, eci.GroupStatus{ContainerGroupId: g.ContainerGroupId,
					Namespace: tagValue(g.Tags, translate.TagPodNamespace), Name: tagValue(g.Tags, translate.TagPodName),
					UID: tagValue(g.Tags, translate.TagPodUID), Status: g.Status})
				continue
			}
			p.apply(g, 0)
		}
		if resp.NextToken == "" || len(resp.ContainerGroups) == 0 {
			break
		}
		req.NextToken = resp.NextToken
	}
	p.markLost(ctx, seen, listStart)
	p.sweep(ctx, untracked)
	p.housekeep(ctx)
	return pages, nil
}

// startingGroups lists the groups of pods that have not started yet.
func (p *Provider) startingGroups() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []string
	for _, e := range p.pods {
		if e.groupStarting() {
			out = append(out, e.groupID)
		}
	}
	return out
}

// refusalLog keeps a poll that the RAM policy refuses every time from
// logging an error every time: the first refusal of an action is logged,
// the repeats only at V(4) (the Node's ContainerInstancePermissions
// condition and vnode_cloud_action_refused show it meanwhile).
type refusalLog struct{ action string }

// refused reports whether err repeats the refusal already logged.
func (r *refusalLog) refused(err error) bool {
	action, ok := eci.PermissionDenied(err)
	if !ok {
		return false
	}
	if action == r.action {
		klog.V(4).InfoS("status sync still refused by the RAM policy", "action", action)
		return true
	}
	r.action = action
	return false
}
