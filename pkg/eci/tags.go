package eci

import (
	"fmt"
	"strings"
)

// Tag limits of CreateContainerGroup as the API reference publishes them:
// at most MaxTags tags (Tag.N, N = 1..20, as for image caches), keys of 1-64
// characters that are unique, do not start with "acs:" or "aliyun" and
// contain no "http://" or "https://"; values of at most 128 characters (empty
// allowed) that do not start with "acs:" and contain no URL scheme.
const (
	MaxTags        = 20
	MaxTagKeyLen   = 64
	MaxTagValueLen = 128
)

// CheckTag returns what is wrong with one tag under the published rules, or
// "" when it is valid.
func CheckTag(key, value string) string {
	switch {
	case key == "":
		return "the tag key is empty"
	case len(key) > MaxTagKeyLen:
		return fmt.Sprintf("tag key %q is longer than %d characters", key, MaxTagKeyLen)
	case strings.HasPrefix(key, "acs:") || strings.HasPrefix(key, "aliyun"):
		return fmt.Sprintf("tag key %q starts with a prefix the cloud reserves (acs: or aliyun)", key)
	case strings.Contains(key, "http://") || strings.Contains(key, "https://"):
		return fmt.Sprintf("tag key %q contains http:// or https://", key)
	case len(value) > MaxTagValueLen:
		return fmt.Sprintf("the value of tag %q is longer than %d characters", key, MaxTagValueLen)
	case strings.HasPrefix(value, "acs:"):
		return fmt.Sprintf("the value of tag %q starts with acs:, which the cloud reserves", key)
	case strings.Contains(value, "http://") || strings.Contains(value, "https://"):
		return fmt.Sprintf("the value of tag %q contains http:// or https://", key)
	}
	return ""
}

// ParseTagList reads tags written as "key:value,key:value" (the form of the
// pod annotation k8s.aliyun.com/eci-custom-tags; the first ':' separates key
// and value, blanks around items are dropped). It returns every problem
// found, each naming the item, so one message can list them all.
func ParseTagList(s string) ([]Tag, []string) {
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
		if msg := CheckTag(k, v); msg != "" {
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
