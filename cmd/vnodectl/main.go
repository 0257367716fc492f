// Command vnodectl connects a self-managed Kubernetes cluster to ECI
// virtual nodes: `vnodectl kubeconfig`, `vnodectl doctor` and
// `vnodectl exclude-daemonsets` (see pkg/vnodectl). Exit codes: 0 success,
// 1 failure (including a failed doctor check), 2 bad usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/version"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := vnodectl.Execute(ctx, vnodectl.Options{Version: version.Version}, os.Args[1:])
	stop()
	os.Exit(code)
}
