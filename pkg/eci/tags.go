package eci

import "github.com/ack-virtual-node/ack-virtual-node/pkg/grouptag"

// MaxTags is how many tags a group takes (grouptag.MaxTags).
const MaxTags = grouptag.MaxTags
