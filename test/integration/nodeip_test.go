package integration

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// remoteAPIServer is the kubeconfig server of TestNodeIPStartupErrors: an
// address of another host (RFC 5737 documentation range, never routed),
// which the controller must refuse before contacting it.
const remoteAPIServer = "https://198.51.100.1:6443"

// TestNodeIPStartupErrors runs the controller binary with a kubeconfig
// whose apiserver is on another host and a loopback node address, set or
// (in a network namespace with no address at all) detected: it stops with
// exit code 2 and a message naming VIRTUAL_NODE_IP and the fix, before
// anything is contacted.
func TestNodeIPStartupErrors(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	bin := testutil.BuildCommand(t, "virtual-node")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["remote"] = &clientcmdapi.Cluster{Server: remoteAPIServer, InsecureSkipTLSVerify: true}
	kc.AuthInfos["remote"] = &clientcmdapi.AuthInfo{Token: "unused"}
	kc.Contexts["remote"] = &clientcmdapi.Context{Cluster: "remote", AuthInfo: "remote"}
	kc.CurrentContext = "remote"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	base := []string{"ECI_VSWITCH=vsw-a", "ECI_SECURITY_GROUP=sg-a", "ECI_REGION=cn-hangzhou", "HOME=" + t.TempDir(), "KUBECONFIG=" + kubeconfig}
	tests := []struct {
		name  string
		env   []string
		netns bool // run in a network namespace of its own: no address, not even loopback
		want  []string
	}{
		{name: "explicit loopback", env: []string{"VIRTUAL_NODE_IP=127.0.0.1"},
			want: []string{"VIRTUAL_NODE_IP: 127.0.0.1 is a loopback address", remoteAPIServer, "set VIRTUAL_NODE_IP to an address of this host that the apiserver can reach"}},
		{name: "no address but loopback", netns: true,
			want: []string{"VIRTUAL_NODE_IP is unset and this host has no network address other than loopback", remoteAPIServer, "set VIRTUAL_NODE_IP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			if tt.netns {
				unshare, err := exec.LookPath("unshare")
				if err == nil {
					err = exec.Command(unshare, "--net", "true").Run()
				}
				if err != nil {
					t.Skipf("cannot make a network namespace with unshare --net (needs root or user namespaces): %v", err)
				}
				cmd = exec.CommandContext(ctx, unshare, "--net", bin)
			}
			cmd.Env = append(append([]string{}, base...), tt.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit = %v, want exit code 2; output: %s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output %q does not contain %q", out, w)
				}
			}
		})
	}
}
