package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// StatefulSetOrdinal splits a StatefulSet pod name, <statefulset>-<ordinal>,
// into the StatefulSet's name and the ordinal. ok is false for other names.
func StatefulSetOrdinal(podName string) (statefulSet string, ordinal int, ok bool) {
	if len(podName) > 253 || !statefulSetPodRE.MatchString(podName) {
		return "", 0, false
	}
	i := strings.LastIndexByte(podName, '-')
	n, err := strconv.Atoi(podName[i+1:])
	if err != nil { // more digits than an int holds
		return "", 0, false
	}
	return podName[:i], n, true
}

// nodeTotal is how many nodes this replica may run at once, without
// building their names (VIRTUAL_NODE_COUNT may be out of range here).
func (c *Config) nodeTotal() int {
	if c.NodeCount <= 1 && c.StatefulSet != "" && c.Ordinal == 0 {
		return 1 + len(c.LegacyNodes)
	}
	return max(c.NodeCount, 1)
}

// validateStatefulSet checks the settings of the StatefulSet form.
func (c *Config) validateStatefulSet() []string {
	var errs []string
	seen := map[string]bool{}
	if c.StatefulSet != "" {
		seen[c.NodeName] = true
	}
	if len(c.LegacyNodes) >= MaxNodeCount {
		errs = append(errs, fmt.Sprintf("VIRTUAL_NODE_LEGACY_NAMES has %d nodes: at most %d", len(c.LegacyNodes), MaxNodeCount-1))
	}
	for _, n := range c.LegacyNodes {
		switch {
		case !nodeRE.MatchString(n):
			errs = append(errs, fmt.Sprintf("VIRTUAL_NODE_LEGACY_NAMES: %q is not a valid node name (lower-case letters, digits, '-' and '.')", n))
		case seen[n]:
			errs = append(errs, fmt.Sprintf("VIRTUAL_NODE_LEGACY_NAMES: %q is listed twice or is this pod's own node: list only the nodes of the earlier Deployment form, e.g. virtual-kubelet", n))
		}
		seen[n] = true
	}
	if c.ScaleDownTimeout < 10*time.Second || c.ScaleDownTimeout > time.Hour {
		errs = append(errs, fmt.Sprintf("VIRTUAL_NODE_SCALE_DOWN_TIMEOUT: %s must be between 10s and 1h (how long a StatefulSet pod scaled away drains its node; keep terminationGracePeriodSeconds above it), e.g. 2m", c.ScaleDownTimeout))
	}
	return errs
}

// trimList drops spaces and empty items of a comma-separated list.
func trimList(in []string) []string {
	var out []string
	for _, v := range in {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
