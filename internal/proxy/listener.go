package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gangway-ecs/gangway/internal/h1server"
	"github.com/gangway-ecs/gangway/internal/h2server"
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// httpListener is a running listener: an HTTP server or a TCP tunnel acceptor on one
// socket. It counts its open downstream connections and tracks the long-lived ones (upgraded
// WebSockets, TCP tunnels) that h1server's Shutdown does not wait for, so that a drain can
// close them at its end.
type httpListener struct {
	srv   *Server
	spec  spec.Listener
	id    string
	ln    net.Listener
	port  string // ln's port, as X-Forwarded-Port carries it
	check *health.Check
	certs *certReloader
	// h1 serves an HTTP listener (nil for TCP listeners) and hands its HTTP/2 connections
	// to an h2server.Server.
	h1 *h1server.Server

	active atomic.Int64
	gauge  interface{ Add(float64) }

	mu      sync.Mutex
	tracked map[net.Conn]struct{} // hijacked WebSockets and TCP tunnels, downstream side
	// websockets are the upgraded connections by their hijacked conn, so that closeTracked
	// can end each with a close frame (wsclose.go).
	websockets map[net.Conn]*wsConn
	closing    bool // no new tunnels

	stopping chan struct{} // closed when the listener stops accepting
	httpDone chan struct{} // closed when h1's Shutdown returned (at once for TCP)
	// ctx ends when the drain window does: it cancels connects still in progress.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newListener binds ls's address for spec, or takes over from's socket (see listen); it
// neither serves nor reports until serve, so that a failed Apply can drop it with forceClose
// and leave no trace.
func (s *Server) newListener(ctx context.Context, sp *spec.Spec, ls spec.Listener, from net.Listener) (*httpListener, error) {
	l := &httpListener{
		srv:      s,
		spec:     ls,
		id:       listenerKey(&ls, sp),
		tracked:  map[net.Conn]struct{}{},
		stopping: make(chan struct{}),
		httpDone: make(chan struct{}),
		gauge:    s.metrics.activeConns.WithLabelValues(ls.Name),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*httpListener, error) {
		l.forceClose()
		return nil, fmt.Errorf("listener %q: %w", ls.Name, err)
	}
	if ls.Protocol == spec.HTTP {
		if err := s.newHTTPServer(sp, l); err != nil {
			return fail(err)
		}
	}
	ln, err := listen(ctx, ls.Address, from)
	if err != nil {
		return fail(err)
	}
	l.ln = ln
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		l.port = strconv.Itoa(a.Port)
	}
	return l, nil
}

// listen binds addr. When addr is in use and from is not nil — the socket of a listener on
// the same address that the change replaces or removes — it takes over that socket instead:
// a duplicate of its file descriptor. The socket then stays open and bound through the
// whole handover (closing the old listener closes only its descriptor), so the port is never
// free for another process to take, and connections waiting in its accept queue are
// accepted by the new listener.
func listen(ctx context.Context, addr string, from net.Listener) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err == nil || from == nil || !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	f, ok := from.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("%w (the listener it replaces has no file descriptor to hand over)", err)
	}
	file, ferr := f.File()
	if ferr != nil {
		return nil, fmt.Errorf("%w (taking over the socket of the listener it replaces: %w)", err, ferr)
	}
	defer file.Close()
	dup, ferr := net.FileListener(file)
	if ferr != nil {
		return nil, fmt.Errorf("%w (taking over the socket of the listener it replaces: %w)", err, ferr)
	}
	return dup, nil
}

// newHTTPServer builds l's HTTP server with spec's server-wide settings: h1server, and
// h2server for the HTTP/2 connections it hands over (over TLS, or h2c when enabled).
func (s *Server) newHTTPServer(spec *spec.Spec, l *httpListener) error {
	h := &httpHandler{srv: s, l: l, scheme: "http", trusted: l.spec.TrustedProxies, ready: l.spec.ReadinessPath, paths: pathNormalizer(l.spec.Paths), listener: l.spec.Name}
	if h.ready != "" {
		h.probe = health.ProbeHandler(s.health, health.Readiness)
	}
	errorLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	l.h1 = &h1server.Server{
		Handler:           h,
		ReadHeaderTimeout: spec.ReadHeaderTimeout,
		ReadTimeout:       spec.WriteTimeout,
		WriteTimeout:      spec.WriteTimeout,
		IdleTimeout:       spec.IdleTimeout,
		MaxHeaderBytes:    spec.MaxHeaderBytes,
		ErrorLog:          errorLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ConnState: l.connState,
		Rejected: func(c net.Conn, why h1server.Rejection) {
			s.log.Warn("request rejected with 400", "listener", l.spec.Name, "remote", c.RemoteAddr().String(), "reason", why.Text)
			s.metrics.rejected.WithLabelValues(l.spec.Name, why.Reason).Inc()
		},
	}
	serveH2 := l.spec.H2C
	if t := l.spec.TLS; t != nil {
		h.scheme = "https"
		certs, err := newCertReloader(t.CertFile, t.KeyFile, s.reportCertificates)
		if err != nil {
			return err
		}
		l.certs = certs
		conf, err := serverTLSConfig(t, certs)
		if err != nil {
			return err
		}
		// h1server terminates TLS; ALPN offers HTTP/2, which it hands to h2server.
		conf.NextProtos = []string{"h2", "http/1.1"}
		l.h1.TLSConfig = conf
		serveH2 = true
	}
	if serveH2 {
		h2 := &h2server.Server{
			Handler:        h,
			ReadTimeout:    spec.WriteTimeout,
			WriteTimeout:   spec.WriteTimeout,
			IdleTimeout:    spec.IdleTimeout,
			MaxHeaderBytes: spec.MaxHeaderBytes,
			ErrorLog:       errorLog,
		}
		l.h1.HTTP2 = h2.ServeConn
		l.h1.RegisterOnShutdown(h2.Shutdown)
	}
	return nil
}

// serve registers the listener's check and certificates and starts accepting.
func (l *httpListener) serve(version string) {
	l.check = l.srv.health.Register(health.Spec{Name: "proxy.listener." + l.spec.Name, Gates: health.Startup | health.Readiness, Versioned: true})
	if l.certs != nil {
		l.srv.certMu.Lock()
		l.srv.certs[l.certs] = true
		l.srv.certMu.Unlock()
	}
	l.check.Running(version, health.A("address", l.ln.Addr().String()), health.A("protocol", l.spec.Protocol.String()))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if l.h1 == nil {
			l.acceptTunnels()
			return
		}
		err := l.h1.Serve(l.ln)
		select {
		case <-l.stopping:
			return // closed on purpose
		default:
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.srv.log.Error("listener stopped", "listener", l.spec.Name, "err", err)
			l.check.Fail(fmt.Errorf("listener %q: %w", l.spec.Name, err))
		}
	}()
}

func (l *httpListener) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		l.active.Add(1)
		l.gauge.Add(1)
	case http.StateClosed:
		l.active.Add(-1)
		l.gauge.Add(-1)
	case http.StateHijacked:
		// Upgraded to a WebSocket: the server forgets it, the listener keeps it until the
		// handler that owns it returns (upgradeEnded).
		l.mu.Lock()
		l.tracked[c] = struct{}{}
		l.mu.Unlock()
	}
}

// upgradeEnded is called when the handler of an upgrade request returns; a hijacked
// connection is closed by then.
func (l *httpListener) upgradeEnded(c net.Conn) {
	l.mu.Lock()
	_, ok := l.tracked[c]
	delete(l.tracked, c)
	l.mu.Unlock()
	if ok {
		l.active.Add(-1)
		l.gauge.Add(-1)
	}
}

func (l *httpListener) acceptTunnels() {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.stopping:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.srv.log.Warn("accept failed", "listener", l.spec.Name, "err", err)
			select {
			case <-l.stopping:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			conn.Close()
			continue
		}
		l.tracked[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		l.active.Add(1)
		l.gauge.Add(1)
		go l.tunnel(conn)
	}
}

func (l *httpListener) tunnel(down net.Conn) {
	defer l.wg.Done()
	defer func() {
		down.Close()
		l.mu.Lock()
		delete(l.tracked, down)
		l.mu.Unlock()
		l.active.Add(-1)
		l.gauge.Add(-1)
	}()
	c := l.srv.table.Load().clusters[l.spec.Cluster]
	if c == nil {
		l.srv.log.Error("tcp listener has no cluster", "listener", l.spec.Name, "cluster", l.spec.Cluster)
		return
	}
	up, done, err := c.DialTunnel(l.ctx)
	if err != nil {
		l.srv.log.Warn("tcp tunnel failed", "listener", l.spec.Name, "err", err)
		return
	}
	defer done()
	l.srv.metrics.tunnels.WithLabelValues(l.spec.Name, c.Name()).Inc()
	pipe(down, up)
}

// pipe copies both ways until both directions end. A clean EOF is passed on as a
// half-close; an error closes both connections.
func pipe(down, up net.Conn) {
	defer up.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(up, down)
		closeWrite(up)
		errc <- err
	}()
	_, err := io.Copy(down, up)
	closeWrite(down)
	if err != nil {
		down.Close()
		up.Close()
	}
	if err := <-errc; err != nil {
		down.Close()
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// stopAccepting closes the socket; connections already open go on.
func (l *httpListener) stopAccepting() {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return
	}
	l.closing = true
	close(l.stopping)
	l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
	}
	if l.certs != nil {
		l.srv.certMu.Lock()
		delete(l.srv.certs, l.certs)
		l.srv.certMu.Unlock()
	}
	if l.h1 != nil {
		// Shutdown sends GOAWAY on HTTP/2 connections, closes idle HTTP/1 connections and
		// makes busy ones close after their response; it returns when every connection is
		// closed or l.ctx ends (forceClose). A connection accepted but whose first request
		// has not arrived is not idle: its request is answered, with Connection: close
		// (unless the client stays silent for five seconds).
		l.h1.SetKeepAlivesEnabled(false)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer close(l.httpDone)
			l.h1.Shutdown(l.ctx)
		}()
	} else {
		close(l.httpDone)
	}
}

// wait waits until every connection of the listener is closed or ctx ends; it reports
// whether all are closed.
func (l *httpListener) wait(ctx context.Context) bool {
	select {
	case <-l.httpDone:
	case <-ctx.Done():
		return false
	}
	// WebSockets and tunnels may live to the end of the drain window.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for l.trackedCount() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// forceClose closes whatever is left (WebSockets, tunnels, unfinished requests) and waits
// for every goroutine of the listener.
func (l *httpListener) forceClose() {
	l.stopAccepting()
	l.cancel()
	l.closeTracked()
	if l.h1 != nil {
		l.h1.Close()
	}
	l.wg.Wait()
	// The handlers of closed WebSockets return on their own once their copies fail; wait
	// for them (bounded) so that ActiveConns is exact when forceClose returns.
	for deadline := time.Now().Add(5 * time.Second); l.trackedCount() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// drain stops accepting, lets open exchanges finish (HTTP/1 responses carry
// Connection: close, HTTP/2 connections get GOAWAY) until ctx ends, then closes what is left.
func (l *httpListener) drain(ctx context.Context) error {
	l.stopAccepting()
	clean := l.wait(ctx)
	left := l.active.Load()
	l.forceClose()
	if !clean {
		return fmt.Errorf("listener %q: %d connections closed at the end of the drain window", l.spec.Name, left)
	}
	return nil
}

func (l *httpListener) trackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tracked)
}

func (l *httpListener) closeTracked() {
	l.goAwayWebSockets()
	l.mu.Lock()
	conns := make([]net.Conn, 0, len(l.tracked))
	for c := range l.tracked {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// goAwayWebSockets sends every open WebSocket a 1001 "going away" close frame and waits, up
// to goingAwayWait, for the closing handshakes to end the tunnels.
func (l *httpListener) goAwayWebSockets() {
	l.mu.Lock()
	ws := make([]*wsConn, 0, len(l.websockets))
	for _, w := range l.websockets {
		ws = append(ws, w)
	}
	l.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	deadline := time.NewTimer(goingAwayWait)
	defer deadline.Stop()
	for _, w := range ws {
		select {
		case <-w.goAway():
		case <-deadline.C:
			return
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		l.mu.Lock()
		n := len(l.websockets)
		l.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		}
	}
}
