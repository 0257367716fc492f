package controlplane

import "syscall"

// sysProcAttr puts each child in its own process group (so Stop can kill
// the group) and asks the kernel to SIGKILL it if the thread that started
// it dies, so a crashed or killed test binary leaks no apiserver or etcd.
// Pdeathsig is tied to the starting OS thread, not the process; the Go
// runtime keeps its threads alive, so in practice it fires on process exit.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
