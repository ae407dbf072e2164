package h1server

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// An idle keep-alive connection holds no buffers. Most connections a sidecar holds are
// idle most of the time (a load balancer keeps hundreds open), and the reader's and the
// writer's 4 KiB would be most of what each one costs. While the connection waits for its
// next request, both go back to their pools; they come back when bytes arrive.
//
// The wait costs no more system calls than a read into a held buffer: the runtime's read
// is one read that finds nothing, a wait for the socket to turn readable, and one read that
// gets the request. awaitRequest does the same through the socket's RawConn, with the
// buffers given back between the first read and the second.

// parkAfter is how long a keep-alive connection waits for its next request on the
// goroutine that served the last one. Past it, the connection is parked: a new goroutine
// waits instead, and the old one ends. Its stack, grown by the handlers it ran to several
// times a new goroutine's, would otherwise stay with the connection for as long as it is
// idle, and be most of what the connection costs. A connection that is busy never parks;
// one that waits longer pays, on its next request, for one goroutine and its stack's growth.
const parkAfter = 250 * time.Millisecond

// errParked is awaitRequest's answer when the connection has waited for parkAfter.
var errParked = errors.New("parked")

// idleWait waits for a request on a connection's socket.
type idleWait struct {
	raw syscall.RawConn
	c   *conn
	// try is c's attempt to read the next request, made once (a method value allocates).
	try func(fd uintptr) bool
	err error // what the last attempt's read returned, other than "nothing yet"
}

// newIdleWait returns an idleWait for rwc, or nil when it is not a socket of its own
// (under TLS the bytes read are not the request's, and the TLS connection holds its own
// buffers anyway).
func newIdleWait(rwc net.Conn) *idleWait {
	var sc syscall.Conn
	switch c := rwc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil || !socketReads {
		return nil
	}
	return &idleWait{raw: raw}
}

// awaitRequest waits, within the idle timeout, for the first bytes of the next request on a
// keep-alive connection whose reader holds nothing, and returns with them in the reader.
// The connection's buffers are in their pools while nothing has arrived. It returns
// errParked once it has waited for parkAfter, unless resumed (the wait after parking), which
// waits for the rest of the idle timeout.
func (c *conn) awaitRequest(resumed bool) error {
	idle := c.s.idleTimeout()
	w := c.idle
	if w == nil {
		c.setReadDeadline(idle)
		_, err := c.br.Peek(1)
		return err
	}
	if w.try == nil {
		w.c = c
		w.try = w.attempt
	}
	park := !resumed && (idle <= 0 || idle > parkAfter)
	switch {
	case park:
		c.setReadDeadline(parkAfter)
	case resumed && idle > 0:
		// The parking deadline, which passed, was set parkAfter into the idle wait.
		c.rwc.SetReadDeadline(c.rdl.Add(idle - parkAfter))
		c.forgetReadDeadline()
	case resumed:
		c.rwc.SetReadDeadline(time.Time{})
		c.forgetReadDeadline()
	default:
		c.setReadDeadline(idle)
	}
	w.err = nil
	if err := w.raw.Read(w.try); err != nil {
		if park && errors.Is(err, os.ErrDeadlineExceeded) {
			return errParked
		}
		return err // the deadline passed, or the server closed the connection
	}
	return w.err
}

// attempt reads what the socket holds into the connection's reader, without waiting. On
// nothing yet it gives the buffers back and reports false: RawConn.Read then waits for the
// socket to turn readable and calls it again.
func (w *idleWait) attempt(fd uintptr) bool {
	c := w.c
	if c.br == nil {
		c.acquire()
	}
	c.src.fd, c.src.raw = fd, true
	_, err := c.br.Peek(1)
	c.src.raw = false
	if errors.Is(err, syscall.EAGAIN) {
		c.release()
		return false
	}
	w.err = err
	return true
}
