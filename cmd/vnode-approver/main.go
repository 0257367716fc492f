// Command vnode-approver approves the client-certificate CSRs of virtual
// nodes in self-managed clusters (see pkg/approver). Configuration comes
// from environment variables (see approver.Config); a bad value exits
// with code 2 and a message naming the variable.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/approver"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/version"
	"k8s.io/klog/v2"
)

func main() {
	klog.InitFlags(nil)
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	cfg, err := approver.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := approver.Run(ctx, cfg); err != nil {
		klog.ErrorS(err, "vnode-approver failed")
		os.Exit(1)
	}
}
