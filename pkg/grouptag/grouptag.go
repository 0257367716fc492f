// Package grouptag holds the rules of container group tags: the
// published limits, the controller's own tags and the configured ones
// (ECI_TAGS, the eci-profile key tags, the pod annotation
// k8s.aliyun.com/eci-custom-tags). It depends on nothing of the cloud SDK,
// so the webhook and vnodectl check tags without linking it.
package grouptag

import (
	"fmt"
	"slices"
	"strings"
)

// Tag is a key/value label on a container group (Tag.N). Our own groups
// carry the cluster id, node name and pod identity as tags so they can be
// listed and adopted without a region-wide scan.
type Tag struct {
	Key   string `eci:"Key" json:"Key"`
	Value string `eci:"Value" json:"Value"`
}

// The controller's own tags, on every group it creates.
const (
	ManagedBy    = "ManagedBy"
	ClusterID    = "ClusterId"
	NodeName     = "NodeName"
	PodNamespace = "PodNamespace"
	PodName      = "PodName"
	PodUID       = "PodUID"
)

// CustomAnnotation is the pod annotation of a pod's own tags
// ("key:value,key:value"), at most MaxCustom of them.
const (
	CustomAnnotation = "k8s.aliyun.com/eci-custom-tags"
	MaxCustom        = 3
)

// Tag limits of CreateContainerGroup as the API reference publishes them:
// at most MaxTags tags (Tag.N, N = 1..20, as for image caches), keys of 1-64
// characters that are unique, do not start with "acs:" or "aliyun" and
// contain no "http://" or "https://"; values of at most 128 characters (empty
// allowed) that do not start with "acs:" and contain no URL scheme.
const (
	MaxTags     = 20
	MaxKeyLen   = 64
	MaxValueLen = 128
)

// Check returns what is wrong with one tag under the published rules, or
// "" when it is valid.
func Check(key, value string) string {
	switch {
	case key == "":
		return "the tag key is empty"
	case len(key) > MaxKeyLen:
		return fmt.Sprintf("tag key %q is longer than %d characters", key, MaxKeyLen)
	case strings.HasPrefix(key, "acs:") || strings.HasPrefix(key, "aliyun"):
		return fmt.Sprintf("tag key %q starts with a prefix the cloud reserves (acs: or aliyun)", key)
	case strings.Contains(key, "http://") || strings.Contains(key, "https://"):
		return fmt.Sprintf("tag key %q contains http:// or https://", key)
	case len(value) > MaxValueLen:
		return fmt.Sprintf("the value of tag %q is longer than %d characters", key, MaxValueLen)
	case strings.HasPrefix(value, "acs:"):
		return fmt.Sprintf("the value of tag %q starts with acs:, which the cloud reserves", key)
	case strings.Contains(value, "http://") || strings.Contains(value, "https://"):
		return fmt.Sprintf("the value of tag %q contains http:// or https://", key)
	}
	return ""
}

// ParseList reads tags written as "key:value,key:value" (the form of the
// pod annotation k8s.aliyun.com/eci-custom-tags; the first ':' separates key
// and value, blanks around items are dropped). It returns every problem
// found, each naming the item, so one message can list them all.
func ParseList(s string) ([]Tag, []string) {
	var tags []Tag
	var problems []string
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			problems = append(problems, fmt.Sprintf("%q is not key:value", item))
			continue
		}
		if msg := Check(k, v); msg != "" {
			problems = append(problems, msg)
			continue
		}
		if seen[k] {
			problems = append(problems, fmt.Sprintf("tag key %q is listed twice", k))
			continue
		}
		seen[k] = true
		tags = append(tags, Tag{Key: k, Value: v})
	}
	return tags, problems
}

// OwnKeys are the tags the controller writes on every group to find its
// own groups and map them back to pods. They are always sent and cannot be
// set by configuration or pod annotations.
var OwnKeys = []string{ManagedBy, ClusterID, NodeName, PodNamespace, PodName, PodUID}

// MaxConfigured is how many tags ECI_TAGS or the eci-profile key tags
// may set: a group takes MaxTags, the controller's own take
// len(OwnKeys) and MaxCustom are kept for the pod annotation
// k8s.aliyun.com/eci-custom-tags, so every pod's own tags always fit.
var MaxConfigured = MaxTags - len(OwnKeys) - MaxCustom

// ParseConfigured reads the tags of every container group ("key:value,
// key:value") and checks them: the published tag rules, the controller's
// own keys, and MaxConfigured. Each problem is one sentence with the
// fix; setting names the variable or key in the sentences.
func ParseConfigured(setting, s string) ([]Tag, []string) {
	tags, problems := ParseList(s)
	for i := range problems {
		problems[i] = setting + ": " + problems[i] + "; write tags as key:value,key:value"
	}
	for _, t := range tags {
		if slices.Contains(OwnKeys, t.Key) {
			problems = append(problems, fmt.Sprintf("%s: tag key %q is one of the controller's own (%s), which every group carries with its own value; choose another key",
				setting, t.Key, strings.Join(OwnKeys, ", ")))
		}
	}
	if len(tags) > MaxConfigured {
		problems = append(problems, fmt.Sprintf("%s has %d tags; at most %d: a container group takes %d tags, %d are the controller's own (%s) and %d are kept for the pod annotation %s; remove %d",
			setting, len(tags), MaxConfigured, MaxTags, len(OwnKeys), strings.Join(OwnKeys, ", "),
			MaxCustom, CustomAnnotation, len(tags)-MaxConfigured))
	}
	return tags, problems
}
