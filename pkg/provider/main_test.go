package provider

import (
	"os"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
)

// shared is the one real control plane of this package's tests that need
// an apiserver, started by the first of them and stopped by TestMain.
var shared controlplane.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }
