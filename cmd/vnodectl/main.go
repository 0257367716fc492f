// Command vnodectl connects a self-managed Kubernetes cluster to ECI
// virtual nodes: `vnodectl kubeconfig`, `vnodectl doctor` and
// `vnodectl exclude-daemonsets` and `vnodectl addon` (see pkg/vnodectl).
// Exit codes: 0 success, 1 failure (including a failed doctor check), 2 bad
// usage, 3 a pod of the add-on cannot start (`vnodectl addon` stopped
// waiting early, naming it), 4 a wait ran out its --timeout, 130/143
// interrupted by SIGINT/SIGTERM (the command says what state it left).
// A second SIGINT or SIGTERM ends vnodectl at once.
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
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		// The first signal cancels the command, which then says what
		// state it leaves; the default action is back for a second one.
		signal.Stop(sigs)
		cancel(&vnodectl.SignalError{Signal: s})
	}()
	code := vnodectl.Execute(ctx, vnodectl.Options{Version: version.Version}, os.Args[1:])
	cancel(nil)
	os.Exit(code)
}
