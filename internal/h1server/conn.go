package h1server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	bufSize = 4 << 10
	// maxIdleHead is the largest head buffer (conn.head) kept while a connection is idle.
	maxIdleHead = 1 << 10
	// maxPostHandlerReadBytes is how much of a request body the handler left unread is
	// read and dropped to keep the connection; past it the connection closes (as net/http).
	maxPostHandlerReadBytes = 256 << 10
	// watchAfter is how long a request runs before a background read watches for the
	// client going away (which cancels the request's context).
	watchAfter = 50 * time.Millisecond
	// lingerTime bounds how long a connection closed by the server reads what the client
	// still sends, so that unread data does not turn the close into a reset that could
	// destroy the response in flight.
	lingerTime = 500 * time.Millisecond
	lingerMax  = 256 << 10
)

var (
	h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	// aLongTimeAgo is a deadline that makes pending reads return at once.
	aLongTimeAgo = time.Unix(1, 0)

	bufReaderPool sync.Pool
	bufWriterPool sync.Pool
	holdPool      = sync.Pool{New: func() any { return new([holdMax]byte) }}
)

// getHold returns an empty hold buffer (conn.hold) from its pool.
func getHold() []byte { return holdPool.Get().(*[holdMax]byte)[:0] }

// conn is one downstream connection.
type conn struct {
	s      *Server
	rwc    net.Conn
	remote string
	src    connSource
	// br and bw are nil while an idle keep-alive connection waits for its next request
	// (see awaitRequest).
	br *bufio.Reader
	bw *bufio.Writer
	// idle waits for the next request on the socket itself, nil when the connection is not
	// a socket of its own (TLS, or anything but a TCP or Unix connection).
	idle *idleWait
	// tlsState is the TLS connection's state after its handshake, nil on a plain one;
	// every request of the connection carries it.
	tlsState *tls.ConnectionState
	// state is http.ConnState in the low byte and, for StateNew, the Unix second it was
	// set in the rest (closeIdleConns drops new connections silent for five seconds).
	state atomic.Uint64

	head []byte // the request head being read, reused across requests
	// hold is the held-back body of a response (response.hold), reused; nil or holdMax
	// bytes from holdPool.
	hold []byte
	// rdl is the read deadline last set, rdlFor how long from when it was set.
	rdl    time.Time
	rdlFor time.Duration

	// wmu orders writes of the 100 Continue (from a body Read, on any goroutine) with the
	// response head; see response.commit.
	wmu sync.Mutex

	mu       sync.Mutex
	cur      *response // the request being served
	hijacked bool
	watch    *time.Timer
	bgDone   chan struct{} // a background read runs until closed
	bgAbort  bool
	// gone: the client closed or reset the connection, seen by a background read.
	gone bool
}

// connSource is what the connection's reader reads: a byte a background read got first,
// then the connection (its socket directly, without waiting, inside awaitRequest).
type connSource struct {
	c       *conn
	hasByte bool
	b       [1]byte
	// fd is the socket, valid while raw is set.
	fd  uintptr
	raw bool
}

func (s *connSource) Read(p []byte) (int, error) {
	if s.hasByte {
		if len(p) == 0 {
			return 0, nil
		}
		p[0] = s.b[0]
		s.hasByte = false
		return 1, nil
	}
	if s.raw {
		return readSocket(s.fd, p)
	}
	return s.c.rwc.Read(p)
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{s: s, rwc: rwc}
	c.src.c = c
	if ra := rwc.RemoteAddr(); ra != nil {
		c.remote = ra.String()
	}
	c.idle = newIdleWait(rwc)
	c.acquire()
	return c
}

// acquire takes the connection's buffers from their pools.
func (c *conn) acquire() {
	if v := bufReaderPool.Get(); v != nil {
		c.br = v.(*bufio.Reader)
		c.br.Reset(&c.src)
	} else {
		c.br = bufio.NewReaderSize(&c.src, bufSize)
	}
	if v := bufWriterPool.Get(); v != nil {
		c.bw = v.(*bufio.Writer)
		c.bw.Reset(c.rwc)
	} else {
		c.bw = bufio.NewWriterSize(c.rwc, bufSize)
	}
}

func (c *conn) setState(st http.ConnState) {
	switch st {
	case http.StateNew:
		c.s.trackConn(c, true)
		c.state.Store(uint64(time.Now().Unix())<<8 | uint64(st))
	case http.StateHijacked, http.StateClosed:
		c.s.trackConn(c, false)
		c.state.Store(1<<8 | uint64(st))
	default:
		c.state.Store(1<<8 | uint64(st))
	}
	if hook := c.s.ConnState; hook != nil {
		hook(c.rwc, st)
	}
}

func (c *conn) getState() (http.ConnState, int64) {
	v := c.state.Load()
	return http.ConnState(v & 0xff), int64(v >> 8)
}

// setReadDeadline sets the read deadline to now+d (none for d <= 0). A deadline set less
// than d/16 (at most a second) ago for the same d is kept: on a busy keep-alive
// connection the idle timeout is then set about once a second, not once a request.
func (c *conn) setReadDeadline(d time.Duration) {
	if d <= 0 {
		if !c.rdl.IsZero() {
			c.rwc.SetReadDeadline(time.Time{})
			c.rdl, c.rdlFor = time.Time{}, 0
		}
		return
	}
	now := time.Now()
	want := now.Add(d)
	if c.rdlFor == d && want.Sub(c.rdl) < min(d/16, time.Second) {
		return
	}
	c.rwc.SetReadDeadline(want)
	c.rdl, c.rdlFor = want, d
}

// forgetReadDeadline records that the read deadline is no longer known (set elsewhere).
func (c *conn) forgetReadDeadline() { c.rdl, c.rdlFor = aLongTimeAgo, -1 }

func (c *conn) serve(ctx context.Context) {
	// Requests' contexts (reqctx) do not follow this one's cancellation: the connection
	// cancels its request itself, so it needs none.
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.rwc.LocalAddr())
	parked := false
	defer func() { c.end(recover(), parked) }()

	c.setReadDeadline(c.s.readHeaderTimeout())
	alpnH2 := false
	if tc, ok := c.rwc.(*tls.Conn); ok {
		if c.handshake(ctx, tc) != nil {
			return
		}
		alpnH2 = c.tlsState.NegotiatedProtocol == "h2"
	}
	if c.s.HTTP2 != nil || alpnH2 {
		h2, err := c.prefaceNext()
		if err != nil {
			return
		}
		if alpnH2 && (!h2 || c.s.HTTP2 == nil) {
			// ALPN settled on HTTP/2 and this is not its preface: a connection error
			// (RFC 9113 §3.4), not an HTTP/1.1 request.
			c.s.logf("http: no HTTP/2 connection preface from %s after ALPN chose h2", c.remote)
			return
		}
		if h2 {
			c.br.Discard(len(h2Preface))
			c.setState(http.StateActive)
			c.forgetReadDeadline()
			c.rwc.SetReadDeadline(time.Time{})
			c.s.HTTP2(ctx, &prefacedConn{Conn: c.rwc, r: c.br})
			return
		}
	}
	parked = c.serveRequests(ctx, true, false)
}

// resume serves a keep-alive connection parked by serveRequests, on a new goroutine.
func (c *conn) resume(ctx context.Context) {
	parked := false
	defer func() { c.end(recover(), parked) }()
	parked = c.serveRequests(ctx, false, true)
}

// end is deferred by the goroutine serving the connection, with what it recovered: unless
// the connection was parked (another goroutine serves it now) or hijacked, it closes.
func (c *conn) end(p any, parked bool) {
	if parked {
		return
	}
	if p != nil && p != http.ErrAbortHandler {
		const size = 64 << 10
		buf := make([]byte, size)
		buf = buf[:runtime.Stack(buf, false)]
		c.s.logf("http: panic serving %v: %v\n%s", c.remote, p, buf)
	}
	c.mu.Lock()
	hijacked := c.hijacked
	c.mu.Unlock()
	if !hijacked {
		c.rwc.Close()
		if c.watch != nil {
			// After a panic in the handler the watcher may still be armed.
			c.stopWatch()
		}
		c.setState(http.StateClosed)
		c.release()
	}
}

// serveRequests serves HTTP/1 requests until the connection is to close, or until it has
// been idle for parkAfter: it then reports true and a new goroutine, started here, serves
// the connection from then on (see parkAfter). first is whether no request has been read
// yet, resumed whether the connection was parked and is idle.
func (c *conn) serveRequests(ctx context.Context, first, resumed bool) (parked bool) {
	for {
		if !first {
			if !resumed {
				c.setState(http.StateIdle)
			}
			if c.br == nil || c.br.Buffered() == 0 && !c.src.hasByte {
				if err := c.awaitRequest(resumed); err == errParked {
					go c.resume(ctx)
					return true
				} else if err != nil {
					return false
				}
			}
		} else if _, err := c.br.Peek(1); err != nil {
			return false
		}
		c.setState(http.StateActive)
		w, err := c.readRequest(ctx, first)
		first, resumed = false, false
		if err != nil {
			c.answerError(err)
			return false
		}
		c.serveRequest(w)
		if c.hijackedNow() {
			return false
		}
		if w.closeAfter || w.upgrade || c.goneNow() {
			if !w.broken {
				c.closeWriteAndLinger()
			}
			return false
		}
		w.release()
	}
}

// handshake runs the TLS handshake of tc within the read deadline of a first request head,
// which serve has set, and a write deadline as long. A client speaking plain HTTP gets a
// plain 400, as net/http answers it.
func (c *conn) handshake(ctx context.Context, tc *tls.Conn) error {
	if d := c.s.readHeaderTimeout(); d > 0 {
		c.rwc.SetWriteDeadline(time.Now().Add(d))
		defer c.rwc.SetWriteDeadline(time.Time{})
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			re.Conn.Close()
		}
		c.s.logf("http: TLS handshake error from %s: %v", c.remote, err)
		return err
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	return nil
}

// looksLikeHTTP reports whether the first bytes of what should be a TLS record are the
// start of an HTTP/1 request, as net/http judges them.
func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// prefaceNext reports whether the connection opens with the HTTP/2 client preface,
// reading only as far as needed to tell.
func (c *conn) prefaceNext() (bool, error) {
	n := 1
	for {
		b, err := c.br.Peek(n)
		if !bytes.HasPrefix(h2Preface, b) {
			return false, nil
		}
		if len(b) == len(h2Preface) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		n = min(max(c.br.Buffered(), len(b))+1, len(h2Preface))
	}
}

// prefacedConn is a connection whose first bytes are in the HTTP/1 reader.
type prefacedConn struct {
	net.Conn
	r *bufio.Reader
}

// NetConn returns the connection read after the buffered bytes: a *tls.Conn over TLS.
func (p *prefacedConn) NetConn() net.Conn { return p.Conn }

func (p *prefacedConn) Read(b []byte) (int, error) {
	if p.r != nil {
		if p.r.Buffered() > 0 {
			return p.r.Read(b)
		}
		p.r = nil
	}
	return p.Conn.Read(b)
}

// serveRequest runs the handler for w, with a watcher for the client going away once it
// has run for watchAfter, and then finishes the response.
func (c *conn) serveRequest(w *response) {
	defer func() {
		w.quiet = w.ctx.Quiet()
		w.cancel()
	}()
	if w.expectationFailed {
		// RFC 9110 §10.1.1: an expectation other than 100-continue may get a 417.
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		return
	}
	c.mu.Lock()
	c.cur = w
	if c.watch == nil {
		c.watch = time.AfterFunc(watchAfter, c.startWatch)
	} else {
		c.watch.Reset(watchAfter)
	}
	c.mu.Unlock()
	h := c.s.Handler
	if w.req.RequestURI == "*" && w.req.Method == http.MethodOptions {
		h = globalOptions // as net/http: a server-wide OPTIONS is answered here
	}
	h.ServeHTTP(w, w.req)
	c.stopWatch()
	w.finish()
}

var globalOptions = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
	if r.ContentLength != 0 {
		io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<10))
	}
})

// startWatch runs on the watch timer: once the request body has been read, a background
// read notices the client closing the connection.
func (c *conn) startWatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.cur
	if w == nil || c.hijacked || c.bgDone != nil || w.done.Load() {
		return
	}
	if w.body != nil && !w.body.finished() {
		c.watch.Reset(watchAfter)
		return
	}
	if c.br.Buffered() > 0 || c.src.hasByte {
		return // the client sent more already: it is there
	}
	done := make(chan struct{})
	c.bgDone = done
	c.bgAbort = false
	// Cleared here, under c.mu, so that stopWatch's deadline in the past always comes
	// after it.
	c.rwc.SetReadDeadline(time.Time{})
	go c.backgroundRead(done)
}

func (c *conn) backgroundRead(done chan struct{}) {
	n, err := c.rwc.Read(c.src.b[:])
	c.mu.Lock()
	if n == 1 {
		c.src.hasByte = true
	}
	if err != nil && !c.bgAbort {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			c.gone = true
			if c.cur != nil {
				c.cur.cancel()
			}
		}
	}
	c.bgDone = nil
	c.mu.Unlock()
	close(done)
}

// stopWatch stops the watch timer and any background read.
func (c *conn) stopWatch() {
	c.mu.Lock()
	c.cur = nil
	c.stopWatchLocked()
	c.mu.Unlock()
}

// stopWatchLocked stops the watch timer and waits for a background read to end, letting
// go of c.mu meanwhile; it reports whether one was running (the read deadline is then
// unknown). c.mu is held.
func (c *conn) stopWatchLocked() bool {
	c.watch.Stop()
	done := c.bgDone
	if done == nil {
		return false
	}
	c.bgAbort = true
	c.rwc.SetReadDeadline(aLongTimeAgo)
	c.mu.Unlock()
	<-done
	c.mu.Lock()
	c.forgetReadDeadline()
	return true
}

func (c *conn) hijackedNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hijacked
}

func (c *conn) goneNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// hijack hands the connection over; c.mu is held.
func (c *conn) hijackLocked() (net.Conn, *bufio.ReadWriter, error) {
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if c.stopWatchLocked() {
		c.rwc.SetReadDeadline(time.Time{})
	}
	c.hijacked = true
	c.cur = nil
	if c.src.hasByte {
		c.br.Peek(1) // the byte a background read got moves into the reader, without a read
	}
	var rwc net.Conn = c.rwc
	if c.br.Buffered() > 0 {
		rwc = &prefacedConn{Conn: c.rwc, r: c.br}
	}
	c.setState(http.StateHijacked)
	return rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

// closeWriteAndLinger flushes, half-closes, and reads what the client still sends for a
// moment before the connection is closed.
func (c *conn) closeWriteAndLinger() {
	if c.bw.Flush() != nil {
		return
	}
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok {
		return
	}
	if cw.CloseWrite() != nil {
		return
	}
	c.rwc.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, c.br, lingerMax)
}

// release gives the connection's buffers back: when it closes, and while it is idle.
func (c *conn) release() {
	if c.hold != nil {
		holdPool.Put((*[holdMax]byte)(c.hold[:holdMax]))
		c.hold = nil
	}
	if cap(c.head) > maxIdleHead {
		c.head = nil // a large head is rare: not worth holding on to while idle
	}
	if c.br != nil {
		c.br.Reset(nil)
		bufReaderPool.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		bufWriterPool.Put(c.bw)
		c.bw = nil
	}
}

// answerError answers a request the server refuses, if it has a status to answer with,
// and lets the connection close.
func (c *conn) answerError(err error) {
	var se *statusError
	if !errors.As(err, &se) {
		return
	}
	if se.reason != "" && c.s.Rejected != nil {
		c.s.Rejected(c.rwc, Rejection{Reason: se.reason, Text: se.text})
	}
	text := http.StatusText(se.code)
	body := se.body
	if body == "" {
		body = strconv.Itoa(se.code) + " " + text
		if se.text != "" {
			body += ": " + se.text
		}
	}
	c.bw.WriteString("HTTP/1.1 " + strconv.Itoa(se.code) + " " + text + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	c.closeWriteAndLinger()
}

// statusError is a request refused with a status: the body is the status and text, or
// body when set. reason is set for a Rejection.
type statusError struct {
	code               int
	text, body, reason string
}

func (e *statusError) Error() string { return strconv.Itoa(e.code) + " " + e.text }

func badRequest(text string) error { return &statusError{code: http.StatusBadRequest, text: text} }
