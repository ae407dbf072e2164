//go:build !unix

package h1server

import "syscall"

// socketReads reports whether readSocket reads sockets here: not on this platform, where
// an idle connection keeps its buffers.
const socketReads = false

func readSocket(fd uintptr, p []byte) (int, error) { return 0, syscall.EINVAL }
