package simulator

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestSysctlLists: CreateContainerGroup takes the safe sysctls in
// SecurityContext.Sysctl.N and the unsafe ones in
// HostSecurityContext.Sysctl.N, each list only its own (the published
// descriptions' valid values), and keeps both.
func TestSysctlLists(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		list, name string
		ok         bool
	}{
		{"SecurityContext.Sysctl", "net.ipv4.ping_group_range", true},
		{"SecurityContext.Sysctl", "net.ipv4.ip_unprivileged_port_start", true},
		{"SecurityContext.Sysctl", "net.ipv4.tcp_syncookies", true},
		{"SecurityContext.Sysctl", "kernel.shm_rmid_forced", true},
		{"SecurityContext.Sysctl", "net.core.somaxconn", false},
		{"SecurityContext.Sysctl", "kernel.msgmax", false},
		{"HostSecurityContext.Sysctl", "net.core.somaxconn", true},
		{"HostSecurityContext.Sysctl", "net.ipv4.ip_local_port_range", true},
		{"HostSecurityContext.Sysctl", "kernel.shmmax", true},
		{"HostSecurityContext.Sysctl", "kernel.msgmax", true},
		{"HostSecurityContext.Sysctl", "kernel.sem", true},
		{"HostSecurityContext.Sysctl", "fs.mqueue.msg_max", true},
		{"HostSecurityContext.Sysctl", "kernel.shm_rmid_forced", false},
		{"HostSecurityContext.Sysctl", "net.ipv4.ping_group_range", false},
		{"HostSecurityContext.Sysctl", "vm.max_map_count", false},
	}
	for i, tt := range tests {
		t.Run(tt.list+" "+tt.name, func(t *testing.T) {
			params := createParams(fmt.Sprintf("sysctl-%d", i), map[string]string{tt.list + ".1.Name": tt.name, tt.list + ".1.Value": "7"})
			var out struct{ ContainerGroupId string }
			err := e.call("CreateContainerGroup", params, &out)
			if !tt.ok {
				se := wantCode(t, err, CodeInvalidParameter, http.StatusBadRequest)
				if !strings.Contains(se.Message(), tt.list+".1.Name") || !strings.Contains(se.Message(), tt.name) {
					t.Errorf("message %q names neither the parameter nor the sysctl", se.Message())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, _ := e.sim.Group(out.ContainerGroupId)
			got := g.EciSecurityContext.Sysctls
			if strings.HasPrefix(tt.list, "Host") {
				got = g.EciSecurityContext.HostSysctls
			}
			if len(got) != 1 || got[0] != (Sysctl{Name: tt.name, Value: "7"}) {
				t.Errorf("stored sysctls %+v / host %+v, want %s=7 in %s", g.EciSecurityContext.Sysctls, g.EciSecurityContext.HostSysctls, tt.name, tt.list)
			}
		})
	}
}

// TestContainerSecurityParameters: the flat SecurityContextPrivileged,
// SecurityContextRunAsGroup and SecurityContextRunAsNonRoot of Container.N
// are kept beside the nested SecurityContext.*; the Describe answer renders
// only what the published response has.
func TestContainerSecurityParameters(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("secure", map[string]string{
		"Container.1.SecurityContextPrivileged":   "true",
		"Container.1.SecurityContextRunAsGroup":   "0",
		"Container.1.SecurityContextRunAsNonRoot": "true",
		"Container.1.SecurityContext.RunAsUser":   "1000",
	})
	g, _ := e.sim.Group(id)
	sc := g.Containers[0].SecurityContext
	if sc == nil || !sc.Privileged || sc.RunAsGroup == nil || *sc.RunAsGroup != 0 || !sc.RunAsNonRoot || sc.RunAsUser != 1000 {
		t.Fatalf("stored security context %+v", sc)
	}
	var raw map[string]any
	e.mustCall("DescribeContainerGroups", map[string]string{"ContainerGroupIds": `["` + id + `"]`}, &raw)
	wire := fmt.Sprint(raw)
	for _, name := range []string{"Privileged", "RunAsGroup", "RunAsNonRoot", "HostSysctls"} {
		if strings.Contains(wire, name) {
			t.Errorf("Describe renders %s, which the published answer does not have", name)
		}
	}
	if !strings.Contains(wire, "RunAsUser:1000") {
		t.Errorf("Describe lacks SecurityContext.RunAsUser: %s", wire)
	}
	for _, bad := range []map[string]string{
		{"Container.1.SecurityContextRunAsGroup": "x"},
		{"Container.1.SecurityContextRunAsNonRoot": "maybe"},
	} {
		wantCode(t, e.call("CreateContainerGroup", createParams("bad", bad), nil), CodeInvalidParameter, http.StatusBadRequest)
	}
}
