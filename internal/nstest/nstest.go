//go:build linux

// Package nstest runs test code inside a Linux network namespace. The contract tests give
// each task a network of its own, as awsvpc does, so that the ports a task definition or a
// template declares are used as declared.
package nstest

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs f on an OS thread that has joined the network namespace ns (an open
// /proc/PID/ns/net). Sockets f opens belong to that namespace. The thread stays locked to
// f's goroutine and ends with it, so it never runs anything else; for the same reason a
// process started with Pdeathsig from any goroutine may see its parent thread end.
func Do(ns *os.File, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
