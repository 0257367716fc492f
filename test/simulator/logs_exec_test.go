package simulator

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestContainerLogs(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("logs", merge(script("Container.1", `echo "hello $WHO"; while true; do echo tick; sleep 1; done`),
		map[string]string{"Container.1.EnvironmentVar.1.Key": "WHO", "Container.1.EnvironmentVar.1.Value": "sim"}))
	e.clock.Advance(5500 * time.Millisecond)
	tick := "tick\n"
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"all", nil, "hello sim\n" + strings.Repeat(tick, 6)},
		{"tail", map[string]string{"Tail": "2"}, tick + tick},
		{"since", map[string]string{"SinceSeconds": "2"}, tick + tick},
		{"start time", map[string]string{"StartTime": "2024-05-06T07:08:13Z"}, tick + tick},
		{"limit bytes", map[string]string{"LimitBytes": "7"}, "hello s"},
		{"timestamps", map[string]string{"Timestamps": "true", "Tail": "1"}, "2024-05-06T07:08:14Z tick\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.sub(t)
			var out struct{ RequestId, ContainerName, Content string }
			e.mustCall("DescribeContainerLog", merge(map[string]string{"ContainerGroupId": id, "ContainerName": "main"}, tc.params), &out)
			if out.Content != tc.want || out.ContainerName != "main" {
				t.Fatalf("content %q, want %q", out.Content, tc.want)
			}
		})
	}
	wantCode(t, e.call("DescribeContainerLog", map[string]string{"ContainerGroupId": id, "ContainerName": "main", "Tail": "2001"}, nil),
		CodeInvalidParameter, http.StatusBadRequest)
	wantCode(t, e.call("DescribeContainerLog", map[string]string{"ContainerGroupId": id, "ContainerName": "nope"}, nil),
		CodeContainerNotFound, http.StatusNotFound)

	// While a crashed container backs off, the previous run's log is shown.
	crash := e.create("crash", script("Container.1", "echo attempt; exit 1"))
	var out struct{ Content string }
	e.mustCall("DescribeContainerLog", map[string]string{"ContainerGroupId": crash, "ContainerName": "main"}, &out)
	if out.Content != "attempt\n" {
		t.Fatalf("crash log %q", out.Content)
	}
}

type execOut struct {
	RequestId, WebSocketUri, HttpUrl, SyncResponse string
}

func TestExecSync(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("exec-box", map[string]string{"Container.1.EnvironmentVar.1.Key": "WHO", "Container.1.EnvironmentVar.1.Value": "sim"})
	tests := []struct {
		command string
		want    string
	}{
		{`["echo","hi"]`, "hi\n"},
		{`["sh","-c","echo $WHO; hostname; exit 3"]`, "sim\nexec-box\n"},
		{`["ls","-l"]`, "sim: ls: command not found\n"},
		{`["/bin/bash","-c","sleep 100; echo done"]`, "done\n"},
		{`["sh","-c","false || echo fallback"]`, "fallback\n"},
	}
	for _, tc := range tests {
		t.Run(tc.command, func(t *testing.T) {
			e := e.sub(t)
			var out execOut
			e.mustCall("ExecContainerCommand", map[string]string{"ContainerGroupId": id, "ContainerName": "main",
				"Command": tc.command, "Sync": "true"}, &out)
			if out.SyncResponse != tc.want {
				t.Fatalf("SyncResponse %q, want %q", out.SyncResponse, tc.want)
			}
		})
	}
	done := e.create("done", merge(script("Container.1", "exit 0"), map[string]string{"RestartPolicy": "Never"}))
	errs := []struct {
		params map[string]string
		code   string
		status int
	}{
		{map[string]string{"ContainerGroupId": done, "ContainerName": "main", "Command": `["true"]`}, CodeIncorrectStatus, 403},
		{map[string]string{"ContainerGroupId": id, "ContainerName": "main", "Command": `["true"]`, "Sync": "true", "TTY": "true"}, CodeInvalidParameter, 400},
		{map[string]string{"ContainerGroupId": id, "ContainerName": "main"}, CodeMissingParameter, 400},
		{map[string]string{"ContainerGroupId": id, "ContainerName": "main", "Command": "echo hi"}, CodeInvalidParameter, 400},
		{map[string]string{"ContainerGroupId": id, "ContainerName": "main", "Command": `["` + strings.Repeat("x", 257) + `"]`}, CodeInvalidParameter, 400},
	}
	for _, tc := range errs {
		wantCode(t, e.call("ExecContainerCommand", tc.params, nil), tc.code, tc.status)
	}
}

// wsClient is a minimal WebSocket client for tests.
type wsClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialWS(t *testing.T, raw string) (*wsClient, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", u.Path, u.Host, key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, resp.StatusCode
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != wsAcceptKey(key) {
		t.Fatalf("bad accept key")
	}
	return &wsClient{conn: conn, br: br}, resp.StatusCode
}

func (c *wsClient) send(t *testing.T, s string) {
	t.Helper()
	if err := writeWSFrame(c.conn, wsText, []byte(s), true, [4]byte{7, 1, 3, 9}); err != nil {
		t.Fatal(err)
	}
}

// readUntil reads data until want appears (or the stream closes) and
// returns the data and the close reason, if any.
func (c *wsClient) readUntil(t *testing.T, want string) (string, string) {
	t.Helper()
	var out strings.Builder
	for {
		_, op, payload, err := readWSFrame(c.br)
		if err == io.EOF {
			return out.String(), ""
		}
		if err != nil {
			t.Fatalf("read: %v (so far %q)", err, out.String())
		}
		switch op {
		case wsClose:
			return out.String(), string(payload[2:])
		case wsBinary, wsText:
			out.Write(payload)
			if want != "" && strings.Contains(out.String(), want) {
				return out.String(), ""
			}
		}
	}
}

func TestExecStreams(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("stream", nil)
	exec := func(command string, extra map[string]string) execOut {
		var out execOut
		e.mustCall("ExecContainerCommand", merge(map[string]string{"ContainerGroupId": id, "ContainerName": "main",
			"Command": command}, extra), &out)
		return out
	}

	out := exec(`["sh","-c","echo a; sleep 0.05; echo b; exit 3"]`, nil)
	wantURI := "ws://" + e.host + "/exec-ws/"
	if !strings.HasPrefix(out.WebSocketUri, wantURI) || !strings.HasPrefix(out.HttpUrl, "http://"+e.host+"/exec/") {
		t.Fatalf("URIs %+v", out)
	}
	c, _ := dialWS(t, out.WebSocketUri)
	data, reason := c.readUntil(t, "")
	if data != "a\nb\n" || reason != "exit code 3" {
		t.Fatalf("stream %q reason %q", data, reason)
	}
	if _, status := dialWS(t, out.WebSocketUri); status != http.StatusNotFound {
		t.Fatalf("a redeemed URI must not work twice: %d", status)
	}

	// An interactive shell reads commands from stdin.
	out = exec(`["/bin/sh"]`, map[string]string{"Stdin": "true"})
	c, _ = dialWS(t, out.WebSocketUri)
	c.send(t, "echo hello\n")
	if data, _ := c.readUntil(t, "hello\n"); data != "hello\n" {
		t.Fatalf("interactive output %q", data)
	}
	c.send(t, "exit 4\n")
	if _, reason := c.readUntil(t, ""); reason != "exit code 4" {
		t.Fatalf("interactive exit reason %q", reason)
	}

	// HttpUrl returns the output as plain text.
	out = exec(`["echo","plain"]`, nil)
	resp, err := http.Get(out.HttpUrl)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "plain\n" || resp.Header.Get("X-Exit-Code") != "0" {
		t.Fatalf("HttpUrl: %q exit %s", body, resp.Header.Get("X-Exit-Code"))
	}

	// URLs expire after 30 s of simulated time.
	out = exec(`["echo","late"]`, nil)
	e.clock.Advance(31 * time.Second)
	if _, status := dialWS(t, out.WebSocketUri); status != http.StatusNotFound {
		t.Fatalf("expired URI: %d", status)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("forever", nil)
	var out execOut
	e.mustCall("ExecContainerCommand", map[string]string{"ContainerGroupId": id, "ContainerName": "main",
		"Command": `["sh","-c","echo up; sleep infinity"]`}, &out)
	c, _ := dialWS(t, out.WebSocketUri)
	if data, _ := c.readUntil(t, "up\n"); data != "up\n" {
		t.Fatalf("got %q", data)
	}
	closed := make(chan struct{})
	go func() {
		e.sim.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the exec stream")
	}
	if _, status := dialWS(t, "ws://"+e.host+"/exec-ws/whatever"); status != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d", status)
	}
}
