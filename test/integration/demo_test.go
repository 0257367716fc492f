package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
)

// TestDemo runs `make demo`'s script (ci/demo.sh up, then down) with this
// run's binaries in a state directory of its own, and checks what its
// output promises: the pods Running on the virtual node under the
// documentation's custom RAM policy (the status fallback on the Node), and
// the hidden kube-proxy container in the pod's group but not on the pod.
func TestDemo(t *testing.T) {
	t.Parallel()
	kubectlBinary(t) // the demo is driven with kubectl, as users do
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	root, err := controlplane.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, name := range []string{"devcluster", "eci-simulator", "virtual-node"} {
		if err := os.Symlink(testutil.BuildCommand(t, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	state := t.TempDir()
	env := append(os.Environ(),
		"DEMO_STATE_DIR="+state, "DEMO_BIN_DIR="+bin,
		"KUBELET_PORT="+strconv.Itoa(testenv.FreePort(t)), "METRICS_PORT="+strconv.Itoa(testenv.FreePort(t)))
	script := filepath.Join(root, "ci", "demo.sh")
	run := func(arg string, timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script, arg)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := run("down", time.Minute); err != nil {
			t.Errorf("demo.sh down: %v\n%s", err, out)
		}
	})
	out, err := run("up", 6*time.Minute)
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(state, "*.log"))
		for _, l := range logs {
			if b, rerr := os.ReadFile(l); rerr == nil {
				t.Logf("--- %s (tail)\n%s", filepath.Base(l), tail(string(b), 40))
			}
		}
		t.Fatalf("demo.sh up: %v\n%s", err, out)
	}
	t.Logf("demo.sh up:\n%s", out)
	for _, want := range []string{
		"RAM policy: the documented custom policy",
		`deployment "hello-eci" successfully rolled out`,
		"hello from ECI",
		"ContainerInstanceAPI=True",
		"ContainerInstancePermissions=True StatusFallback",
		"pod containers:   hello\n",
		"eci-kube-proxy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// The hidden container is listed among the group's containers, beside
	// the pod's own.
	if i := strings.Index(out, "group containers"); i < 0 {
		t.Error("demo output lacks the group's containers")
	} else if g := out[i:]; !strings.Contains(g, "hello") || !strings.Contains(g, "eci-kube-proxy") {
		t.Errorf("group containers section %q: want hello and eci-kube-proxy", g)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
