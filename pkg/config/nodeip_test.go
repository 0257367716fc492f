package config

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
)

// listed is an InterfaceLister with a fixed answer.
type listed struct {
	ifaces []HostInterface
	err    error
}

func (l listed) Interfaces() ([]HostInterface, error) { return l.ifaces, l.err }

// withInterfaces makes Load and Defaults see l for the rest of the test.
func withInterfaces(t *testing.T, l InterfaceLister) {
	t.Helper()
	old := hostInterfaces
	hostInterfaces = l
	t.Cleanup(func() { hostInterfaces = old })
}

func ips(s ...string) []net.IP {
	out := make([]net.IP, len(s))
	for i, a := range s {
		out[i] = net.ParseIP(a)
	}
	return out
}

var (
	lo      = HostInterface{Name: "lo", Flags: net.FlagUp | net.FlagLoopback, Addrs: ips("127.0.0.1", "::1")}
	up      = net.FlagUp | net.FlagBroadcast | net.FlagRunning
	eth0    = HostInterface{Name: "eth0", Flags: up, Addrs: ips("fe80::1", "10.0.0.5", "fd00::5")}
	eth0v6  = HostInterface{Name: "eth0", Flags: up, Addrs: ips("fe80::1", "fd00::5")}
	eth1    = HostInterface{Name: "eth1", Flags: up, Addrs: ips("192.168.1.7")}
	eth0off = HostInterface{Name: "eth0", Flags: net.FlagBroadcast, Addrs: ips("10.0.0.5")}
)

func TestChooseNodeIP(t *testing.T) {
	tests := []struct {
		name   string
		ifaces []HostInterface
		want   string // "" means none
	}{
		{"nothing", nil, ""},
		{"only loopback", []HostInterface{lo}, ""},
		{"first interface after loopback", []HostInterface{lo, eth0, eth1}, "10.0.0.5"},
		{"interface order, not address order", []HostInterface{lo, eth1, eth0}, "192.168.1.7"},
		{"IPv4 of a later interface before IPv6", []HostInterface{lo, eth0v6, eth1}, "192.168.1.7"},
		{"IPv6 when there is no IPv4, never link-local", []HostInterface{lo, eth0v6}, "fd00::5"},
		{"only link-local", []HostInterface{lo, {Name: "eth0", Flags: up, Addrs: ips("fe80::1", "169.254.3.4")}}, ""},
		{"interface down", []HostInterface{lo, eth0off, eth1}, "192.168.1.7"},
		{"loopback address on another interface", []HostInterface{{Name: "dummy0", Flags: up, Addrs: ips("127.0.0.2")}, eth1}, "192.168.1.7"},
		{"unspecified and multicast skipped", []HostInterface{{Name: "x", Flags: up, Addrs: ips("0.0.0.0", "224.0.0.1", "::")}}, ""},
		{"nil address skipped", []HostInterface{{Name: "x", Flags: up, Addrs: []net.IP{nil, net.ParseIP("10.1.1.1")}}}, "10.1.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ChooseNodeIP(tt.ifaces)
			if tt.want == "" {
				if ok {
					t.Errorf("ChooseNodeIP = %v, want none", got)
				}
				return
			}
			if !ok || got.String() != tt.want {
				t.Errorf("ChooseNodeIP = %v, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

func TestLocalAPIServer(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"https://127.0.0.1:6443", true},
		{"https://127.0.0.53", true},
		{"https://[::1]:6443", true},
		{"https://localhost:6443", true},
		{"https://LOCALHOST.:6443", true},
		{"127.0.0.1:6443", true},
		{"https://10.0.0.1:6443", false},
		{"https://kubernetes.default.svc:443", false},
		{"https://apiserver.example.com", false},
		{"https://[fd00::1]:6443", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := LocalAPIServer(tt.host); got != tt.want {
			t.Errorf("LocalAPIServer(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestCheckNodeIP(t *testing.T) {
	tests := []struct {
		name      string
		nodeIP    string
		detected  bool
		apiserver string
		wantErr   []string // substrings; nil means no error
	}{
		{"loopback with a local apiserver", "127.0.0.1", true, "https://127.0.0.1:6443", nil},
		{"explicit loopback with a local apiserver", "127.0.0.1", false, "https://localhost:6443", nil},
		{"host address with a remote apiserver", "10.0.0.5", true, "https://10.0.0.1:6443", nil},
		{"pod IP in a cluster", "172.20.1.9", false, "https://192.168.0.1:443", nil},
		{"only loopback on this host, remote apiserver", "127.0.0.1", true, "https://10.0.0.1:6443",
			[]string{"VIRTUAL_NODE_IP is unset", "no network address other than loopback", "https://10.0.0.1:6443", "set VIRTUAL_NODE_IP to an address", "status.podIP"}},
		{"explicit loopback, remote apiserver", "127.0.0.1", false, "https://apiserver.example.com:6443",
			[]string{"VIRTUAL_NODE_IP: 127.0.0.1 is a loopback address", "apiserver.example.com", "set VIRTUAL_NODE_IP to an address", "leave it unset"}},
		{"explicit IPv6 loopback, remote apiserver", "::1", false, "https://10.0.0.1:6443", []string{"VIRTUAL_NODE_IP: ::1 is a loopback address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			c.NodeIP, c.NodeIPDetected = tt.nodeIP, tt.detected
			err := c.CheckNodeIP(tt.apiserver)
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("CheckNodeIP(%q) = %v, want nil", tt.apiserver, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckNodeIP(%q) = nil, want an error", tt.apiserver)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckNodeIP(%q) = %q, want it to mention %q", tt.apiserver, err, w)
				}
			}
		})
	}
}

// TestLoadNodeIP: VIRTUAL_NODE_IP, when unset, is the host's first
// address other than loopback (or 127.0.0.1 when it has none, or when the
// interfaces cannot be listed), and marked as detected; set, it is kept.
func TestLoadNodeIP(t *testing.T) {
	for _, k := range []string{"POD_NAME", "KUBERNETES_SERVICE_HOST", "VIRTUAL_NODE_IP"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("ECI_VSWITCH", "vsw-a")
	t.Setenv("ECI_SECURITY_GROUP", "sg-a")
	t.Setenv("ECI_REGION", "cn-hangzhou")
	tests := []struct {
		name         string
		env          string // VIRTUAL_NODE_IP; "" means unset
		lister       InterfaceLister
		want         string
		wantDetected bool
		wantErr      string
	}{
		{name: "unset: host address", lister: listed{ifaces: []HostInterface{lo, eth0}}, want: "10.0.0.5", wantDetected: true},
		{name: "unset: only loopback", lister: listed{ifaces: []HostInterface{lo}}, want: "127.0.0.1", wantDetected: true},
		{name: "unset: interfaces unreadable", lister: listed{err: errors.New("no netlink")}, want: "127.0.0.1", wantDetected: true},
		{name: "set", env: "172.20.1.9", lister: listed{ifaces: []HostInterface{lo, eth0}}, want: "172.20.1.9"},
		{name: "set with spaces", env: " 172.20.1.9 ", lister: listed{ifaces: []HostInterface{lo, eth0}}, want: "172.20.1.9"},
		{name: "set to loopback", env: "127.0.0.1", lister: listed{ifaces: []HostInterface{lo, eth0}}, want: "127.0.0.1"},
		{name: "not an address", env: "node-1.example.com", lister: listed{ifaces: []HostInterface{lo, eth0}}, wantErr: `VIRTUAL_NODE_IP: "node-1.example.com" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withInterfaces(t, tt.lister)
			if tt.env != "" {
				t.Setenv("VIRTUAL_NODE_IP", tt.env)
			}
			c, err := Load()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.NodeIP != tt.want || c.NodeIPDetected != tt.wantDetected {
				t.Errorf("NodeIP, NodeIPDetected = %q, %v; want %q, %v", c.NodeIP, c.NodeIPDetected, tt.want, tt.wantDetected)
			}
			// Defaults agrees with an unset VIRTUAL_NODE_IP.
			if d := Defaults(); tt.env == "" && (d.NodeIP != tt.want || !d.NodeIPDetected) {
				t.Errorf("Defaults() NodeIP = %q (detected %v), want %q as Load", d.NodeIP, d.NodeIPDetected, tt.want)
			}
		})
	}
}

// TestSystemInterfaces: the real lister sees this host's loopback
// interface with its address, as ChooseNodeIP expects it.
func TestSystemInterfaces(t *testing.T) {
	ifaces, err := SystemInterfaces{}.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagLoopback == 0 {
			continue
		}
		for _, a := range i.Addrs {
			if a.IsLoopback() {
				return
			}
		}
	}
	t.Skipf("no loopback interface with an address on this host (a network namespace without lo up?): %+v", ifaces)
}
