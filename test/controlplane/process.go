package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a component gets to exit on SIGTERM before the
// whole process group is killed; the kube components need about a second.
const stopGrace = 5 * time.Second

// process is one supervised child. It runs in its own process group so
// Stop can signal everything it may have spawned.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{} // closed once Wait returned
	waitErr error         // valid after done
}

// startProcess launches bin with args and env (nil: inherit ours), output
// to logPath (truncated) and, when extra is non-nil, also to extra.
func startProcess(name, bin string, args, env []string, logPath string, extra io.Writer) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "# %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	// A bare *os.File lets the child write directly, with no copying
	// goroutine that a surviving grandchild could keep alive.
	var out io.Writer = f
	if extra != nil {
		out = io.MultiWriter(f, &prefixWriter{prefix: "[" + name + "] ", w: extra})
		// With a pipe, Wait would block while anything still holds it.
		cmd.WaitDelay = 2 * time.Second
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: f, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the group, escalates to SIGKILL after grace, and
// always ends with a SIGKILL to the group so no descendant survives the
// leader.
func (p *process) stop(grace time.Duration) {
	pgid := p.pid() // Setpgid makes the pid the group id
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		_ = syscall.Kill(-pgid, syscall.SIGCONT) // if a test paused it
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// failure describes an early exit or a failed readiness wait with the end
// of the log, which is where the kube components say why.
func (p *process) failure(what error) error {
	return &ProcessError{Component: p.name, LogFile: p.logPath, Err: what, LogTail: tailFile(p.logPath, 30, 4096)}
}

// ProcessError is a component that exited or never became healthy.
type ProcessError struct {
	Component string
	LogFile   string
	Err       error
	LogTail   string
}

// Error includes the log tail so a CI failure is diagnosable from the test
// output alone.
func (e *ProcessError) Error() string {
	return fmt.Sprintf("%s: %v (log %s); last lines:\n%s", e.Component, e.Err, e.LogFile, e.LogTail)
}

// Unwrap returns the underlying cause.
func (e *ProcessError) Unwrap() error { return e.Err }

// addrInUse reports whether a start failure was a lost port race, which is
// worth one retry on fresh ports.
func addrInUse(err error) bool {
	var pe *ProcessError
	if errors.As(err, &pe) {
		return strings.Contains(pe.LogTail, "address already in use")
	}
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// tailFile returns at most the last maxLines lines within maxBytes of path.
func tailFile(path string, maxLines int, maxBytes int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	off := st.Size() - maxBytes
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(buf, off)
	buf = bytes.TrimRight(buf[:n], "\n")
	lines := strings.Split(string(buf), "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:] // first line is probably cut
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}

// prefixWriter prefixes each line so interleaved component output in one
// shared writer stays attributable. All instances share one lock because
// they usually share the destination.
type prefixWriter struct {
	prefix string
	w      io.Writer
	buf    []byte
}

var prefixMu sync.Mutex

func (pw *prefixWriter) Write(b []byte) (int, error) {
	prefixMu.Lock()
	defer prefixMu.Unlock()
	pw.buf = append(pw.buf, b...)
	for {
		i := bytes.IndexByte(pw.buf, '\n')
		if i < 0 {
			break
		}
		line := make([]byte, 0, len(pw.prefix)+i+1)
		line = append(append(line, pw.prefix...), pw.buf[:i+1]...)
		pw.buf = pw.buf[i+1:]
		if _, err := pw.w.Write(line); err != nil {
			// The shared writer failing must not kill the component.
			pw.buf = pw.buf[:0]
			break
		}
	}
	return len(b), nil
}

// Ports handed out by this process stay reserved, so parallel control
// planes in one test binary never pick the same port; only other processes
// can race us, and Start retries once for that.
var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freePorts returns n distinct free loopback ports. All listeners are held
// until every port is chosen so the kernel cannot hand one out twice.
func freePorts(n int) ([]int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 100*n {
			return nil, errors.New("controlplane: no free loopback ports")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("controlplane: find free port: %w", err)
		}
		ls = append(ls, l)
		p := l.Addr().(*net.TCPAddr).Port
		if portsUsed[p] {
			continue
		}
		portsUsed[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}
