//go:build tools

// Package tools pins kwok, the zero-cost kubelet that `make bench` runs
// beside the virtual node as the baseline of the control-plane path.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
