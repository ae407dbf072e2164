//go:build unix

package upstream

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"syscall"
)

// socketPeek looks at a connection's socket for bytes that arrived, without reading them or
// waiting: one recv(MSG_PEEK|MSG_DONTWAIT), no goroutine and no allocation. It also writes
// a request and waits for its answer in one go (flushThenWait).
type socketPeek struct {
	raw  syscall.RawConn
	look func(fd uintptr) bool // p.peekFD, made once
	n    int
	err  error
	buf  [1]byte

	flush   func(fd uintptr) bool // p.flushFD, made once
	w       *bufio.Writer         // what flushFD flushes
	flushed bool                  // flushFD has flushed w
	werr    error                 // and what that returned
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
	p.flush = p.flushFD
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

// flushThenWait flushes w, which writes to the socket, and waits until the socket has
// something to read (the answer), in one RawConn.Read. The runtime's own Read always tries
// a read before it waits, and right after a request is written that read finds nothing:
// this spares one system call per exchange. It returns the flush's error, or the socket's
// when it failed before the flush; a failure of the wait itself is left to the read that
// follows, which meets it again.
func (p *socketPeek) flushThenWait(w *bufio.Writer) error {
	p.w, p.flushed, p.werr = w, false, nil
	err := p.raw.Read(p.flush)
	p.w = nil
	if !p.flushed {
		return err
	}
	return p.werr
}

// flushFD is called by RawConn.Read: first to flush (then, unless that failed, wait for
// the socket to be readable), again once it is (or the wait was woken early, which the
// read that follows handles as any read does).
func (p *socketPeek) flushFD(uintptr) bool {
	if p.flushed {
		return true
	}
	p.flushed = true
	p.werr = p.w.Flush()
	return p.werr != nil
}
