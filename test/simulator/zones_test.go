package simulator

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const allVSwitches = "vsw-sim-h,vsw-sim-i,vsw-sim-j"

func TestVSwitchSelection(t *testing.T) {
	tests := []struct {
		name     string
		stock    map[string]float64 // zone -> vCPU
		vsw      string
		strategy string
		zones    []string // zones of successive 2-vCPU groups
	}{
		{"ordered fills first zone first", map[string]float64{"cn-hangzhou-h": 4, "cn-hangzhou-i": 100, "cn-hangzhou-j": 100},
			allVSwitches, "VSwitchOrdered", []string{"cn-hangzhou-h", "cn-hangzhou-h", "cn-hangzhou-i"}},
		{"ordered respects list order", map[string]float64{"cn-hangzhou-h": 100, "cn-hangzhou-i": 100, "cn-hangzhou-j": 100},
			"vsw-sim-j,vsw-sim-h", "VSwitchOrdered", []string{"cn-hangzhou-j", "cn-hangzhou-j"}},
		{"random picks most free stock", map[string]float64{"cn-hangzhou-h": 10, "cn-hangzhou-i": 100, "cn-hangzhou-j": 50},
			allVSwitches, "", []string{"cn-hangzhou-i", "cn-hangzhou-i"}},
		{"random balances", map[string]float64{"cn-hangzhou-h": 4, "cn-hangzhou-i": 6, "cn-hangzhou-j": 4},
			allVSwitches, "VSwitchRandom", []string{"cn-hangzhou-i", "cn-hangzhou-h", "cn-hangzhou-j", "cn-hangzhou-i"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			for z, cpu := range tc.stock {
				if err := e.sim.SetStock(z, cpu, 1000); err != nil {
					t.Fatal(err)
				}
			}
			for i, want := range tc.zones {
				id := e.create("grp", map[string]string{"VSwitchId": tc.vsw, "ScheduleStrategy": tc.strategy})
				g := e.describe(id)
				if g.ZoneId != want || g.VSwitchId != "vsw-sim-"+want[len(want)-1:] {
					t.Fatalf("group %d in %s/%s, want %s", i, g.ZoneId, g.VSwitchId, want)
				}
			}
		})
	}
}

func TestNoStockAndRelease(t *testing.T) {
	e := newEnv(t, nil)
	for _, z := range []string{"cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"} {
		if err := e.sim.SetStock(z, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	err := e.call("CreateContainerGroup", createParams("nostock", map[string]string{"VSwitchId": allVSwitches}), nil)
	se := wantCode(t, err, CodeNoStock, http.StatusForbidden)
	for _, z := range []string{"cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"} {
		if !strings.Contains(se.Message(), z) {
			t.Errorf("message %q does not name zone %s", se.Message(), z)
		}
	}

	// Two 2-vCPU groups fill a 4-vCPU zone; deleting one frees room.
	if err := e.sim.SetStock("cn-hangzhou-h", 4, 8); err != nil {
		t.Fatal(err)
	}
	a := e.create("aa", nil)
	e.create("bb", nil)
	err = e.call("CreateContainerGroup", createParams("cc", nil), nil)
	wantCode(t, err, CodeNoStock, http.StatusForbidden)
	e.mustCall("DeleteContainerGroup", map[string]string{"ContainerGroupId": a}, nil)
	e.create("cc", nil)

	// Memory is stock too: default groups need 4 GiB each.
	if err := e.sim.SetStock("cn-hangzhou-i", 100, 6); err != nil {
		t.Fatal(err)
	}
	e.create("m1", map[string]string{"VSwitchId": "vsw-sim-i"})
	err = e.call("CreateContainerGroup", createParams("m2", map[string]string{"VSwitchId": "vsw-sim-i"}), nil)
	wantCode(t, err, CodeNoStock, http.StatusForbidden)

	// A terminal group releases its stock.
	if err := e.sim.SetStock("cn-hangzhou-j", 2, 4); err != nil {
		t.Fatal(err)
	}
	e.create("job", merge(script("Container.1", "sleep 10"), map[string]string{"VSwitchId": "vsw-sim-j", "RestartPolicy": "Never"}))
	err = e.call("CreateContainerGroup", createParams("job2", map[string]string{"VSwitchId": "vsw-sim-j"}), nil)
	wantCode(t, err, CodeNoStock, http.StatusForbidden)
	e.clock.Advance(10 * time.Second)
	e.create("job2", map[string]string{"VSwitchId": "vsw-sim-j"})

	st := e.sim.State()
	for _, z := range st.Zones {
		if z.Free.Cpu != z.Stock.Cpu-z.Used.Cpu {
			t.Errorf("zone %s: free %v != stock %v - used %v", z.ZoneId, z.Free.Cpu, z.Stock.Cpu, z.Used.Cpu)
		}
	}
}

func TestResourcesAndIPs(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name     string
		extra    map[string]string
		cpu, mem float64
	}{
		{"default", nil, 2, 4},
		{"group level", map[string]string{"Cpu": "4.000000", "Memory": "8.000000"}, 4, 8},
		{"sum of containers", map[string]string{"Container.1.Cpu": "0.500000", "Container.1.Memory": "1.000000",
			"Container.2.Name": "b", "Container.2.Image": "x", "Container.2.Cpu": "1.000000", "Container.2.Memory": "2.000000"}, 1.5, 3},
		{"instance type", map[string]string{"InstanceType": "ecs.c6.xlarge"}, 4, 8},
	}
	ips := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.sub(t)
			g := e.describe(e.create("res", tc.extra))
			if g.Cpu != tc.cpu || g.Memory != tc.mem {
				t.Fatalf("cpu/mem %v/%v, want %v/%v", g.Cpu, g.Memory, tc.cpu, tc.mem)
			}
			if ips[g.IntranetIp] || !strings.HasPrefix(g.IntranetIp, "192.168.1.") {
				t.Fatalf("IP %s reused or outside the vSwitch CIDR", g.IntranetIp)
			}
			ips[g.IntranetIp] = true
		})
	}
	err := e.call("CreateContainerGroup", createParams("big", map[string]string{"Cpu": "65.000000"}), nil)
	wantCode(t, err, CodeInvalidParameter, http.StatusBadRequest)
	err = e.call("CreateContainerGroup", createParams("zone", map[string]string{"ZoneId": "cn-hangzhou-x"}), nil)
	wantCode(t, err, CodeInvalidZoneID, http.StatusNotFound)
	err = e.call("CreateContainerGroup", createParams("zone", map[string]string{"ZoneId": "cn-hangzhou-i"}), nil)
	wantCode(t, err, CodeInvalidParameter, http.StatusBadRequest)
}

func TestIPExhaustion(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Zones = []Zone{{ZoneId: "z1", StockCpu: 100, StockMemory: 100,
			VSwitches: []VSwitch{{VSwitchId: "vsw-tiny", CidrBlock: "10.0.0.0/29"}}}}
	})
	var got []string
	for i := 0; i < 6; i++ {
		got = append(got, e.describe(e.create("nn", map[string]string{"VSwitchId": "vsw-tiny"})).IntranetIp)
	}
	if got[0] != "10.0.0.1" || got[5] != "10.0.0.6" {
		t.Fatalf("IPs %v", got)
	}
	err := e.call("CreateContainerGroup", createParams("nn", map[string]string{"VSwitchId": "vsw-tiny"}), nil)
	wantCode(t, err, CodeVSwitchIPNotEnough, http.StatusForbidden)
}
