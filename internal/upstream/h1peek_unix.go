//go:build unix

package upstream

import (
	"crypto/tls"
	"io"
	"net"
	"syscall"
)

// socketPeek looks at a connection's socket for bytes that arrived, without reading them or
// waiting: one recv(MSG_PEEK|MSG_DONTWAIT), no goroutine and no allocation.
type socketPeek struct {
	raw  syscall.RawConn
	look func(fd uintptr) bool // p.peekFD, made once
	n    int
	err  error
	buf  [1]byte
}

// newSocketPeek returns a peek at conn's TCP socket (under TLS too), or nil.
func newSocketPeek(conn net.Conn) *socketPeek {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &socketPeek{raw: raw}
	p.look = p.peekFD
	return p
}

func (p *socketPeek) peekFD(fd uintptr) bool {
	p.n, _, p.err = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true // never wait
}

// pending returns errUnsolicited when bytes wait in the socket, io.EOF when the peer
// closed it, another error when it failed, and nil when nothing arrived.
func (p *socketPeek) pending() error {
	if err := p.raw.Read(p.look); err != nil {
		return err
	}
	switch {
	case p.err == syscall.EAGAIN || p.err == syscall.EWOULDBLOCK:
		return nil
	case p.err != nil:
		return p.err
	case p.n > 0:
		return errUnsolicited
	}
	return io.EOF
}
