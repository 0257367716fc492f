package integration

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
)

// shared is the control plane of every test that needs nothing of the
// cluster but its own namespaces and virtual nodes (see startShared). Tests
// that need a control plane of their own say why where they call
// testenv.Start.
var shared controlplane.Shared

func TestMain(m *testing.M) {
	code := shared.Run(m)
	testutil.CleanupBuilds()
	os.Exit(code)
}

// startShared is testenv.Start on the package's shared control plane.
// Tests on it run in parallel (t.Parallel) with the others: each uses names
// from uniqueName for its virtual nodes and namespaces, pins its pods to
// its own node (onVirtualNode with the node's name), and changes nothing
// cluster-wide.
func startShared(t *testing.T, opts testenv.Options) *testenv.Env {
	t.Helper()
	opts.Shared = &shared
	return testenv.Start(t, opts)
}

var names atomic.Int64

// uniqueName returns base with a suffix no other test (or -count run) of
// this process gets: names of nodes and namespaces on the shared control
// plane.
func uniqueName(base string) string {
	return fmt.Sprintf("%s-%d", base, names.Add(1))
}

// sharedNodeAndNamespace starts a virtual node named after nodePrefix on
// the shared control plane, with a namespace named after nsPrefix: the
// start of most tests here.
func sharedNodeAndNamespace(t *testing.T, nodePrefix, nsPrefix string) (env *testenv.Env, nodeName, ns string) {
	t.Helper()
	nodeName = uniqueName(nodePrefix)
	env = startShared(t, testenv.Options{})
	env.StartNode(t, env.NodeConfig(t, nodeName))
	ns = uniqueName(nsPrefix)
	createNamespace(t, env.Kube, ns)
	return env, nodeName, ns
}
