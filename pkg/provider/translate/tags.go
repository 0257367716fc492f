package translate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
)

// OwnTagKeys are the tags the controller writes on every group to find its
// own groups and map them back to pods. They are always sent and cannot be
// set by configuration or pod annotations.
var OwnTagKeys = []string{TagManagedBy, TagClusterID, TagNodeName, TagPodNamespace, TagPodName, TagPodUID}

// MaxConfiguredTags is how many tags ECI_TAGS or the eci-profile key tags
// may set: a group takes eci.MaxTags, the controller's own take
// len(OwnTagKeys) and maxCustomTags are kept for the pod annotation
// k8s.aliyun.com/eci-custom-tags, so every pod's own tags always fit.
var MaxConfiguredTags = eci.MaxTags - len(OwnTagKeys) - maxCustomTags

// ParseConfiguredTags reads the tags of every container group ("key:value,
// key:value") and checks them: the published tag rules, the controller's
// own keys, and MaxConfiguredTags. Each problem is one sentence with the
// fix; setting names the variable or key in the sentences.
func ParseConfiguredTags(setting, s string) ([]eci.Tag, []string) {
	tags, problems := eci.ParseTagList(s)
	for i := range problems {
		problems[i] = setting + ": " + problems[i] + "; write tags as key:value,key:value"
	}
	for _, t := range tags {
		if slices.Contains(OwnTagKeys, t.Key) {
			problems = append(problems, fmt.Sprintf("%s: tag key %q is one of the controller's own (%s), which every group carries with its own value; choose another key",
				setting, t.Key, strings.Join(OwnTagKeys, ", ")))
		}
	}
	if len(tags) > MaxConfiguredTags {
		problems = append(problems, fmt.Sprintf("%s has %d tags; at most %d: a container group takes %d tags, %d are the controller's own (%s) and %d are kept for the pod annotation %s; remove %d",
			setting, len(tags), MaxConfiguredTags, eci.MaxTags, len(OwnTagKeys), strings.Join(OwnTagKeys, ", "),
			maxCustomTags, AnnotationCustomTags, len(tags)-MaxConfiguredTags))
	}
	return tags, problems
}

// applyGroupDefaults adds the configured tags (the eci-profile's, else
// ECI_TAGS) after the controller's own and sets the resource group (the
// eci-profile's, else ECI_RESOURCE_GROUP_ID). The pod annotation
// eci-custom-tags, applied later, may replace the value of a configured
// tag, never of an own one.
func (t *Translator) applyGroupDefaults(req *eci.CreateContainerGroupRequest) {
	tags, rg := t.opts.Tags, t.opts.ResourceGroupID
	if t.opts.GroupDefaults != nil {
		if pt, set, prg := t.opts.GroupDefaults(); set || prg != "" {
			if set {
				tags = pt
			}
			if prg != "" {
				rg = prg
			}
		}
	}
	for _, tag := range tags {
		if slices.Contains(OwnTagKeys, tag.Key) {
			continue // refused when the setting is read; never overrides
		}
		req.Tags = setTag(req.Tags, tag.Key, tag.Value)
	}
	req.ResourceGroupId = rg
}

// setTag sets key to value in tags, replacing an earlier value.
func setTag(tags []eci.Tag, key, value string) []eci.Tag {
	for i := range tags {
		if tags[i].Key == key {
			tags[i].Value = value
			return tags
		}
	}
	return append(tags, eci.Tag{Key: key, Value: value})
}
