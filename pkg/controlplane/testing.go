package controlplane

import (
	"context"
	"errors"
	"os"
	"testing"
)

// StartForTest starts a control plane for t and stops it in t.Cleanup.
// Missing binaries skip the test, except under CI=true where they fail it:
// a developer without bin/kube still gets a green unit-test run, but CI
// cannot silently lose its integration coverage. An empty opts.Dir becomes
// t.TempDir(), so the logs outlive an early cp.Stop() in the test; when the
// test fails, the end of every component log is written to its output.
func StartForTest(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the control plane: skipped with -short")
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	cp, err := Start(context.Background(), opts)
	if errors.Is(err, ErrBinariesMissing) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler} {
				t.Logf("--- %s log tail (%s):\n%s", c, cp.LogFile(c), cp.LogTail(c, 40))
			}
		}
		cp.Stop()
	})
	return cp
}
