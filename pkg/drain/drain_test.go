package drain

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// noCloud is never called: Run must refuse bad options before using it.
type noCloud struct{ t *testing.T }

func (c noCloud) DescribeContainerGroups(context.Context, *eci.DescribeContainerGroupsRequest) (*eci.DescribeContainerGroupsResponse, error) {
	c.t.Fatal("cloud called with invalid options")
	return nil, nil
}

func (c noCloud) DeleteContainerGroup(context.Context, string) error {
	c.t.Fatal("cloud called with invalid options")
	return nil
}

func TestRunRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no clients", Options{ClusterID: "c", Nodes: []string{"n"}}, "ECI client are required"},
		{"no cluster id", Options{Cloud: noCloud{t}, Nodes: []string{"n"}}, "CLUSTER_ID"},
		{"no nodes", Options{Cloud: noCloud{t}, ClusterID: "c"}, "no virtual node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.Cloud != nil {
				// Any non-nil client passes the first check; it is never used.
				tt.opts.Kube = kubeNeverUsed
			}
			_, err := Run(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		name      string
		report    Report
		clean     bool
		wantLines []string
	}{
		{
			name: "everything deleted",
			report: Report{Nodes: []NodeReport{{Node: "vk", Cordoned: true, PodsDeleted: []string{"ns/a"},
				GroupsGone: []Group{{ID: "eci-1", Pod: "ns/a"}}, GroupsDeleted: []Group{{ID: "eci-2", Pod: "ns/b"}}}}},
			clean: true,
			wantLines: []string{"node vk: cordoned", "pods deleted (1): ns/a", "group deleted by its controller: eci-1 (pod ns/a)",
				"group deleted by drain: eci-2 (pod ns/b)", "drain complete: 2 container groups deleted, none left"},
		},
		{
			name: "a group left names the reason",
			report: Report{Nodes: []NodeReport{{Node: "vk", GroupsLeft: []Group{{ID: "eci-3", Pod: "ns/c", Why: "Forbidden.RAM"}},
				PodsLeft: []string{"ns/c (its container group is still there)"}}}},
			clean: false,
			wantLines: []string{"node vk: not registered (not cordoned)", "group LEFT: eci-3 (pod ns/c): Forbidden.RAM",
				"pods left (1): ns/c (its container group is still there)", "drain INCOMPLETE: 0 container groups deleted, 1 left"},
		},
		{
			name:      "a failed listing is not clean",
			report:    Report{Nodes: []NodeReport{{Node: "vk", Cordoned: true, Errors: []string{"list container groups: boom"}}}},
			clean:     false,
			wantLines: []string{"error: list container groups: boom", "drain INCOMPLETE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.report.Clean(); got != tt.clean {
				t.Errorf("Clean() = %v, want %v", got, tt.clean)
			}
			var b bytes.Buffer
			tt.report.Write(&b)
			for _, want := range tt.wantLines {
				if !strings.Contains(b.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, b.String())
				}
			}
		})
	}
}

// kubeNeverUsed is a real client pointed at a closed port; the option
// checks must fail before any request.
var kubeNeverUsed = kubernetes.NewForConfigOrDie(&rest.Config{Host: "http://127.0.0.1:1"})
