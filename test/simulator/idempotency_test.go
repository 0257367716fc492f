package simulator

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
)

func TestClientTokenIdempotency(t *testing.T) {
	e := newEnv(t, nil)
	params := createParams("idem", map[string]string{"ClientToken": "token-123"})
	first := e.create("idem", map[string]string{"ClientToken": "token-123"})
	var again struct{ RequestId, ContainerGroupId string }
	e.mustCall("CreateContainerGroup", params, &again)
	if again.ContainerGroupId != first || again.RequestId == "" {
		t.Fatalf("retry returned %+v, want %s", again, first)
	}
	if n := len(e.sim.Groups()); n != 1 {
		t.Fatalf("%d groups after an idempotent retry", n)
	}

	tests := []struct {
		name   string
		params map[string]string
		code   string
	}{
		{"same token, other params", createParams("idem", map[string]string{"ClientToken": "token-123", "Container.1.Image": "redis"}), CodeIdempotentParameterMismatch},
		{"token too long", createParams("idem", map[string]string{"ClientToken": strings.Repeat("x", 65)}), CodeInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, e.call("CreateContainerGroup", tc.params, nil), tc.code, http.StatusBadRequest)
		})
	}

	// Failures are not remembered: a retry after NoStock can succeed.
	if err := e.sim.SetStock("cn-hangzhou-h", 0, 0); err != nil {
		t.Fatal(err)
	}
	retry := createParams("later", map[string]string{"ClientToken": "token-456"})
	wantCode(t, e.call("CreateContainerGroup", retry, nil), CodeNoStock, http.StatusForbidden)
	if err := e.sim.SetStock("cn-hangzhou-h", 100, 100); err != nil {
		t.Fatal(err)
	}
	e.mustCall("CreateContainerGroup", retry, nil)

	// Delete with a token is idempotent too.
	del := map[string]string{"ContainerGroupId": first, "ClientToken": "del-1"}
	e.mustCall("DeleteContainerGroup", del, nil)
	e.mustCall("DeleteContainerGroup", del, nil)
	wantCode(t, e.call("DeleteContainerGroup", map[string]string{"ContainerGroupId": first}, nil),
		CodeContainerGroupNotFound, http.StatusNotFound)
}

func TestThrottling(t *testing.T) {
	// QuotaScale 0.05: Create has a bucket of 5 refilled at 1/s.
	e := newEnv(t, func(c *Config) { c.QuotaScale = 0.05 })
	for i := 0; i < 5; i++ {
		e.create("tt", nil)
	}
	err := e.call("CreateContainerGroup", createParams("tt", nil), nil)
	se := wantCode(t, err, CodeThrottling, http.StatusBadRequest)
	if se.Message() != "Request was denied due to user flow control." {
		t.Errorf("message %q", se.Message())
	}
	// Other operations have their own buckets.
	e.mustCall("DescribeContainerGroups", nil, nil)
	e.clock.Advance(time.Second)
	e.create("tt", nil)
	wantCode(t, e.call("CreateContainerGroup", createParams("tt", nil), nil), CodeThrottling, http.StatusBadRequest)
	if got := e.sim.Calls()["CreateContainerGroup"]; got["OK"] != 6 || got[CodeThrottling] != 2 {
		t.Errorf("calls %v", got)
	}
}

func TestTokenBucket(t *testing.T) {
	tests := []struct {
		name    string
		scale   float64
		action  string
		burst   int
		refill  time.Duration
		refills int
	}{
		{"create", 1, "CreateContainerGroup", 100, time.Second, 20},
		{"delete scaled", 0.1, "DeleteContainerGroup", 10, time.Second, 2},
		// N per minute: a bucket of N refilled at N/60 per second.
		{"describe per minute", 1, "DescribeContainerGroups", 2000, time.Minute, 2000},
		{"describe per minute, partial refill", 1, "DescribeContainerGroups", 2000, 3 * time.Second, 100},
		{"exec per minute", 1, "ExecContainerCommand", 500, 6 * time.Second, 50},
		{"status scaled", 0.5, "DescribeContainerGroupStatus", 5000, time.Second, 83},
		{"unthrottled action", 1, "DescribeImageCaches", 100000, 0, 0},
		{"scale zero disables", 0, "CreateContainerGroup", 100000, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := newThrottler(tc.scale)
			now := t0
			n := 0
			for n < 100000 && th.allow(tc.action, now) {
				n++
			}
			if n != tc.burst {
				t.Fatalf("burst %d, want %d", n, tc.burst)
			}
			if tc.refill == 0 {
				return
			}
			now = now.Add(tc.refill)
			n = 0
			for n < 100000 && th.allow(tc.action, now) {
				n++
			}
			if n != tc.refills {
				t.Fatalf("after %v: %d calls, want %d", tc.refill, n, tc.refills)
			}
		})
	}
}

// TestThrottlerUsesPublishedQuotas checks that the simulator throttles
// with the published quotas: every operation of eci.PublishedQuotas allows
// exactly its published burst at once, at scale 1 and scaled.
func TestThrottlerUsesPublishedQuotas(t *testing.T) {
	for _, scale := range []float64{1, 0.05} {
		th := newThrottler(scale)
		for action, q := range eci.ScaledLimits(scale) {
			n := 0
			for n <= q.Burst && th.allow(action, t0) {
				n++
			}
			if n != q.Burst {
				t.Errorf("scale %v: %s allowed %d calls at once, want the published burst %d", scale, action, n, q.Burst)
			}
		}
	}
}
