package translate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// barrierCluster is a memCluster whose Token and ConfigMap calls each
// wait until want of them are in flight together: a translation that
// makes them one after the other never gets there, and its first call
// fails after a generous bound instead of hanging the test. fail makes
// the Token calls of a ServiceAccount fail once released. With checks,
// the first read of each ConfigMap passes at once: in a translation it is
// the check that the pod's objects exist (checkSources), made before any
// token is minted.
type barrierCluster struct {
	*memCluster
	mu      sync.Mutex
	want    int
	arrived int
	open    chan struct{}
	fail    string
	checks  bool
	checked map[string]bool
}

func newBarrierCluster(t *testing.T, want int, objs ...any) *barrierCluster {
	return &barrierCluster{memCluster: newMemCluster(t, objs...), want: want, open: make(chan struct{}), checks: true}
}

func (c *barrierCluster) arrive(ctx context.Context, what string) error {
	c.mu.Lock()
	c.arrived++
	if c.arrived == c.want {
		close(c.open)
	}
	c.mu.Unlock()
	select {
	case <-c.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(20 * time.Second):
		c.mu.Lock()
		defer c.mu.Unlock()
		return fmt.Errorf("%s: only %d of %d token and ConfigMap calls were ever in flight together", what, c.arrived, c.want)
	}
}

func (c *barrierCluster) Token(ctx context.Context, ns, sa string, req *authv1.TokenRequest) (*authv1.TokenRequest, error) {
	if err := c.arrive(ctx, "Token "+ns+"/"+sa); err != nil {
		return nil, err
	}
	if sa == c.fail {
		return nil, errors.New("serviceaccounts \"" + sa + "\" is forbidden: token requests are refused")
	}
	return c.memCluster.Token(ctx, ns, sa, req)
}

func (c *barrierCluster) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	c.mu.Lock()
	first := c.checks && !c.checked[ns+"/"+name]
	if c.checked == nil {
		c.checked = map[string]bool{}
	}
	c.checked[ns+"/"+name] = true
	c.mu.Unlock()
	if first {
		if _, n := c.recorded(); n != 0 {
			return nil, fmt.Errorf("ConfigMap %s/%s checked after %d tokens were minted, want before any", ns, name, n)
		}
		return c.memCluster.ConfigMap(ctx, ns, name)
	}
	if err := c.arrive(ctx, "ConfigMap "+ns+"/"+name); err != nil {
		return nil, err
	}
	return c.memCluster.ConfigMap(ctx, ns, name)
}

// twoTokenPod is tokenPod with a second projected token (another
// audience) and a ConfigMap volume read between them.
func twoTokenPod() *corev1.Pod {
	return tokenPod(func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes,
			corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			corev1.Volume{Name: "vault", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
					Path: "vault-token", Audience: "vault", ExpirationSeconds: ptr.To[int64](600)}}}}}})
	})
}

func kubeProxyOptions() Options {
	return Options{NodeName: "vk", ClusterID: "c1", KubeProxy: true,
		KubeProxyConfig: &KubeProxyConfig{Image: "kube-proxy:v1", Server: "https://192.168.0.10:6443", Namespace: "kube-system"}}
}

func fileOf(t *testing.T, v *eci.Volume, name string) string {
	t.Helper()
	for _, f := range v.ConfigFileToPaths {
		if f.Path == name {
			b, err := base64.StdEncoding.DecodeString(f.Content)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("volume %s has no file %s: %+v", v.Name, name, v.ConfigFileToPaths)
	return ""
}

// TestTokensMintedInParallel: a pod's three tokens (two projected
// volumes and kube-proxy's) are all requested at once, and while the
// first ConfigMap is read; the request still carries every token.
func TestTokensMintedInParallel(t *testing.T) {
	cfg := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}, Data: map[string]string{"port": "8080"}}
	c := newBarrierCluster(t, 4, cfg) // 3 tokens + the ConfigMap volume
	tr, err := New(kubeProxyOptions(), c).build(context.Background(), twoTokenPod())
	if err != nil {
		t.Fatal(err)
	}
	if _, n := c.recorded(); n != 3 {
		t.Errorf("%d tokens minted, want 3 (two projected, kube-proxy's)", n)
	}
	seen := map[string]string{}
	for i := range tr.Req.Volumes {
		v := &tr.Req.Volumes[i]
		var tok string
		switch v.Name {
		case "token":
			tok = fileOf(t, v, "token")
		case "vault":
			tok = fileOf(t, v, "vault-token")
		case KubeProxyVolume:
			tok = fileOf(t, v, "token")
		default:
			continue
		}
		if !strings.HasPrefix(tok, "token-") {
			t.Errorf("volume %s carries token %q, want a minted one", v.Name, tok)
		}
		if other, dup := seen[tok]; dup {
			t.Errorf("volumes %s and %s carry the same token %q", other, v.Name, tok)
		}
		seen[tok] = v.Name
	}
	if len(seen) != 3 {
		t.Errorf("tokens in the request: %v, want the two projected volumes' and kube-proxy's", seen)
	}
	if want := []string{"token", "vault", KubeProxyVolume}; len(tr.Tokens.Volumes) != 3 || tr.Tokens.At.IsZero() {
		t.Errorf("token refresh %+v, want volumes %v and a time", tr.Tokens, want)
	}
}

// TestTokenFailureNamesIt: when one of the tokens minted in parallel
// fails, the translation fails with an error that names it (not an
// InvalidPodError: the provider retries the pod), whichever it is.
func TestTokenFailureNamesIt(t *testing.T) {
	cfg := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}, Data: map[string]string{"port": "8080"}}
	for _, tt := range []struct {
		name, failSA, want string
	}{
		{"kube-proxy's", nodeaccess.KubeProxyServiceAccountName, "kube-proxy token for ServiceAccount kube-system/" + nodeaccess.KubeProxyServiceAccountName},
		{"a projected one", "default", "spec.volumes[0] (token): service account token for default/default"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newBarrierCluster(t, 4, cfg)
			c.fail = tt.failSA
			tr, err := New(kubeProxyOptions(), c).build(context.Background(), twoTokenPod())
			var inv *InvalidPodError
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "token requests are refused") || errors.As(err, &inv) {
				t.Fatalf("translation = %v, %v; want an error naming %q and its cause, not an InvalidPodError", tr, err, tt.want)
			}
		})
	}
}

// TestRefreshMintsInParallel: renewing a running pod's tokens also sends
// them at once.
func TestRefreshMintsInParallel(t *testing.T) {
	cfg := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}, Data: map[string]string{"port": "8080"}}
	c := newBarrierCluster(t, 4, cfg)
	c.checks = false // a renewal reads only what the token volumes need
	vols, refresh, err := New(kubeProxyOptions(), c).RefreshVolumes(context.Background(), twoTokenPod(), []string{"token", "vault", KubeProxyVolume})
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 3 || len(refresh.Volumes) != 3 {
		t.Errorf("renewed volumes %d, refresh %+v; want the 3 token volumes", len(vols), refresh)
	}
}
