package simulator

import (
	"encoding/binary"
	"net/http"
	"net/netip"
	"sort"
	"strings"
)

// zoneState is a configured zone plus its live stock settings.
type zoneState struct {
	cfg      Zone
	stockCPU float64
	stockMem float64
}

// vswitchState tracks IP allocations of one vSwitch.
type vswitchState struct {
	cfg    VSwitch
	zoneID string
	base   uint32
	size   uint32
	next   uint32            // round-robin cursor so freed IPs are not reused at once
	inUse  map[uint32]string // host offset -> group id
	prefix netip.Prefix
}

func newVSwitchState(v VSwitch, zoneID string) *vswitchState {
	p := netip.MustParsePrefix(v.CidrBlock).Masked()
	a := p.Addr().As4()
	return &vswitchState{
		cfg: v, zoneID: zoneID, prefix: p,
		base:  binary.BigEndian.Uint32(a[:]),
		size:  1 << (32 - p.Bits()),
		next:  1,
		inUse: map[uint32]string{},
	}
}

// usable host offsets are [1, size-2]: the network and broadcast
// addresses are never handed out.
func (v *vswitchState) free() int { return int(v.size) - 2 - len(v.inUse) }

func (v *vswitchState) allocate(groupID string) (string, bool) {
	n := v.size - 2
	for i := uint32(0); i < n; i++ {
		off := (v.next-1+i)%n + 1
		if _, used := v.inUse[off]; used {
			continue
		}
		v.inUse[off] = groupID
		v.next = off%n + 1
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], v.base+off)
		return netip.AddrFrom4(b).String(), true
	}
	return "", false
}

func (v *vswitchState) release(ip string) {
	a, err := netip.ParseAddr(ip)
	if err != nil || !v.prefix.Contains(a) {
		return
	}
	b := a.As4()
	delete(v.inUse, binary.BigEndian.Uint32(b[:])-v.base)
}

func (s *Simulator) releaseIP(g *group) {
	if !g.ipHeld {
		return
	}
	if v := s.vswitches[g.vswitchID]; v != nil {
		v.release(g.ip)
	}
	g.ipHeld = false
}

// used sums the resources of the zone's non-terminal groups and of the
// build instances of image caches still building there.
func (s *Simulator) used(zoneID string) (cpu, mem float64) {
	for _, g := range s.groups {
		if g.zoneID == zoneID && !isTerminal(g.status) {
			cpu += g.cpu
			mem += g.memory
		}
	}
	now := s.now()
	for _, c := range s.caches {
		if c.zoneID == zoneID && s.cacheBuilding(c, now) {
			cpu += cacheBuildCPU
			mem += cacheBuildMemory
		}
	}
	return cpu, mem
}

// placement is where a new group goes.
type placement struct {
	zoneID    string
	vswitchID string
	ip        string
}

// place picks a vSwitch with stock and a free IP for cpu/mem. Candidate
// vSwitches are tried in list order (VSwitchOrdered) or by most free stock
// first (VSwitchRandom, the default), like the cloud's multi-zone
// scheduling. zoneFilter, if set, restricts candidates to that zone.
func (s *Simulator) place(vswitchIDs []string, strategy, zoneFilter string, cpu, mem float64, groupID string) (placement, *apiError) {
	type cand struct {
		v              *vswitchState
		order          int
		freeCPU, freeM float64
	}
	var cands []cand
	for i, id := range vswitchIDs {
		v := s.vswitches[id]
		if zoneFilter != "" && v.zoneID != zoneFilter {
			continue
		}
		z := s.zones[v.zoneID]
		uc, um := s.used(v.zoneID)
		cands = append(cands, cand{v: v, order: i, freeCPU: z.stockCPU - uc, freeM: z.stockMem - um})
	}
	if len(cands) == 0 {
		return placement{}, errInvalid("ZoneId", "none of the specified vSwitches is in zone %s", zoneFilter)
	}
	if strategy != "VSwitchOrdered" {
		sort.SliceStable(cands, func(i, j int) bool {
			if cands[i].freeCPU != cands[j].freeCPU {
				return cands[i].freeCPU > cands[j].freeCPU
			}
			return cands[i].freeM > cands[j].freeM
		})
	}
	var tried []string
	seen := map[string]bool{}
	ipShort := false
	for _, c := range cands {
		if !seen[c.v.zoneID] {
			seen[c.v.zoneID] = true
			tried = append(tried, c.v.zoneID)
		}
		if c.freeCPU < cpu || c.freeM < mem {
			continue
		}
		ip, ok := c.v.allocate(groupID)
		if !ok {
			ipShort = true
			continue
		}
		return placement{zoneID: c.v.zoneID, vswitchID: c.v.cfg.VSwitchId, ip: ip}, nil
	}
	if ipShort {
		return placement{}, newError(http.StatusForbidden, CodeVSwitchIPNotEnough,
			"The specified vSwitches do not have enough available IP addresses. Zones tried: %s.", strings.Join(tried, ", "))
	}
	return placement{}, newError(http.StatusForbidden, CodeNoStock,
		"The resource (%v vCPU, %v GiB) is out of stock in the specified zones; try other zones or other specifications. Zones tried: %s.",
		cpu, mem, strings.Join(tried, ", "))
}
