package kubeletapi

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

func TestSplitTimestamp(t *testing.T) {
	tests := []struct {
		line string
		text string
		ok   bool
	}{
		{"2024-05-06T07:08:09.5Z hello world", "hello world", true},
		{"2024-05-06T07:08:09Z ", "", true},
		{"2024-05-06T07:08:09Z", "", true},
		{"hello world", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		_, text, ok := splitTimestamp(tc.line)
		if text != tc.text || ok != tc.ok {
			t.Errorf("splitTimestamp(%q) = %q, %v; want %q, %v", tc.line, text, ok, tc.text, tc.ok)
		}
	}
}

// TestLogStreamRender feeds successive cloud answers to one stream, as a
// follower does, and checks what reaches the user.
func TestLogStreamRender(t *testing.T) {
	const (
		t1 = "2024-05-06T07:08:09.100000000Z"
		t2 = "2024-05-06T07:08:09.200000000Z"
		t3 = "2024-05-06T07:08:10Z"
	)
	tests := []struct {
		name    string
		opts    api.ContainerLogOpts
		answers []string
		want    []string
	}{
		{
			name:    "timestamps are stripped and lines already sent are dropped",
			answers: []string{t1 + " a\n" + t2 + " b\n", t1 + " a\n" + t2 + " b\n" + t3 + " c\n", t3 + " c\n"},
			want:    []string{"a\nb\n", "c\n", ""},
		},
		{
			name:    "lines sharing one instant are counted, not lost",
			answers: []string{t1 + " x\n", t1 + " x\n" + t1 + " y\n" + t2 + " z\n"},
			want:    []string{"x\n", "y\nz\n"},
		},
		{
			name:    "timestamps requested are printed like the kubelet's",
			opts:    api.ContainerLogOpts{Timestamps: true},
			answers: []string{t3 + " c\n" + t2 + " \n"},
			want:    []string{"2024-05-06T07:08:10.000000000Z c\n"},
		},
		{
			name:    "since-time drops older lines on every fetch",
			opts:    api.ContainerLogOpts{SinceTime: mustTime(t2)},
			answers: []string{t1 + " old\n", t1 + " old\n" + t2 + " new\n"},
			want:    []string{"", "new\n"},
		},
		{
			name:    "limit-bytes counts rendered bytes across fetches",
			opts:    api.ContainerLogOpts{LimitBytes: 5},
			answers: []string{t1 + " abc\n", t2 + " def\n", t3 + " ghi\n"},
			want:    []string{"abc\n", "d", ""},
		},
		{
			name:    "a line without a timestamp is shown on the first fetch only",
			answers: []string{"torn line\n" + t1 + " a\n", "torn line\n" + t1 + " a\n"},
			want:    []string{"torn line\na\n", ""},
		},
		{
			name:    "empty answers",
			answers: []string{"", ""},
			want:    []string{"", ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newLogStream(nil, "g", "c", tc.opts)
			for i, answer := range tc.answers {
				got := string(s.render(answer, i == 0))
				s.fetched = true
				if got != tc.want[i] {
					t.Fatalf("answer %d: got %q, want %q", i, got, tc.want[i])
				}
			}
		})
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestGetContainerLogs(t *testing.T) {
	e := newAPIEnv(t)
	e.addPod("ns", "talker", "Never",
		container{Name: "main", Script: "echo l1; echo l2; echo l3; sleep infinity"},
		container{Name: "side", Script: "echo from-side; sleep infinity"})
	e.addPod("ns", "crashy", "Always", container{Name: "main", Script: "echo attempt; date; sleep 5; exit 1"})
	e.addPod("ns", "waiting", "Never", container{Name: "main", Script: "sleep infinity", Image: "example.com/pull-fail:1"})
	e.addPod("ns", "initialised", "Never", container{Name: "setup", Script: "echo prepared", Init: true},
		container{Name: "main", Script: "sleep infinity"})
	e.clock.Advance(time.Second)
	// crashy: first run ends at 5 s, second starts at 6 s.
	first := readAll(t, e, "crashy", "main", api.ContainerLogOpts{})
	e.clock.Advance(6 * time.Second)

	tests := []struct {
		name    string
		pod     string
		ctr     string
		opts    api.ContainerLogOpts
		want    string
		wantErr func(error) bool
	}{
		{name: "all lines", pod: "talker", ctr: "main", want: "l1\nl2\nl3\n"},
		{name: "tail", pod: "talker", ctr: "main", opts: api.ContainerLogOpts{Tail: 2}, want: "l2\nl3\n"},
		{name: "limit bytes", pod: "talker", ctr: "main", opts: api.ContainerLogOpts{LimitBytes: 4}, want: "l1\nl"},
		{name: "other container", pod: "talker", ctr: "side", want: "from-side\n"},
		{name: "previous run", pod: "crashy", ctr: "main", opts: api.ContainerLogOpts{Previous: true}, want: first},
		{name: "no previous run", pod: "talker", ctr: "main", opts: api.ContainerLogOpts{Previous: true}, wantErr: errdefs.IsInvalidInput},
		{name: "unknown container", pod: "talker", ctr: "nope", wantErr: errdefs.IsNotFound},
		{name: "never started", pod: "waiting", ctr: "main", wantErr: errdefs.IsInvalidInput},
		{name: "init container", pod: "initialised", ctr: "setup", want: "prepared\n"},
		{name: "init container followed after it ended", pod: "initialised", ctr: "setup", opts: api.ContainerLogOpts{Follow: true}, want: "prepared\n"},
		{name: "unknown pod", pod: "ghost", ctr: "main", wantErr: errdefs.IsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := e.p.GetContainerLogs(context.Background(), "ns", tc.pod, tc.ctr, tc.opts)
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != tc.want {
				t.Fatalf("got %q, want %q", b, tc.want)
			}
		})
	}
}

func readAll(t *testing.T, e *apiEnv, pod, ctr string, opts api.ContainerLogOpts) string {
	t.Helper()
	rc, err := e.p.GetContainerLogs(context.Background(), "ns", pod, ctr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFollowLogs follows containers through their runs: lines arrive as
// the (simulated) container prints them, and the stream ends right after
// the run being followed ends, with its last lines, whether the container
// stops for good or restarts.
func TestFollowLogs(t *testing.T) {
	tests := []struct {
		name    string
		restart string
		script  string
		opts    api.ContainerLogOpts
		// steps: after each clock advance, the lines that must arrive.
		advance []time.Duration
		want    [][]string
	}{
		{
			name: "runs to completion", restart: "Never",
			script:  "echo one; sleep 2; echo two; sleep 2; echo three; exit 0",
			advance: []time.Duration{0, 2 * time.Second, 2 * time.Second},
			want:    [][]string{{"one\n"}, {"two\n"}, {"three\n"}},
		},
		{
			name: "ends with the run that restarts", restart: "Always",
			script:  "echo a; sleep 2; echo b; exit 1",
			advance: []time.Duration{0, 3500 * time.Millisecond}, // exits at 2 s, restarts at 3 s
			want:    [][]string{{"a\n"}, {"b\n"}},
		},
		{
			name: "tail then new lines", restart: "Never",
			script:  "echo x1; echo x2; echo x3; sleep 1; echo x4; exit 0",
			opts:    api.ContainerLogOpts{Tail: 1},
			advance: []time.Duration{0, time.Second},
			want:    [][]string{{"x3\n"}, {"x4\n"}},
		},
		{
			name: "limit bytes ends the stream", restart: "Never",
			script:  "echo 12345; sleep 1; echo 67890; sleep infinity",
			opts:    api.ContainerLogOpts{LimitBytes: 9},
			advance: []time.Duration{0, time.Second},
			want:    [][]string{{"12345\n"}, {"678"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newAPIEnv(t)
			e.addPod("ns", "follow", tc.restart, container{Name: "main", Script: tc.script})
			e.clock.Advance(100 * time.Millisecond)
			opts := tc.opts
			opts.Follow = true
			rc, err := e.p.GetContainerLogs(context.Background(), "ns", "follow", "main", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			chunks := make(chan string)
			done := make(chan error, 1)
			go func() {
				r := bufio.NewReader(rc)
				for {
					line, err := r.ReadString('\n')
					if line != "" {
						chunks <- line
					}
					if err != nil {
						done <- err
						return
					}
				}
			}()
			for i, d := range tc.advance {
				e.clock.Advance(d)
				for _, want := range tc.want[i] {
					select {
					case got := <-chunks:
						if got != want {
							t.Fatalf("step %d: got %q, want %q", i, got, want)
						}
					case err := <-done:
						t.Fatalf("step %d: stream ended (%v) before %q", i, err, want)
					case <-time.After(5 * time.Second):
						t.Fatalf("step %d: no %q within 5 s", i, want)
					}
				}
			}
			select {
			case err := <-done:
				if err != io.EOF {
					t.Fatalf("stream ended with %v, want EOF", err)
				}
			case l := <-chunks:
				t.Fatalf("unexpected output %q", l)
			case <-time.After(5 * time.Second):
				t.Fatal("the stream did not end")
			}
		})
	}
}

// TestFollowStopsOnClose checks that closing a follow stream (the client
// went away) stops its poller.
func TestFollowStopsOnClose(t *testing.T) {
	e := newAPIEnv(t)
	e.addPod("ns", "server", "Never", container{Name: "main", Script: "echo up; sleep infinity"})
	rc, err := e.p.GetContainerLogs(context.Background(), "ns", "server", "main", api.ContainerLogOpts{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "up\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	rc.Close()
	time.Sleep(1500 * time.Millisecond)
	before := e.calls("DescribeContainerLog")
	time.Sleep(2500 * time.Millisecond)
	if after := e.calls("DescribeContainerLog"); after != before {
		t.Fatalf("the follower kept polling after Close: %d -> %d calls", before, after)
	}
}

// kubectl logs --limit-bytes travels as the published LimitBytes, so the
// cloud does not send a whole log for a few bytes; the bound leaves room
// for the timestamps the stream strips, and the user still gets exactly
// the bytes asked for.
func TestLimitBytesSentToCloud(t *testing.T) {
	e := newAPIEnv(t)
	e.addPod("ns", "chatty", "Never", container{Name: "main",
		Script: "while true; do echo 0123456789012345678901234567890123456789; sleep 0.01; done"})
	e.clock.Advance(5 * time.Second) // hundreds of lines
	for _, tc := range []struct {
		opts api.ContainerLogOpts
		want string
	}{
		{api.ContainerLogOpts{LimitBytes: 50}, "0123456789012345678901234567890123456789\n012345678"},
		{api.ContainerLogOpts{LimitBytes: 50, Timestamps: true}, ""},
		{api.ContainerLogOpts{LimitBytes: 3, Tail: 2}, "012"},
	} {
		before := len(e.sim.Requests("DescribeContainerLog"))
		got := readAll(t, e, "chatty", "main", tc.opts)
		if len(got) != tc.opts.LimitBytes || (tc.want != "" && got != tc.want) {
			t.Errorf("%+v: got %d bytes %q, want %d bytes", tc.opts, len(got), got, tc.opts.LimitBytes)
		}
		reqs := e.sim.Requests("DescribeContainerLog")[before:]
		if len(reqs) != 1 {
			t.Fatalf("%+v: %d DescribeContainerLog calls, want 1", tc.opts, len(reqs))
		}
		sent, err := strconv.Atoi(reqs[0].Params["LimitBytes"])
		lines := min(tc.opts.LimitBytes, maxLogTail)
		if tc.opts.Tail > 0 {
			lines = min(lines, tc.opts.Tail)
		}
		bound := tc.opts.LimitBytes + lines*maxStampPrefix
		if err != nil || sent < tc.opts.LimitBytes || sent > bound {
			t.Errorf("%+v: LimitBytes sent %q, want between %d and the bound %d", tc.opts, reqs[0].Params["LimitBytes"], tc.opts.LimitBytes, bound)
		}
	}
	// A --since floor may drop lines the bound cannot count: no limit is
	// sent, and the stream applies it.
	before := len(e.sim.Requests("DescribeContainerLog"))
	if got := readAll(t, e, "chatty", "main", api.ContainerLogOpts{LimitBytes: 7, SinceSeconds: 2}); got != "0123456" {
		t.Errorf("since and limit: got %q", got)
	}
	if reqs := e.sim.Requests("DescribeContainerLog")[before:]; len(reqs) != 1 || reqs[0].Params["LimitBytes"] != "" {
		t.Errorf("since and limit: requests %+v, want one without LimitBytes", reqs)
	}
}
