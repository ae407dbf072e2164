// Package h2server serves HTTP/2 connections.
//
// It takes over the connections h1server recognises as HTTP/2 by their client preface
// (h2c with prior knowledge, or HTTP/2 over TLS after ALPN chose h2, which h1server has
// decrypted and checked), and serves their streams with its handler: h1server calls
// ServeConn.
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
// the same request fields, ReadTimeout and WriteTimeout per stream,
// IdleTimeout per connection, MaxHeaderBytes as the header list limit (431 beyond it),
// automatic Content-Length, Content-Type sniffing and Date, trailers (the Trailer header
// and http.TrailerPrefix), 100-continue, and a graceful GOAWAY on Shutdown. A request's
// context is a reqctx.Context: reqctx.Cause, not context.Cause, tells why it ended.
package h2server

import (
	"context"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults, as net/http's HTTP/2 server has them.
const (
	// DefaultMaxConcurrentStreams is the streams a client may have open at once.
	DefaultMaxConcurrentStreams = 250
	// streamWindow and connWindow are the receive windows advertised for request bodies:
	// what one stream, and the whole connection, may have buffered unread.
	streamWindow = 1 << 20
	connWindow   = 1 << 20
)

// Server serves HTTP/2 connections handed to it by ServeConn. Its settings mean what
// http.Server's fields of the same names mean for HTTP/2; set them before the first
// ServeConn.
type Server struct {
	Handler        http.Handler
	ReadTimeout    time.Duration // per stream: its request head and body
	WriteTimeout   time.Duration // per stream: from its request head to its response's end
	IdleTimeout    time.Duration // per connection; 0: ReadTimeout
	MaxHeaderBytes int           // the header list limit; 0: http.DefaultMaxHeaderBytes
	ErrorLog       *log.Logger   // nil: the log package's standard logger
	// MaxConcurrentStreams is advertised to clients; 0 means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool

	idle workers // the handler goroutines waiting for a stream

	connDone func(connStats) // for tests: called with each connection's counts as it ends
}

// run runs st's handler on an idle handler goroutine, or a new one. Handler goroutines
// are kept for a while after their stream ends: a new goroutine's stack starts small and
// the proxying path needs more, and growing it (copying it, frame by frame, several
// times) cost a tenth of the CPU of a proxied request.
func (s *Server) run(st *stream) {
	if w := s.idle.get(); w != nil {
		w.next <- st
		return
	}
	go s.worker(st)
}

func (s *Server) worker(st *stream) {
	growStack()
	w := &worker{next: make(chan *stream, 1)}
	for st != nil {
		st.c.runHandler(st)
		st = nil // an idle goroutine keeps nothing of its last stream alive
		if !s.idle.put(w) {
			return
		}
		st = <-w.next
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

// ServeConn serves one HTTP/2 connection whose client preface has been read, until it
// ends. It returns once every handler of the connection has returned, with nc closed.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) {
	c := newConn(s, nc, ctx)
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

// Shutdown sends every connection a GOAWAY naming the last stream it will serve; each
// closes once those streams have ended. Connections that arrive later get the same at
// once. Idle handler goroutines end at once, and the rest as their streams end.
func (s *Server) Shutdown() {
	s.idle.close()
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
