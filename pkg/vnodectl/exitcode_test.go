package vnodectl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"failure", errors.New("boom"), 1},
		{"usage", &ExitError{Code: 2, Err: errors.New("bad flag")}, 2},
		{"wrapped usage", fmt.Errorf("x: %w", &ExitError{Code: 2, Err: errors.New("bad")}), 2},
		{"missing required flag", errors.New(`required flag(s) "mode" not set`), 2},
		{"a pod of the add-on cannot start", fmt.Errorf("x\nState: ...: %w", &addon.PodBlockedError{Pod: "p", Reason: "Unschedulable"}), ExitPodBlocked},
		{"wait timed out", fmt.Errorf("x: %w", &addon.WaitTimeoutError{What: "w"}), ExitTimeout},
		{"SIGINT", fmt.Errorf("wait: stopped: %w", &SignalError{Signal: os.Interrupt}), 130},
		{"SIGTERM", fmt.Errorf("%w: context canceled", &SignalError{Signal: syscall.SIGTERM}), 143},
		{"a signal wins over what it interrupted", fmt.Errorf("%w: %w", &SignalError{Signal: os.Interrupt}, &addon.WaitTimeoutError{}), 130},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("%s: ExitCode = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestUsageErrors runs the root command in-process: every usage error
// exits 2 with a message naming the flag, before any cluster is contacted.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"kubeconfig"}, `"mode"`},
		{[]string{"kubeconfig", "--mode", "admin"}, "--mode"},
		{[]string{"doctor", "-o", "yaml"}, "-o"},
		{[]string{"exclude-daemonsets", "--nope"}, "--nope"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"addon", "uninstall", "--yes"}, "--skip-drain"},
		{[]string{"addon", "install", "--wait=maybe"}, "--wait"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Execute(context.Background(), Options{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}, tt.args)
		if code != 2 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", tt.args, code, errOut.String(), tt.want)
		}
	}
}
