package translate

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
)

// Service-account tokens are minted in parallel, with each other and with
// the rest of a translation. A TokenRequest is an apiserver write, and
// waits behind every other request of the node in the client's rate limit:
// minted one after the other, between the ConfigMap and Secret reads, a
// pod's tokens (a projected token per volume, and kube-proxy's) made most
// of a create's time. startMints sends them all as soon as the pod has
// passed the checks that need nothing from the cluster, so a pod that is
// refused for its spec still mints nothing, and the translation takes
// them when it writes the volumes: the request always carries each
// token's content, so no container starts without its token.
//
// Minting earlier, while the pod waits in the virtual-kubelet core's queue,
// was not chosen: the provider has no hook there (the core calls CreatePod
// when a worker takes the pod), a token minted for a pod deleted before
// its create would be wasted, and a token minted ahead ages in the queue
// while the group's refresh is counted from the create.

// mint is one TokenRequest in flight.
type mint struct {
	done chan struct{}
	out  *authv1.TokenRequest
	err  error
}

// wait returns the answered request, or ctx's error if it ends first.
func (m *mint) wait(ctx context.Context) (*authv1.TokenRequest, error) {
	select {
	case <-m.done:
		return m.out, m.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// mints are the tokens of one translation: each projected
// serviceAccountToken source of the pod's volumes, and kube-proxy's.
type mints struct {
	projected map[*corev1.ServiceAccountTokenProjection]*mint
	kubeProxy *mint
	// pending are the token files buildVolumes left for finish.
	pending []*pendingToken
}

// startMints sends the TokenRequests of pod's projected volumes, and of
// kube-proxy when kubeProxy is set and configured, each on its own
// goroutine; they end with ctx.
func (t *Translator) startMints(ctx context.Context, pod *corev1.Pod, kubeProxy bool) *mints {
	m := &mints{projected: map[*corev1.ServiceAccountTokenProjection]*mint{}}
	start := func(ns, sa string, req *authv1.TokenRequest) *mint {
		f := &mint{done: make(chan struct{})}
		go func() {
			defer close(f.done)
			f.out, f.err = t.cluster.Token(ctx, ns, sa, req)
		}()
		return f
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.ServiceAccountToken != nil {
				if _, ok := m.projected[src.ServiceAccountToken]; !ok {
					sa, req := projectedTokenRequest(pod, src.ServiceAccountToken)
					m.projected[src.ServiceAccountToken] = start(pod.Namespace, sa, req)
				}
			}
		}
	}
	if cfg := t.opts.KubeProxyConfig; kubeProxy && cfg != nil {
		m.kubeProxy = t.kubeProxyMint(cfg)
	}
	return m
}

// projectedMint returns the mint startMints sent for src, nil if none.
func (m *mints) projectedMint(src *corev1.ServiceAccountTokenProjection) *mint {
	if m == nil {
		return nil
	}
	return m.projected[src]
}

// pendingToken is a token file whose content is still being minted.
type pendingToken struct {
	mint *mint
	// what names the token in errors.
	what string
	// field names the pod's volume; volume and path index the file in
	// the request's volumes.
	field        string
	volume, path int
}

// later records that file path of volume (indexes in the request's
// volumes) waits for p.
func (m *mints) later(p *pendingToken, field string, volume, path int) {
	p.field, p.volume, p.path = field, volume, path
	m.pending = append(m.pending, p)
}

// finish waits for the tokens still being minted and writes them into
// vols, scheduling their renewal in refresh; the first that failed fails
// the translation, named with its volume.
func (m *mints) finish(ctx context.Context, t *Translator, vols []eci.Volume, refresh *TokenRefresh) error {
	if m == nil {
		return nil
	}
	for _, p := range m.pending {
		out, err := p.mint.wait(ctx)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", p.field, p.what, err)
		}
		v := &vols[p.volume]
		v.ConfigFileToPaths[p.path].Content = base64.StdEncoding.EncodeToString([]byte(out.Status.Token))
		refresh.add(v.Name, t.refreshTime(out.Status.ExpirationTimestamp.Time))
	}
	m.pending = nil
	return nil
}

// kubeProxyToken returns kube-proxy's token: the one startMints asked
// for, or the node's shared one.
func (m *mints) kubeProxyToken(ctx context.Context, t *Translator, cfg *KubeProxyConfig) (*authv1.TokenRequest, error) {
	if m != nil && m.kubeProxy != nil {
		return m.kubeProxy.wait(ctx)
	}
	return t.kubeProxyMint(cfg).wait(ctx)
}
