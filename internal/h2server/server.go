// Package h2server serves HTTP/2 connections with the settings of an http.Server.
//
// It takes over the connections recognised as HTTP/2 by their client preface, on a
// connection seen unencrypted (h2c, or HTTP/2 over TLS that the listener has already
// decrypted), and serves their streams with the server's handler: from h1server, which
// calls ServeConn, or from net/http's server (Configure).
//
// Why not net/http's own HTTP/2 server: it runs every frame through one loop goroutine and
// makes each handler wait for that loop twice per response (headers, then data), starting
// a goroutine to write the headers. Here the goroutine that reads frames handles them
// itself, handlers append their frames to the connection's output under its lock, and one
// writer goroutine sends whatever has gathered in a single system call. Frame parsing and
// HPACK are golang.org/x/net/http2's; header blocks are assembled, bounded and checked
// here (headers.go), and so are floods of frames that make no progress (conn.waste).
// docs/security/http2-server.md lists every limit.
//
// Behaviour follows net/http's HTTP/2 server where it is visible to handlers and clients:
// the same request fields, http.Server's ReadTimeout and WriteTimeout per stream,
// IdleTimeout per connection, MaxHeaderBytes as the header list limit (431 beyond it),
// automatic Content-Length, Content-Type sniffing and Date, trailers (the Trailer header
// and http.TrailerPrefix), 100-continue, and a graceful GOAWAY on Shutdown. A request's
// context is a reqctx.Context: reqctx.Cause, not context.Cause, tells why it ended.
package h2server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Defaults, as net/http's HTTP/2 server has them.
const (
	// DefaultMaxConcurrentStreams is the streams a client may have open at once.
	DefaultMaxConcurrentStreams = 250
	// streamWindow and connWindow are the receive windows advertised for request bodies:
	// what one stream, and the whole connection, may have buffered unread.
	streamWindow = 1 << 20
	connWindow   = 1 << 20
	// prefaceTimeout bounds the wait for the client preface after ALPN, as net/http's.
	prefaceTimeout = 10 * time.Second
)

// Server serves HTTP/2 for one or more http.Servers (see Configure).
type Server struct {
	// MaxConcurrentStreams is advertised to clients; 0 means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool

	work chan *stream // to an idle handler goroutine

	connDone func(connStats) // for tests: called with each connection's counts as it ends
}

// run runs st's handler on an idle handler goroutine, or a new one. Handler goroutines
// are kept for a while after their stream ends: a new goroutine's stack starts small and
// the proxying path needs more, and growing it (copying it, frame by frame, several
// times) cost a tenth of the CPU of a proxied request.
func (s *Server) run(st *stream) {
	select {
	case s.work <- st:
	default:
		go s.worker(st)
	}
}

// workerIdle is how long a handler goroutine waits for another stream before it ends.
const workerIdle = 10 * time.Second

func (s *Server) worker(st *stream) {
	growStack()
	idle := time.NewTimer(workerIdle)
	for {
		st.c.runHandler(st)
		st = nil // an idle goroutine keeps nothing of its last stream alive
		idle.Reset(workerIdle)
		select {
		case st = <-s.work:
		case <-idle.C:
			return
		}
	}
}

// growStack grows the calling goroutine's stack to stackReserve in one step, while it is
// shallow.
//
//go:noinline
func growStack() {
	var buf [stackReserve]byte
	touchStack(buf[:])
}

// stackReserve is what growStack reserves: enough for the proxying path's deepest frames.
const stackReserve = 8 << 10

//go:noinline
func touchStack(b []byte) { b[len(b)-1] = 0 }

// Configure makes hs hand its HTTP/2 connections to s, and shut them down gracefully (a
// GOAWAY, then close once their streams end) when hs shuts down. hs must allow
// unencrypted HTTP/2 (Protocols.SetUnencryptedHTTP2), which is how net/http recognises
// the client preface. Setting TLSNextProto also keeps net/http from configuring its own
// HTTP/2 server.
func (s *Server) Configure(hs *http.Server) {
	s.init()
	if hs.TLSNextProto == nil {
		hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	// net/http passes an unencrypted connection wrapped in a *tls.Conn that is never used
	// as one; the net.Conn is behind UnencryptedNetConn. The preface has been read.
	hs.TLSNextProto["unencrypted_http2"] = func(hs *http.Server, tc *tls.Conn, h http.Handler) {
		u, ok := tc.NetConn().(interface{ UnencryptedNetConn() net.Conn })
		if !ok {
			return // net/http closes the connection when this returns
		}
		s.ServeConn(baseContext(h), hs, u.UnencryptedNetConn(), h)
	}
	// HTTP/2 negotiated by net/http's own TLS (ALPN "h2"); its presence is also what keeps
	// net/http from installing its HTTP/2 server over these entries.
	hs.TLSNextProto["h2"] = func(hs *http.Server, tc *tls.Conn, h http.Handler) {
		if err := readPreface(tc); err != nil {
			return
		}
		s.ServeConn(baseContext(h), hs, tc, h)
	}
	hs.RegisterOnShutdown(s.Shutdown)
}

// ServeConn serves one HTTP/2 connection whose client preface has been read, with the
// timeouts and limits of hs, until it ends. It returns once every handler of the
// connection has returned, with nc closed.
func (s *Server) ServeConn(ctx context.Context, hs *http.Server, nc net.Conn, h http.Handler) {
	s.init()
	c := newConn(s, hs, nc, h, ctx)
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	shutdown := s.shutdown
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if shutdown {
		c.goAway()
	}
	c.serve()
	if s.connDone != nil {
		s.connDone(c.stats)
	}
}

func (s *Server) init() {
	s.mu.Lock()
	if s.work == nil {
		s.work = make(chan *stream)
	}
	s.mu.Unlock()
}

// Shutdown sends every connection a GOAWAY naming the last stream it will serve; each
// closes once those streams have ended. Connections that arrive later get the same at
// once.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.goAway()
	}
}

// baseContext is the connection context net/http hands over with the handler.
func baseContext(h http.Handler) context.Context {
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		return bc.BaseContext()
	}
	return context.Background()
}

// readPreface reads the client preface of a connection that net/http has not read it
// from (one negotiated by ALPN), within a deadline.
func readPreface(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(prefaceTimeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != http2.ClientPreface {
		return errors.New("http2: bad client preface")
	}
	return nil
}
