package simulator

import (
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file implements the tiny shell dialect that stands in for real
// processes (see the package documentation for the language). A script is
// compiled to a flat instruction list with jumps; a run executes it in
// simulated time, so its state is just (pc, elapsed, status) and it can be
// advanced lazily to any instant.

// runMode decides what unknown commands do.
type runMode int

const (
	// modeContainer: an unknown command is a long-running server (it blocks
	// forever), like `nginx` or `exec my-server`.
	modeContainer runMode = iota
	// modeExec: an unknown command prints "sim: X: command not found" and
	// fails with 127, like a shell would.
	modeExec
)

type opKind int

const (
	opEcho       opKind = iota // print text (may hold several lines)
	opSleep                    // advance time by dur (or forever)
	opExit                     // exit with n, or with the last status
	opStatus                   // set the last status to n
	opForever                  // block forever (a server process)
	opJump                     // jump to n
	opJumpIfFail               // jump to n if the last status != 0
	opJumpIfOK                 // jump to n if the last status == 0
	opBuiltin                  // hostname/env/printenv/pwd/date/whoami/cat/stty
)

type instr struct {
	op        opKind
	text      string
	args      []string
	dur       time.Duration
	infinite  bool
	n         int
	useStatus bool
}

// program is a compiled script plus the environment it reads.
type program struct {
	code []instr
	env  map[string]string
}

// shells are the interpreters whose "-c SCRIPT" form is understood.
var shells = map[string]bool{"sh": true, "bash": true, "ash": true, "dash": true, "zsh": true}

// isShell reports whether argv[0] is a known shell binary.
func isShell(cmd string) bool { return shells[path.Base(cmd)] }

// shellScript extracts SCRIPT from `sh -c SCRIPT` (also `-ec`, `-xc`...).
func shellScript(argv []string) (string, bool) {
	if len(argv) < 3 || !isShell(argv[0]) {
		return "", false
	}
	f := argv[1]
	if !strings.HasPrefix(f, "-") || !strings.Contains(f, "c") {
		return "", false
	}
	return argv[2], true
}

// compileArgv turns a container's Command+Args (or an exec Command) into a
// program. No argv means the image entrypoint, which runs forever.
func compileArgv(argv []string, env map[string]string, mode runMode) *program {
	if len(argv) == 0 {
		return &program{code: []instr{{op: opForever}}, env: env}
	}
	if script, ok := shellScript(argv); ok {
		return compileScript(script, env, mode)
	}
	c := &compiler{env: env, mode: mode}
	c.simple(argv)
	return &program{code: c.code, env: env}
}

// compileScript compiles a script; syntax errors become a program that
// prints the error and exits 2, as sh does.
func compileScript(src string, env map[string]string, mode runMode) *program {
	toks, err := lex(src, env)
	if err == nil {
		var ast []andOr
		p := &parser{toks: toks}
		ast, err = p.list(nil)
		if err == nil && p.i < len(p.toks) {
			err = fmt.Errorf("unexpected %q", p.toks[p.i].text)
		}
		if err == nil {
			c := &compiler{env: env, mode: mode}
			c.list(ast)
			return &program{code: c.code, env: env}
		}
	}
	return &program{code: []instr{
		{op: opEcho, text: "sim: syntax error: " + err.Error()},
		{op: opExit, n: 2},
	}, env: env}
}

// ---- lexer ----

type tokKind int

const (
	tWord tokKind = iota
	tSep          // ; newline & |
	tAnd          // &&
	tOr           // ||
)

type token struct {
	kind   tokKind
	text   string
	quoted bool
}

// lex splits a script into words and operators, removing quotes and
// expanding $VAR / ${VAR} from env (outside single quotes).
func lex(src string, env map[string]string) ([]token, error) {
	var toks []token
	var cur strings.Builder
	inWord, quoted := false, false
	flush := func() {
		if inWord {
			toks = append(toks, token{kind: tWord, text: cur.String(), quoted: quoted})
		}
		cur.Reset()
		inWord, quoted = false, false
	}
	expand := func(i int) int { // src[i] == '$'; returns index after the reference
		j := i + 1
		if j < len(src) && src[j] == '{' {
			end := strings.IndexByte(src[j:], '}')
			if end < 0 {
				cur.WriteByte('$')
				return j
			}
			cur.WriteString(env[src[j+1:j+end]])
			return j + end + 1
		}
		k := j
		for k < len(src) && (src[k] == '_' || isAlnum(src[k])) {
			k++
		}
		if k == j {
			cur.WriteByte('$')
			return j
		}
		cur.WriteString(env[src[j:k]])
		return k
	}
	for i := 0; i < len(src); {
		ch := src[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\r':
			flush()
			i++
		case ch == '#' && !inWord:
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case ch == '\n' || ch == ';':
			flush()
			toks = append(toks, token{kind: tSep, text: string(ch)})
			i++
		case ch == '&' || ch == '|':
			flush()
			if i+1 < len(src) && src[i+1] == ch {
				if ch == '&' {
					toks = append(toks, token{kind: tAnd, text: "&&"})
				} else {
					toks = append(toks, token{kind: tOr, text: "||"})
				}
				i += 2
			} else {
				// Background jobs and pipes are not modelled: the commands
				// simply run one after the other.
				toks = append(toks, token{kind: tSep, text: string(ch)})
				i++
			}
		case ch == '\'':
			end := strings.IndexByte(src[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			cur.WriteString(src[i+1 : i+1+end])
			inWord, quoted = true, true
			i += end + 2
		case ch == '"':
			inWord, quoted = true, true
			i++
			closed := false
			for i < len(src) {
				c := src[i]
				if c == '"' {
					closed = true
					i++
					break
				}
				if c == '\\' && i+1 < len(src) && strings.IndexByte("\"\\$`", src[i+1]) >= 0 {
					cur.WriteByte(src[i+1])
					i += 2
					continue
				}
				if c == '$' {
					i = expand(i)
					continue
				}
				cur.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quote")
			}
		case ch == '\\':
			if i+1 < len(src) {
				if src[i+1] != '\n' { // backslash-newline continues the line
					cur.WriteByte(src[i+1])
					inWord = true
				}
				i += 2
			} else {
				i++
			}
		case ch == '$':
			inWord = true
			i = expand(i)
		default:
			cur.WriteByte(ch)
			inWord = true
			i++
		}
	}
	flush()
	return toks, nil
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// ---- parser ----

type node interface{}

type cmdNode struct{ argv []string }

type loopNode struct {
	until      bool
	cond, body []andOr
}

type andOrPart struct {
	op tokKind
	n  node
}

type andOr struct {
	first node
	rest  []andOrPart
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peekKeyword() string {
	if p.i < len(p.toks) && p.toks[p.i].kind == tWord && !p.toks[p.i].quoted {
		return p.toks[p.i].text
	}
	return ""
}

// list parses and-or lists separated by separators until the end or an
// unquoted stop keyword at command position.
func (p *parser) list(stop map[string]bool) ([]andOr, error) {
	var out []andOr
	for {
		for p.i < len(p.toks) && p.toks[p.i].kind == tSep {
			p.i++
		}
		if p.i >= len(p.toks) || stop[p.peekKeyword()] {
			return out, nil
		}
		a, err := p.andOr(stop)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		if p.i < len(p.toks) && p.toks[p.i].kind != tSep && !stop[p.peekKeyword()] {
			return nil, fmt.Errorf("unexpected %q", p.toks[p.i].text)
		}
	}
}

func (p *parser) andOr(stop map[string]bool) (andOr, error) {
	first, err := p.command(stop)
	if err != nil {
		return andOr{}, err
	}
	a := andOr{first: first}
	for p.i < len(p.toks) && (p.toks[p.i].kind == tAnd || p.toks[p.i].kind == tOr) {
		op := p.toks[p.i].kind
		p.i++
		for p.i < len(p.toks) && p.toks[p.i].kind == tSep && p.toks[p.i].text == "\n" {
			p.i++
		}
		n, err := p.command(stop)
		if err != nil {
			return andOr{}, err
		}
		a.rest = append(a.rest, andOrPart{op: op, n: n})
	}
	return a, nil
}

func (p *parser) command(stop map[string]bool) (node, error) {
	if p.i >= len(p.toks) {
		return nil, fmt.Errorf("unexpected end of script")
	}
	switch kw := p.peekKeyword(); kw {
	case "while", "until":
		p.i++
		cond, err := p.list(map[string]bool{"do": true})
		if err != nil {
			return nil, err
		}
		if p.peekKeyword() != "do" || len(cond) == 0 {
			return nil, fmt.Errorf("%s without do", kw)
		}
		p.i++
		body, err := p.list(map[string]bool{"done": true})
		if err != nil {
			return nil, err
		}
		if p.peekKeyword() != "done" {
			return nil, fmt.Errorf("do without done")
		}
		p.i++
		return loopNode{until: kw == "until", cond: cond, body: body}, nil
	case "do", "done":
		return nil, fmt.Errorf("unexpected %q", kw)
	}
	var argv []string
	for p.i < len(p.toks) && p.toks[p.i].kind == tWord {
		if len(argv) > 0 && stop[p.peekKeyword()] {
			break
		}
		argv = append(argv, p.toks[p.i].text)
		p.i++
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i].text)
	}
	return cmdNode{argv: argv}, nil
}

// ---- compiler ----

type compiler struct {
	code []instr
	env  map[string]string
	mode runMode
}

func (c *compiler) emit(in instr) int {
	c.code = append(c.code, in)
	return len(c.code) - 1
}

func (c *compiler) list(l []andOr) {
	for _, a := range l {
		c.node(a.first)
		for _, r := range a.rest {
			op := opJumpIfFail
			if r.op == tOr {
				op = opJumpIfOK
			}
			j := c.emit(instr{op: op})
			c.node(r.n)
			c.code[j].n = len(c.code)
		}
	}
}

func (c *compiler) node(n node) {
	switch n := n.(type) {
	case cmdNode:
		c.simple(n.argv)
	case loopNode:
		start := len(c.code)
		c.list(n.cond)
		op := opJumpIfFail
		if n.until {
			op = opJumpIfOK
		}
		j := c.emit(instr{op: op})
		c.list(n.body)
		c.emit(instr{op: opJump, n: start})
		c.code[j].n = len(c.code)
		c.emit(instr{op: opStatus, n: 0})
	}
}

// noops are shell builtins that only affect shell state we do not model.
var noops = map[string]bool{"set": true, "trap": true, "cd": true, "export": true, "unset": true,
	"ulimit": true, "umask": true, "wait": true, "shift": true, "readonly": true, "local": true}

func (c *compiler) simple(argv []string) {
	// Leading VAR=value assignments are accepted and ignored.
	for len(argv) > 0 && strings.Contains(argv[0], "=") && !strings.HasPrefix(argv[0], "=") {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		c.emit(instr{op: opStatus, n: 0})
		return
	}
	name, args := path.Base(argv[0]), argv[1:]
	switch {
	case name == "echo":
		for len(args) > 0 && (args[0] == "-n" || args[0] == "-e" || args[0] == "-E" || args[0] == "-ne" || args[0] == "-en") {
			args = args[1:]
		}
		c.emit(instr{op: opEcho, text: strings.Join(args, " ")})
		c.emit(instr{op: opStatus, n: 0})
	case name == "printf":
		text := strings.Join(args, " ")
		text = strings.NewReplacer(`\n`, "\n", `\t`, "\t").Replace(text)
		c.emit(instr{op: opEcho, text: strings.TrimSuffix(text, "\n")})
		c.emit(instr{op: opStatus, n: 0})
	case name == "sleep":
		d, inf, err := parseSleep(args)
		if err != nil {
			c.emit(instr{op: opEcho, text: "sleep: " + err.Error()})
			c.emit(instr{op: opStatus, n: 1})
			return
		}
		c.emit(instr{op: opSleep, dur: d, infinite: inf})
		c.emit(instr{op: opStatus, n: 0})
	case name == "exit":
		if len(args) == 0 {
			c.emit(instr{op: opExit, useStatus: true})
			return
		}
		n, err := strconv.Atoi(args[0])
		if err != nil {
			c.emit(instr{op: opEcho, text: "sim: exit: " + args[0] + ": numeric argument required"})
			c.emit(instr{op: opExit, n: 2})
			return
		}
		c.emit(instr{op: opExit, n: ((n % 256) + 256) % 256})
	case name == "true" || name == ":":
		c.emit(instr{op: opStatus, n: 0})
	case name == "false":
		c.emit(instr{op: opStatus, n: 1})
	case name == "exec":
		c.simple(args)
	case isShell(name) && len(args) >= 2 && strings.HasPrefix(args[0], "-") && strings.Contains(args[0], "c"):
		// A nested `sh -c '...'` runs inline.
		sub := compileScript(args[1], c.env, c.mode)
		base := len(c.code)
		for _, in := range sub.code {
			if in.op == opJump || in.op == opJumpIfFail || in.op == opJumpIfOK {
				in.n += base
			}
			c.code = append(c.code, in)
		}
	case noops[name]:
		c.emit(instr{op: opStatus, n: 0})
	case name == "hostname" || name == "env" || name == "printenv" || name == "pwd" || name == "date" || name == "whoami" ||
		name == "cat" || name == "stty":
		c.emit(instr{op: opBuiltin, text: name, args: args})
	default:
		if c.mode == modeContainer {
			c.emit(instr{op: opForever, text: name})
			return
		}
		c.emit(instr{op: opEcho, text: "sim: " + name + ": command not found"})
		c.emit(instr{op: opStatus, n: 127})
	}
}

// parseSleep understands GNU sleep: several operands are summed, each a
// number with an optional s/m/h/d suffix, or "infinity".
func parseSleep(args []string) (time.Duration, bool, error) {
	if len(args) == 0 {
		return 0, false, fmt.Errorf("missing operand")
	}
	var total float64
	for _, a := range args {
		if a == "infinity" || a == "inf" {
			return 0, true, nil
		}
		mult := 1.0
		switch {
		case strings.HasSuffix(a, "s"):
			a = a[:len(a)-1]
		case strings.HasSuffix(a, "m"):
			a, mult = a[:len(a)-1], 60
		case strings.HasSuffix(a, "h"):
			a, mult = a[:len(a)-1], 3600
		case strings.HasSuffix(a, "d"):
			a, mult = a[:len(a)-1], 86400
		}
		f, err := strconv.ParseFloat(a, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false, fmt.Errorf("invalid time interval '%s'", a)
		}
		total += f * mult
	}
	if total > float64(math.MaxInt64/int64(time.Second))/2 {
		return 0, true, nil
	}
	return time.Duration(total * float64(time.Second)), false, nil
}

// ---- runtime ----

// maxLogLines bounds the lines kept per container run; older lines are
// dropped like a rotated log.
const maxLogLines = 10000

// maxStepsPerInstant bounds instructions executed without simulated time
// passing; a script that loops without sleeping is treated as a busy
// process that prints nothing more.
const maxStepsPerInstant = 100000

type logLine struct {
	at   time.Time
	text string
}

// logBuffer keeps the newest maxLogLines lines; total counts every line
// ever written so streaming readers can resume by index.
type logBuffer struct {
	lines []logLine
	total int
}

func (b *logBuffer) add(at time.Time, text string) {
	b.lines = append(b.lines, logLine{at: at, text: text})
	b.total++
	// Trim in batches so that a chatty process costs amortised O(1) per line.
	if len(b.lines) >= 2*maxLogLines {
		b.lines = append([]logLine(nil), b.lines[len(b.lines)-maxLogLines:]...)
	}
}

// since returns the retained lines whose global index is >= idx.
func (b *logBuffer) since(idx int) []logLine {
	first := b.total - len(b.lines)
	if keep := b.total - maxLogLines; idx < keep {
		idx = keep
	}
	if idx < first {
		idx = first
	}
	if idx >= b.total {
		return nil
	}
	return b.lines[idx-first:]
}

// run is one execution of a program, advanced lazily in simulated time.
type run struct {
	prog    *program
	start   time.Time
	pc      int
	elapsed time.Duration
	status  int
	exited  bool
	code    int
	forever bool // blocked for good (server, sleep infinity, busy loop)
	logs    logBuffer
	// instantSleep makes sleeps take no time (synchronous exec).
	instantSleep bool
	info         runInfo
}

// runInfo is what builtins like hostname, pwd, cat and stty report.
type runInfo struct {
	hostname string
	workdir  string
	// files are the container's mounted ConfigFileVolume files by
	// absolute path (see mountedFiles); cat reads them.
	files map[string]string
	// term is the exec session's terminal, nil without a TTY.
	term *termSize
}

func newRun(p *program, start time.Time, info runInfo) *run {
	return &run{prog: p, start: start, info: info}
}

// now is the simulated instant the run has reached.
func (r *run) now() time.Time { return r.start.Add(r.elapsed) }

// exitTime is when the run exited (valid once exited).
func (r *run) exitTime() time.Time { return r.start.Add(r.elapsed) }

// nextAt is the earliest instant at which advancing could change
// anything; zero when the run is finished or blocked forever.
func (r *run) nextAt() time.Time {
	if r.exited || r.forever || r.pc >= len(r.prog.code) {
		return time.Time{}
	}
	in := r.prog.code[r.pc]
	if in.op == opSleep && !in.infinite {
		return r.now().Add(in.dur)
	}
	return r.now()
}

// advance executes instructions up to (and including) instant until.
func (r *run) advance(until time.Time) {
	steps := 0
	for !r.exited && !r.forever {
		if r.now().After(until) {
			return
		}
		if r.pc >= len(r.prog.code) {
			r.exited, r.code = true, r.status
			return
		}
		steps++
		if steps > maxStepsPerInstant {
			r.forever = true
			return
		}
		in := r.prog.code[r.pc]
		switch in.op {
		case opEcho:
			for _, line := range strings.Split(in.text, "\n") {
				r.logs.add(r.now(), line)
			}
			r.pc++
		case opSleep:
			if in.infinite {
				if r.instantSleep {
					r.pc++
					continue
				}
				r.forever = true
				return
			}
			if !r.instantSleep {
				if r.now().Add(in.dur).After(until) {
					return
				}
				r.elapsed += in.dur
				steps = 0
			}
			r.pc++
		case opExit:
			r.exited = true
			r.code = in.n
			if in.useStatus {
				r.code = r.status
			}
			return
		case opStatus:
			r.status = in.n
			r.pc++
		case opForever:
			if r.instantSleep {
				// A synchronous exec of a server command returns at once.
				r.status = 0
				r.pc++
				continue
			}
			r.forever = true
			return
		case opJump:
			r.pc = in.n
		case opJumpIfFail:
			if r.status != 0 {
				r.pc = in.n
			} else {
				r.pc++
			}
		case opJumpIfOK:
			if r.status == 0 {
				r.pc = in.n
			} else {
				r.pc++
			}
		case opBuiltin:
			r.builtin(in)
			r.pc++
		}
	}
}

func (r *run) builtin(in instr) {
	out := func(s string) {
		for _, line := range strings.Split(s, "\n") {
			r.logs.add(r.now(), line)
		}
	}
	r.status = 0
	switch in.text {
	case "hostname":
		out(r.info.hostname)
	case "pwd":
		wd := r.info.workdir
		if wd == "" {
			wd = "/"
		}
		out(wd)
	case "whoami":
		out("root")
	case "date":
		out(r.now().UTC().Format("Mon Jan _2 15:04:05 UTC 2006"))
	case "env":
		keys := make([]string, 0, len(r.prog.env))
		for k := range r.prog.env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var lines []string
		for _, k := range keys {
			lines = append(lines, k+"="+r.prog.env[k])
		}
		if len(lines) > 0 {
			out(strings.Join(lines, "\n"))
		}
	case "cat":
		lines, status := catFiles(in.args, r.info.files, r.info.workdir)
		if len(lines) > 0 {
			out(strings.Join(lines, "\n"))
		}
		r.status = status
	case "stty":
		lines, status := sttyOutput(in.args, r.info.term)
		if len(lines) > 0 {
			out(strings.Join(lines, "\n"))
		}
		r.status = status
	case "printenv":
		if len(in.args) == 0 {
			r.builtin(instr{text: "env"})
			return
		}
		for _, k := range in.args {
			if v, ok := r.prog.env[k]; ok {
				out(v)
			} else {
				r.status = 1
			}
		}
	}
}

// runSync executes a program to completion with sleeps taking no time and
// returns its output and exit code; used by synchronous exec.
func runSync(p *program, at time.Time, info runInfo) (string, int) {
	r := newRun(p, at, info)
	r.instantSleep = true
	r.advance(at)
	var b strings.Builder
	for _, l := range r.logs.since(0) {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	if !r.exited {
		return b.String(), 0
	}
	return b.String(), r.code
}
