// Command virtual-node is the ack-virtual-node-controller: it registers a
// virtual node and runs every pod bound to it as an ECI container group.
// Configuration comes from environment variables (see pkg/config).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/virtualnode"
	"k8s.io/klog/v2"
)

func main() {
	klog.InitFlags(nil)
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(virtualnode.Version)
		return
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := virtualnode.Run(ctx, virtualnode.Options{Config: cfg}); err != nil {
		klog.ErrorS(err, "virtual node failed")
		os.Exit(1)
	}
}
