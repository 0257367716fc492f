package fake_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/fake"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
)

// simClient is a real eci.Client of an in-process simulator that sends
// every call once, so its errors are the simulator's answers as the
// provider receives them.
func simClient(t *testing.T) (*simulator.Simulator, *eci.Client) {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.QuotaScale = 0
	cfg.Logger = slog.New(slog.DiscardHandler)
	sim, url := simtest.Start(t, cfg)
	return sim, simtest.Client(t, url, eci.Config{RegionId: cfg.RegionId,
		MaxAttempts: 1, Limits: eci.ClientLimits(0), ThrottleBackoff: time.Millisecond, MaxThrottleBackoff: time.Millisecond})
}

// newFake is a fake with the simulator's default vSwitches and zones.
func newFake() *fake.Cloud {
	c := fake.New()
	for _, z := range []string{"h", "i", "j"} {
		c.AddVSwitch("vsw-sim-"+z, "cn-hangzhou-"+z)
	}
	return c
}

func createReq(name, token string) *eci.CreateContainerGroupRequest {
	return &eci.CreateContainerGroupRequest{
		SecurityGroupId: simulator.DefaultSecurityGroupID, VSwitchId: "vsw-sim-h,vsw-sim-i", ScheduleStrategy: "VSwitchOrdered",
		ContainerGroupName: name, ClientToken: token, Cpu: 1, Memory: 2,
		Tags:       []eci.Tag{{Key: "PodNamespace", Value: "default"}, {Key: "PodName", Value: name}, {Key: "PodUID", Value: name + "-uid"}},
		Containers: []eci.Container{{Name: "app", Image: "busybox", Cpu: 1, Memory: 2}},
	}
}

// TestErrorsMatchTheSimulator: for every failure the fake produces, by its
// constructors or by its default behaviour, the real eci.Client facing the
// simulator in the same situation returns an error of the same class, code
// and HTTP status; the provider therefore cannot tell them apart.
func TestErrorsMatchTheSimulator(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// sim brings the simulator into the situation and makes the call.
		sim func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error
		// ctor is the fake's constructor for that answer.
		ctor error
		// fake makes the same call on the fake in the same situation
		// (nil: the fake only offers the constructor).
		fake func(c *fake.Cloud) error
	}{
		{
			name: "no stock",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				for _, z := range []string{"h", "i", "j"} {
					if err := sim.SetStock("cn-hangzhou-"+z, 0, 0); err != nil {
						t.Fatal(err)
					}
				}
				_, err := c.CreateContainerGroup(ctx, createReq("web", ""))
				return err
			},
			ctor: fake.NoStock(fake.OpCreate, "cn-hangzhou-h", "cn-hangzhou-i"),
			fake: func(c *fake.Cloud) error {
				c.SetStock("cn-hangzhou-h", false)
				c.SetStock("cn-hangzhou-i", false)
				_, err := c.CreateContainerGroup(ctx, createReq("web", ""))
				return err
			},
		},
		{
			name: "throttled",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				if err := sim.InjectFault(simulator.Fault{Action: fake.OpCreate, ThrottleRate: 1}); err != nil {
					t.Fatal(err)
				}
				_, err := c.CreateContainerGroup(ctx, createReq("web", ""))
				return err
			},
			ctor: fake.Throttled(fake.OpCreate),
		},
		{
			name: "internal error",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				if err := sim.InjectFault(simulator.Fault{Action: fake.OpCreate, Times: 1, Code: simulator.CodeInternalError}); err != nil {
					t.Fatal(err)
				}
				_, err := c.CreateContainerGroup(ctx, createReq("web", ""))
				return err
			},
			ctor: fake.InternalError(fake.OpCreate),
		},
		{
			name: "service unavailable",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				if err := sim.InjectFault(simulator.Fault{Action: fake.OpCreate, Times: 1, Code: simulator.CodeServiceUnavailable}); err != nil {
					t.Fatal(err)
				}
				_, err := c.CreateContainerGroup(ctx, createReq("web", ""))
				return err
			},
			ctor: fake.ServiceUnavailable(fake.OpCreate),
		},
		{
			name: "client token reused with other parameters",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				if _, err := c.CreateContainerGroup(ctx, createReq("web", "tok-1")); err != nil {
					t.Fatal(err)
				}
				_, err := c.CreateContainerGroup(ctx, createReq("web-2", "tok-1"))
				return err
			},
			ctor: fake.IdempotentParameterMismatch(),
			fake: func(c *fake.Cloud) error {
				if _, err := c.CreateContainerGroup(ctx, createReq("web", "tok-1")); err != nil {
					return fmt.Errorf("first create: %w", err)
				}
				_, err := c.CreateContainerGroup(ctx, createReq("web-2", "tok-1"))
				return err
			},
		},
		{
			name: "invalid parameter",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				req := createReq("web", "")
				req.ScheduleStrategy = "Nearest"
				_, err := c.CreateContainerGroup(ctx, req)
				return err
			},
			ctor: fake.InvalidParameter(fake.OpCreate, "ScheduleStrategy", "not a strategy"),
			fake: func(c *fake.Cloud) error {
				req := createReq("web", "")
				req.ScheduleStrategy = "Nearest"
				_, err := c.CreateContainerGroup(ctx, req)
				return err
			},
		},
		{
			name: "missing parameter",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				req := createReq("web", "")
				req.SecurityGroupId = ""
				_, err := c.CreateContainerGroup(ctx, req)
				return err
			},
			ctor: fake.MissingParameter(fake.OpCreate, "SecurityGroupId"),
			fake: func(c *fake.Cloud) error {
				req := createReq("web", "")
				req.SecurityGroupId = ""
				_, err := c.CreateContainerGroup(ctx, req)
				return err
			},
		},
		{
			name: "unknown vSwitch",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				req := createReq("web", "")
				req.VSwitchId = "vsw-nope"
				_, err := c.CreateContainerGroup(ctx, req)
				return err
			},
			fake: func(c *fake.Cloud) error {
				req := createReq("web", "")
				req.VSwitchId = "vsw-nope"
				_, err := c.CreateContainerGroup(ctx, req)
				return err
			},
		},
		{
			name: "group not found",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				return c.DeleteContainerGroup(ctx, "eci-nope")
			},
			ctor: fake.GroupNotFound(fake.OpDelete, "eci-nope"),
			fake: func(c *fake.Cloud) error { return c.DeleteContainerGroup(ctx, "eci-nope") },
		},
		{
			name: "update of a failed group",
			sim: func(t *testing.T, sim *simulator.Simulator, c *eci.Client) error {
				resp, err := c.CreateContainerGroup(ctx, createReq("web", ""))
				if err != nil {
					t.Fatal(err)
				}
				if err := sim.FailGroup(resp.ContainerGroupId, simulator.StatusFailed); err != nil {
					t.Fatal(err)
				}
				return c.UpdateContainerGroup(ctx, &eci.UpdateContainerGroupRequest{ContainerGroupId: resp.ContainerGroupId, UpdateType: eci.UpdateIncremental,
					Volumes: []eci.UpdateVolume{{Name: "cfg", Type: eci.VolumeConfigFile,
						ConfigFileToPaths: []eci.UpdateConfigFileToPath{{Path: "a", Content: "Yg=="}}}}})
			},
			ctor: fake.IncorrectStatus(fake.OpUpdate, "failed"),
			fake: func(c *fake.Cloud) error {
				resp, err := c.CreateContainerGroup(ctx, createReq("web", ""))
				if err != nil {
					return err
				}
				if err := c.SetStatus(resp.ContainerGroupId, eci.StatusFailed); err != nil {
					return err
				}
				return c.UpdateContainerGroup(ctx, &eci.UpdateContainerGroupRequest{ContainerGroupId: resp.ContainerGroupId, UpdateType: eci.UpdateIncremental,
					Volumes: []eci.UpdateVolume{{Name: "cfg", Type: eci.VolumeConfigFile,
						ConfigFileToPaths: []eci.UpdateConfigFileToPath{{Path: "a", Content: "Yg=="}}}}})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, client := simClient(t)
			want := asECI(t, "simulator", tt.sim(t, sim, client))
			check := func(what string, err error) {
				t.Helper()
				got := asECI(t, what, err)
				if got.Class != want.Class || got.Code != want.Code || got.HTTPStatus != want.HTTPStatus || got.Action != want.Action {
					t.Errorf("%s: %s %s %s %d, the simulator's answer: %s %s %s %d", what,
						got.Action, got.Class, got.Code, got.HTTPStatus, want.Action, want.Class, want.Code, want.HTTPStatus)
				}
			}
			if tt.ctor != nil {
				check("constructor", tt.ctor)
			}
			if tt.fake != nil {
				check("default behaviour", tt.fake(newFake()))
			}
		})
	}

	t.Run("no response", func(t *testing.T) {
		// A port nothing listens on: the call gets no answer at all.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		cred, _ := eci.StaticCredential("id", "secret")
		client, err := eci.NewClient(eci.Config{RegionId: "cn-hangzhou", Endpoint: "http://" + addr, Credential: cred, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		want := asECI(t, "refused connection", client.DeleteContainerGroup(ctx, "eci-x"))
		got := asECI(t, "NoResponse", fake.NoResponse(fake.OpDelete))
		if got.Class != want.Class || got.Code != want.Code || got.HTTPStatus != want.HTTPStatus || got.Action != want.Action {
			t.Errorf("NoResponse: %+v, a real lost call: %+v", got, want)
		}
	})
}

func asECI(t *testing.T, what string, err error) *eci.Error {
	t.Helper()
	var e *eci.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: got %v (%T), want an *eci.Error", what, err, err)
	}
	return e
}

// TestCreate: placement follows the vSwitch order and the zones' stock,
// and the ClientToken makes a repeated create return the same group.
func TestCreate(t *testing.T) {
	ctx := context.Background()
	c := newFake()
	c.SetStock("cn-hangzhou-h", false)
	resp, err := c.CreateContainerGroup(ctx, createReq("web", "tok-1"))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := c.Group(resp.ContainerGroupId)
	if !ok || g.VSwitchId != "vsw-sim-i" || g.ZoneId != "cn-hangzhou-i" || g.Status != eci.StatusPending {
		t.Fatalf("group %+v (found %v), want Pending in vsw-sim-i, the first vSwitch in stock", g, ok)
	}
	again, err := c.CreateContainerGroup(ctx, createReq("web", "tok-1"))
	if err != nil || again.ContainerGroupId != resp.ContainerGroupId {
		t.Fatalf("repeated create: %v, %v; want group %s again", again, err, resp.ContainerGroupId)
	}
	if n := len(c.Groups()); n != 1 {
		t.Errorf("%d groups after a repeated create, want 1", n)
	}
	c.SetStock("cn-hangzhou-i", false)
	if _, err := c.CreateContainerGroup(ctx, createReq("db", "tok-2")); eci.ClassOf(err) != eci.ClassStockOut {
		t.Errorf("create with no zone in stock: %v, want a stock-out", err)
	}
	// A refused create does not take its token: it succeeds once stock is back.
	c.SetStock("cn-hangzhou-h", true)
	if _, err := c.CreateContainerGroup(ctx, createReq("db", "tok-2")); err != nil {
		t.Errorf("create after stock returned: %v", err)
	}
	if got := c.CallCount(fake.OpCreate); got != 4 {
		t.Errorf("CallCount(create) = %d, want 4", got)
	}
}

// TestDescribe: both listings filter by tag (key alone, or key and value),
// ids and SinceSecond, newest first, and page with NextToken.
func TestDescribe(t *testing.T) {
	ctx := context.Background()
	c := newFake()
	var ids []string
	for i := 0; i < 25; i++ {
		req := createReq(fmt.Sprintf("pod-%02d", i), "")
		if i%5 == 0 {
			req.Tags = append(req.Tags, eci.Tag{Key: "Team", Value: "blue"})
		} else if i%5 == 1 {
			req.Tags = append(req.Tags, eci.Tag{Key: "Team", Value: "red"})
		}
		id, err := c.AddGroup(req)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	list := func(req eci.DescribeContainerGroupsRequest) []string {
		t.Helper()
		var out []string
		for {
			resp, err := c.DescribeContainerGroups(ctx, &req)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range resp.ContainerGroups {
				out = append(out, g.ContainerGroupName)
			}
			if resp.NextToken == "" {
				return out
			}
			req.NextToken = resp.NextToken
		}
	}
	if got := list(eci.DescribeContainerGroupsRequest{}); len(got) != 25 || got[0] != "pod-24" || got[24] != "pod-00" {
		t.Errorf("all groups over two pages: %v, want 25 newest first", got)
	}
	if got := list(eci.DescribeContainerGroupsRequest{Tags: []eci.Tag{{Key: "Team"}}}); len(got) != 10 {
		t.Errorf("tag key Team: %d groups, want 10", len(got))
	}
	if got := list(eci.DescribeContainerGroupsRequest{Tags: []eci.Tag{{Key: "Team", Value: "blue"}, {Key: "PodName", Value: "pod-05"}}}); len(got) != 1 || got[0] != "pod-05" {
		t.Errorf("Team=blue and PodName=pod-05: %v", got)
	}
	if got := list(eci.DescribeContainerGroupsRequest{ContainerGroupIds: ids[:2]}); len(got) != 2 {
		t.Errorf("two ids: %v", got)
	}
	if _, err := c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{ContainerGroupIds: ids[:21]}); eci.ClassOf(err) != eci.ClassInvalid {
		t.Errorf("21 ids: %v, want an invalid-parameter error", err)
	}

	if err := c.SetStatus(ids[3], eci.StatusRunning); err != nil {
		t.Fatal(err)
	}
	st, err := c.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{Tags: []eci.Tag{{Key: "PodName", Value: "pod-03"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Data) != 1 || st.Data[0].Status != eci.StatusRunning || st.Data[0].Name != "pod-03" || st.Data[0].Namespace != "default" ||
		st.Data[0].UID != "pod-03-uid" || len(st.Data[0].PodStatus.ContainerStatuses) != 1 || !st.Data[0].PodStatus.ContainerStatuses[0].Ready {
		t.Errorf("status of pod-03: %+v", st.Data)
	}
	g, _ := c.Group(ids[3])
	if g.Containers[0].CurrentState.State != "Running" || !g.Containers[0].Ready {
		t.Errorf("containers of a Running group: %+v", g.Containers)
	}
	if err := c.SetStatus(ids[3], eci.StatusSucceeded); err != nil {
		t.Fatal(err)
	}
	if g, _ := c.Group(ids[3]); g.Containers[0].CurrentState.State != "Terminated" || g.Containers[0].CurrentState.ExitCode != 0 {
		t.Errorf("containers of a Succeeded group: %+v", g.Containers)
	}
	if err := c.SetStatus(ids[3], "Done"); err == nil {
		t.Error("SetStatus accepted a status the cloud does not have")
	}
}

// TestSinceSecond: the changed-status poll sees only groups whose status
// changed within SinceSecond.
func TestSinceSecond(t *testing.T) {
	ctx := context.Background()
	c := newFake()
	var mu sync.Mutex
	now := time.Now()
	c.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	old, err := c.AddGroup(createReq("old", ""))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := c.AddGroup(createReq("fresh", ""))
	if err != nil {
		t.Fatal(err)
	}
	// Both groups' last change becomes two seconds old, then one changes.
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if err := c.SetStatus(fresh, eci.StatusRunning); err != nil {
		t.Fatal(err)
	}
	resp, err := c.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{SinceSecond: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 1 || resp.Data[0].ContainerGroupId != fresh {
		t.Errorf("SinceSecond 1: %+v, want only %s (not %s)", resp.Data, fresh, old)
	}
	all, err := c.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{})
	if err != nil || len(all.Data) != 2 {
		t.Errorf("full listing: %v, %v; want both groups", all, err)
	}
}

// TestScripts: queued handlers answer calls in order, may wrap the default
// behaviour, and every call is recorded with a copy of its request.
func TestScripts(t *testing.T) {
	ctx := context.Background()
	c := newFake()
	c.NextError(fake.OpCreate, fake.Throttled(fake.OpCreate))
	c.LoseAnswer(fake.OpCreate, fake.NoResponse(fake.OpCreate))
	if c.Pending(fake.OpCreate) != 2 {
		t.Fatalf("Pending = %d, want 2", c.Pending(fake.OpCreate))
	}
	req := createReq("web", "tok")
	if _, err := c.CreateContainerGroup(ctx, req); eci.ClassOf(err) != eci.ClassThrottled {
		t.Fatalf("first create: %v, want throttled", err)
	}
	if len(c.Groups()) != 0 {
		t.Fatal("a create failed by NextError took effect")
	}
	if _, err := c.CreateContainerGroup(ctx, req); eci.ClassOf(err) != eci.ClassTransient {
		t.Fatalf("second create: %v, want the transient no-response error", err)
	}
	if len(c.Groups()) != 1 {
		t.Fatal("a create whose answer was lost did not take effect")
	}
	resp, err := c.CreateContainerGroup(ctx, req)
	if err != nil || resp.ContainerGroupId != c.Groups()[0].ContainerGroupId {
		t.Fatalf("third create: %v, %v; want the group the lost create made", resp, err)
	}
	req.ContainerGroupName = "changed after the call"
	calls := c.Calls(fake.OpCreate)
	if len(calls) != 3 || !calls[2].Done || calls[2].Err != nil || calls[0].Err == nil {
		t.Fatalf("recorded calls: %+v", calls)
	}
	if got := calls[0].Req.(*eci.CreateContainerGroupRequest).ContainerGroupName; got != "web" {
		t.Errorf("recorded request changed with the caller's: %q", got)
	}
	if lost := fake.NoResponse(fake.OpCreate); calls[1].Err.Error() != lost.Error() || eci.ClassOf(calls[1].Err) != eci.ClassTransient {
		t.Errorf("recorded error %v, want the error the call returned", calls[1].Err)
	}
	if got := calls[2].Resp.(*eci.CreateContainerGroupResponse).ContainerGroupId; got != resp.ContainerGroupId {
		t.Errorf("recorded response %q, want %q", got, resp.ContainerGroupId)
	}

	// A slow call is recorded while it runs.
	release := make(chan struct{})
	c.Script(fake.OpDelete, func(_ context.Context, _ any, base func() (any, error)) (any, error) {
		<-release
		return base()
	})
	done := make(chan error)
	go func() { done <- c.DeleteContainerGroup(ctx, resp.ContainerGroupId) }()
	for c.CallCount(fake.OpDelete) == 0 {
		time.Sleep(time.Millisecond)
	}
	if calls := c.Calls(fake.OpDelete); calls[0].Done {
		t.Error("a call still running is recorded as done")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ids := c.DeletedIDs(); len(ids) != 1 || ids[0] != resp.ContainerGroupId || len(c.Groups()) != 0 {
		t.Errorf("deleted %v, groups left %v", ids, c.Groups())
	}

	c.Reset()
	if len(c.Calls("")) != 0 || len(c.Groups()) != 0 || c.Pending(fake.OpCreate) != 0 {
		t.Error("Reset left calls, groups or scripts")
	}
	if _, err := c.CreateContainerGroup(ctx, createReq("web", "tok")); eci.ClassOf(err) != eci.ClassInvalid {
		t.Errorf("create after Reset: %v, want the vSwitch unknown again", err)
	}
}

// TestConcurrentUse: calls, scripts and state changes from many goroutines
// (run with -race).
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	c := newFake()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				c.NextError(fake.OpDescribe, fake.InternalError(fake.OpDescribe))
				resp, err := c.CreateContainerGroup(ctx, createReq(fmt.Sprintf("p-%d-%d", i, j), fmt.Sprintf("t-%d-%d", i, j)))
				if err != nil {
					t.Error(err)
					return
				}
				_ = c.SetStatus(resp.ContainerGroupId, eci.StatusRunning)
				_, _ = c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{})
				_, _ = c.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{})
				_ = c.CallCount(fake.OpCreate)
			}
		}()
	}
	wg.Wait()
	if n := len(c.Groups()); n != 160 {
		t.Errorf("%d groups, want 160", n)
	}
	if n := c.CallCount(fake.OpDescribe); n != 160 || c.Pending(fake.OpDescribe) != 0 {
		t.Errorf("%d describes with %d scripts left, want 160 and 0", n, c.Pending(fake.OpDescribe))
	}
}
