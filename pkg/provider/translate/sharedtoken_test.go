package translate

import (
	"context"
	"testing"
	"time"
)

// TestKubeProxyTokenShared: groups created close together share one
// kube-proxy TokenRequest; a token older than the reuse share of its
// lifetime is not handed out again, so a renewal always gets a new one.
func TestKubeProxyTokenShared(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fraction   float64
		pause      time.Duration
		wantTokens int
		wantSame   bool
	}{
		{"close together share one token", 0, 0, 1, true},
		// A refresh fraction of 1e-7 of an hour is 0.36 ms: half of it is
		// the reuse window, long gone after the pause.
		{"an aged token is minted again", 1e-7, 20 * time.Millisecond, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl, cluster := kubeProxyTranslator(t, true, nil)
			tl.opts.TokenRefreshFraction = tc.fraction
			var tokens []string
			for i := 0; i < 3; i++ {
				tr, err := tl.build(context.Background(), testPod(nil))
				if err != nil {
					t.Fatal(err)
				}
				_, v := kubeProxyOf(tr.Req)
				if v == nil {
					t.Fatal("no kube-proxy volume")
				}
				tokens = append(tokens, volumeFiles(t, v)["token"])
				time.Sleep(tc.pause)
			}
			_, n := cluster.recorded()
			if n != tc.wantTokens {
				t.Errorf("%d TokenRequests for 3 groups, want %d", n, tc.wantTokens)
			}
			same := tokens[0] == tokens[1] && tokens[1] == tokens[2]
			if same != tc.wantSame {
				t.Errorf("tokens %q: same %v, want %v", tokens, same, tc.wantSame)
			}
		})
	}
}
