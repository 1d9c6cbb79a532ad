package demo

import "syscall"

// sysProcAttr puts a child in its own process group (a terminal's Ctrl-C reaches only the
// launcher, which stops the children in order) and has the kernel send it SIGTERM if the
// launcher dies first, so no simulator or daemon outlives a crashed demo.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
