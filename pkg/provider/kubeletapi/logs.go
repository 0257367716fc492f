package kubeletapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"k8s.io/klog/v2"
)

// DescribeContainerLog limits and the follow cadence.
const (
	// maxLogTail is the most lines one DescribeContainerLog returns (its
	// answers are also capped at 1 MB).
	maxLogTail = 2000
	// maxLogBytes is the largest LimitBytes DescribeContainerLog takes
	// (1 MB).
	maxLogBytes = 1 << 20
	// maxStampPrefix is the longest timestamp prefix the cloud puts before
	// a line: RFC 3339 with nanoseconds and a zone offset, and a space.
	maxStampPrefix = len("2006-01-02T15:04:05.999999999-07:00 ")
	// logPollInterval is how often a follower asks for new lines: the
	// latency of `kubectl logs -f` against the cost of one call per
	// follower per interval.
	logPollInterval = time.Second
)

// rfc3339NanoFixed is the timestamp format the kubelet prints with
// --timestamps (fixed width, unlike time.RFC3339Nano).
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// GetContainerLogs serves `kubectl logs` from DescribeContainerLog. The
// cloud is always asked for timestamps: they place each line, so a follower
// can ask again from the newest line it delivered and drop what it already
// sent; they are stripped unless the user asked for them. Without a tail
// the newest 2,000 lines are returned (the cloud's cap). Follow polls every
// second, shares DescribeContainerLog's quota with the node's other
// followers and ends once the container stops running.
func (a *API) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	if err := hidden(namespace, podName, containerName); err != nil {
		return nil, err
	}
	groupID, _, err := a.pods.GroupOf(namespace, podName)
	if err != nil {
		return nil, err
	}
	st, err := a.runStateOf(ctx, groupID, containerName)
	if err != nil {
		return nil, apiError(err)
	}
	switch {
	case !st.found:
		return nil, errdefs.NotFoundf("container %q not found in pod %s/%s", containerName, namespace, podName)
	case opts.Previous && !st.previous:
		// The kubelet's answer, word for word, so scripts keep working.
		return nil, errdefs.InvalidInputf("previous terminated container %q in pod %q not found", containerName, podName)
	case !opts.Previous && !st.started():
		reason := st.waiting
		if reason == "" {
			reason = "ContainerCreating"
		}
		return nil, errdefs.InvalidInputf("container %q in pod %q is waiting to start: %s", containerName, podName, reason)
	}
	s := newLogStream(a.cloud, groupID, containerName, opts)
	first, err := s.fetch(ctx, opts.Previous)
	if err != nil {
		return nil, apiError(err)
	}
	if !opts.Follow || opts.Previous || !st.running || s.full() {
		return io.NopCloser(bytes.NewReader(first)), nil
	}
	if err := s.settle(ctx); err != nil {
		return nil, apiError(err)
	}
	return a.follow(ctx, s, st, first), nil
}

// follow streams s from a goroutine until the container stops running,
// the client goes away (Close) or LimitBytes is reached.
func (a *API) follow(ctx context.Context, s *logStream, start runState, first []byte) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		defer cancel()
		pw.CloseWithError(a.followLoop(ctx, s, start, first, pw))
	}()
	return &cancelReader{PipeReader: pr, cancel: cancel}
}

// followLoop writes first, then new lines every logPollInterval. Each
// round asks for the container's state before its lines, so the lines
// fetched after it is seen stopped are complete and the stream can end.
// A nil return ends the stream normally.
func (a *API) followLoop(ctx context.Context, s *logStream, start runState, first []byte, w io.Writer) error {
	if len(first) > 0 {
		if _, err := w.Write(first); err != nil {
			return err
		}
	}
	logger := klog.FromContext(ctx).WithValues("group", s.groupID, "container", s.container)
	limiter := a.logPolls
	timer := time.NewTimer(logPollInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if err := limiter.Wait(ctx); err != nil {
			return err
		}
		timer.Reset(logPollInterval)
		cur, err := a.runStateOf(ctx, s.groupID, s.container)
		if isGone(err) {
			return nil // the group is gone, and its log with it
		}
		if err != nil {
			logger.V(2).Info("log follower could not read the container state; trying again", "err", err)
			continue
		}
		restarted := cur.restarts != start.restarts
		ended := !cur.running || restarted
		// After a restart the run being followed is the previous one.
		out, err := s.fetch(ctx, restarted)
		switch {
		case isGone(err):
			return nil
		case err != nil && eci.ClassOf(err).Retryable():
			logger.V(2).Info("log follower could not read new lines; trying again", "err", err)
			continue
		case err != nil:
			return err
		}
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return err
			}
		}
		if ended || s.full() {
			return nil
		}
	}
}

// cancelReader stops the follower when the handler closes the stream.
type cancelReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

// Close stops the follower goroutine and unblocks its writes.
func (r *cancelReader) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}

// logStream reads one container's log in pieces and renders what the
// user asked for. Its cursor (the newest timestamp seen and how many lines
// carry it) lets each fetch resume where the last one ended. More than
// 2,000 lines between two polls cannot all be fetched: the oldest of them
// are skipped.
type logStream struct {
	cloud              Cloud
	groupID, container string
	opts               api.ContainerLogOpts
	// floor drops lines older than --since/--since-time on every fetch:
	// until a line arrives the cursor cannot do it.
	floor  time.Time
	last   time.Time
	atLast int
	// left is what LimitBytes still allows; -1 means no limit.
	left    int
	fetched bool
	// cut: the first fetch's tail may have started inside the cursor's
	// instant (see settle).
	cut bool
}

func newLogStream(cloud Cloud, groupID, container string, opts api.ContainerLogOpts) *logStream {
	s := &logStream{cloud: cloud, groupID: groupID, container: container, opts: opts, left: -1}
	if opts.LimitBytes > 0 {
		s.left = opts.LimitBytes
	}
	switch {
	case !opts.SinceTime.IsZero():
		s.floor = opts.SinceTime
	case opts.SinceSeconds > 0:
		// The cloud's clock decides the first fetch; this local estimate
		// only matters if the container printed nothing yet by then.
		s.floor = time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	return s
}

// full reports whether LimitBytes has been reached.
func (s *logStream) full() bool { return s.left == 0 }

// skipExisting moves the cursor past everything the container printed so
// far without delivering it, for streams that show only new output.
func (s *logStream) skipExisting(ctx context.Context) error {
	resp, err := s.cloud.DescribeContainerLog(ctx, &eci.DescribeContainerLogRequest{
		ContainerGroupId: s.groupID, ContainerName: s.container, Tail: maxLogTail, Timestamps: true,
	})
	if err != nil {
		return err
	}
	s.fetched = true
	s.last, s.atLast = newestInstant(resp.Content)
	return nil
}

// settle makes the cursor count every line of its instant, not only the
// ones delivered. Lines printed together share a timestamp, and a tail
// may have cut such a burst: the next fetch must skip all of it, not just
// its first lines. It costs a call only in that case.
func (s *logStream) settle(ctx context.Context) error {
	if !s.cut {
		return nil
	}
	s.cut = false
	resp, err := s.cloud.DescribeContainerLog(ctx, &eci.DescribeContainerLogRequest{
		ContainerGroupId: s.groupID, ContainerName: s.container, Tail: maxLogTail, Timestamps: true,
		StartTime: s.last.UTC().Truncate(time.Second).Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	n := 0
	for _, line := range strings.Split(resp.Content, "\n") {
		if ts, _, ok := splitTimestamp(line); ok && ts.Equal(s.last) {
			n++
		}
	}
	s.atLast = max(s.atLast, n)
	return nil
}

// newestInstant returns the newest timestamp of timestamped content and
// how many lines carry it.
func newestInstant(content string) (time.Time, int) {
	var last time.Time
	n := 0
	for _, line := range strings.Split(content, "\n") {
		ts, _, ok := splitTimestamp(line)
		switch {
		case !ok || ts.Before(last):
		case ts.Equal(last):
			n++
		default:
			last, n = ts, 1
		}
	}
	return last, n
}

// fetch returns the rendered lines after the cursor; the first fetch
// applies the user's tail and since options instead. previous reads the
// container's previous run (kubectl logs -p).
func (s *logStream) fetch(ctx context.Context, previous bool) ([]byte, error) {
	req := &eci.DescribeContainerLogRequest{
		ContainerGroupId: s.groupID, ContainerName: s.container, Tail: maxLogTail, Timestamps: true,
	}
	first := !s.fetched
	switch {
	case first:
		if s.opts.Tail > 0 && s.opts.Tail < maxLogTail {
			req.Tail = s.opts.Tail
		}
		req.SinceSeconds = s.opts.SinceSeconds
		if !s.opts.SinceTime.IsZero() {
			req.StartTime = s.opts.SinceTime.UTC().Format(time.RFC3339)
		}
		req.LimitBytes = s.cloudLimit(req.Tail)
	case !s.last.IsZero():
		// StartTime has second precision and is inclusive; the cursor
		// drops the lines of that second already delivered.
		req.StartTime = s.last.UTC().Truncate(time.Second).Format(time.RFC3339)
	case !s.floor.IsZero():
		req.StartTime = s.floor.UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	req.LastTime = previous
	resp, err := s.cloud.DescribeContainerLog(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("container %s of group %s: %w", s.container, s.groupID, err)
	}
	s.fetched = true
	out := s.render(resp.Content, first)
	if first && req.Tail > 0 {
		firstLine, _, _ := strings.Cut(resp.Content, "\n")
		ts, _, ok := splitTimestamp(firstLine)
		s.cut = ok && ts.Equal(s.last) && strings.Count(resp.Content, "\n") >= req.Tail
	}
	return out, nil
}

// cloudLimit is the LimitBytes to send with the first fetch of tail lines
// so that the cloud's cut (it keeps the first LimitBytes bytes) never
// takes bytes the user's --limit-bytes still allows; 0 sends none. The
// exact limit is applied by render, because the cloud counts the
// timestamps this stream strips: the bound adds one timestamp per line the
// answer can hold, for each of at most min(left, tail) lines (a line
// delivers at least its newline). A --since floor may drop lines of the
// answer that the bound cannot count, so no limit is sent with it, nor on
// later fetches, whose first lines may be ones already delivered.
func (s *logStream) cloudLimit(tail int) int64 {
	if s.left <= 0 || !s.floor.IsZero() || s.fetched {
		return 0
	}
	lines := min(s.left, tail)
	return int64(min(maxLogBytes, s.left+lines*maxStampPrefix))
}

// render turns timestamped cloud lines into the user's format, dropping
// lines before the floor or the cursor and counting LimitBytes.
func (s *logStream) render(content string, first bool) []byte {
	var out bytes.Buffer
	skip := s.atLast // lines at the cursor's instant already delivered
	for _, line := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
		if line == "" && content == "" {
			break
		}
		ts, text, ok := splitTimestamp(line)
		switch {
		case !ok:
			// Not a timestamped line (the cloud cut it?): it cannot be
			// placed, so it is shown once, on the first fetch only.
			if !first {
				continue
			}
			text = line
		case !s.floor.IsZero() && ts.Before(s.floor):
			continue
		case ts.Before(s.last):
			continue
		case ts.Equal(s.last):
			if skip > 0 {
				skip--
				continue
			}
			s.atLast++
		default:
			s.last, s.atLast, skip = ts, 1, 0
		}
		if s.opts.Timestamps && ok {
			out.WriteString(ts.UTC().Format(rfc3339NanoFixed))
			out.WriteByte(' ')
		}
		out.WriteString(text)
		out.WriteByte('\n')
	}
	b := out.Bytes()
	if s.left >= 0 {
		if len(b) > s.left {
			b = b[:s.left]
		}
		s.left -= len(b)
	}
	return b
}

// splitTimestamp splits "TIMESTAMP TEXT" as DescribeContainerLog writes it
// with Timestamps=true.
func splitTimestamp(line string) (time.Time, string, bool) {
	i := strings.IndexByte(line, ' ')
	if i <= 0 {
		// A line that is only a timestamp printed an empty line.
		if ts, err := time.Parse(time.RFC3339Nano, line); err == nil {
			return ts, "", true
		}
		return time.Time{}, "", false
	}
	ts, err := time.Parse(time.RFC3339Nano, line[:i])
	if err != nil {
		return time.Time{}, "", false
	}
	return ts, line[i+1:], true
}

// Container states as DescribeContainerGroups reports them.
const (
	cloudRunning    = "Running"
	cloudTerminated = "Terminated"
	cloudWaiting    = "Waiting"
)

// runState is what the kubelet API needs to know of one container.
type runState struct {
	found      bool
	running    bool
	terminated bool
	// waiting is the reason while the container waits.
	waiting  string
	restarts int32
	// previous: an earlier run of the container has ended.
	previous bool
}

// started reports whether the container has run at all, i.e. has a log.
func (s runState) started() bool { return s.running || s.terminated || s.previous }

// runStateOf asks the cloud for one container's state: the cheap status
// call (10,000/min) for app containers, DescribeContainerGroups for init
// containers, which the status call does not list. A group that no longer
// exists is a NotFound error.
//
// When the RAM policy refuses the status call (the documented policy does
// not list it), DescribeContainerGroups answers alone, and the status
// call is tried again only after statusRetryAfter.
func (a *API) runStateOf(ctx context.Context, groupID, container string) (runState, error) {
	if time.Since(time.Unix(0, a.statusRefusedAt.Load())) >= statusRetryAfter {
		st, err := a.cloud.DescribeContainerGroupStatus(ctx, &eci.DescribeContainerGroupStatusRequest{ContainerGroupIds: []string{groupID}})
		if _, refused := eci.PermissionDenied(err); refused {
			a.statusRefusedAt.Store(time.Now().UnixNano())
		} else if err != nil {
			return runState{}, err
		} else {
			if len(st.Data) == 0 {
				return runState{}, errdefs.NotFoundf("container group %s no longer exists", groupID)
			}
			for _, c := range st.Data[0].PodStatus.ContainerStatuses {
				if c.Name == container {
					return runState{
						found: true, running: c.State.Running != nil, terminated: c.State.Terminated != nil,
						waiting: waitingReason(c.State), restarts: c.RestartCount,
						previous: c.LastState.Terminated != nil || c.RestartCount > 0,
					}, nil
				}
			}
		}
	}
	groups, err := a.cloud.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{ContainerGroupIds: []string{groupID}})
	if err != nil {
		return runState{}, err
	}
	if len(groups.ContainerGroups) == 0 {
		return runState{}, errdefs.NotFoundf("container group %s no longer exists", groupID)
	}
	g := groups.ContainerGroups[0]
	for _, c := range append(append([]eci.ContainerStatus(nil), g.InitContainers...), g.Containers...) {
		if c.Name == container {
			s := runState{
				found: true, running: c.CurrentState.State == cloudRunning, terminated: c.CurrentState.State == cloudTerminated,
				restarts: c.RestartCount, previous: c.PreviousState.State == cloudTerminated || c.RestartCount > 0,
			}
			if c.CurrentState.State == cloudWaiting {
				s.waiting = c.CurrentState.Reason
			}
			return s, nil
		}
	}
	return runState{}, nil
}

func waitingReason(s eci.K8sState) string {
	if s.Waiting == nil {
		return ""
	}
	return s.Waiting.Reason
}
