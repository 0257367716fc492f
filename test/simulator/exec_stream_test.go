package simulator

import (
	"testing"
)

func (c *wsClient) sendBinary(t *testing.T, s string) {
	t.Helper()
	if err := writeWSFrame(c.conn, wsBinary, []byte(s), true, [4]byte{3, 1, 4, 1}); err != nil {
		t.Fatal(err)
	}
}

// TestExecStreamControl covers the client side of the exec stream: stdin
// closing ("eof"), terminal resizes, and input sent while a command runs.
func TestExecStreamControl(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("control", configGroup("control", nil))
	open := func(t *testing.T, command string, tty bool) *wsClient {
		t.Helper()
		params := map[string]string{"ContainerGroupId": id, "ContainerName": "main", "Command": command, "Stdin": "true"}
		if tty {
			params["TTY"] = "true"
		}
		var out execOut
		e.sub(t).mustCall("ExecContainerCommand", params, &out)
		c, _ := dialWS(t, out.WebSocketUri)
		return c
	}
	tests := []struct {
		name    string
		command string
		tty     bool
		// steps send stdin (binary) or control messages (text) and may
		// read output, which they return.
		steps      []func(t *testing.T, c *wsClient) string
		wantData   string
		wantReason string
	}{
		{
			name: "eof runs an unterminated last line and exits with its status", command: `["/bin/sh"]`,
			steps: []func(*testing.T, *wsClient) string{
				func(t *testing.T, c *wsClient) string {
					c.sendBinary(t, "echo piped\ncat /etc/single.conf\nfalse")
					return ""
				},
				func(t *testing.T, c *wsClient) string { c.send(t, `{"type":"eof"}`); return "" },
			},
			wantData: "piped\nkey=value\nmode=test\n", wantReason: "exit code 1",
		},
		{
			name: "eof after a complete line exits 0", command: `["sh"]`,
			steps: []func(*testing.T, *wsClient) string{
				func(t *testing.T, c *wsClient) string {
					c.sendBinary(t, "echo one\n")
					c.send(t, `{"type":"eof"}`)
					return ""
				},
			},
			wantData: "one\n", wantReason: "exit code 0",
		},
		{
			name: "input sent while a command sleeps waits for the prompt", command: `["sh"]`,
			steps: []func(*testing.T, *wsClient) string{
				func(t *testing.T, c *wsClient) string {
					c.sendBinary(t, "sleep 0.2; echo slept\n")
					c.sendBinary(t, "echo queued\n")
					c.sendBinary(t, "exit 6\n")
					return ""
				},
			},
			wantData: "slept\nqueued\n", wantReason: "exit code 6",
		},
		{
			name: "a non-interactive command runs on after eof", command: `["sh","-c","sleep 0.2; echo finished; exit 4"]`,
			steps: []func(*testing.T, *wsClient) string{
				func(t *testing.T, c *wsClient) string { c.send(t, `{"type":"eof"}`); return "" },
			},
			wantData: "finished\n", wantReason: "exit code 4",
		},
		{
			name: "resize sets what stty size reports", command: `["sh"]`, tty: true,
			steps: []func(*testing.T, *wsClient) string{
				func(t *testing.T, c *wsClient) string {
					// A resize applies at once, not in turn with stdin,
					// like a terminal's: wait for the first answer.
					c.send(t, `{"type":"resize","width":120,"height":40}`)
					c.sendBinary(t, "stty size\r")
					data, _ := c.readUntil(t, "40 120\r\n")
					c.send(t, `{"type":"resize","width":80,"height":24}`)
					c.sendBinary(t, "stty size\r")
					c.sendBinary(t, "exit 0\r")
					return data
				},
			},
			wantData:   "# stty size\r\n40 120\r\n# stty size\r\n24 80\r\n# exit 0\r\n",
			wantReason: "exit code 0",
		},
		{
			name: "a text message that is not a control message is stdin", command: `["sh"]`,
			steps: []func(*testing.T, *wsClient) string{
				func(t *testing.T, c *wsClient) string { c.send(t, "echo {\"type\":\"other\"}\nexit 2\n"); return "" },
			},
			wantData: "{type:other}\n", wantReason: "exit code 2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, tc.command, tc.tty)
			var data string
			for _, step := range tc.steps {
				data += step(t, c)
			}
			rest, reason := c.readUntil(t, "")
			data += rest
			if data != tc.wantData || reason != tc.wantReason {
				t.Fatalf("got %q (%q), want %q (%q)", data, reason, tc.wantData, tc.wantReason)
			}
		})
	}
}
