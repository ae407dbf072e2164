// Package memnet is an in-memory network for tests that run in a testing/synctest bubble:
// a Listener whose Dial hands one end of a connection to the caller and the other to
// Accept.
//
// A goroutine blocked on a real socket is not durably blocked, so a bubble's fake clock
// stands still while a server waits for its client; a goroutine blocked on a memnet
// connection waits on channels of the bubble, so synctest.Wait returns and the clock
// advances to the next timer or deadline. Unlike net.Pipe, a connection behaves as a
// socket does where servers care: each direction buffers up to a socket buffer's worth of
// bytes, so a write returns before the peer reads; deadlines follow the bubble's clock
// and fail with os.ErrDeadlineExceeded; CloseWrite half-closes (the peer reads io.EOF);
// writing to a peer that closed fails with EPIPE.
//
// Where it differs from TCP: Close never resets the connection, so the peer reads what was
// written before the close and then io.EOF, whatever was left unread at this end.
//
// A Listener and its connections belong to the bubble that made them: using them from
// another goroutine outside it panics, as a bubble's channels do.
package memnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// bufferSize is how many bytes a direction holds before a write blocks, as a socket's
// send and receive buffers do.
const bufferSize = 256 << 10

// Listener accepts the connections its Dial makes. Its zero value is not usable; call
// Listen.
type Listener struct {
	addr    addr
	accept  chan net.Conn
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	clients int
}

// Listen returns a listener whose Addr is addr (a host:port, for the servers that log or
// parse it).
func Listen(address string) *Listener {
	return &Listener{addr: addr(address), accept: make(chan net.Conn, 128), done: make(chan struct{})}
}

// Accept returns the server's end of the next connection Dial made.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "memnet", Addr: l.addr, Err: net.ErrClosed}
	}
}

// Close stops Accept; connections already accepted stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns the address Listen was given.
func (l *Listener) Addr() net.Addr { return l.addr }

// Dial connects to the listener and returns the client's end. The connection is queued
// for Accept, as the kernel queues a TCP connection before accept; Dial fails with
// ECONNREFUSED once the listener is closed.
func (l *Listener) Dial() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: l.addr, Err: syscall.ECONNREFUSED}
	default:
	}
	l.mu.Lock()
	l.clients++
	client := addr(fmt.Sprintf("127.0.0.1:%d", 40000+l.clients))
	l.mu.Unlock()
	c, s := pair(client, l.addr)
	select {
	case l.accept <- s:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: l.addr, Err: syscall.ECONNREFUSED}
	}
}

// DialContext is Dial with the signature of net.Dialer.DialContext, for an
// http.Transport; the network and address are ignored.
func (l *Listener) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.Dial()
}

type addr string

func (a addr) Network() string { return "memnet" }
func (a addr) String() string  { return string(a) }

// pair returns two connected ends.
func pair(client, server addr) (*Conn, *Conn) {
	up, down := newStream(), newStream()
	c := &Conn{in: down, out: up, local: client, remote: server, rd: newDeadline(), wd: newDeadline()}
	s := &Conn{in: up, out: down, local: server, remote: client, rd: newDeadline(), wd: newDeadline()}
	return c, s
}

// stream is one direction of a connection.
type stream struct {
	mu      sync.Mutex
	buf     []byte
	eof     bool          // the writing end closed or half-closed: the reader gets io.EOF
	gone    bool          // the reading end closed: the writer gets EPIPE
	changed chan struct{} // closed and replaced on every change, to wake the waiting ends
}

func newStream() *stream { return &stream{changed: make(chan struct{})} }

// signal wakes the goroutines waiting on s; s.mu is held.
func (s *stream) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Conn is one end of a memnet connection. It implements net.Conn and CloseWrite.
type Conn struct {
	in, out       *stream
	local, remote addr
	rd, wd        *deadline
	closeOnce     sync.Once
	closedMu      sync.Mutex
	closed        bool
}

func (c *Conn) isClosed() bool {
	c.closedMu.Lock()
	defer c.closedMu.Unlock()
	return c.closed
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "memnet", Source: c.local, Addr: c.remote, Err: err}
}

// Read reads what the peer wrote; it returns io.EOF once the peer closed or half-closed
// and everything before was read.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		if c.isClosed() {
			return 0, c.opError("read", net.ErrClosed)
		}
		expired, wait := c.rd.state()
		if expired {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		s := c.in
		s.mu.Lock()
		if len(s.buf) > 0 || len(p) == 0 {
			n := copy(p, s.buf)
			s.buf = s.buf[n:]
			s.signal()
			s.mu.Unlock()
			return n, nil
		}
		if s.eof {
			s.mu.Unlock()
			return 0, io.EOF
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-wait:
		}
	}
}

// Write buffers p for the peer, waiting while the buffer is full.
func (c *Conn) Write(p []byte) (int, error) {
	n := 0
	for {
		if c.isClosed() {
			return n, c.opError("write", net.ErrClosed)
		}
		expired, wait := c.wd.state()
		if expired {
			return n, c.opError("write", os.ErrDeadlineExceeded)
		}
		s := c.out
		s.mu.Lock()
		if s.eof || s.gone { // after CloseWrite, or the peer closed
			s.mu.Unlock()
			return n, c.opError("write", syscall.EPIPE)
		}
		if room := bufferSize - len(s.buf); room > 0 {
			k := min(room, len(p)-n)
			s.buf = append(s.buf, p[n:n+k]...)
			n += k
			s.signal()
		}
		if n == len(p) {
			s.mu.Unlock()
			return n, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-wait:
		}
	}
}

// CloseWrite half-closes the connection: the peer reads io.EOF after what was written.
func (c *Conn) CloseWrite() error {
	if c.isClosed() {
		return c.opError("close", net.ErrClosed)
	}
	c.out.mu.Lock()
	c.out.eof = true
	c.out.signal()
	c.out.mu.Unlock()
	return nil
}

// Close ends both directions: the peer reads io.EOF after what was written, and its
// writes fail with EPIPE.
func (c *Conn) Close() error {
	err := c.opError("close", net.ErrClosed)
	c.closeOnce.Do(func() {
		err = nil
		c.closedMu.Lock()
		c.closed = true
		c.closedMu.Unlock()
		c.out.mu.Lock()
		c.out.eof = true
		c.out.signal()
		c.out.mu.Unlock()
		c.in.mu.Lock()
		c.in.gone, c.in.buf = true, nil
		c.in.signal()
		c.in.mu.Unlock()
		// Wake this end's own blocked Read and Write, which wait on the deadlines too.
		c.rd.set(time.Unix(1, 0))
		c.wd.set(time.Unix(1, 0))
	})
	return err
}

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

func (c *Conn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// deadline is a read or write deadline: a channel closed when it passes.
type deadline struct {
	mu      sync.Mutex
	gen     int // counts the settings, so that a timer of an earlier one does nothing
	timer   *time.Timer
	expired chan struct{}
	passed  bool
}

func newDeadline() *deadline { return &deadline{expired: make(chan struct{})} }

// set moves the deadline to t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.passed {
		d.expired, d.passed = make(chan struct{}), false
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		d.passed = true
		close(d.expired)
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !d.passed {
			d.passed = true
			close(d.expired)
		}
	})
}

// state reports whether the deadline passed, and a channel closed when it does.
func (d *deadline) state() (bool, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed, d.expired
}
