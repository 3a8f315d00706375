//go:build !linux

package mysqlserver

import "syscall"

func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
