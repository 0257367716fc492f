package provider

import (
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"golang.org/x/time/rate"
)

// kubeletState is the kubelet API's share of a Provider: the budget that
// log followers poll DescribeContainerLog with, and the cached metric
// samples.
type kubeletState struct {
	// logPolls is shared by every follower of this node: together they
	// stay under DescribeContainerLog's quota (500 calls/min per account),
	// each polling more slowly when many follow at once.
	logPolls *rate.Limiter
	metrics  metricsCache
}

// followerCallsPerMinute is the part of DescribeContainerLog's 500/min
// that followers may use together; the rest stays free for one-shot
// `kubectl logs` calls.
const followerCallsPerMinute = 400

// kubelet returns p's kubelet API state, creating it on first use.
func (p *Provider) kubelet() *kubeletState {
	p.kubeletOnce.Do(func() {
		p.kubeletAPI = &kubeletState{logPolls: rate.NewLimiter(rate.Limit(followerCallsPerMinute/60.0), 10)}
	})
	return p.kubeletAPI
}

// apiError converts a cloud error into what the kubelet API handlers
// understand: vk's errdefs follow Cause(), not Unwrap(), so the class has
// to be turned into an errdefs error here, at the boundary.
func apiError(err error) error {
	switch eci.ClassOf(err) {
	case eci.ClassNotFound:
		return errdefs.AsNotFound(err)
	case eci.ClassInvalid:
		return errdefs.AsInvalidInput(err)
	}
	return err
}

// isGone reports whether err says the group (or pod) no longer exists.
func isGone(err error) bool { return eci.IsNotFound(err) || errdefs.IsNotFound(err) }
