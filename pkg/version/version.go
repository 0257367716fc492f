// Package version holds the version every binary of the project reports
// (--version, the virtual node's kubelet version). It is set at build time:
//
//	go build -ldflags "-X github.com/ack-virtual-node/ack-virtual-node/pkg/version.Version=v1.2.3"
//
// as the Makefile's LDFLAGS and each images/*/Dockerfile do. It imports
// nothing, so a binary that only prints its version links nothing else.
package version

// Version is the build's version; "dev" when not set with -ldflags.
var Version = "dev"
