package kubeletapi

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	"github.com/gorilla/websocket"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	utilexec "k8s.io/utils/exec"
)

// testAttach is the api.AttachIO vk hands the provider.
type testAttach struct {
	stdin  io.Reader
	out    *testutil.SyncBuffer
	tty    bool
	resize chan api.TermSize
}

func (a *testAttach) Stdin() io.Reader { return a.stdin }
func (a *testAttach) Stdout() io.WriteCloser {
	if a.out == nil {
		return nil
	}
	return a.out
}
func (a *testAttach) Stderr() io.WriteCloser      { return nil }
func (a *testAttach) TTY() bool                   { return a.tty }
func (a *testAttach) Resize() <-chan api.TermSize { return a.resize }

func exitCode(err error) int {
	var ee utilexec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus()
	}
	return -1
}

func TestRunInContainer(t *testing.T) {
	e := newAPIEnv(t)
	e.addPod("ns", "box", "Never", container{Name: "main", Script: "sleep infinity"})
	e.addPod("ns", "done", "Never", container{Name: "main", Script: "exit 0"})
	e.clock.Advance(time.Second)
	tests := []struct {
		name  string
		pod   string
		cmd   []string
		stdin string
		want  string
		code  int // -1: no exit error
		check func(error) bool
	}{
		{name: "echo", pod: "box", cmd: []string{"echo", "hi"}, want: "hi\n", code: -1},
		{name: "non-zero exit", pod: "box", cmd: []string{"sh", "-c", "echo out; exit 3"}, want: "out\n", code: 3},
		{name: "cat a mounted config file", pod: "box", cmd: []string{"cat", "/etc/app/app.conf"}, want: "key=value\n", code: -1},
		{name: "cat a missing file", pod: "box", cmd: []string{"cat", "/etc/app/nope"}, want: "cat: /etc/app/nope: No such file or directory\n", code: 1},
		{name: "shell reading a piped script", pod: "box", cmd: []string{"sh"}, stdin: "echo piped\nexit 4\n", want: "piped\n", code: 4},
		{name: "shell at end of piped input", pod: "box", cmd: []string{"sh"}, stdin: "echo last", want: "last\n", code: -1},
		{name: "command too long for ECI", pod: "box", cmd: []string{"echo", strings.Repeat("x", 300)}, check: errdefs.IsInvalidInput},
		{name: "container not running", pod: "done", cmd: []string{"true"}, check: errdefs.IsInvalidInput},
		{name: "unknown pod", pod: "ghost", cmd: []string{"true"}, check: errdefs.IsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &testAttach{out: &testutil.SyncBuffer{}}
			if tc.stdin != "" {
				a.stdin = strings.NewReader(tc.stdin)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := e.p.RunInContainer(ctx, "ns", tc.pod, "main", tc.cmd, a)
			if tc.check != nil {
				if err == nil || !tc.check(err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if got := exitCode(err); got != tc.code || (tc.code == -1 && err != nil) {
				t.Fatalf("err = %v (exit %d), want exit %d", err, got, tc.code)
			}
			if a.out.String() != tc.want {
				t.Fatalf("output %q, want %q", a.out.String(), tc.want)
			}
		})
	}
}

// TestRunInContainerTTY drives an interactive shell with a terminal: the
// resize reaches the container, typed lines are echoed, exit ends it.
func TestRunInContainerTTY(t *testing.T) {
	e := newAPIEnv(t)
	e.addPod("ns", "box", "Never", container{Name: "main", Script: "sleep infinity"})
	inR, inW := io.Pipe()
	a := &testAttach{stdin: inR, out: &testutil.SyncBuffer{}, tty: true, resize: make(chan api.TermSize)}
	done := make(chan error, 1)
	go func() { done <- e.p.RunInContainer(context.Background(), "ns", "box", "main", []string{"sh"}, a) }()
	a.resize <- api.TermSize{Width: 132, Height: 43}
	waitFor(t, a.out, "# ")
	time.Sleep(100 * time.Millisecond) // the resize is sent before the next stdin
	_, _ = inW.Write([]byte("stty size\r"))
	waitFor(t, a.out, "43 132\r\n")
	_, _ = inW.Write([]byte("exit 7\r"))
	select {
	case err := <-done:
		if exitCode(err) != 7 {
			t.Fatalf("err = %v, want exit 7", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
	}
	inW.Close()
}

func waitFor(t *testing.T, out *testutil.SyncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in %q", want, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestExitResult(t *testing.T) {
	tests := []struct {
		name  string
		close *websocket.CloseError
		code  int // -1: nil error; -2: error without exit code
	}{
		{"success", &websocket.CloseError{Code: 1000, Text: "exit code 0"}, -1},
		{"failure", &websocket.CloseError{Code: 1000, Text: "exit code 42"}, 42},
		{"no reason", &websocket.CloseError{Code: 1000}, -2},
		{"abnormal close", &websocket.CloseError{Code: 1011, Text: "internal error"}, -2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := exitResult(tc.close)
			switch {
			case tc.code == -1 && err != nil, tc.code == -2 && (err == nil || exitCode(err) != -1),
				tc.code >= 0 && exitCode(err) != tc.code:
				t.Fatalf("exitResult = %v (exit %d), want %d", err, exitCode(err), tc.code)
			}
		})
	}
}

func TestAttachToContainer(t *testing.T) {
	e := newAPIEnv(t)
	e.addPod("ns", "printer", "Never", container{Name: "main", Script: "echo before; sleep 2; echo after; exit 0"})
	e.clock.Advance(time.Second)

	err := e.p.AttachToContainer(context.Background(), "ns", "printer", "main", &testAttach{stdin: strings.NewReader(""), out: &testutil.SyncBuffer{}})
	if !errdefs.IsInvalidInput(err) || !strings.Contains(err.Error(), "not supported on ECI") {
		t.Fatalf("attach -i: %v", err)
	}

	// Without stdin, attach shows new output until the container exits.
	a := &testAttach{out: &testutil.SyncBuffer{}}
	done := make(chan error, 1)
	go func() { done <- e.p.AttachToContainer(context.Background(), "ns", "printer", "main", a) }()
	time.Sleep(1500 * time.Millisecond) // the attach has taken its place in the log
	e.clock.Advance(2 * time.Second)
	select {
	case err := <-done:
		if err != nil || a.out.String() != "after\n" {
			t.Fatalf("attach = %v, output %q; want only %q", err, a.out.String(), "after\n")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("attach did not end when the container exited")
	}
}

func TestPortForwardIsRefused(t *testing.T) {
	e := newAPIEnv(t)
	err := e.p.PortForward(context.Background(), "ns", "pod", 80, nil)
	if !errdefs.IsInvalidInput(err) || !strings.Contains(err.Error(), "not supported on ECI") {
		t.Fatalf("PortForward = %v", err)
	}
}
