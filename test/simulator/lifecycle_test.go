package simulator

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPendingToRunningWithStartDelay(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StartDelay = 10 * time.Second })
	id := e.create("delayed", nil)
	steps := []struct {
		advance time.Duration
		status  string
		state   string
		reason  string
	}{
		{0, StatusPending, StateWaiting, "ContainerCreating"},
		{9 * time.Second, StatusPending, StateWaiting, "ContainerCreating"},
		{time.Second, StatusRunning, StateRunning, ""},
		{time.Hour, StatusRunning, StateRunning, ""},
	}
	for i, st := range steps {
		e.clock.Advance(st.advance)
		g := e.describe(id)
		c := g.Containers[0]
		if g.Status != st.status || c.CurrentState.State != st.state || c.CurrentState.Reason != st.reason {
			t.Fatalf("step %d: status %s state %s/%s, want %s %s/%s", i, g.Status, c.CurrentState.State,
				c.CurrentState.Reason, st.status, st.state, st.reason)
		}
	}
	c := e.describe(id).Containers[0]
	if c.CurrentState.StartTime != "2024-05-06T07:08:19Z" || !c.Ready {
		t.Errorf("StartTime = %s ready=%v, want the moment StartDelay elapsed", c.CurrentState.StartTime, c.Ready)
	}
}

func TestExitCodesAndRestartPolicies(t *testing.T) {
	tests := []struct {
		name     string
		policy   string
		params   map[string]string
		after    time.Duration
		status   string
		exitCode int
		reason   string
		finish   string
	}{
		{"never exit 3 fails", "Never", script("Container.1", "echo hi; exit 3"), 0, StatusFailed, 3, "Error", "2024-05-06T07:08:09Z"},
		{"never exit 0 succeeds", "Never", script("Container.1", "echo ok"), 0, StatusSucceeded, 0, "Completed", "2024-05-06T07:08:09Z"},
		{"false fails with 1", "Never", script("Container.1", "false"), 0, StatusFailed, 1, "Error", ""},
		{"sleep then exit", "Never", script("Container.1", "sleep 5; exit 0"), 5 * time.Second, StatusSucceeded, 0, "Completed", "2024-05-06T07:08:14Z"},
		{"still running before exit", "Never", script("Container.1", "sleep 5; exit 0"), 4 * time.Second, StatusRunning, 0, "", ""},
		{"bare builtin sleep", "Never", map[string]string{"Container.1.Command.1": "sleep", "Container.1.Arg.1": "2"}, 2 * time.Second, StatusSucceeded, 0, "Completed", ""},
		{"server runs forever", "Never", map[string]string{"Container.1.Command.1": "nginx"}, 24 * time.Hour, StatusRunning, 0, "", ""},
		{"onfailure exit 0 succeeds", "OnFailure", script("Container.1", "exit 0"), 0, StatusSucceeded, 0, "Completed", ""},
		{"bash -c works", "Never", map[string]string{"Container.1.Command.1": "bash", "Container.1.Command.2": "-c", "Container.1.Command.3": "exit 7"}, 0, StatusFailed, 7, "Error", ""},
		{"one of two fails", "Never", merge(script("Container.1", "exit 0"), map[string]string{
			"Container.2.Name": "side", "Container.2.Image": "busybox", "Container.2.Command.1": "sh",
			"Container.2.Command.2": "-c", "Container.2.Command.3": "sleep 1; exit 4"}), time.Second, StatusFailed, 0, "Completed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			id := e.create("job", merge(tc.params, map[string]string{"RestartPolicy": tc.policy}))
			e.clock.Advance(tc.after)
			g := e.describe(id)
			if g.Status != tc.status {
				t.Fatalf("status %s, want %s", g.Status, tc.status)
			}
			cs := g.Containers[0].CurrentState
			if tc.reason != "" && (cs.State != StateTerminated || cs.ExitCode != tc.exitCode || cs.Reason != tc.reason) {
				t.Fatalf("CurrentState %+v, want Terminated exit %d %s", cs, tc.exitCode, tc.reason)
			}
			if tc.finish != "" && cs.FinishTime != tc.finish {
				t.Errorf("FinishTime %s, want %s", cs.FinishTime, tc.finish)
			}
			if tc.status == StatusFailed && g.FailedTime == "" || tc.status == StatusSucceeded && g.SucceededTime == "" {
				t.Errorf("terminal time not set: %+v", g)
			}
		})
	}
}

func TestCrashLoopRestartsWithBackoff(t *testing.T) {
	for _, policy := range []string{RestartAlways, RestartOnFailure} {
		t.Run(policy, func(t *testing.T) {
			e := newEnv(t, nil)
			id := e.create("crashy", merge(script("Container.1", "echo boom; exit 2"), map[string]string{"RestartPolicy": policy}))
			steps := []struct {
				advance  time.Duration
				state    string
				restarts int
			}{
				{0, StateWaiting, 0},                 // exited, back-off 10s
				{10 * time.Second, StateWaiting, 1},  // restarted, exited again, back-off 20s
				{19 * time.Second, StateWaiting, 1},  // still backing off
				{time.Second, StateWaiting, 2},       // restarted at +30s
				{40 * time.Second, StateWaiting, 3},  // back-off 40s
				{80 * time.Second, StateWaiting, 4},  // back-off 80s
				{160 * time.Second, StateWaiting, 5}, // back-off 160s
				{300 * time.Second, StateWaiting, 6}, // capped at 5m
			}
			for i, st := range steps {
				e.clock.Advance(st.advance)
				g := e.describe(id)
				c := g.Containers[0]
				if g.Status != StatusRunning || c.CurrentState.State != st.state || c.RestartCount != st.restarts {
					t.Fatalf("step %d: group %s state %s restarts %d, want Running %s %d", i, g.Status,
						c.CurrentState.State, c.RestartCount, st.state, st.restarts)
				}
				if c.CurrentState.Reason != "CrashLoopBackOff" || c.PreviousState.ExitCode != 2 || c.PreviousState.State != StateTerminated {
					t.Fatalf("step %d: current %+v previous %+v", i, c.CurrentState, c.PreviousState)
				}
			}
			var backoffs int
			for _, ev := range e.describe(id).Events {
				if ev.Reason == "BackOff" {
					backoffs = ev.Count
				}
			}
			if backoffs != 7 {
				t.Errorf("BackOff event count %d, want 7", backoffs)
			}
		})
	}
}

func TestAlwaysRestartsCleanExit(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("loop", script("Container.1", "sleep 30"))
	e.clock.Advance(31 * time.Second)
	c := e.describe(id).Containers[0]
	if c.CurrentState.Reason != "CrashLoopBackOff" || c.PreviousState.Reason != "Completed" {
		t.Fatalf("Always must restart a clean exit: %+v / %+v", c.CurrentState, c.PreviousState)
	}
	e.clock.Advance(10 * time.Second)
	if c := e.describe(id).Containers[0]; c.CurrentState.State != StateRunning || c.RestartCount != 1 {
		t.Fatalf("after back-off: %+v restarts %d", c.CurrentState, c.RestartCount)
	}
}

func TestInitContainers(t *testing.T) {
	init := map[string]string{
		"InitContainer.1.Name": "first", "InitContainer.1.Image": "busybox",
		"InitContainer.1.Command.1": "sh", "InitContainer.1.Command.2": "-c", "InitContainer.1.Command.3": "sleep 2; echo one",
		"InitContainer.2.Name": "second", "InitContainer.2.Image": "busybox",
		"InitContainer.2.Command.1": "sh", "InitContainer.2.Command.2": "-c", "InitContainer.2.Command.3": "sleep 3",
	}
	e := newEnv(t, nil)
	id := e.create("inits", init)
	g := e.describe(id)
	if g.Status != StatusPending || g.InitContainers[0].CurrentState.State != StateRunning ||
		g.InitContainers[1].CurrentState.State != StateWaiting || g.Containers[0].CurrentState.Reason != "PodInitializing" {
		t.Fatalf("at start: %s %+v %+v %+v", g.Status, g.InitContainers[0].CurrentState, g.InitContainers[1].CurrentState, g.Containers[0].CurrentState)
	}
	e.clock.Advance(2 * time.Second)
	g = e.describe(id)
	if g.InitContainers[0].CurrentState.State != StateTerminated || g.InitContainers[1].CurrentState.StartTime != "2024-05-06T07:08:11Z" {
		t.Fatalf("second init should start when the first ends: %+v", g.InitContainers)
	}
	e.clock.Advance(3 * time.Second)
	g = e.describe(id)
	if g.Status != StatusRunning || g.Containers[0].CurrentState.StartTime != "2024-05-06T07:08:14Z" {
		t.Fatalf("main should start after both inits: %s %+v", g.Status, g.Containers[0].CurrentState)
	}

	// A failing init container fails a Never group and is retried otherwise.
	failing := map[string]string{"InitContainer.1.Name": "bad", "InitContainer.1.Image": "busybox",
		"InitContainer.1.Command.1": "sh", "InitContainer.1.Command.2": "-c", "InitContainer.1.Command.3": "exit 5"}
	never := e.create("init-never", merge(failing, map[string]string{"RestartPolicy": "Never"}))
	if g := e.describe(never); g.Status != StatusFailed || g.InitContainers[0].CurrentState.ExitCode != 5 {
		t.Fatalf("Never + failing init: %s %+v", g.Status, g.InitContainers[0].CurrentState)
	}
	always := e.create("init-always", failing)
	e.clock.Advance(10 * time.Second)
	if g := e.describe(always); g.Status != StatusPending || g.InitContainers[0].RestartCount != 1 {
		t.Fatalf("Always + failing init: %s restarts %d", g.Status, g.InitContainers[0].RestartCount)
	}
}

func TestImagePullFailure(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("nopull", map[string]string{"Container.1.Image": "registry.example.com/pull-fail:1"})
	g := e.describe(id)
	if g.Status != StatusPending || g.Containers[0].CurrentState.Reason != "ErrImagePull" {
		t.Fatalf("status %s state %+v", g.Status, g.Containers[0].CurrentState)
	}
	e.clock.Advance(time.Minute)
	g = e.describe(id)
	if g.Status != StatusPending || g.Containers[0].CurrentState.Reason != "ImagePullBackOff" {
		t.Fatalf("status %s state %+v", g.Status, g.Containers[0].CurrentState)
	}
	warned := false
	for _, ev := range g.Events {
		warned = warned || (ev.Type == "Warning" && ev.Reason == "Failed" && strings.Contains(ev.Message, "pull-fail"))
	}
	if !warned {
		t.Errorf("no Warning Failed event: %+v", g.Events)
	}
}

func TestRestartContainerGroup(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StartDelay = 5 * time.Second })
	id := e.create("restartable", script("Container.1", "echo started; sleep infinity"))
	e.clock.Advance(5 * time.Second)
	e.mustCall("RestartContainerGroup", map[string]string{"ContainerGroupId": id}, nil)
	g := e.describe(id)
	if g.Status != StatusRestarting || g.Containers[0].CurrentState.State != StateWaiting {
		t.Fatalf("after restart: %s %+v", g.Status, g.Containers[0].CurrentState)
	}
	e.clock.Advance(5 * time.Second)
	g = e.describe(id)
	c := g.Containers[0]
	if g.Status != StatusRunning || c.RestartCount != 1 || c.PreviousState.State != StateTerminated {
		t.Fatalf("after restart delay: %s restarts %d prev %+v", g.Status, c.RestartCount, c.PreviousState)
	}

	done := e.create("done", merge(script("Container.1", "exit 0"), map[string]string{"RestartPolicy": "Never"}))
	e.clock.Advance(5 * time.Second)
	err := e.call("RestartContainerGroup", map[string]string{"ContainerGroupId": done}, nil)
	wantCode(t, err, CodeIncorrectStatus, http.StatusForbidden)
}

func TestUpdateContainerGroup(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("updatable", map[string]string{"Tag.1.Key": "a", "Tag.1.Value": "1"})

	// Tags only: applied in place, no restart.
	e.mustCall("UpdateContainerGroup", map[string]string{"ContainerGroupId": id, "UpdateType": "IncrementalUpdate",
		"Tag.1.Key": "b", "Tag.1.Value": "2"}, nil)
	g := e.describe(id)
	if len(g.Tags) != 2 || g.Status != StatusRunning || g.Containers[0].RestartCount != 0 {
		t.Fatalf("tag update: tags %+v status %s restarts %d", g.Tags, g.Status, g.Containers[0].RestartCount)
	}

	// Image change: Updating, then Running with the new image.
	e2 := newEnv(t, func(c *Config) { c.StartDelay = 3 * time.Second })
	id = e2.create("updatable", nil)
	e2.clock.Advance(3 * time.Second)
	e2.mustCall("UpdateContainerGroup", map[string]string{"ContainerGroupId": id, "UpdateType": "IncrementalUpdate",
		"Container.1.Name": "main", "Container.1.Image": "nginx:1.27"}, nil)
	if g := e2.describe(id); g.Status != StatusUpdating {
		t.Fatalf("status %s, want Updating", g.Status)
	}
	e2.clock.Advance(3 * time.Second)
	g = e2.describe(id)
	if g.Status != StatusRunning || g.Containers[0].Image != "nginx:1.27" || g.Containers[0].RestartCount != 1 {
		t.Fatalf("after update: %s image %s restarts %d", g.Status, g.Containers[0].Image, g.Containers[0].RestartCount)
	}

	// RenewUpdate replaces the container list.
	e2.mustCall("UpdateContainerGroup", map[string]string{"ContainerGroupId": id,
		"Container.1.Name": "other", "Container.1.Image": "redis", "Container.1.Cpu": "1.000000", "Container.1.Memory": "2.000000"}, nil)
	e2.clock.Advance(3 * time.Second)
	g = e2.describe(id)
	if len(g.Containers) != 1 || g.Containers[0].Name != "other" || g.Cpu != 1 || g.Memory != 2 {
		t.Fatalf("renew update: %+v cpu %v mem %v", g.Containers, g.Cpu, g.Memory)
	}
	err := e2.call("UpdateContainerGroup", map[string]string{"ContainerGroupId": id, "UpdateType": "Sideways"}, nil)
	wantCode(t, err, CodeInvalidParameter, http.StatusBadRequest)
}

func TestRetentionDropsTerminalGroups(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("short", merge(script("Container.1", "exit 0"), map[string]string{"RestartPolicy": "Never"}))
	e.clock.Advance(59 * time.Minute)
	if g := e.describe(id); g.Status != StatusSucceeded {
		t.Fatalf("status %s", g.Status)
	}
	e.clock.Advance(time.Minute)
	var out struct{ TotalCount int }
	e.mustCall("DescribeContainerGroups", map[string]string{"ContainerGroupIds": `["` + id + `"]`}, &out)
	if out.TotalCount != 0 {
		t.Fatalf("terminal group still visible after retention")
	}
	err := e.call("DeleteContainerGroup", map[string]string{"ContainerGroupId": id}, nil)
	wantCode(t, err, CodeContainerGroupNotFound, http.StatusNotFound)
}

func TestActiveDeadline(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("deadline", map[string]string{"ActiveDeadlineSeconds": "30"})
	e.clock.Advance(29 * time.Second)
	if g := e.describe(id); g.Status != StatusRunning {
		t.Fatalf("status %s", g.Status)
	}
	e.clock.Advance(time.Minute)
	g := e.describe(id)
	if g.Status != StatusFailed || g.FailedTime != "2024-05-06T07:08:39Z" || g.Containers[0].CurrentState.Reason != "DeadlineExceeded" {
		t.Fatalf("status %s failed %s state %+v", g.Status, g.FailedTime, g.Containers[0].CurrentState)
	}
}

// TestSidecarContainers: a container declared a sidecar
// (ECI_CONTAINER_TYPE=sidecar) is stopped when the others have exited for
// good, so a Job's group ends; ECI_CONTAINER_IGNORE_EXIT_CODE=true keeps
// its forced exit from failing the group.
func TestSidecarContainers(t *testing.T) {
	side := func(env map[string]string) map[string]string {
		m := map[string]string{"Container.2.Name": "side", "Container.2.Image": "busybox", "Container.2.Command.1": "sleep", "Container.2.Arg.1": "infinity"}
		i := 1
		for k, v := range env {
			m[fmt.Sprintf("Container.2.EnvironmentVar.%d.Key", i)] = k
			m[fmt.Sprintf("Container.2.EnvironmentVar.%d.Value", i)] = v
			i++
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		status string
	}{
		{"sidecar ignoring its exit code", map[string]string{"ECI_CONTAINER_TYPE": "sidecar", "ECI_CONTAINER_IGNORE_EXIT_CODE": "true"}, StatusSucceeded},
		{"sidecar counting its exit code", map[string]string{"ECI_CONTAINER_TYPE": "sidecar"}, StatusFailed},
		{"ordinary container keeps the group running", nil, StatusRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			id := e.create("job", merge(script("Container.1", "sleep 5; exit 0"), side(tc.env), map[string]string{"RestartPolicy": "Never"}))
			e.clock.Advance(4 * time.Second)
			if g := e.describe(id); g.Status != StatusRunning {
				t.Fatalf("status %s before the job's container exits, want Running", g.Status)
			}
			e.clock.Advance(time.Second)
			g := e.describe(id)
			if g.Status != tc.status {
				t.Fatalf("status %s after the job's container exited, want %s", g.Status, tc.status)
			}
			if tc.status == StatusRunning {
				return
			}
			cs := g.Containers[1].CurrentState
			if cs.State != StateTerminated || cs.ExitCode != 137 || cs.FinishTime != "2024-05-06T07:08:14Z" {
				t.Errorf("sidecar state %+v, want Terminated 137 when the job's container exited", cs)
			}
		})
	}
}

// TestLaunchPriority: containers start in ECI_CONTAINER_LAUNCH_PRIORITY
// order, as ECI documents: a higher priority starts before a lower one,
// equal priorities together; a lower priority waits until every higher
// one has started (and is ready; probes pass at once here), so a
// container whose image cannot be pulled holds the lower priorities.
func TestLaunchPriority(t *testing.T) {
	ctr := func(n int, name, image string, prio string, probe bool) map[string]string {
		p := fmt.Sprintf("Container.%d", n)
		m := map[string]string{p + ".Name": name, p + ".Image": image, p + ".Command.1": "sleep", p + ".Arg.1": "infinity"}
		if prio != "" {
			m[p+".EnvironmentVar.1.Key"], m[p+".EnvironmentVar.1.Value"] = "ECI_CONTAINER_LAUNCH_PRIORITY", prio
		}
		if probe {
			m[p+".ReadinessProbe.Exec.Command.1"], m[p+".ReadinessProbe.PeriodSeconds"] = "true", "1"
		}
		return m
	}
	for _, tc := range []struct {
		name       string
		containers []map[string]string
		status     string
		// state is each container's state (Reason when waiting).
		state map[string]string
		// started are the containers' Started events, in order.
		started []string
	}{
		{
			name: "higher priorities start first, the default 0 last",
			containers: []map[string]string{ctr(1, "main", "busybox", "", false), ctr(2, "side", "busybox", "999", true),
				ctr(3, "first", "busybox", "1000", false), ctr(4, "peer", "busybox", "999", false)},
			status:  StatusRunning,
			state:   map[string]string{"main": StateRunning, "side": StateRunning, "first": StateRunning, "peer": StateRunning},
			started: []string{"first", "side", "peer", "main"},
		},
		{
			name: "a higher priority that cannot start holds the lower ones, not its equals",
			containers: []map[string]string{ctr(1, "main", "busybox", "", false), ctr(2, "side", "registry.example.com/pull-fail:1", "10", true),
				ctr(3, "peer", "busybox", "10", false)},
			status:  StatusPending,
			state:   map[string]string{"main": "ContainerCreating", "side": "ImagePullBackOff", "peer": StateRunning},
			started: []string{"peer"},
		},
		{
			name:       "without priorities nothing waits",
			containers: []map[string]string{ctr(1, "main", "busybox", "", false), ctr(2, "side", "registry.example.com/pull-fail:1", "", true)},
			status:     StatusPending,
			state:      map[string]string{"main": StateRunning, "side": "ImagePullBackOff"},
			started:    []string{"main"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			id := e.create("launch", merge(tc.containers...))
			e.clock.Advance(time.Minute)
			g := e.describe(id)
			if g.Status != tc.status {
				t.Errorf("status %s, want %s", g.Status, tc.status)
			}
			for _, c := range g.Containers {
				got := c.CurrentState.State
				if got == StateWaiting {
					got = c.CurrentState.Reason
				}
				if got != tc.state[c.Name] {
					t.Errorf("%s is %s, want %s", c.Name, got, tc.state[c.Name])
				}
			}
			var started []string
			for _, ev := range g.Events {
				if ev.Reason == "Started" {
					started = append(started, strings.TrimPrefix(ev.Message, "Started container "))
				}
			}
			if strings.Join(started, ",") != strings.Join(tc.started, ",") {
				t.Errorf("started %v, want %v", started, tc.started)
			}
		})
	}
}
