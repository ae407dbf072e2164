// Package upstream is the application behind the proxies in the rollout harness: a small
// HTTP and WebSocket echo server on 127.0.0.1.
//
//	GET  /healthz          200 "ok"
//	GET  /echo?id=X        200, body X
//	POST /echo             200, the request body
//	     ?delay=D          either one answers after D (a Go duration, at most MaxDelay), so
//	                       that requests are in flight when a replica shuts down
//	GET  /ws               WebSocket: every text or binary message is sent back unchanged
//
// SetDown(true) makes it fail like a shared dependency in an outage: every request,
// /healthz included, gets 503 until SetDown(false); open WebSockets are closed.
//
// The load generator checks every body, so a proxy that mixed up or truncated responses
// would be counted as failing.
package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// MaxDelay bounds the delay a request may ask for.
const MaxDelay = 5 * time.Second

// Server is a running echo server. Close stops it.
type Server struct {
	addr string
	srv  *http.Server
	done chan struct{}

	// WebSocket connections are hijacked, so http.Server.Close does not see them; they are
	// tracked here and closed by Close.
	mu     sync.Mutex
	conns  map[*websocket.Conn]struct{}
	closed bool
	wsWG   sync.WaitGroup

	down atomic.Bool
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves until Close.
func Start(ctx context.Context, addr string) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upstream: listen on %s: %w", addr, err)
	}
	s := &Server{addr: ln.Addr().String(), done: make(chan struct{}), conns: map[*websocket.Conn]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/echo", s.echo)
	mux.HandleFunc("/ws", s.websocket)
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.down.Load() {
				http.Error(w, "upstream down", http.StatusServiceUnavailable)
				return
			}
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// SetDown starts (true) or ends (false) an outage. Starting one closes the open WebSockets,
// as a failing application would drop them.
func (s *Server) SetDown(down bool) {
	s.down.Store(down)
	if !down {
		return
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

// Close stops the server, closes every connection including WebSockets, and waits for
// the handlers to return.
func (s *Server) Close() {
	s.srv.Close()
	<-s.done
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wsWG.Wait()
}

func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	if d := r.URL.Query().Get("delay"); d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil || delay < 0 || delay > MaxDelay {
			http.Error(w, fmt.Sprintf("delay %q: a Go duration between 0 and %s", d, MaxDelay), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch r.Method {
	case http.MethodGet:
		io.WriteString(w, r.URL.Query().Get("id"))
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return // the client went away; nothing to answer
		}
		w.Write(body)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wsWG.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.wsWG.Done()
	}()
	for {
		// A client that stays silent this long is gone; the load generator sends far more
		// often.
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		typ, msg, err := c.ReadMessage()
		if err != nil {
			return // gorilla's default close handler has answered a close frame
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(typ, msg); err != nil {
			return
		}
	}
}
