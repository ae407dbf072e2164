//go:build unix

package h1server

import (
	"io"
	"syscall"
)

// socketReads reports whether readSocket reads sockets here.
const socketReads = true

// readSocket reads from the non-blocking socket fd as a net.Conn's Read does, except that
// when nothing has arrived it returns syscall.EAGAIN instead of waiting.
func readSocket(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := syscall.Read(int(fd), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}
