package profile

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// KnownKeys are the data keys this add-on honours.
var KnownKeys = []string{
	KeyVSwitchIDs, KeyVSwitchIDsLegacy, KeySecurityGroupID, KeyVPCID, KeyResourceGroupID,
	KeyEnableClusterIP, KeySelectors, KeyTags, KeyNodeLabels, KeyNodeTaints,
}

// vendorKeys are keys of the vendor's eci-profile that configure parts of
// the cloud product this add-on does not implement, with what they would
// do. A switch set to "false" (the vendor's default) asks for nothing and
// is honoured by doing nothing; any other value is reported.
var vendorKeys = map[string]string{
	"enableHybridMode":     "hybrid-cloud mode (pods of an on-premises cluster reaching the VPC through the vendor's network gateway)",
	"enableLinuxArm64Node": "a second, arm64 virtual node",
	"enableLogController":  "the SLS log collection controller",
	"enablePVCController":  "the vendor's PVC controller",
	"enablePrivateZone":    "PrivateZone DNS for Services",
	"enableReuseSSLKey":    "reuse of the vendor's SSL keys",
	"featureGates":         "the vendor's feature gates",
	"slsMachineGroup":      "the SLS machine group of log collection",
}

// IgnoredKey is a data key the profile has but this add-on does not use.
type IgnoredKey struct {
	// Key is the data key.
	Key string
	// Value is its value, so a changed value is reported again.
	Value string
	// Message says why it is ignored and what to do.
	Message string
}

// Ignored lists, in key order, the keys of data this add-on does not use:
// the vendor's keys that ask for a feature it does not implement, and
// unknown keys (a typo such as "securityGroupID" would otherwise be
// silently without effect).
func Ignored(data map[string]string) []IgnoredKey {
	var out []IgnoredKey
	for k, v := range data {
		if isKnown(k) {
			continue
		}
		if what, ok := vendorKeys[k]; ok {
			val := strings.TrimSpace(v)
			if b, err := strconv.ParseBool(val); val == "" || (err == nil && !b) {
				continue
			}
			out = append(out, IgnoredKey{Key: k, Value: v, Message: fmt.Sprintf(
				"eci-profile key %q (%s) is not supported by ack-virtual-node and has no effect; remove it or set it to \"false\"", k, what)})
			continue
		}
		out = append(out, IgnoredKey{Key: k, Value: v, Message: fmt.Sprintf(
			"eci-profile key %q is unknown and has no effect; the keys ack-virtual-node uses are %s (check the spelling)", k, strings.Join(KnownKeys, ", "))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func isKnown(k string) bool {
	for _, x := range KnownKeys {
		if x == k {
			return true
		}
	}
	return false
}
