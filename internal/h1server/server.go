// Package h1server serves HTTP/1.x: the accept loop, the keep-alive loop of each
// connection, request heads and bodies, and the response writer handlers see. It stands in
// for net/http's HTTP/1 server with the same handler interface and the same lifecycle
// (ConnState, Shutdown, Close, hijacking), and hands connections that open with the
// HTTP/2 client preface to an HTTP/2 server.
//
// What it does differently from net/http, and why it exists: per request it parses the
// head once into one string, reads the connection only from the goroutine that serves it
// (a client that goes away during a slow request is noticed by a watcher started only
// for requests that run longer than watchAfter), sets the idle deadline about once a
// second instead of three read deadlines a request, and writes the response head straight
// into the connection's buffer. That more than halves the server's share of the CPU of a
// small proxied request (docs/benchmarks.md).
//
// Where it differs from net/http on purpose: obsolete line folding, a request with both
// Content-Length and Transfer-Encoding and an HTTP/1.0 request with Transfer-Encoding get
// 400 (and are reported to Rejected), the connection closes after a response to an
// Upgrade request that the handler did not take over, more than MaxHeaderFields header fields get 431, up to MaxLeadingEmptyLines empty
// lines before any request line are ignored (net/http ignores four bytes of them after a
// POST), a close after a response is always announced (Connection: close), and a
// connection the server closes is half-closed and read for a moment (lingering close)
// rather than held for a fixed 500 ms. diff_test.go compares the two servers byte for
// byte; docs/security/http1-server.md lists every limit.
package h1server

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// MaxLeadingEmptyLines is how many empty lines (CRLF or LF) the server ignores before a
// request line: RFC 9112 §2.2 asks for at least one, which old clients send after a POST
// body. More is answered 400.
const MaxLeadingEmptyLines = 4

// MaxHeaderFields is how many field lines a request head, or a trailer section, may
// have: more is answered 431 (a trailer section, an error reading the body). A head's
// size is bounded by MaxHeaderBytes too, but a megabyte of the shortest lines ("a:")
// would cost dozens of megabytes to hold as a header map. Envoy and HAProxy allow about a
// hundred.
const MaxHeaderFields = 1000

// Rejection is a request head refused with 400 because another HTTP implementation in
// front of the server or behind it could frame it differently: read as another sequence
// of requests, it would smuggle one past whatever checks the requests (RFC 9112 §6.1,
// §5.2). The connection ends after the 400.
type Rejection struct {
	// Reason is a label for counting: content_length_and_transfer_encoding,
	// transfer_encoding_http10 or obsolete_line_folding.
	Reason string
	Text   string // what the 400 says
}

// Server serves HTTP/1.x connections. Its fields mean what http.Server's fields of the
// same names mean; set them before Serve.
type Server struct {
	Handler           http.Handler
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int // 0: http.DefaultMaxHeaderBytes
	ErrorLog          *log.Logger
	ConnContext       func(ctx context.Context, c net.Conn) context.Context
	ConnState         func(net.Conn, http.ConnState)
	// HTTP2, when set, is handed each connection that opens with the HTTP/2 client
	// preface, the preface already read; it returns when the connection is done. When it
	// is nil, a preface is answered as an HTTP/1 request ("PRI * HTTP/2.0"). Over TLS the
	// connection handed over unwraps (NetConn) to the *tls.Conn.
	HTTP2 func(ctx context.Context, c net.Conn)
	// TLSConfig, when set, makes Serve terminate TLS on every connection it accepts. The
	// handshake runs on the connection's goroutine, within ReadHeaderTimeout; a client
	// that speaks plain HTTP instead gets a plain 400. Requests carry the connection's
	// state in Request.TLS. When ALPN chooses "h2" (offer it in NextProtos only with
	// HTTP2 set), the connection must open with the HTTP/2 client preface, or it is
	// closed unanswered (RFC 9113 §3.4).
	TLSConfig *tls.Config
	// Rejected, when set, hears of every request head refused because its framing is
	// ambiguous (see Rejection), before the 400 is written.
	Rejected func(c net.Conn, why Rejection)

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	onShutdown []func()
	listenerWG sync.WaitGroup

	inShutdown        atomic.Bool
	disableKeepAlives atomic.Bool
}

// Serve accepts connections on ln and serves each on its own goroutine. It returns
// http.ErrServerClosed once Shutdown or Close was called, or the listener's error, and
// closes ln.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(&ln, true) {
		return http.ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	defer ln.Close() // as net/http: the listener ends with Serve
	ctx := context.Background()
	var backoff time.Duration
	for {
		rw, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("h1server: accept error: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if s.TLSConfig != nil {
			rw = tls.Server(rw, s.TLSConfig)
		}
		connCtx := ctx
		if s.ConnContext != nil {
			if connCtx = s.ConnContext(ctx, rw); connCtx == nil {
				panic("h1server: ConnContext returned nil")
			}
		}
		c := newConn(s, rw)
		c.setState(http.StateNew)
		go c.serve(connCtx)
	}
}

// isTemporary reports an accept error worth retrying (EMFILE, ECONNABORTED...).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
	}
	if add {
		if s.inShutdown.Load() {
			return false
		}
		s.listeners[ln] = struct{}{}
		s.listenerWG.Add(1)
	} else {
		delete(s.listeners, ln)
		s.listenerWG.Done()
	}
	return true
}

func (s *Server) trackConn(c *conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
}

// RegisterOnShutdown registers f to run, on its own goroutine, when Shutdown starts.
func (s *Server) RegisterOnShutdown(f func()) {
	s.mu.Lock()
	s.onShutdown = append(s.onShutdown, f)
	s.mu.Unlock()
}

// SetKeepAlivesEnabled turns keep-alives on or off. Turning them off closes idle
// connections at once and makes busy ones close after their current response.
func (s *Server) SetKeepAlivesEnabled(v bool) {
	if v {
		s.disableKeepAlives.Store(false)
		return
	}
	s.disableKeepAlives.Store(true)
	s.closeIdleConns()
}

func (s *Server) keepAlivesEnabled() bool {
	return !s.disableKeepAlives.Load() && !s.inShutdown.Load()
}

// shutdownPollIntervalMax caps the wait between two looks at the connections in Shutdown.
const shutdownPollIntervalMax = 500 * time.Millisecond

// Shutdown closes the listeners, runs the functions registered with RegisterOnShutdown,
// and then closes idle connections as they become idle, until none is left or ctx ends;
// busy connections close after their current response. It does not wait for hijacked
// connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	err := s.closeListenersLocked()
	for _, f := range s.onShutdown {
		go f()
	}
	s.mu.Unlock()
	s.listenerWG.Wait()

	interval := time.Millisecond
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		if s.closeIdleConns() {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			interval = min(2*interval, shutdownPollIntervalMax)
			timer.Reset(interval)
		}
	}
}

// Close closes the listeners and every connection not hijacked, at once.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	err := s.closeListenersLocked()
	s.mu.Unlock()
	// Each Serve returns once its Accept fails, and needs s.mu to untrack its listener.
	s.listenerWG.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.rwc.Close()
		delete(s.conns, c)
	}
	return err
}

func (s *Server) closeListenersLocked() error {
	var err error
	for ln := range s.listeners {
		if cerr := (*ln).Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// closeIdleConns closes the connections waiting for a request (and new ones silent for
// five seconds); it reports whether no connection is left.
func (s *Server) closeIdleConns() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	quiescent := true
	for c := range s.conns {
		st, unixSec := c.getState()
		if st == http.StateNew && unixSec < time.Now().Unix()-5 {
			st = http.StateIdle
		}
		if st != http.StateIdle || unixSec == 0 {
			quiescent = false
			continue
		}
		c.rwc.Close()
		delete(s.conns, c)
	}
	return quiescent
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout != 0 {
		return s.IdleTimeout
	}
	return s.ReadTimeout
}

func (s *Server) readHeaderTimeout() time.Duration {
	if s.ReadHeaderTimeout != 0 {
		return s.ReadHeaderTimeout
	}
	return s.ReadTimeout
}
