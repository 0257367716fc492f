package provider

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultZoneCooldown is how long a vSwitch that was skipped for lack of
// stock stays at the back of the list.
const DefaultZoneCooldown = 5 * time.Minute

// zoneMemory remembers vSwitches that recently had no stock. With
// VSwitchOrdered the cloud tries vSwitches in list order, so a group that
// lands in the third vSwitch tells that the first two had none; moving
// those to the back for a while saves every following create the same
// failed tries, and they come back to the front once the cool-down ends.
type zoneMemory struct {
	mu       sync.Mutex
	cooling  map[string]time.Time // vSwitch -> end of cool-down
	cooldown time.Duration
	now      func() time.Time
}

func newZoneMemory(cooldown time.Duration) *zoneMemory {
	if cooldown <= 0 {
		cooldown = DefaultZoneCooldown
	}
	return &zoneMemory{cooling: map[string]time.Time{}, cooldown: cooldown, now: time.Now}
}

// order returns vswitches with the cooling ones moved to the back, keeping
// the configured order within each part.
func (z *zoneMemory) order(vswitches []string) []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	now := z.now()
	out := append([]string(nil), vswitches...)
	sort.SliceStable(out, func(i, j int) bool {
		return !z.cooling[out[i]].After(now) && z.cooling[out[j]].After(now)
	})
	return out
}

// landed records that a group created with the ordered list requested
// landed in vSwitch got: every vSwitch before it was skipped.
func (z *zoneMemory) landed(requested, got string) {
	list := strings.Split(requested, ",")
	z.mu.Lock()
	defer z.mu.Unlock()
	until := z.now().Add(z.cooldown)
	for _, v := range list {
		if v == got {
			delete(z.cooling, got)
			return
		}
		z.cooling[v] = until
	}
}
