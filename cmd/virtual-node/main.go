// Command virtual-node is the ack-virtual-node-controller: it registers the
// virtual nodes this replica owns (one, or a share of VIRTUAL_NODE_COUNT
// nodes held through Leases, see pkg/ownership) and runs every pod bound to
// them as an ECI container group. SIGTERM stops the nodes and releases
// their Leases for the other replicas; a StatefulSet ordinal pod whose
// ordinal is no longer within the StatefulSet's replicas (scaled away)
// first drains its nodes and then removes them. Configuration comes from
// environment variables (see pkg/config).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeconfig"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/version"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/virtualnode"
	"k8s.io/klog/v2"
)

func main() {
	klog.InitFlags(nil)
	if len(os.Args) > 1 && os.Args[1] == "drain" {
		os.Exit(drainMain(os.Args[2:]))
	}
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	cfg, err := config.Load()
	if err == nil {
		err = checkNodeIP(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	setMemoryLimit(cfg.MemoryLimitBytes, os.Getenv("GOMEMLIMIT"))
	setGCPercent(os.Getenv("GOGC"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := virtualnode.Run(ctx, virtualnode.Options{Config: cfg}); err != nil {
		klog.ErrorS(err, "virtual node failed")
		os.Exit(1)
	}
}

// checkNodeIP refuses, as a configuration error, a loopback node address
// with an apiserver on another host (config.CheckNodeIP). Only the
// kubeconfig is read, nothing is contacted; a kubeconfig that cannot be
// read is left for virtualnode.Run to report.
func checkNodeIP(cfg *config.Config) error {
	rc, err := kubeconfig.Load(cfg.Kubeconfig)
	if err != nil {
		return nil
	}
	return cfg.CheckNodeIP(rc.Host)
}
