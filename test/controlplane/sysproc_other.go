//go:build unix && !linux

package controlplane

import "syscall"

// sysProcAttr puts each child in its own process group so Stop can kill
// the group; other Unixes have no parent-death signal.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
