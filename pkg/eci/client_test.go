package eci_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
)

// startSim serves the simulator on loopback and returns a client for it.
// The simulator is the project's cloud, not a fake of it: these tests drive
// the real SDK signing and transport path.
func startSim(t *testing.T) (*simulator.Simulator, string) {
	t.Helper()
	return simtest.Start(t, simulator.DefaultConfig())
}

func newClient(t *testing.T, url, id, secret string) *eci.Client {
	t.Helper()
	cred, err := eci.StaticCredential(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := eci.NewClient(eci.Config{RegionId: simulator.DefaultRegionID, Endpoint: url, Credential: cred,
		Backoff: 10 * time.Millisecond, ThrottleBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func createReq(token string) *eci.CreateContainerGroupRequest {
	return &eci.CreateContainerGroupRequest{
		SecurityGroupId: simulator.DefaultSecurityGroupID, VSwitchId: "vsw-sim-h,vsw-sim-i",
		ScheduleStrategy: "VSwitchOrdered", ContainerGroupName: "demo", RestartPolicy: "Never",
		ClientToken: token, Tags: []eci.Tag{{Key: "owner", Value: "client-test"}},
		Containers: []eci.Container{{Name: "c", Image: "busybox", Cpu: 1, Memory: 2,
			Commands: []string{"sh", "-c", "echo hello; echo world"}}},
	}
}

func TestClientRoundTrip(t *testing.T) {
	_, url := startSim(t)
	c := newClient(t, url, simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
	ctx := context.Background()

	created, err := c.CreateContainerGroup(ctx, createReq("tok-1"))
	if err != nil {
		t.Fatal(err)
	}
	if created.ContainerGroupId == "" || created.RequestId == "" {
		t.Fatalf("create = %+v", created)
	}
	again, err := c.CreateContainerGroup(ctx, createReq("tok-1"))
	if err != nil || again.ContainerGroupId != created.ContainerGroupId {
		t.Fatalf("same ClientToken made %v (%v), want %s", again, err, created.ContainerGroupId)
	}

	desc, err := c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{Tags: []eci.Tag{{Key: "owner", Value: "client-test"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.ContainerGroups) != 1 || desc.ContainerGroups[0].ZoneId != "cn-hangzhou-h" || desc.ContainerGroups[0].IntranetIp == "" {
		t.Fatalf("describe = %+v", desc.ContainerGroups)
	}

	var st *eci.DescribeContainerGroupStatusResponse
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err = c.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{ContainerGroupIds: []string{created.ContainerGroupId}})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Data) == 1 && st.Data[0].Status == eci.StatusSucceeded || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(st.Data) != 1 || st.Data[0].Status != eci.StatusSucceeded {
		t.Fatalf("status = %+v, want Succeeded", st.Data)
	}
	cs := st.Data[0].PodStatus.ContainerStatuses
	if len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 0 {
		t.Fatalf("container statuses = %+v", cs)
	}

	logs, err := c.DescribeContainerLog(ctx, &eci.DescribeContainerLogRequest{ContainerGroupId: created.ContainerGroupId, ContainerName: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if logs.Content != "hello\nworld\n" {
		t.Errorf("log = %q", logs.Content)
	}

	if err := c.DeleteContainerGroup(ctx, created.ContainerGroupId); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteContainerGroup(ctx, created.ContainerGroupId); !eci.IsNotFound(err) {
		t.Fatalf("second delete = %v, want not found", err)
	}
}

func TestClientErrorClasses(t *testing.T) {
	sim, url := startSim(t)
	good := newClient(t, url, simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
	ctx := context.Background()
	tests := []struct {
		name      string
		setup     func(t *testing.T)
		client    *eci.Client
		call      func(c *eci.Client) error
		wantClass eci.Class
		wantCode  string
	}{
		{
			name:      "tampered signature is rejected",
			client:    newClient(t, url, simulator.DefaultAccessKeyID, "not-the-secret"),
			call:      func(c *eci.Client) error { _, err := c.CreateContainerGroup(ctx, createReq("")); return err },
			wantClass: eci.ClassAuth, wantCode: "SignatureDoesNotMatch",
		},
		{
			name:      "unknown AccessKey",
			client:    newClient(t, url, "nobody", "x"),
			call:      func(c *eci.Client) error { return c.DeleteContainerGroup(ctx, "eci-x") },
			wantClass: eci.ClassAuth, wantCode: "InvalidAccessKeyId.NotFound",
		},
		{
			name:      "unknown group",
			call:      func(c *eci.Client) error { return c.DeleteContainerGroup(ctx, "eci-missing") },
			wantClass: eci.ClassNotFound, wantCode: simulator.CodeContainerGroupNotFound,
		},
		{
			name: "unknown vSwitch is invalid input",
			call: func(c *eci.Client) error {
				r := createReq("")
				r.VSwitchId = "vsw-nowhere"
				_, err := c.CreateContainerGroup(ctx, r)
				return err
			},
			wantClass: eci.ClassInvalid, wantCode: "InvalidVSwitchId.NotFound",
		},
		{
			name: "no stock in any zone",
			setup: func(t *testing.T) {
				for _, z := range []string{"cn-hangzhou-h", "cn-hangzhou-i"} {
					if err := sim.SetStock(z, 0, 0); err != nil {
						t.Fatal(err)
					}
				}
			},
			call:      func(c *eci.Client) error { _, err := c.CreateContainerGroup(ctx, createReq("")); return err },
			wantClass: eci.ClassStockOut, wantCode: "OperationDenied.NoStock",
		},
		{
			name: "throttling persists past the retries",
			setup: func(t *testing.T) {
				if err := sim.InjectFault(simulator.Fault{Action: "DescribeContainerGroups", Times: 10, Code: "Throttling.User"}); err != nil {
					t.Fatal(err)
				}
			},
			call: func(c *eci.Client) error {
				_, err := c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{})
				return err
			},
			wantClass: eci.ClassThrottled, wantCode: "Throttling.User",
		},
		{
			name: "too many ids refused before sending",
			call: func(c *eci.Client) error {
				_, err := c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{ContainerGroupIds: make([]string, 21)})
				return err
			},
			wantClass: eci.ClassInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim.ClearFaults()
			if tt.setup != nil {
				tt.setup(t)
			}
			c := tt.client
			if c == nil {
				c = good
			}
			err := tt.call(c)
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			var e *eci.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *eci.Error", err, err)
			}
			if e.Class != tt.wantClass || (tt.wantCode != "" && e.Code != tt.wantCode) {
				t.Errorf("class %s code %q, want %s %q (%v)", e.Class, e.Code, tt.wantClass, tt.wantCode, err)
			}
			if !strings.Contains(err.Error(), e.Action) {
				t.Errorf("message %q does not name the action", err)
			}
		})
	}
}

func TestClientRetriesTransientErrors(t *testing.T) {
	sim, url := startSim(t)
	c := newClient(t, url, simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
	if err := sim.InjectFault(simulator.Fault{Action: "CreateContainerGroup", Times: 2, Code: "InternalError", AfterSuccess: true}); err != nil {
		t.Fatal(err)
	}
	// The first two attempts create the group but lose the answer; the
	// ClientToken makes the retries return that same group.
	resp, err := c.CreateContainerGroup(context.Background(), createReq("tok-retry"))
	if err != nil {
		t.Fatalf("create after two lost responses: %v", err)
	}
	groups := 0
	for _, g := range sim.Groups() {
		if g.ContainerGroupId == resp.ContainerGroupId {
			groups++
		} else {
			t.Errorf("retry made a second group %s", g.ContainerGroupId)
		}
	}
	if groups != 1 {
		t.Errorf("group %s not found once in the simulator", resp.ContainerGroupId)
	}
	if got := sim.Calls()["CreateContainerGroup"]["InternalError"]; got != 2 {
		t.Errorf("simulator saw %d failed creates, want 2", got)
	}
}

// TestClientConcurrentCalls runs calls from many goroutines at once; under
// `go test -race` (part of make test) it guards the SDK client pool.
func TestClientConcurrentCalls(t *testing.T) {
	_, url := startSim(t)
	c := newClient(t, url, simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
	ctx := context.Background()
	errs := make(chan error, 32)
	for i := 0; i < cap(errs); i++ {
		go func() {
			_, err := c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{})
			errs <- err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent call %d: %v", i, err)
		}
	}
}
