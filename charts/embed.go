// Package charts embeds the Helm charts of the project, so that installers
// (vnodectl addon) and tests use the chart of the same commit without a
// helm binary or a chart repository.
package charts

import "embed"

// FS holds the chart directories; ack-virtual-node is the add-on chart.
// The all: prefix keeps files whose names start with '_' or '.', such as
// templates/_helpers.tpl and .helmignore.
//
//go:embed all:ack-virtual-node
var FS embed.FS

// AckVirtualNode is the directory of the add-on chart inside FS.
const AckVirtualNode = "ack-virtual-node"
