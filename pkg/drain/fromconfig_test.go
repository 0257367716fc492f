package drain

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/simtest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestFromConfigHonoursQuotaScale shows that the drain's ECI client keeps
// to the published quotas scaled by ECI_API_QUOTA_SCALE, as the
// controller's does: at scale 0.05 DeleteContainerGroup is a bucket of 5
// refilled at 1/s, so the 6th and 7th deletes wait about 1s and 2s. The
// simulator itself does not throttle (QuotaScale 0): any wait is the
// client's.
func TestFromConfigHonoursQuotaScale(t *testing.T) {
	simCfg := simulator.DefaultConfig()
	simCfg.QuotaScale = 0
	sim, url := simtest.Start(t, simCfg)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", simulator.DefaultAccessKeyID)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", simulator.DefaultAccessKeySecret)

	// A kubeconfig FromConfig loads but never uses: CLUSTER_ID is set, so
	// no kube-system lookup is needed.
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c"}
	kc.CurrentContext = "c"
	kcPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kcPath); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Region: simulator.DefaultRegionID, Endpoint: url, ClusterID: "cluster-a",
		NodeName: "vk", Kubeconfig: kcPath, ECIQuotaScale: 0.05}
	opts, err := FromConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if opts.ClusterID != "cluster-a" || len(opts.Nodes) != 1 || opts.Nodes[0] != "vk" {
		t.Fatalf("FromConfig = cluster %q nodes %v, want CLUSTER_ID and the configured node", opts.ClusterID, opts.Nodes)
	}
	const calls = 7
	start := time.Now()
	for i := 0; i < calls; i++ {
		if err := opts.Cloud.DeleteContainerGroup(context.Background(), "eci-missing-"+strconv.Itoa(i)); !eci.IsNotFound(err) {
			t.Fatalf("delete %d: %v, want not found", i, err)
		}
	}
	// Unscaled, the bucket of 100 would let all 7 through at once.
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("%d deletes took %v: the client did not keep to DeleteContainerGroup's quota scaled by 0.05 (5 at once, then 1/s)", calls, took)
	}
	if n := sim.Calls()["DeleteContainerGroup"][simulator.CodeContainerGroupNotFound]; n != calls {
		t.Errorf("the simulator answered %d deletes, want %d", n, calls)
	}
}
