//go:build unix && !linux

package demo

import "syscall"

// sysProcAttr puts a child in its own process group, so that a terminal's Ctrl-C reaches
// only the launcher, which stops the children in order.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
