package integration

import (
	"os"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBuilds()
	os.Exit(code)
}
