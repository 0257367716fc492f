package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// LoopbackNodeIP is what VIRTUAL_NODE_IP falls back to when it is unset and
// the host has no other usable address. The apiserver can reach it only
// when it runs on the same host, and even then it refuses to proxy to it
// ("address not allowed"): kubectl logs and exec work, but
// `kubectl get --raw /api/v1/nodes/<node>/proxy/...` does not.
const LoopbackNodeIP = "127.0.0.1"

// HostInterface is what choosing the node address needs to know about one
// of the host's network interfaces.
type HostInterface struct {
	Name  string
	Flags net.Flags
	// Addrs are the interface's unicast addresses.
	Addrs []net.IP
}

// InterfaceLister lists the host's network interfaces in the kernel's
// order (by index).
type InterfaceLister interface {
	Interfaces() ([]HostInterface, error)
}

// SystemInterfaces lists this host's interfaces through net.Interfaces.
type SystemInterfaces struct{}

// Interfaces implements InterfaceLister.
func (SystemInterfaces) Interfaces() ([]HostInterface, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]HostInterface, 0, len(ifaces))
	for _, i := range ifaces {
		h := HostInterface{Name: i.Name, Flags: i.Flags}
		addrs, err := i.Addrs()
		if err != nil {
			// An interface that vanished meanwhile offers nothing.
			continue
		}
		for _, a := range addrs {
			switch v := a.(type) {
			case *net.IPNet:
				h.Addrs = append(h.Addrs, v.IP)
			case *net.IPAddr:
				h.Addrs = append(h.Addrs, v.IP)
			}
		}
		out = append(out, h)
	}
	return out, nil
}

// hostInterfaces is the lister Load and Defaults use; tests replace it.
var hostInterfaces InterfaceLister = SystemInterfaces{}

// ChooseNodeIP returns the address the node advertises when VIRTUAL_NODE_IP
// is unset: the first address, in interface order, of an interface that is
// up and not a loopback one, skipping the addresses the apiserver refuses
// to proxy to (loopback, link-local) and unspecified or multicast ones;
// IPv4 is preferred over IPv6. ok is false when there is none.
func ChooseNodeIP(ifaces []HostInterface) (ip net.IP, ok bool) {
	var v6 net.IP
	for _, i := range ifaces {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		for _, a := range i.Addrs {
			if a == nil || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
				continue
			}
			if v4 := a.To4(); v4 != nil {
				return v4, true
			}
			if v6 == nil && len(a) == net.IPv6len {
				v6 = a
			}
		}
	}
	if v6 != nil {
		return v6, true
	}
	return nil, false
}

// detectNodeIP is the default of VIRTUAL_NODE_IP: ChooseNodeIP of the host's
// interfaces, else LoopbackNodeIP (with found false).
func detectNodeIP(l InterfaceLister) (ip string, found bool) {
	ifaces, err := l.Interfaces()
	if err != nil {
		return LoopbackNodeIP, false
	}
	if a, ok := ChooseNodeIP(ifaces); ok {
		return a.String(), true
	}
	return LoopbackNodeIP, false
}

// LocalAPIServer reports whether the apiserver at host (a rest.Config
// Host: a URL or host[:port]) runs on this host: a loopback address or
// localhost. Any other name or address counts as remote; names are not
// resolved.
func LocalAPIServer(host string) bool {
	h := strings.TrimSpace(host)
	if !strings.Contains(h, "://") {
		h = "https://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return false
	}
	name := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// CheckNodeIP refuses a loopback node address when the apiserver at
// apiServerHost (the kubeconfig's server) is on another host: it could
// reach neither the kubelet API there (logs, exec, stats) nor, through its
// node proxy, anything at all. The error names VIRTUAL_NODE_IP and the fix.
func (c *Config) CheckNodeIP(apiServerHost string) error {
	ip := net.ParseIP(c.NodeIP)
	if ip == nil || !ip.IsLoopback() || LocalAPIServer(apiServerHost) {
		return nil
	}
	const fix = "set VIRTUAL_NODE_IP to an address of this host that the apiserver can reach (in a pod: status.podIP from the downward API, as the chart does)"
	if c.NodeIPDetected {
		return fmt.Errorf("VIRTUAL_NODE_IP is unset and this host has no network address other than loopback, so the node would advertise %s, which the apiserver at %s (another host) cannot reach for logs, exec and stats: %s", c.NodeIP, apiServerHost, fix)
	}
	return fmt.Errorf("VIRTUAL_NODE_IP: %s is a loopback address, but the apiserver at %s is on another host and cannot reach it for logs, exec and stats: %s, or leave it unset for this host's first address other than loopback", c.NodeIP, apiServerHost, fix)
}
