package translate

import (
	"context"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
)

// sharedToken is kube-proxy's token, shared by the groups a node creates
// close together. It is bound to no object and is the same identity
// (nodeaccess.KubeProxyServiceAccountName) for every group, so one
// TokenRequest can serve many creates: at 10,000 pods the per-pod mint was
// the reason throughput fell from 45 to 33 pods/s and the mean create grew
// from 1.36 to 1.91 s (README, Performance) on a control plane that is the
// bottleneck.
//
// A token is handed out while its age is at most reuseShare of its
// lifetime (a tenth, or half the refresh fraction if that is smaller), so
// every group still gets at least 90 % of the lifetime, and a renewal,
// which comes at the refresh fraction of a token's lifetime, always finds
// the cached token older than that and mints a new one.
type sharedToken struct {
	mu   sync.Mutex
	cur  *mint
	sent time.Time
}

// mintTimeout bounds a shared mint: it outlives the create that started
// it, so it cannot take that create's context.
const mintTimeout = 30 * time.Second

// reuseShare is the share of a token's lifetime during which it is handed
// out again.
func (t *Translator) reuseShare() float64 {
	f := t.opts.TokenRefreshFraction
	if f <= 0 || f >= 1 {
		f = DefaultTokenRefreshFraction
	}
	return min(0.1, f/2)
}

// kubeProxyMint returns the mint of a kube-proxy token young enough to
// hand out, sending a new TokenRequest when there is none, the last one
// failed, or it is too old.
func (t *Translator) kubeProxyMint(cfg *KubeProxyConfig) *mint {
	s := &t.kubeProxyToken
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.cur; m != nil {
		select {
		case <-m.done:
			if m.err == nil && m.out != nil {
				exp := m.out.Status.ExpirationTimestamp.Time
				life := exp.Sub(s.sent)
				if time.Since(s.sent) <= time.Duration(float64(life)*t.reuseShare()) {
					return m
				}
			}
		default:
			return m // still in flight: wait for it with the others
		}
	}
	m := &mint{done: make(chan struct{})}
	s.cur, s.sent = m, time.Now()
	go func() {
		defer close(m.done)
		ctx, cancel := context.WithTimeout(context.Background(), mintTimeout)
		defer cancel()
		m.out, m.err = t.cluster.Token(ctx, cfg.Namespace, nodeaccess.KubeProxyServiceAccountName, kubeProxyTokenRequest())
	}()
	return m
}
