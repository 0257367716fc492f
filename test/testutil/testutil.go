// Package testutil holds the small helpers that tests of several packages
// share: a buffer that a process writes while the test reads it, the
// Ready check of a Node, and a harness that builds a command of this
// repository once and runs it as a process.
//
// It is test support: only _test.go files and test/ import it.
package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	corev1 "k8s.io/api/core/v1"
)

// SyncBuffer is a bytes.Buffer that one side (a process, a logger, a
// stream) may write while the test reads it. The zero value is ready.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Close does nothing; it makes the buffer an io.WriteCloser (e.g. a
// stream a provider closes when it is done).
func (s *SyncBuffer) Close() error { return nil }

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail returns at most the last n bytes written, prefixed with "..." when
// some were left out.
func (s *SyncBuffer) Tail(n int) string {
	out := s.String()
	if len(out) > n {
		return "..." + out[len(out)-n:]
	}
	return out
}

// NodeReady reports whether n's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string
}

// BuildCommand builds ./cmd/<name> of this repository (as its image does)
// and returns the binary's path. The build runs once per test process:
// later calls return the same binary. CleanupBuilds, called from TestMain
// after m.Run, removes the binaries.
func BuildCommand(t testing.TB, name string) string {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if bin, ok := builds.bins[name]; ok {
		return bin
	}
	root, err := controlplane.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if builds.dir == "" {
		if builds.dir, err = os.MkdirTemp("", "testutil-bin-"); err != nil {
			t.Fatal(err)
		}
		builds.bins = map[string]string{}
	}
	bin := filepath.Join(builds.dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	builds.bins[name] = bin
	return bin
}

// CleanupBuilds removes the binaries BuildCommand built.
func CleanupBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
		builds.dir, builds.bins = "", nil
	}
}

// Process is a command of this repository run as a separate process, as a
// Deployment's container or a Job runs it.
type Process struct {
	// Name names the process in messages, e.g. "controller" or "replica-a".
	Name string
	// Cmd is the started command.
	Cmd *exec.Cmd
	// Out is its combined stdout and stderr.
	Out *SyncBuffer

	done chan struct{}
	err  error
}

// StartProcess starts bin with exactly the environment env and args. When
// the test ends a process still running is stopped (SIGINT, then SIGKILL
// after 30 s, which fails the test), and if the test failed the end of its
// output is logged.
func StartProcess(t testing.TB, name, bin string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Cmd: exec.Command(bin, args...), Out: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd.Env = env
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s (%s): %v", name, bin, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(t, os.Interrupt, 30*time.Second)
		if t.Failed() {
			t.Logf("%s output (last 64 KiB):\n%s", name, p.Out.Tail(64<<10))
		}
	})
	return p
}

// Exited is closed when the process has exited; Err then tells how.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Err is the error of the process's Wait (nil for exit code 0, an
// *exec.ExitError otherwise); call it after Exited is closed.
func (p *Process) Err() error { return p.err }

// ExitCode is the process's exit code (-1 if a signal ended it); call it
// after Exited is closed.
func (p *Process) ExitCode() int { return p.Cmd.ProcessState.ExitCode() }

// Stop sends sig and waits for the process to exit; one that does not exit
// within timeout is killed and the test fails. Stopping a process that has
// already exited does nothing.
func (p *Process) Stop(t testing.TB, sig os.Signal, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within %s of %v", p.Name, timeout, sig)
	}
}

// Kill is kill -9: the process gets no chance to clean up. It returns when
// the process is gone.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		select {
		case <-p.done: // it had exited already
			return
		default:
		}
		t.Fatalf("kill %s: %v", p.Name, err)
	}
	<-p.done
}

// String describes the process for messages.
func (p *Process) String() string { return fmt.Sprintf("%s (pid %d)", p.Name, p.Cmd.Process.Pid) }

// FreePortRange returns a port p such that p..p+n-1 are free for TCP on
// every one of ips at the time of the call.
func FreePortRange(n int, ips ...string) (int, error) {
	for attempt := 0; attempt < 50; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ok := base+n-1 <= 65535
		var held []net.Listener
		for i := 0; ok && i < n; i++ {
			for _, ip := range ips {
				ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(base+i)))
				if err != nil {
					ok = false
					break
				}
				held = append(held, ln)
			}
		}
		for _, ln := range held {
			ln.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports on %v", n, ips)
}
