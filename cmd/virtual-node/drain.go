package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/drain"
)

// drainMain runs `virtual-node drain [flags] [node...]`: the clean-up a
// Helm pre-delete hook runs with the controller's image and environment.
// Exit codes: 0 nothing left, 1 something left (the report says what and
// why), 2 bad configuration or arguments.
func drainMain(args []string) int {
	fs := flag.NewFlagSet("drain", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: virtual-node drain [flags] [node ...]\n\nCordons the virtual nodes (default: the configured ones), deletes their pods,\nwaits for their ECI container groups to go, deletes what is left and reports it.")
		fs.PrintDefaults()
	}
	podTimeout := fs.Duration("pod-timeout", drain.DefaultPodTimeout, "how long to wait for the controller to delete the pods")
	groupTimeout := fs.Duration("group-timeout", drain.DefaultGroupTimeout, "how long to wait for the container groups to leave the cloud before deleting them")
	statefulSet := fs.String("statefulset", "", "drain the nodes of this StatefulSet of the controller (in POD_NAMESPACE): <name>-<ordinal> for its replicas and any such node still registered, plus VIRTUAL_NODE_LEGACY_NAMES")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := drain.FromConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "drain:", err)
		return 1
	}
	switch {
	case fs.NArg() > 0 && *statefulSet != "":
		fmt.Fprintln(os.Stderr, "drain: give either node names or --statefulset, not both")
		return 2
	case fs.NArg() > 0:
		opts.Nodes = fs.Args()
	case *statefulSet != "":
		if opts.Nodes, err = drain.StatefulSetNodes(ctx, opts.Kube, cfg.PodNamespace, *statefulSet, cfg.LegacyNodes); err != nil {
			fmt.Fprintln(os.Stderr, "drain:", err)
			return 1
		}
		if len(opts.Nodes) == 0 {
			fmt.Println("drain: StatefulSet " + cfg.PodNamespace + "/" + *statefulSet + " has no nodes: nothing to drain")
			return 0
		}
	}
	opts.PodTimeout, opts.GroupTimeout = *podTimeout, *groupTimeout
	rep, err := drain.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rep.Write(os.Stdout)
	if !rep.Clean() {
		return 1
	}
	return 0
}
