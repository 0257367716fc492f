package simulator

import (
	"strings"
	"testing"
	"time"
)

func TestScriptSync(t *testing.T) {
	env := map[string]string{"FOO": "bar", "EMPTY": ""}
	tests := []struct {
		name string
		argv []string
		mode runMode
		out  string
		code int
	}{
		{"echo", []string{"echo", "hi", "there"}, modeExec, "hi there\n", 0},
		{"quotes", []string{"sh", "-c", `echo "hello world"; echo 'a;b'`}, modeExec, "hello world\na;b\n", 0},
		{"and skips", []string{"sh", "-c", "false && echo no; echo yes"}, modeExec, "yes\n", 0},
		{"or runs", []string{"sh", "-c", "false || echo alt"}, modeExec, "alt\n", 0},
		{"and runs", []string{"sh", "-c", "true && echo both && exit 4"}, modeExec, "both\n", 4},
		{"exit stops", []string{"sh", "-c", "echo a; exit 3; echo b"}, modeExec, "a\n", 3},
		{"last status", []string{"sh", "-c", "echo a; false"}, modeExec, "a\n", 1},
		{"exit without code", []string{"sh", "-c", "false; exit"}, modeExec, "", 1},
		{"exit wraps", []string{"sh", "-c", "exit 257"}, modeExec, "", 1},
		{"vars", []string{"sh", "-c", "echo $FOO ${FOO}x \"$FOO\" '$FOO' [$EMPTY] $NOPE."}, modeExec, "bar barx bar $FOO [] .\n", 0},
		{"newlines", []string{"sh", "-c", "echo one\necho two\n\n"}, modeExec, "one\ntwo\n", 0},
		{"comments", []string{"sh", "-c", "# setup\necho x # trailing"}, modeExec, "x\n", 0},
		{"printf", []string{"sh", "-c", `printf 'a\nb\n'`}, modeExec, "a\nb\n", 0},
		{"builtins", []string{"sh", "-c", "hostname; pwd; printenv FOO"}, modeExec, "box\n/work\nbar\n", 0},
		{"not found", []string{"sh", "-c", "nosuch --flag; echo $?"}, modeExec, "sim: nosuch: command not found\n$?\n", 0},
		{"not found status", []string{"nosuch"}, modeExec, "sim: nosuch: command not found\n", 127},
		{"syntax error", []string{"sh", "-c", `echo "unterminated`}, modeExec, "sim: syntax error: unterminated quote\n", 2},
		{"done without do", []string{"sh", "-c", "while true; echo x; done"}, modeExec, "sim: syntax error: unexpected \"done\"\n", 2},
		{"loop with exit", []string{"sh", "-c", "while true; do echo x; exit 5; done"}, modeExec, "x\n", 5},
		{"until", []string{"sh", "-c", "until true; do echo never; done; echo after"}, modeExec, "after\n", 0},
		{"exec builtin", []string{"sh", "-c", "exec echo via-exec"}, modeExec, "via-exec\n", 0},
		{"nested shell", []string{"sh", "-c", "sh -c 'echo inner'; echo outer"}, modeExec, "inner\nouter\n", 0},
		{"noops", []string{"sh", "-ec", "set -e; export A=1; cd /tmp; echo ok"}, modeExec, "ok\n", 0},
		{"sleep suffixes", []string{"sh", "-c", "sleep 1m 2s 0.5; echo slept"}, modeExec, "slept\n", 0},
		{"bad sleep", []string{"sleep", "soon"}, modeExec, "sleep: invalid time interval 'soon'\n", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runSync(compileArgv(tc.argv, env, tc.mode), t0, runInfo{hostname: "box", workdir: "/work"})
			if out != tc.out || code != tc.code {
				t.Fatalf("got %q/%d, want %q/%d", out, code, tc.out, tc.code)
			}
		})
	}
}

func TestScriptTiming(t *testing.T) {
	tests := []struct {
		name    string
		argv    []string
		at      time.Duration
		lines   int
		exited  bool
		code    int
		forever bool
	}{
		{"loop", []string{"sh", "-c", "while true; do echo x; sleep 1; done"}, 2500 * time.Millisecond, 3, false, 0, false},
		{"fractional sleep", []string{"sh", "-c", "sleep 1.5; echo done"}, 1499 * time.Millisecond, 0, false, 0, false},
		{"fractional sleep ends", []string{"sh", "-c", "sleep 1.5; echo done"}, 1500 * time.Millisecond, 1, true, 0, false},
		{"infinity", []string{"sh", "-c", "echo up; sleep infinity"}, time.Hour, 1, false, 0, true},
		{"server", []string{"nginx", "-g", "daemon off;"}, time.Hour, 0, false, 0, true},
		{"entrypoint", nil, time.Hour, 0, false, 0, true},
		{"script server", []string{"sh", "-c", "echo starting; exec my-server --port 80"}, time.Hour, 1, false, 0, true},
		{"busy loop is cut off", []string{"sh", "-c", "while true; do echo spin; done"}, 0, maxLogLines, false, 0, true},
		{"bare sleep", []string{"/bin/sleep", "3"}, 3 * time.Second, 0, true, 0, false},
		{"exit after sleep", []string{"sh", "-c", "sleep 2 && exit 9"}, 2 * time.Second, 0, true, 9, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRun(compileArgv(tc.argv, nil, modeContainer), t0, runInfo{})
			r.advance(t0.Add(tc.at))
			if got := len(r.logs.since(0)); got != tc.lines || r.exited != tc.exited || r.forever != tc.forever {
				t.Fatalf("lines %d exited %v forever %v, want %d %v %v", got, r.exited, r.forever, tc.lines, tc.exited, tc.forever)
			}
			if tc.exited && (r.code != tc.code || !r.exitTime().Equal(t0.Add(tc.at))) {
				t.Fatalf("exit %d at %v", r.code, r.exitTime().Sub(t0))
			}
		})
	}
	// Advancing in small steps gives the same result as one big step.
	a := newRun(compileArgv([]string{"sh", "-c", "while true; do echo x; sleep 0.3; done"}, nil, modeContainer), t0, runInfo{})
	b := newRun(a.prog, t0, runInfo{})
	for d := time.Duration(0); d <= 10*time.Second; d += 70 * time.Millisecond {
		a.advance(t0.Add(d))
	}
	b.advance(t0.Add(10*time.Second - 10*time.Second%(70*time.Millisecond)))
	if a.logs.total != b.logs.total || !a.nextAt().Equal(b.nextAt()) {
		t.Fatalf("incremental %d/%v vs direct %d/%v", a.logs.total, a.nextAt(), b.logs.total, b.nextAt())
	}
}

func TestExpandK8sVars(t *testing.T) {
	env := map[string]string{"A": "1", "B": "two"}
	for in, want := range map[string]string{
		"$(A)":        "1",
		"x$(B)y":      "xtwoy",
		"$$(A)":       "$(A)",
		"$(MISSING)":  "$(MISSING)",
		"$A":          "$A",
		"cost $":      "cost $",
		"$(A)-$(B)":   "1-two",
		"no vars":     "no vars",
		"$(unclosed":  "$(unclosed",
		"$(A)$(A)$$$": "11$$",
	} {
		if got := expandK8sVars(in, env); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
	if !strings.Contains(expandK8sVars("$(A)", nil), "$(A)") {
		t.Error("nil env must leave references alone")
	}
}
