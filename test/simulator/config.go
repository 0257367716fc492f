package simulator

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Default identities of the simulated account. They are deliberately
// obvious fakes so that nobody mistakes them for real credentials.
const (
	DefaultRegionID        = "cn-hangzhou"
	DefaultVpcID           = "vpc-sim"
	DefaultSecurityGroupID = "sg-sim"
	DefaultAccessKeyID     = "sim-access-key-id"
	DefaultAccessKeySecret = "sim-access-key-secret"
)

// Defaults applied by New to zero-valued Config fields.
const (
	defaultRetention      = time.Hour
	defaultRestartBackoff = 10 * time.Second
	maxRestartBackoff     = 5 * time.Minute
	defaultMaxClockSkew   = 15 * time.Minute
)

// Clock is the simulator's source of time. Container lifecycles, token
// buckets, retention and SinceSecond are all computed from it, so a fake
// clock makes every time-dependent behaviour deterministic in tests.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

// Now returns the wall-clock time.
func (realClock) Now() time.Time { return time.Now() }

// FakeClock is a manually advanced Clock for tests. It is safe for
// concurrent use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a FakeClock stopped at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{now: t} }

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t (which may be in the past).
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// VSwitch is one simulated vSwitch; IPs are allocated from CidrBlock.
type VSwitch struct {
	VSwitchId string `json:"vSwitchId"`
	CidrBlock string `json:"cidrBlock"`
}

// Zone is one simulated availability zone with its vSwitches and its
// capacity. Container groups scheduled into the zone consume StockCpu
// (vCPU) and StockMemory (GiB) until they terminate or are deleted.
type Zone struct {
	ZoneId      string    `json:"zoneId"`
	VSwitches   []VSwitch `json:"vSwitches"`
	StockCpu    float64   `json:"stockCpu"`
	StockMemory float64   `json:"stockMemory"`
}

// Config describes the simulated account and region.
type Config struct {
	// RegionId is the only region the simulator serves (default cn-hangzhou).
	RegionId string
	// VpcId is reported for every container group (default vpc-sim).
	VpcId string
	// Zones with their vSwitches and stock. Required (DefaultConfig has three).
	Zones []Zone
	// SecurityGroups that CreateContainerGroup accepts. Empty accepts any id.
	SecurityGroups []string
	// AccessKeys maps AccessKeyId to AccessKeySecret. Required.
	AccessKeys map[string]string
	// Policies are the RAM policies of AccessKeys, by AccessKeyId; a key
	// without one has PolicyFullAccess. A refused action is answered
	// Forbidden.RAM (HTTP 403). SetPolicy changes them at run time.
	Policies map[string]Policy
	// StartDelay is how long a group stays Pending (and Restarting/Updating)
	// before its containers start. Default 0.
	StartDelay time.Duration
	// QuotaScale multiplies every published API rate quota; 0 disables
	// throttling entirely. DefaultConfig uses 1 (the real quotas).
	QuotaScale float64
	// Clock drives all simulated time (default: the wall clock).
	Clock Clock
	// Retention is how long terminal groups stay visible (default 1h).
	Retention time.Duration
	// RestartBackoff is the first crash-loop back-off; it doubles per
	// restart up to 5 minutes, like the kubelet's (default 10s).
	RestartBackoff time.Duration
	// MaxClockSkew bounds |Timestamp - wall clock| for signed requests
	// (default 15m; negative disables the check). The wall clock is used,
	// not Clock, because the SDK stamps requests with real time.
	MaxClockSkew time.Duration
	// RequestLog is how many recent requests Requests keeps (default
	// 1000); long fault tests that check the spacing of retries need more.
	RequestLog int
	// Seed makes generated ids and fault sampling reproducible; 0 = random.
	Seed uint64
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
}

// DefaultConfig returns the stock simulated account: region cn-hangzhou,
// VPC vpc-sim, zones cn-hangzhou-h/i/j with vSwitches vsw-sim-h/i/j
// (192.168.1.0/24, .2.0/24, .3.0/24) and 1000 vCPU / 4000 GiB each,
// security group sg-sim and the access key sim-access-key-id /
// sim-access-key-secret, with the published quotas (QuotaScale 1).
func DefaultConfig() Config { return DefaultConfigForRegion(DefaultRegionID) }

// DefaultConfigForRegion is DefaultConfig for another region; the zones
// are named <region>-h, <region>-i and <region>-j.
func DefaultConfigForRegion(region string) Config {
	if region == "" {
		region = DefaultRegionID
	}
	var zones []Zone
	for i, suffix := range []string{"h", "i", "j"} {
		zones = append(zones, Zone{
			ZoneId: region + "-" + suffix,
			VSwitches: []VSwitch{{
				VSwitchId: "vsw-sim-" + suffix,
				CidrBlock: fmt.Sprintf("192.168.%d.0/24", i+1),
			}},
			StockCpu:    1000,
			StockMemory: 4000,
		})
	}
	return Config{
		RegionId:       region,
		VpcId:          DefaultVpcID,
		Zones:          zones,
		SecurityGroups: []string{DefaultSecurityGroupID},
		AccessKeys:     map[string]string{DefaultAccessKeyID: DefaultAccessKeySecret},
		QuotaScale:     1,
		Retention:      defaultRetention,
		RestartBackoff: defaultRestartBackoff,
		MaxClockSkew:   defaultMaxClockSkew,
	}
}

// normalize fills defaults and validates the configuration.
func (c Config) normalize() (Config, error) {
	if c.RegionId == "" {
		c.RegionId = DefaultRegionID
	}
	if c.VpcId == "" {
		c.VpcId = DefaultVpcID
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Retention <= 0 {
		c.Retention = defaultRetention
	}
	if c.RestartBackoff <= 0 {
		c.RestartBackoff = defaultRestartBackoff
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = defaultMaxClockSkew
	}
	if c.RequestLog <= 0 {
		c.RequestLog = maxRecordedRequests
	}
	if c.StartDelay < 0 {
		return c, fmt.Errorf("simulator: StartDelay must not be negative")
	}
	if c.QuotaScale < 0 {
		return c, fmt.Errorf("simulator: QuotaScale must not be negative")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.AccessKeys) == 0 {
		return c, fmt.Errorf("simulator: at least one access key is required")
	}
	if len(c.Zones) == 0 {
		return c, fmt.Errorf("simulator: at least one zone is required")
	}
	zones := map[string]bool{}
	vsws := map[string]bool{}
	copied := make([]Zone, len(c.Zones))
	for i, z := range c.Zones {
		if z.ZoneId == "" || zones[z.ZoneId] {
			return c, fmt.Errorf("simulator: zone %d has an empty or duplicate ZoneId %q", i, z.ZoneId)
		}
		zones[z.ZoneId] = true
		if z.StockCpu < 0 || z.StockMemory < 0 {
			return c, fmt.Errorf("simulator: zone %s has negative stock", z.ZoneId)
		}
		for _, v := range z.VSwitches {
			if v.VSwitchId == "" || vsws[v.VSwitchId] {
				return c, fmt.Errorf("simulator: zone %s has an empty or duplicate VSwitchId %q", z.ZoneId, v.VSwitchId)
			}
			vsws[v.VSwitchId] = true
			p, err := netip.ParsePrefix(v.CidrBlock)
			if err != nil || !p.Addr().Is4() || p.Bits() > 29 {
				return c, fmt.Errorf("simulator: vSwitch %s needs an IPv4 CIDR of /29 or larger, got %q", v.VSwitchId, v.CidrBlock)
			}
		}
		z.VSwitches = append([]VSwitch(nil), z.VSwitches...)
		copied[i] = z
	}
	c.Zones = copied
	keys := make(map[string]string, len(c.AccessKeys))
	for k, v := range c.AccessKeys {
		keys[k] = v
	}
	c.AccessKeys = keys
	policies, err := normalizePolicies(c)
	if err != nil {
		return c, err
	}
	c.Policies = policies
	c.SecurityGroups = append([]string(nil), c.SecurityGroups...)
	return c, nil
}
