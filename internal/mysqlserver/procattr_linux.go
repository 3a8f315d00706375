package mysqlserver

import "syscall"

// procAttr kills mariadbd if the process that started it dies (a test
// binary killed on timeout must not leave servers behind).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
