package eci_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
)

// startFakeClockSim serves a simulator on a fake clock (groups start
// instantly, time moves only when the test says so).
func startFakeClockSim(t *testing.T) (*simulator.FakeClock, *eci.Client) {
	t.Helper()
	clock := simulator.NewFakeClock(time.Now())
	cfg := simulator.DefaultConfig()
	cfg.Clock = clock
	cfg.StartDelay = 0
	cfg.RestartBackoff = time.Second
	_, url := simtest.Start(t, cfg)
	return clock, newClient(t, url, simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
}

func group(t *testing.T, c *eci.Client, name, script string) string {
	t.Helper()
	req := createReq("")
	req.ContainerGroupName, req.RestartPolicy = name, "Always"
	req.Containers[0].Commands = []string{"sh", "-c", script}
	out, err := c.CreateContainerGroup(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return out.ContainerGroupId
}

func TestCheckExecCommand(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		ok   bool
	}{
		{"simple", []string{"echo", "hi"}, true},
		{"twenty items", strings.Fields(strings.Repeat("x ", 20)), true},
		{"256 bytes", []string{strings.Repeat("a", 256)}, true},
		{"empty", nil, false},
		{"twenty-one items", strings.Fields(strings.Repeat("x ", 21)), false},
		{"257 bytes", []string{"sh", "-c", strings.Repeat("a", 257)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := eci.CheckExecCommand(tc.argv)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && eci.ClassOf(err) != eci.ClassInvalid {
				t.Fatalf("class %v, want invalid", eci.ClassOf(err))
			}
		})
	}
}

func TestExecContainerCommand(t *testing.T) {
	_, c := startFakeClockSim(t)
	ctx := context.Background()
	id := group(t, c, "exec", "sleep infinity")
	sync, err := c.ExecContainerCommand(ctx, &eci.ExecContainerCommandRequest{ContainerGroupId: id, ContainerName: "c",
		Command: []string{"sh", "-c", "echo $HOSTNAME"}, Sync: true})
	if err != nil || sync.SyncResponse != "exec\n" {
		t.Fatalf("sync exec = %+v, %v", sync, err)
	}
	stream, err := c.ExecContainerCommand(ctx, &eci.ExecContainerCommandRequest{ContainerGroupId: id, ContainerName: "c",
		Command: []string{"/bin/sh"}, TTY: true, Stdin: true})
	if err != nil || !strings.HasPrefix(stream.WebSocketUri, "ws://") || stream.SyncResponse != "" {
		t.Fatalf("stream exec = %+v, %v", stream, err)
	}
	_, err = c.ExecContainerCommand(ctx, &eci.ExecContainerCommandRequest{ContainerGroupId: id, ContainerName: "nope", Command: []string{"true"}})
	if eci.ClassOf(err) != eci.ClassInvalid {
		t.Fatalf("unknown container: %v (class %v)", err, eci.ClassOf(err))
	}
	_, err = c.ExecContainerCommand(ctx, &eci.ExecContainerCommandRequest{ContainerGroupId: "eci-nope", ContainerName: "c", Command: []string{"true"}})
	if !eci.IsNotFound(err) {
		t.Fatalf("unknown group: %v", err)
	}
}

func TestDescribeContainerLogPrevious(t *testing.T) {
	clock, c := startFakeClockSim(t)
	ctx := context.Background()
	id := group(t, c, "crashy", "echo run; date +%s; sleep 5; exit 1")
	req := &eci.DescribeContainerLogRequest{ContainerGroupId: id, ContainerName: "c"}
	prevReq := *req
	prevReq.LastTime = true
	clock.Advance(time.Second)
	prev, err := c.DescribeContainerLog(ctx, &prevReq)
	if err != nil || prev.Content != "" {
		t.Fatalf("before a restart: %+v, %v", prev, err)
	}
	first, err := c.DescribeContainerLog(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Second) // exits at 5 s, restarts 1 s later
	prev, err = c.DescribeContainerLog(ctx, &prevReq)
	if err != nil || prev.Content != first.Content {
		t.Fatalf("previous = %+v, %v; want %q", prev, err, first.Content)
	}
}

func TestDescribeMultiContainerGroupMetric(t *testing.T) {
	clock, c := startFakeClockSim(t)
	ctx := context.Background()
	id := group(t, c, "busy", "sleep infinity")
	clock.Advance(time.Minute)
	out, err := c.DescribeMultiContainerGroupMetric(ctx, &eci.DescribeMultiContainerGroupMetricRequest{ContainerGroupIds: []string{id, "eci-unknown"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MonitorDatas) != 1 || len(out.MonitorDatas[0].Records) != 1 {
		t.Fatalf("monitor data = %+v", out.MonitorDatas)
	}
	r := out.MonitorDatas[0].Records[0]
	if r.CPU.UsageNanoCores <= 0 || r.CPU.UsageCoreNanoSeconds <= 0 || r.Memory.WorkingSet <= 0 ||
		len(r.Containers) != 1 || r.Containers[0].Name != "c" || len(r.Network.Interfaces) == 0 {
		t.Fatalf("record = %+v", r)
	}
	if _, err := time.Parse(time.RFC3339, r.Timestamp); err != nil {
		t.Fatalf("timestamp %q: %v", r.Timestamp, err)
	}

	var many []string
	for i := 0; i < eci.MaxIDsPerCall+1; i++ {
		many = append(many, fmt.Sprintf("eci-%d", i))
	}
	for _, ids := range [][]string{nil, many} {
		if _, err := c.DescribeMultiContainerGroupMetric(ctx, &eci.DescribeMultiContainerGroupMetricRequest{ContainerGroupIds: ids}); eci.ClassOf(err) != eci.ClassInvalid {
			t.Errorf("%d ids: %v, want a ClassInvalid error", len(ids), err)
		}
	}
}
