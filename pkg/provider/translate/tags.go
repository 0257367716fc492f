package translate

import (
	"slices"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/grouptag"
)

// OwnTagKeys are the tags the controller writes on every group
// (grouptag.OwnKeys).
var OwnTagKeys = grouptag.OwnKeys

// MaxConfiguredTags is how many tags ECI_TAGS or the eci-profile key tags
// may set (grouptag.MaxConfigured).
var MaxConfiguredTags = grouptag.MaxConfigured

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
