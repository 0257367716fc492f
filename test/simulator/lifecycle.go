package simulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The lifecycle is evaluated lazily: nothing runs in the background.
// Every API call first advances all groups to the clock's "now"; each
// group remembers the earliest instant at which anything could change
// (wakeAt), so idle groups cost nothing. All transitions are stamped with
// the simulated instant at which they happened, not the instant they were
// observed, which keeps SinceSecond, events and logs deterministic under a
// fake clock.

// farFuture marks a group with no scheduled work.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// pullFailMarker in an image name makes the image pull fail forever.
const pullFailMarker = "pull-fail"

type termination struct {
	code     int
	signal   int
	reason   string
	message  string
	started  time.Time
	finished time.Time
}

type groupEvent struct {
	count   int
	typ     string
	name    string
	reason  string
	message string
	first   time.Time
	last    time.Time
}

// ctr is a container with its runtime state.
type ctr struct {
	spec     Container
	init     bool
	prog     *program
	run      *run
	started  bool // has run at least once; the next start is a restart
	restarts int
	// nextStart is when the next run begins (zero: not scheduled).
	nextStart time.Time
	final     bool
	last      *termination
	prev      *termination
	prevLogs  *logBuffer
	pullFail  bool
	pullBOEvt bool
	// launched: its first start in this incarnation is scheduled (its
	// launch priority's turn has come, see launch); firstRun is when
	// that start happened.
	launched bool
	firstRun time.Time
	// files are the ConfigFileVolume files mounted into the container.
	files map[string]string
}

// group is a container group with its runtime state.
type group struct {
	seq       int64
	id        string
	spec      groupSpec
	zoneID    string
	vswitchID string
	sgID      string
	ip        string
	ipHeld    bool
	eni       string
	cpu       float64
	memory    float64
	created   time.Time

	status    string
	statusAt  time.Time
	changedAt time.Time
	doneAt    time.Time // when it became terminal

	events   []*groupEvent
	eventSeq int

	init []*ctr
	main []*ctr

	bootAt   time.Time
	booted   bool
	initIdx  int
	initDone bool
	mainAt   time.Time
	wakeAt   time.Time
}

func (g *group) wake(t time.Time) {
	if !t.IsZero() && t.Before(g.wakeAt) {
		g.wakeAt = t
	}
}

// touch records an observable change for SinceSecond.
func (g *group) touch(at time.Time) {
	if at.After(g.changedAt) {
		g.changedAt = at
	}
}

func (g *group) setStatus(status string, at time.Time) {
	if g.status == status {
		return
	}
	g.status = status
	g.statusAt = at
	g.touch(at)
}

func (g *group) containers() []*ctr {
	out := make([]*ctr, 0, len(g.init)+len(g.main))
	out = append(out, g.init...)
	return append(out, g.main...)
}

func (g *group) container(name string) *ctr {
	for _, c := range g.containers() {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// addEvent records an event, folding repeats into Count like Kubernetes.
func (g *group) addEvent(at time.Time, typ, reason, message string) {
	for _, e := range g.events {
		if e.typ == typ && e.reason == reason && e.message == message {
			e.count++
			if at.After(e.last) {
				e.last = at
			}
			g.touch(at)
			return
		}
	}
	g.eventSeq++
	g.events = append(g.events, &groupEvent{
		count: 1, typ: typ, reason: reason, message: message, first: at, last: at,
		name: fmt.Sprintf("%s.%016x", g.spec.name, uint64(g.seq)<<20|uint64(g.eventSeq)),
	})
	// Bound memory for crash-looping groups: keep the newest 100 events.
	if len(g.events) > 100 {
		g.events = append([]*groupEvent(nil), g.events[len(g.events)-100:]...)
	}
	g.touch(at)
}

// backoff is the kubelet-style crash-loop delay before restart n+1.
func (s *Simulator) backoff(restarts int) time.Duration {
	d := s.cfg.RestartBackoff
	for i := 0; i < restarts && d < maxRestartBackoff; i++ {
		d *= 2
	}
	if d > maxRestartBackoff {
		d = maxRestartBackoff
	}
	return d
}

// advanceAll brings every group to now and drops expired terminal groups.
func (s *Simulator) advanceAll(now time.Time) {
	for id, g := range s.groups {
		s.advanceGroup(g, now)
		if isTerminal(g.status) && !now.Before(g.doneAt.Add(s.cfg.Retention)) {
			delete(s.groups, id)
		}
	}
}

// advanceGroup brings one group to now.
func (s *Simulator) advanceGroup(g *group, now time.Time) {
	if isTerminal(g.status) || now.Before(g.wakeAt) {
		return
	}
	g.wakeAt = farFuture
	var deadline time.Time
	if g.spec.activeDeadline > 0 {
		deadline = g.created.Add(g.spec.activeDeadline)
	}
	limit := now
	if !deadline.IsZero() && deadline.Before(now) {
		limit = deadline
	}
	s.step(g, limit)
	if isTerminal(g.status) || deadline.IsZero() {
		return
	}
	if !now.Before(deadline) {
		s.finish(g, deadline, StatusFailed, "DeadlineExceeded",
			"Pod was active on the node longer than the specified deadline")
		return
	}
	g.wake(deadline)
}

// step runs the group's state machine up to now.
func (s *Simulator) step(g *group, now time.Time) {
	if !g.booted {
		if now.Before(g.bootAt) {
			g.wake(g.bootAt)
			return
		}
		s.boot(g, g.bootAt)
	}
	for !g.initDone {
		c := g.init[g.initIdx]
		s.progress(g, c, now)
		if !c.final || c.last == nil {
			return
		}
		if c.last.code != 0 {
			// An init container failed and will not be retried (Never).
			s.finish(g, c.last.finished, StatusFailed, "InitContainerFailed",
				fmt.Sprintf("init container %s exited with code %d", c.spec.Name, c.last.code))
			return
		}
		at := c.last.finished
		g.initIdx++
		if g.initIdx == len(g.init) {
			g.initDone = true
			s.startMain(g, at)
			break
		}
		g.init[g.initIdx].nextStart = at
	}
	for {
		for _, c := range g.main {
			s.progress(g, c, now)
		}
		if !s.launch(g) {
			break
		}
	}
	s.stopSidecars(g)
	allFinal, anyPull, allZero := len(g.main) > 0, false, true
	var last time.Time
	for _, c := range g.main {
		if c.pullFail {
			anyPull = true
		}
		if !c.final {
			allFinal = false
			continue
		}
		if c.last.code != 0 && !c.ignoreExitCode() {
			allZero = false
		}
		if c.last.finished.After(last) {
			last = c.last.finished
		}
	}
	switch {
	case allFinal && allZero:
		s.finish(g, last, StatusSucceeded, "", "")
	case allFinal:
		s.finish(g, last, StatusFailed, "", "")
	case anyPull:
		g.setStatus(StatusPending, g.mainAt)
	default:
		g.setStatus(StatusRunning, g.mainAt)
	}
}

// boot starts a group incarnation (creation, restart or update) at "at".
func (s *Simulator) boot(g *group, at time.Time) {
	g.booted = true
	g.initIdx = 0
	g.initDone = len(g.init) == 0
	for _, c := range g.containers() {
		c.pullFail = strings.Contains(c.spec.Image, pullFailMarker)
		c.pullBOEvt = false
		if c.pullFail {
			g.addEvent(at, "Normal", "Pulling", fmt.Sprintf("pulling image %q", c.spec.Image))
			g.addEvent(at, "Warning", "Failed", fmt.Sprintf(
				"Failed to pull image %q: rpc error: code = NotFound desc = failed to pull and unpack image %q: not found",
				c.spec.Image, c.spec.Image))
			g.addEvent(at, "Warning", "Failed", "Error: ErrImagePull")
		}
	}
	if g.initDone {
		s.startMain(g, at)
		return
	}
	g.setStatus(StatusPending, at)
	g.init[0].nextStart = at
}

func (s *Simulator) startMain(g *group, at time.Time) {
	g.mainAt = at
	for _, c := range g.main {
		c.launched, c.firstRun = false, time.Time{}
	}
	s.launch(g)
}

// launch schedules the first start, in this incarnation, of the
// containers whose turn has come in ECI_CONTAINER_LAUNCH_PRIORITY order
// (ECI's "Configure the startup and exit priorities of containers"): the
// highest priority first, all containers of one priority together; a
// lower priority's turn comes once every container of higher priority has
// started and, where it has a readiness probe, is ready. Probes pass at
// once here, so that is the instant the last of them started; a container
// that never starts (its image cannot be pulled) holds every container of
// lower priority. Restarts are not ordered. It reports whether it
// scheduled any container.
func (s *Simulator) launch(g *group) bool {
	scheduled := false
	for {
		top, found := 0, false
		for _, c := range g.main {
			if p := c.launchPriority(); !c.launched && (!found || p > top) {
				top, found = p, true
			}
		}
		if !found {
			return scheduled
		}
		at := g.mainAt
		for _, c := range g.main {
			if !c.launched {
				continue
			}
			if c.firstRun.IsZero() {
				return scheduled
			}
			if c.firstRun.After(at) {
				at = c.firstRun
			}
		}
		for _, c := range g.main {
			if c.launched || c.launchPriority() != top {
				continue
			}
			c.launched, scheduled = true, true
			if !c.pullFail {
				c.nextStart = at
			}
		}
	}
}

// progress advances one container to now, handling exits and restarts.
func (s *Simulator) progress(g *group, c *ctr, now time.Time) {
	for !c.final {
		if c.pullFail {
			bo := g.bootAt.Add(s.cfg.RestartBackoff)
			if now.Before(bo) {
				g.wake(bo)
			} else if !c.pullBOEvt {
				c.pullBOEvt = true
				g.addEvent(bo, "Normal", "BackOff", fmt.Sprintf("Back-off pulling image %q", c.spec.Image))
				g.addEvent(bo, "Warning", "Failed", "Error: ImagePullBackOff")
			}
			return
		}
		if c.run == nil {
			if c.nextStart.IsZero() {
				return
			}
			if now.Before(c.nextStart) {
				g.wake(c.nextStart)
				return
			}
			s.startRun(g, c, c.nextStart)
		}
		c.run.advance(now)
		if !c.run.exited {
			if t := c.run.nextAt(); !t.IsZero() {
				g.wake(t)
			}
			return
		}
		te := c.run.exitTime()
		t := &termination{code: c.run.code, started: c.run.start, finished: te, reason: "Completed"}
		if t.code != 0 {
			t.reason = "Error"
		}
		c.prev, c.last = c.last, t
		g.touch(te)
		policy := g.spec.restartPolicy
		restart := policy == RestartAlways || (policy == RestartOnFailure && t.code != 0)
		if c.init {
			restart = policy != RestartNever && t.code != 0
		}
		if !restart {
			c.final = true
			return
		}
		delay := s.backoff(c.restarts)
		c.nextStart = te.Add(delay)
		logs := c.run.logs
		c.prevLogs = &logs
		c.run = nil
		g.addEvent(te, "Warning", "BackOff", fmt.Sprintf("Back-off restarting failed container %s", c.spec.Name))
	}
}

func (s *Simulator) startRun(g *group, c *ctr, at time.Time) {
	if c.started {
		c.restarts++
		g.addEvent(at, "Normal", "Pulled", fmt.Sprintf("Container image %q already present on machine", c.spec.Image))
	} else {
		g.addEvent(at, "Normal", "Pulling", fmt.Sprintf("pulling image %q", c.spec.Image))
		g.addEvent(at, "Normal", "Pulled", fmt.Sprintf("Successfully pulled image %q", c.spec.Image))
	}
	c.started = true
	if c.firstRun.IsZero() {
		c.firstRun = at
	}
	g.addEvent(at, "Normal", "Created", fmt.Sprintf("Created container %s", c.spec.Name))
	g.addEvent(at, "Normal", "Started", fmt.Sprintf("Started container %s", c.spec.Name))
	c.run = newRun(c.prog, at, runInfo{hostname: g.hostname(), workdir: c.spec.WorkingDir, files: c.files})
	c.nextStart = time.Time{}
	g.touch(at)
}

// hostname is what `hostname` prints inside the group.
func (g *group) hostname() string {
	if g.spec.hostName != "" {
		return g.spec.hostName
	}
	return g.spec.name
}

// killRunning stops every live container at "at" with the given result.
func (s *Simulator) killRunning(g *group, at time.Time, code, signal int, reason, message string) {
	for _, c := range g.containers() {
		if c.run == nil || c.run.exited {
			continue
		}
		t := &termination{code: code, signal: signal, reason: reason, message: message, started: c.run.start, finished: at}
		c.prev, c.last = c.last, t
		c.run.exited, c.run.code = true, code
		logs := c.run.logs
		c.prevLogs = &logs
	}
}

// finish makes a group terminal at "at" and releases its IP. Stock is
// derived from non-terminal groups, so it is released implicitly.
func (s *Simulator) finish(g *group, at time.Time, status, reason, message string) {
	if reason != "" {
		s.killRunning(g, at, 137, 9, reason, message)
		g.addEvent(at, "Warning", reason, message)
	}
	for _, c := range g.containers() {
		c.final = true
	}
	g.setStatus(status, at)
	g.doneAt = at
	g.wakeAt = farFuture
	s.releaseIP(g)
}

// reboot restarts a group incarnation (RestartContainerGroup and
// UpdateContainerGroup): live containers are stopped, the group shows
// transition for StartDelay, then boots again with init containers first.
func (s *Simulator) reboot(g *group, at time.Time, transition, reason string) {
	s.killRunning(g, at, 143, 15, reason, "container group "+strings.ToLower(transition))
	for _, c := range g.containers() {
		if c.run != nil {
			logs := c.run.logs
			c.prevLogs = &logs
		}
		c.run = nil
		c.final = false
		c.nextStart = time.Time{}
		c.pullFail = false
	}
	g.booted = false
	g.bootAt = at.Add(s.cfg.StartDelay)
	g.initDone = false
	g.initIdx = 0
	g.setStatus(transition, at)
	g.addEvent(at, "Normal", reason, fmt.Sprintf("Container group %s", strings.ToLower(transition)))
	g.wakeAt = time.Time{}
}

// Container types ECI documents ("Forcibly terminate the sidecar
// container and ignore the container exit code"): a container with
// environment variable ECI_CONTAINER_TYPE=sidecar is stopped once every
// other container has exited for good, so a Job's group can end; with
// ECI_CONTAINER_IGNORE_EXIT_CODE=true its exit code does not count
// toward the group's Succeeded or Failed.
const (
	envContainerType     = "ECI_CONTAINER_TYPE"
	containerTypeSidecar = "sidecar"
	envIgnoreExitCode    = "ECI_CONTAINER_IGNORE_EXIT_CODE"
	// envLaunchPriority orders the containers' first start: -1000 to
	// 1000, default 0, higher first (see launch).
	envLaunchPriority = "ECI_CONTAINER_LAUNCH_PRIORITY"
)

func (c *ctr) env(key string) string {
	for _, e := range c.spec.EnvironmentVars {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

func (c *ctr) sidecar() bool { return c.env(envContainerType) == containerTypeSidecar }

// launchPriority is the container's ECI_CONTAINER_LAUNCH_PRIORITY; 0, the
// documented default, when it is not set or not a number.
func (c *ctr) launchPriority() int {
	p, err := strconv.Atoi(strings.TrimSpace(c.env(envLaunchPriority)))
	if err != nil {
		return 0
	}
	return p
}

func (c *ctr) ignoreExitCode() bool { return strings.EqualFold(c.env(envIgnoreExitCode), "true") }

// stopSidecars kills the running sidecars of a group whose other
// containers have all exited for good, at the last of those exits.
func (s *Simulator) stopSidecars(g *group) {
	var last time.Time
	others := 0
	for _, c := range g.main {
		if c.sidecar() {
			continue
		}
		others++
		if !c.final || c.last == nil {
			return
		}
		if c.last.finished.After(last) {
			last = c.last.finished
		}
	}
	if others == 0 {
		return
	}
	for _, c := range g.main {
		if !c.sidecar() || c.final {
			continue
		}
		t := &termination{code: 137, signal: 9, reason: "Error", message: "sidecar stopped: the other containers have exited",
			started: last, finished: last}
		switch {
		case c.run != nil && !c.run.exited:
			t.started = c.run.start
			c.prev, c.last = c.last, t
			c.run.exited, c.run.code = true, t.code
		case c.last == nil:
			// Never ran (e.g. its image could not be pulled).
			c.last = t
		}
		c.final = true
		g.addEvent(last, "Normal", "Killing", "Stopping sidecar container "+c.spec.Name)
	}
}
