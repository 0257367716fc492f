package simulator

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// RAM: every AccessKey belongs to a RAM identity whose policy allows some
// ECI actions. The cloud checks the policy after the signature and before
// anything else, and answers a refused action with HTTP 403, code
// Forbidden.RAM and the fixed message below; the action it refused is in
// AccessDeniedDetail.AuthAction ("eci:<Action>"), as in the cloud's newer
// answers. The message itself does not name the action.

// CodeForbiddenRAM: the AccessKey's RAM policy does not allow the action (HTTP 403).
const CodeForbiddenRAM = "Forbidden.RAM"

// msgForbiddenRAM is the cloud's message for Forbidden.RAM.
const msgForbiddenRAM = "User not authorized to operate on the specified resource, or this API doesn't support RAM."

// Policy is the set of ECI actions a RAM policy allows an AccessKey.
type Policy struct {
	// Name is shown by the admin API and in logs.
	Name string `json:"name"`
	// Actions are the allowed actions without the "eci:" prefix; nil
	// allows every action (AliyunECIFullAccess, "eci:*").
	Actions []string `json:"actions"`
}

// PolicyFullAccess is the system policy AliyunECIFullAccess: every action.
var PolicyFullAccess = Policy{Name: "AliyunECIFullAccess"}

// PolicyDocumented is the custom policy of the product documentation
// (shared/seeds/002_009fb0b43c6febdd.txt, step 1): exactly these 15
// actions. DescribeContainerGroupStatus is not among them.
var PolicyDocumented = Policy{Name: "documented", Actions: []string{
	"CreateContainerGroup",
	"DeleteContainerGroup",
	"DescribeContainerGroups",
	"DescribeContainerLog",
	"UpdateContainerGroup",
	"UpdateContainerGroupByTemplate",
	"CreateContainerGroupFromTemplate",
	"RestartContainerGroup",
	"ExportContainerGroupTemplate",
	"DescribeContainerGroupMetric",
	"DescribeMultiContainerGroupMetric",
	"ExecContainerCommand",
	"CreateImageCache",
	"DescribeImageCaches",
	"DeleteImageCache",
}}

// PolicyByName returns a preset: "full" (or AliyunECIFullAccess) or
// "documented".
func PolicyByName(name string) (Policy, error) {
	switch name {
	case "full", PolicyFullAccess.Name:
		return PolicyFullAccess, nil
	case "documented":
		return PolicyDocumented, nil
	}
	return Policy{}, fmt.Errorf("unknown RAM policy preset %q: use full (AliyunECIFullAccess) or documented", name)
}

// ParsePolicy reads a preset name or a comma-separated list of actions
// (with or without the "eci:" prefix), as the -policy flag takes.
func ParsePolicy(s string) (Policy, error) {
	if p, err := PolicyByName(s); err == nil {
		return p, nil
	}
	p := Policy{Name: "custom", Actions: []string{}}
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimPrefix(strings.TrimSpace(a), "eci:")
		if a == "" {
			continue
		}
		if a[0] < 'A' || a[0] > 'Z' {
			return Policy{}, fmt.Errorf("RAM policy %q: %q is neither a preset (full, documented) nor an ECI action such as CreateContainerGroup", s, a)
		}
		p.Actions = append(p.Actions, a)
	}
	return p, nil
}

// allows reports whether the policy allows action.
func (p Policy) allows(action string) bool {
	if p.Actions == nil {
		return true
	}
	for _, a := range p.Actions {
		if a == action || a == "*" {
			return true
		}
	}
	return false
}

func (p Policy) copy() Policy {
	if p.Actions != nil {
		p.Actions = append([]string{}, p.Actions...)
	}
	return p
}

// forbiddenRAM is the cloud's answer to an action the policy refuses.
func forbiddenRAM(action string) *apiError {
	e := newError(http.StatusForbidden, CodeForbiddenRAM, "%s", msgForbiddenRAM)
	e.Detail = map[string]any{"AuthAction": "eci:" + action, "NoPermissionType": "ImplicitDeny",
		"PolicyType": "AccountLevelIdentityBasedPolicy"}
	return e
}

// checkPolicy refuses action when the policy of the request's AccessKey
// does not allow it. Caller holds s.mu, after verifySignature.
func (s *Simulator) checkPolicy(accessKeyID, action string) *apiError {
	p, ok := s.policies[accessKeyID]
	if !ok || p.allows(action) {
		return nil
	}
	return forbiddenRAM(action)
}

// SetPolicy gives an AccessKey a RAM policy (PolicyFullAccess, PolicyDocumented
// or a custom list); it applies to the next request.
func (s *Simulator) SetPolicy(accessKeyID string, p Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cfg.AccessKeys[accessKeyID]; !ok {
		return fmt.Errorf("access key %q: %w", accessKeyID, ErrNotFound)
	}
	s.policies[accessKeyID] = p.copy()
	s.log.Info("RAM policy set", "accessKeyId", accessKeyID, "policy", p.Name, "actions", p.Actions)
	return nil
}

// Policies returns the policy of every AccessKey, by AccessKeyId.
func (s *Simulator) Policies() map[string]Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Policy, len(s.cfg.AccessKeys))
	for k := range s.cfg.AccessKeys {
		p, ok := s.policies[k]
		if !ok {
			p = PolicyFullAccess
		}
		out[k] = p.copy()
	}
	return out
}

// normalizePolicies validates Config.Policies: every key must be
// configured, and custom actions must be ECI actions (served or only
// published, like the template ones of PolicyDocumented).
func normalizePolicies(c Config) (map[string]Policy, error) {
	out := map[string]Policy{}
	keys := make([]string, 0, len(c.Policies))
	for k := range c.Policies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := c.AccessKeys[k]; !ok {
			return nil, fmt.Errorf("simulator: Policies names access key %q, which is not in AccessKeys", k)
		}
		out[k] = c.Policies[k].copy()
	}
	return out, nil
}

func copyPolicies(in map[string]Policy) map[string]Policy {
	out := make(map[string]Policy, len(in))
	for k, p := range in {
		out[k] = p.copy()
	}
	return out
}
