// Command devcluster runs a local Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler) until SIGINT or
// SIGTERM, for the demo and for manual experiments. State, kubeconfig and
// logs live in -dir; the pid file appears there once the cluster is ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
)

func main() {
	dir := flag.String("dir", ".devcluster", "state directory (pki, etcd data, kubeconfig, logs, pid file)")
	flag.Parse()
	log.SetPrefix("devcluster: ")
	log.SetFlags(0)
	if err := run(*dir); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// A second instance would wipe the first one's etcd data. A lock, not
	// the pid file, decides: the kernel drops it however we die.
	lock, err := os.OpenFile(filepath.Join(dir, "devcluster.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(filepath.Join(dir, "devcluster.pid"))
		return fmt.Errorf("another devcluster (pid %s) holds %s: %w", strings.TrimSpace(string(pid)), dir, err)
	}
	pidFile := filepath.Join(dir, "devcluster.pid")
	// Removed first so scripts waiting for the file never see a stale one.
	_ = os.Remove(pidFile)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	begin := time.Now()
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: dir})
	if err != nil {
		return err
	}
	defer cp.Stop()
	defer os.Remove(pidFile)

	fmt.Printf("control plane %s ready at %s (started in %v)\n", cp.Version(), cp.APIServerURL(), time.Since(begin).Round(100*time.Millisecond))
	fmt.Printf("kubeconfig: %s\nlogs: %s\n", cp.Kubeconfig(), filepath.Dir(cp.LogFile(controlplane.KubeAPIServer)))
	fmt.Printf("export KUBECONFIG=%s\n", cp.Kubeconfig())
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}

	<-ctx.Done()
	log.Print("stopping")
	return nil
}
