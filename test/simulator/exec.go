package simulator

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// execTTL is how long an ExecContainerCommand URL stays valid.
const execTTL = 30 * time.Second

// maxExecArg is the documented limit of one Command item.
const maxExecArg = 256

// maxLogBytes is the documented LimitBytes ceiling (1 MB).
const maxLogBytes = 1 << 20

// execSession is a pending exec stream, redeemable once.
type execSession struct {
	argv    []string
	prog    *program
	info    runInfo
	tty     bool
	stdin   bool
	expires time.Time
	groupID string
	name    string
}

// interactive reports whether argv is a bare shell that reads commands
// from stdin (e.g. ["/bin/sh"] or ["bash", "-i"]).
func (e *execSession) interactive() bool {
	if len(e.argv) == 0 || !isShell(e.argv[0]) {
		return false
	}
	_, script := shellScript(e.argv)
	return !script
}

// containerLookup resolves ContainerGroupId + ContainerName.
func (s *Simulator) containerLookup(p params) (*group, *ctr, *apiError) {
	g, err := s.lookup(p)
	if err != nil {
		return nil, nil, err
	}
	name, err := p.required("ContainerName")
	if err != nil {
		return nil, nil, err
	}
	c := g.container(name)
	if c == nil {
		return nil, nil, newError(http.StatusNotFound, CodeContainerNotFound,
			"The container %q does not exist in container group %s.", name, g.id)
	}
	return g, c, nil
}

// opLog implements DescribeContainerLog. It returns the current run's
// output, or the previous run's while the container waits to restart;
// LastTime=true asks for the previous run's output explicitly (empty when
// the container never restarted).
func (s *Simulator) opLog(rc *reqCtx) (response, *apiError) {
	p := rc.p
	_, c, err := s.containerLookup(p)
	if err != nil {
		return nil, err
	}
	tail, err := p.integer("Tail", 500, 0, 2000)
	if err != nil {
		return nil, err
	}
	since, err := p.integer("SinceSeconds", 0, 0, 1<<40)
	if err != nil {
		return nil, err
	}
	limitBytes, err := p.integer("LimitBytes", 0, 0, maxLogBytes)
	if err != nil {
		return nil, err
	}
	stamps, err := p.boolean("Timestamps", false)
	if err != nil {
		return nil, err
	}
	// LastTime is, per the public API reference, a boolean: "query the
	// previous container (if the container exited and restarted)".
	previous, err := p.boolean("LastTime", false)
	if err != nil {
		return nil, err
	}
	var from time.Time
	if since > 0 {
		from = rc.now.Add(-time.Duration(since) * time.Second)
	}
	if v := p.str("StartTime"); v != "" {
		t, perr := time.Parse(time.RFC3339, v)
		if perr != nil {
			return nil, errInvalid("StartTime", "%q is not an RFC 3339 time", v)
		}
		if t.After(from) {
			from = t
		}
	}
	var buf *logBuffer
	switch {
	case previous:
		buf = c.prevLogs
	case c.run != nil:
		buf = &c.run.logs
	case c.prevLogs != nil:
		buf = c.prevLogs
	}
	var lines []logLine
	if buf != nil {
		for _, l := range buf.since(0) {
			if !from.IsZero() && l.at.Before(from) {
				continue
			}
			lines = append(lines, l)
		}
	}
	if len(lines) > int(tail) {
		lines = lines[len(lines)-int(tail):]
	}
	var b strings.Builder
	for _, l := range lines {
		if stamps {
			b.WriteString(l.at.UTC().Format(time.RFC3339Nano))
			b.WriteByte(' ')
		}
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	content := b.String()
	if limitBytes > 0 && len(content) > int(limitBytes) {
		content = content[:limitBytes]
	}
	return response{"ContainerName": c.spec.Name, "Content": content}, nil
}

// opExec implements ExecContainerCommand. With Sync=true the command runs
// at once (sleeps take no time) and its output is SyncResponse; otherwise
// a single-use WebSocketUri (and an HttpUrl returning the output as plain
// text) valid for 30 s is returned.
func (s *Simulator) opExec(rc *reqCtx) (response, *apiError) {
	p := rc.p
	g, c, err := s.containerLookup(p)
	if err != nil {
		return nil, err
	}
	argv, has, err := p.jsonStrings("Command", 20)
	if err != nil {
		return nil, err
	}
	if !has || len(argv) == 0 {
		return nil, errMissing("Command")
	}
	for _, a := range argv {
		if len(a) > maxExecArg {
			return nil, errInvalid("Command", "each command item is at most %d characters", maxExecArg)
		}
	}
	tty, err := p.boolean("TTY", false)
	if err != nil {
		return nil, err
	}
	stdin, err := p.boolean("Stdin", true)
	if err != nil {
		return nil, err
	}
	sync, err := p.boolean("Sync", false)
	if err != nil {
		return nil, err
	}
	if sync && tty {
		return nil, errInvalid("TTY", "TTY must be false when Sync is true")
	}
	if g.status != StatusRunning || c.run == nil || c.run.exited || c.final {
		return nil, errIncorrectStatus("The container %s of container group %s is not running (group status %s).",
			c.spec.Name, g.id, g.status)
	}
	sess := &execSession{
		argv: argv, prog: compileArgv(argv, c.prog.env, modeExec),
		info: runInfo{hostname: g.hostname(), workdir: c.spec.WorkingDir, files: c.files},
		tty:  tty, stdin: stdin, expires: rc.now.Add(execTTL), groupID: g.id, name: c.spec.Name,
	}
	if tty {
		sess.info.term = &termSize{}
	}
	if sync {
		out := ""
		if !sess.interactive() {
			out, _ = runSync(sess.prog, rc.now, sess.info)
		}
		return response{"WebSocketUri": "", "HttpUrl": "", "SyncResponse": out}, nil
	}
	for tok, e := range s.execs {
		if !rc.now.Before(e.expires) {
			delete(s.execs, tok)
		}
	}
	token := s.randomID("", 32)
	s.execs[token] = sess
	ws, web := "ws", "http"
	if rc.secure {
		ws, web = "wss", "https"
	}
	return response{
		"WebSocketUri": ws + "://" + rc.host + "/exec-ws/" + token,
		"HttpUrl":      web + "://" + rc.host + "/exec/" + token,
		"SyncResponse": "",
	}, nil
}

// redeem takes a pending exec session by token (single use).
func (s *Simulator) redeem(path, prefix string) (*execSession, int) {
	token := strings.TrimPrefix(path, prefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, http.StatusServiceUnavailable
	}
	sess := s.execs[token]
	delete(s.execs, token)
	if sess == nil || !s.now().Before(sess.expires) {
		return nil, http.StatusNotFound
	}
	return sess, 0
}

// serveExecHTTP runs a redeemed exec session and returns its output as
// text/plain with the exit code in the X-Exit-Code header.
func (s *Simulator) serveExecHTTP(w http.ResponseWriter, r *http.Request) {
	sess, status := s.redeem(r.URL.Path, "/exec/")
	if sess == nil {
		http.Error(w, "exec session not found or expired", status)
		return
	}
	out, code := "", 0
	if !sess.interactive() {
		out, code = runSync(sess.prog, s.now(), sess.info)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Exit-Code", strconv.Itoa(code))
	_, _ = io.WriteString(w, out)
}

// serveExecWS streams a redeemed exec session over a WebSocket. Output is
// sent as binary messages in real time (sleeps really wait); client
// messages are stdin. The server ends with a close frame whose reason is
// "exit code N".
func (s *Simulator) serveExecWS(w http.ResponseWriter, r *http.Request) {
	sess, status := s.redeem(r.URL.Path, "/exec-ws/")
	if sess == nil {
		http.Error(w, "exec session not found or expired", status)
		return
	}
	conn, err := wsAccept(w, r)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.c.Close()
		return
	}
	s.conns[conn.c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn.c)
		s.mu.Unlock()
		_ = conn.c.Close()
		s.wg.Done()
	}()
	s.log.Info("exec stream started", "group", sess.groupID, "container", sess.name, "command", sess.argv)
	s.streamExec(conn, sess)
}

// Exec stream control messages. A client text message that is one of
// these JSON objects is a control message; any other message is stdin.
//
//	{"type":"resize","width":W,"height":H}   the terminal is now W x H
//	{"type":"eof"}                            stdin is closed
//
// A close frame from the client (or the connection dropping) is a hang-up:
// the running command is stopped. After "eof" an interactive shell runs
// what it was sent and exits with the last status; other commands run on.
type execControl struct {
	Type   string `json:"type"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// control decodes a control message; ok is false for stdin data.
func control(op byte, msg []byte) (execControl, bool) {
	var c execControl
	if op != wsText || len(msg) == 0 || msg[0] != '{' || json.Unmarshal(msg, &c) != nil {
		return c, false
	}
	return c, c.Type == "resize" || c.Type == "eof"
}

// streamExec runs the session, sends the final close frame and returns
// once its stdin reader goroutine has ended.
func (s *Simulator) streamExec(conn *wsConn, sess *execSession) {
	cl := execIO{input: make(chan []byte), gone: make(chan struct{}), eof: make(chan struct{})}
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		defer close(cl.gone)
		eof := false
		for {
			op, msg, err := conn.readMessage()
			if err != nil {
				return
			}
			if c, ok := control(op, msg); ok {
				switch {
				case c.Type == "resize" && sess.info.term != nil:
					sess.info.term.set(c.Height, c.Width)
				case c.Type == "eof" && !eof:
					eof = true
					close(cl.eof)
				}
				continue
			}
			if eof {
				continue // data after "eof" has nowhere to go
			}
			select {
			case cl.input <- msg:
			case <-stop:
				return
			case <-s.closeCh:
				return
			}
		}
	}()
	code := s.execute(conn, sess, cl)
	conn.closeWith(1000, "exit code "+strconv.Itoa(code))
	close(stop)
	_ = conn.c.Close() // unblocks the reader
	<-done
}

// execIO is what a running exec session hears from its client: stdin
// messages, stdin closed (eof) and the client gone (hang-up).
type execIO struct {
	input chan []byte
	eof   chan struct{}
	gone  chan struct{}
}

// execute runs the session's command and returns its exit code.
func (s *Simulator) execute(conn *wsConn, sess *execSession, cl execIO) int {
	send := func(lines []logLine, sep string) bool {
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l.text)
			b.WriteString(sep)
		}
		return b.Len() == 0 || conn.write(wsBinary, []byte(b.String())) == nil
	}
	nl := "\n"
	if sess.tty {
		nl = "\r\n"
	}
	if sess.interactive() {
		return s.interactiveShell(conn, sess, cl, send, nl)
	}
	return s.runStreamed(sess.prog, sess.info, cl.input, cl.gone, send, nl)
}

// runStreamed runs prog in real time, sending output as it is produced.
// Messages on input are discarded (commands do not read stdin); a nil
// input leaves stdin queued for the caller.
func (s *Simulator) runStreamed(prog *program, info runInfo, input <-chan []byte, gone <-chan struct{},
	send func([]logLine, string) bool, nl string) int {
	r := newRun(prog, time.Now(), info)
	sent := 0
	for {
		r.advance(time.Now())
		lines := r.logs.since(sent)
		sent = r.logs.total
		if !send(lines, nl) {
			return 1
		}
		if r.exited {
			return r.code
		}
		var wait <-chan time.Time
		var timer *time.Timer
		if next := r.nextAt(); !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			wait = timer.C
		}
		stop := 0
		select {
		case <-wait:
		case <-input: // stdin of non-interactive commands is discarded
		case <-gone:
			stop = 130
		case <-s.closeCh:
			stop = 137
		}
		if timer != nil {
			timer.Stop()
		}
		if stop != 0 {
			return stop
		}
	}
}

// interactiveShell reads command lines from stdin and runs each as a
// script; "exit", stdin closing ("eof") or the client going away ends it.
// With TTY the input is echoed and a "# " prompt is shown, like a
// terminal. Input typed while a command runs waits for the next prompt.
func (s *Simulator) interactiveShell(conn *wsConn, sess *execSession, cl execIO,
	send func([]logLine, string) bool, nl string) int {
	prompt := func() {
		if sess.tty {
			_ = conn.write(wsBinary, []byte("# "))
		}
	}
	// run executes one command line; done reports that the shell ends
	// with code.
	last := 0
	run := func(line string) (code int, done bool) {
		prog := compileScript(line, sess.prog.env, modeExec)
		if len(prog.code) > 0 && prog.code[len(prog.code)-1].op == opExit && strings.HasPrefix(line, "exit") {
			_, code := runSync(prog, time.Now(), sess.info)
			return code, true
		}
		last = s.runStreamed(prog, sess.info, nil, cl.gone, send, nl)
		return last, last == 130 || last == 137
	}
	prompt()
	var pending strings.Builder
	for {
		var msg []byte
		select {
		case msg = <-cl.input:
		case <-cl.eof:
			// Like sh at end of input: run an unterminated last line,
			// then exit with the last status.
			if line := strings.TrimSpace(pending.String()); line != "" {
				if code, done := run(line); done {
					return code
				}
			}
			return last
		case <-cl.gone:
			return 0
		case <-s.closeCh:
			return 137
		}
		if sess.tty {
			_ = conn.write(wsBinary, []byte(strings.ReplaceAll(strings.ReplaceAll(string(msg), "\r", "\n"), "\n", "\r\n")))
		}
		pending.WriteString(strings.ReplaceAll(string(msg), "\r", "\n"))
		for {
			buf := pending.String()
			i := strings.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			line := strings.TrimSpace(buf[:i])
			pending.Reset()
			pending.WriteString(buf[i+1:])
			if line == "" {
				prompt()
				continue
			}
			if code, done := run(line); done {
				return code
			}
			prompt()
		}
	}
}
