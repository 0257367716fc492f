package eci_test

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// simWithQuotaScale serves a simulator whose published quotas are scaled,
// so a test can reach them with a handful of calls.
func simWithQuotaScale(t *testing.T, scale float64) (*simulator.Simulator, string) {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.QuotaScale = scale
	return simtest.Start(t, cfg)
}

// limiterWaitSeconds reads eci_rate_limiter_wait_seconds for action from
// reg: the sum of waits and the number of samples.
func limiterWaitSeconds(t *testing.T, reg prometheus.Gatherer, action string) (float64, uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eci_rate_limiter_wait_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelIs(m, "action", action) {
				return m.GetHistogram().GetSampleSum(), m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0, 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestClientTokenBuckets sends more calls than the simulator's scaled
// quota allows at once. Without a client-side bucket the cloud refuses the
// excess with Throttling; with a bucket matched (with a margin for network
// jitter) to the quota the client waits instead and nothing is refused.
func TestClientTokenBuckets(t *testing.T) {
	// Scale 0.05 turns DescribeContainerGroups' 2,000/min (a bucket of
	// 2,000 refilled at 33.3/s) into a bucket of 100 refilled at 1.67/s,
	// and Create's 100 + 20/s into 5 + 1/s.
	tests := []struct {
		name          string
		action        string
		limit         eci.Limit
		calls         int
		wantThrottled bool
	}{
		{"no client limit: the cloud throttles", "CreateContainerGroup", eci.Limit{}, 8, true},
		{"client bucket under the quota: no throttling", "CreateContainerGroup", eci.Limit{PerSecond: 0.8, Burst: 4}, 8, false},
		{"per-minute quota, client bucket under it: no throttling", "DescribeContainerGroups", eci.Limit{PerSecond: 1.5, Burst: 7}, 12, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, url := simWithQuotaScale(t, 0.05)
			reg := prometheus.NewRegistry()
			cred, err := eci.StaticCredential(simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
			if err != nil {
				t.Fatal(err)
			}
			c, err := eci.NewClient(eci.Config{RegionId: simulator.DefaultRegionID, Endpoint: url, Credential: cred,
				MaxAttempts: 1, Limits: map[string]eci.Limit{tt.action: tt.limit}, Metrics: eci.NewMetrics(reg)})
			if err != nil {
				t.Fatal(err)
			}
			sumBefore, _ := limiterWaitSeconds(t, reg, tt.action)
			ctx := context.Background()
			for i := 0; i < tt.calls; i++ {
				switch tt.action {
				case "CreateContainerGroup":
					_, err = c.CreateContainerGroup(ctx, createReq(""))
				default:
					_, err = c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{})
				}
				if err != nil && eci.ClassOf(err) != eci.ClassThrottled {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			throttled := sim.Calls()[tt.action][simulator.CodeThrottling]
			if (throttled > 0) != tt.wantThrottled {
				t.Errorf("%d of %d calls throttled by the cloud, want throttling %v", throttled, tt.calls, tt.wantThrottled)
			}
			sumAfter, _ := limiterWaitSeconds(t, reg, tt.action)
			if waited := sumAfter - sumBefore; tt.limit.PerSecond > 0 && waited <= 0 {
				t.Errorf("eci_rate_limiter_wait_seconds{action=%q} did not grow (%v): the bucket never made a call wait", tt.action, waited)
			}
		})
	}
}

// TestClientThrottlingPausesTheOperation shows the back-off on
// Throttling.User: the refused call is sent again only after the pause, and
// a call of the same operation from another caller waits it out too
// instead of hammering a cloud that just said "slow down".
func TestClientThrottlingPausesTheOperation(t *testing.T) {
	const pause = 400 * time.Millisecond
	sim, url := startSim(t)
	cred, err := eci.StaticCredential(simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := eci.NewClient(eci.Config{RegionId: simulator.DefaultRegionID, Endpoint: url, Credential: cred, ThrottleBackoff: pause})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.InjectFault(simulator.Fault{Action: "DescribeContainerGroups", Times: 1, Code: simulator.CodeThrottling}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { _, err := c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{}); first <- err }()
	// Wait until the throttled answer was given, then call from elsewhere.
	deadline := time.Now().Add(10 * time.Second)
	for sim.Calls()["DescribeContainerGroups"][simulator.CodeThrottling] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the injected throttling was never answered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The simulator counts the call before its answer reaches the client;
	// a call sent in that window cannot know of the pause yet. Give the
	// answer time to arrive (a fraction of the shortest jittered pause, so
	// the second call still starts inside it).
	time.Sleep(pause / 4)
	if _, err := c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{}); err != nil {
		t.Fatalf("second caller: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("throttled caller: %v", err)
	}
	reqs := sim.Requests("DescribeContainerGroups")
	if len(reqs) != 3 || reqs[0].Code != simulator.CodeThrottling {
		t.Fatalf("requests %+v, want one throttled then two OK", reqs)
	}
	for _, r := range reqs[1:] {
		// The pause is jittered within [pause/2, pause].
		if gap := r.Time.Sub(reqs[0].Time); gap < pause/2 {
			t.Errorf("a call went out %v after the Throttling answer, before the pause of at least %v", gap, pause/2)
		}
	}
}

// TestClientConfigErrors shows bad limits are refused naming the field.
func TestClientConfigErrors(t *testing.T) {
	cred, err := eci.StaticCredential("id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  eci.Config
		want string
	}{
		{"burst zero", eci.Config{Limits: map[string]eci.Limit{"CreateContainerGroup": {PerSecond: 5}}}, "Limits[CreateContainerGroup]: Burst"},
		{"empty operation", eci.Config{Limits: map[string]eci.Limit{"": {PerSecond: 5, Burst: 1}}}, "operation name"},
		{"ceiling below the first pause", eci.Config{ThrottleBackoff: time.Minute, MaxThrottleBackoff: time.Second}, "MaxThrottleBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.RegionId, cfg.Credential = simulator.DefaultRegionID, cred
			_, err := eci.NewClient(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewClient = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestScaledLimits(t *testing.T) {
	for _, tt := range []struct {
		scale            float64
		wantRate         float64
		wantBurst        int
		wantDescribeRate float64
	}{
		{scale: 1, wantRate: 20, wantBurst: 100, wantDescribeRate: 2000.0 / 60},
		{scale: 2.5, wantRate: 50, wantBurst: 250, wantDescribeRate: 2.5 * 2000 / 60},
		{scale: 0, wantRate: 0, wantBurst: 0, wantDescribeRate: 0},
	} {
		got := eci.ScaledLimits(tt.scale)
		if c := got["CreateContainerGroup"]; c.PerSecond != tt.wantRate || c.Burst != tt.wantBurst {
			t.Errorf("scale %v: CreateContainerGroup %+v, want %v/s burst %d", tt.scale, c, tt.wantRate, tt.wantBurst)
		}
		if d := got["DescribeContainerGroups"]; math.Abs(d.PerSecond-tt.wantDescribeRate) > 1e-9 {
			t.Errorf("scale %v: DescribeContainerGroups %v/s, want %v", tt.scale, d.PerSecond, tt.wantDescribeRate)
		}
		if len(got) != len(eci.PublishedQuotas) {
			t.Errorf("scale %v: %d operations, want %d", tt.scale, len(got), len(eci.PublishedQuotas))
		}
	}
}

// TestClientLimits: the client keeps the published rates but bursts at
// most five seconds' worth, so a published "n per minute" is never
// exceeded in any minute; Create and Delete keep their published bucket.
func TestClientLimits(t *testing.T) {
	for _, scale := range []float64{1, 2.5, 0.05} {
		published, client := eci.ScaledLimits(scale), eci.ClientLimits(scale)
		if len(client) != len(published) {
			t.Fatalf("scale %v: %d client limits, want %d", scale, len(client), len(published))
		}
		for op, p := range published {
			c := client[op]
			if c.PerSecond != p.PerSecond {
				t.Errorf("scale %v: %s client rate %v, want the published %v", scale, op, c.PerSecond, p.PerSecond)
			}
			if c.Burst > p.Burst || float64(c.Burst) > math.Max(1, 5*p.PerSecond) {
				t.Errorf("scale %v: %s client burst %d above the published %d or five seconds' worth (%v)", scale, op, c.Burst, p.Burst, 5*p.PerSecond)
			}
			if c.Burst < 1 {
				t.Errorf("scale %v: %s client burst %d", scale, op, c.Burst)
			}
		}
	}
	if c := eci.ClientLimits(1)["CreateContainerGroup"]; c.Burst != 100 || c.PerSecond != 20 {
		t.Errorf("CreateContainerGroup client limit %+v, want the published 100 + 20/s", c)
	}
	if c := eci.ClientLimits(1)["DescribeContainerGroups"]; c.Burst != 166 {
		t.Errorf("DescribeContainerGroups client burst %d, want 2000/12 = 166", c.Burst)
	}
	if c := eci.ClientLimits(0)["CreateContainerGroup"]; c != (eci.Limit{}) {
		t.Errorf("scale 0: CreateContainerGroup %+v, want no limit", c)
	}
}

// TestClientsSplitTheQuota runs two clients of one account against the
// simulator at the published Create quota (scaled to 25 + 5/s to keep it
// short), all calls at once. Each paced at the whole quota, they together
// collect Throttling answers; splitting it (SetShare(0.5) each) they
// collect none, and every call goes through.
func TestClientsSplitTheQuota(t *testing.T) {
	const scale, perClient = 0.25, 20
	for _, tt := range []struct {
		name          string
		share         float64
		wantThrottled bool
	}{
		{"each client at the whole quota", 1, true},
		{"each client at half the quota", 0.5, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim, url := simWithQuotaScale(t, scale)
			cred, err := eci.StaticCredential(simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
			if err != nil {
				t.Fatal(err)
			}
			var clients []*eci.Client
			for i := 0; i < 2; i++ {
				c, err := eci.NewClient(eci.Config{RegionId: simulator.DefaultRegionID, Endpoint: url, Credential: cred,
					MaxAttempts: 1, Limits: eci.ClientLimits(scale)})
				if err != nil {
					t.Fatal(err)
				}
				if err := c.SetShare(tt.share); err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok := 0
			for _, c := range clients {
				for i := 0; i < perClient; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := c.CreateContainerGroup(context.Background(), createReq(""))
						if err != nil && eci.ClassOf(err) != eci.ClassThrottled {
							t.Errorf("create: %v", err)
						}
						if err == nil {
							mu.Lock()
							ok++
							mu.Unlock()
						}
					}()
				}
			}
			wg.Wait()
			throttled := sim.Calls()["CreateContainerGroup"][simulator.CodeThrottling]
			if (throttled > 0) != tt.wantThrottled {
				t.Errorf("%d of %d creates throttled by the cloud, want throttling %v", throttled, 2*perClient, tt.wantThrottled)
			}
			if !tt.wantThrottled && ok != 2*perClient {
				t.Errorf("%d of %d creates succeeded", ok, 2*perClient)
			}
		})
	}
}

// TestSetShareRange: a share outside [0, 1] is refused naming the call;
// the share in use is the gauge eci_api_quota_share of the injected
// registry.
func TestSetShareRange(t *testing.T) {
	cred, err := eci.StaticCredential("id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, err := eci.NewClient(eci.Config{RegionId: simulator.DefaultRegionID, Credential: cred, Metrics: eci.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	if got := quotaShareGauge(t, reg); got != 1 {
		t.Errorf("a new client's eci_api_quota_share = %v, want 1", got)
	}
	for _, s := range []float64{-0.1, 1.5, math.NaN()} {
		if err := c.SetShare(s); err == nil || !strings.Contains(err.Error(), "SetShare") {
			t.Errorf("SetShare(%v) = %v, want an error naming SetShare", s, err)
		}
	}
	if err := c.SetShare(0.25); err != nil || c.Share() != 0.25 {
		t.Errorf("SetShare(0.25) = %v, Share() = %v", err, c.Share())
	}
	if got := quotaShareGauge(t, reg); got != 0.25 {
		t.Errorf("eci_api_quota_share = %v after SetShare(0.25)", got)
	}
}

func quotaShareGauge(t *testing.T, reg prometheus.Gatherer) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "eci_api_quota_share" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("eci_api_quota_share is not in the registry")
	return 0
}
