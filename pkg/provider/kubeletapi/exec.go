package kubeletapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/gorilla/websocket"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"
)

// The exec stream behind ExecContainerCommand's WebSocketUri. The cloud
// does not publish its protocol; this is the one the simulator serves,
// and every assumption about it is kept in this block:
//
//   - server messages (binary or text) are the command's output, stdout
//     and stderr merged (with a TTY, the terminal's output);
//   - client binary messages are stdin;
//   - client text messages {"type":"resize","width":W,"height":H} and
//     {"type":"eof"} resize the terminal and close stdin;
//   - the server ends with a close frame 1000 whose reason is
//     "exit code N";
//   - the client closing the connection is a hang-up: the command stops.
const (
	execExitPrefix    = "exit code "
	execDialTimeout   = 15 * time.Second
	execWriteTimeout  = 10 * time.Second
	execStdinChunk    = 32 << 10
	execControlResize = "resize"
	execControlEOF    = "eof"
)

// execControl is a client control message of the exec stream.
type execControl struct {
	Type   string `json:"type"`
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
}

// RunInContainer runs `kubectl exec` through ExecContainerCommand and its
// WebSocket. A non-zero exit is returned as a utilexec.CodeExitError,
// unwrapped, because vk's exec handler type-asserts it to report the code
// to kubectl.
func (a *API) RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error {
	if err := hidden(namespace, podName, containerName); err != nil {
		return err
	}
	groupID, _, err := a.pods.GroupOf(namespace, podName)
	if err != nil {
		return err
	}
	if err := eci.CheckExecCommand(cmd); err != nil {
		return errdefs.AsInvalidInput(err)
	}
	resp, err := a.cloud.ExecContainerCommand(ctx, &eci.ExecContainerCommandRequest{
		ContainerGroupId: groupID, ContainerName: containerName, Command: cmd,
		TTY: attach.TTY(), Stdin: attach.Stdin() != nil,
	})
	if eci.ClassOf(err) == eci.ClassConflict {
		return errdefs.AsInvalidInput(fmt.Errorf("container %s of pod %s/%s is not running: %w", containerName, namespace, podName, err))
	}
	if err != nil {
		return apiError(err)
	}
	klog.FromContext(ctx).V(2).Info("exec", "pod", namespace+"/"+podName, "container", containerName, "tty", attach.TTY(), "requestId", resp.RequestId)
	return streamExec(ctx, resp.WebSocketUri, attach)
}

// streamExec connects attach to an exec stream and returns the command's
// result once the server ends the stream.
func streamExec(ctx context.Context, uri string, attach api.AttachIO) error {
	dialer := websocket.Dialer{HandshakeTimeout: execDialTimeout, Proxy: http.ProxyFromEnvironment}
	conn, resp, err := dialer.DialContext(ctx, uri, nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("connect to the ECI exec stream: %s: %w", resp.Status, err)
		}
		return fmt.Errorf("connect to the ECI exec stream: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The client going away hangs the command up; closing the connection
	// also ends the read below.
	go func() {
		<-ctx.Done()
		_ = conn.Close()
	}()

	var wmu sync.Mutex
	send := func(typ int, data []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(execWriteTimeout))
		return conn.WriteMessage(typ, data)
	}
	control := func(c execControl) error {
		b, _ := json.Marshal(c)
		return send(websocket.TextMessage, b)
	}
	if in := attach.Stdin(); in != nil {
		go pumpStdin(ctx, in, send, control)
	}
	if sizes := attach.Resize(); sizes != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case s, ok := <-sizes:
					if !ok {
						return
					}
					if err := control(execControl{Type: execControlResize, Width: s.Width, Height: s.Height}); err != nil {
						return
					}
				}
			}
		}()
	}

	out := outputOf(attach)
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return exitResult(ce)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the ECI exec stream ended without an exit status: %w", err)
		}
		if _, err := out.Write(data); err != nil {
			return fmt.Errorf("write exec output: %w", err)
		}
	}
}

// pumpStdin forwards stdin until it ends, then tells the cloud so: a
// shell reading a script from a pipe runs it and exits.
func pumpStdin(ctx context.Context, in io.Reader, send func(int, []byte) error, control func(execControl) error) {
	buf := make([]byte, execStdinChunk)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if send(websocket.BinaryMessage, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && ctx.Err() == nil {
				_ = control(execControl{Type: execControlEOF})
			}
			return
		}
	}
}

// outputOf picks where the (merged) output goes: stdout, else stderr.
func outputOf(attach api.AttachIO) io.Writer {
	if w := attach.Stdout(); w != nil {
		return w
	}
	if w := attach.Stderr(); w != nil {
		return w
	}
	return io.Discard
}

// exitResult turns the server's close frame into the command's result.
func exitResult(ce *websocket.CloseError) error {
	if ce.Code != websocket.CloseNormalClosure {
		return fmt.Errorf("the ECI exec stream closed with %d %q", ce.Code, ce.Text)
	}
	code, err := strconv.Atoi(strings.TrimPrefix(ce.Text, execExitPrefix))
	if err != nil || !strings.HasPrefix(ce.Text, execExitPrefix) {
		return fmt.Errorf("the ECI exec stream ended without an exit status (close reason %q)", ce.Text)
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// AttachToContainer serves `kubectl attach`. ECI has no attach API: the
// cloud cannot reach the main process's stdin or terminal, so -i and -t
// are refused; without them the container's output from now on is
// streamed (from its log) until the container stops, which is what attach
// shows of a process that reads nothing.
func (a *API) AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error {
	if attach.Stdin() != nil || attach.TTY() {
		return errdefs.InvalidInput("attach with stdin or a TTY (-i/-t) is not supported on ECI: the cloud has no attach API " +
			"and cannot reach the main process's input; use `kubectl exec -it POD -- sh`, or `kubectl attach` without -i/-t to watch its output")
	}
	if err := hidden(namespace, podName, containerName); err != nil {
		return err
	}
	groupID, _, err := a.pods.GroupOf(namespace, podName)
	if err != nil {
		return err
	}
	st, err := a.runStateOf(ctx, groupID, containerName)
	if err != nil {
		return apiError(err)
	}
	if !st.found {
		return errdefs.NotFoundf("container %q not found in pod %s/%s", containerName, namespace, podName)
	}
	if !st.running {
		return errdefs.InvalidInputf("cannot attach to container %q in pod %q: it is not running", containerName, podName)
	}
	s := newLogStream(a.cloud, groupID, containerName, api.ContainerLogOpts{Follow: true})
	if err := s.skipExisting(ctx); err != nil {
		return apiError(err)
	}
	return a.followLoop(ctx, s, st, nil, outputOf(attach))
}

// PortForward is refused: the node has no network path into a container
// group, and ECI has no port-forward API.
func (a *API) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errdefs.InvalidInput("port-forward is not supported on ECI pods: the virtual node has no network path into the container group; " +
		"expose the port with a Service, or use kubectl exec")
}
