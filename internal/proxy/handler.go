package proxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/reqctx"
	"github.com/gangway-ecs/gangway/internal/upstream"
)

// Causes of a cancelled upstream exchange, mapped to statuses by errorHandler.
var (
	errUpstreamTimeout = errors.New("upstream timeout")
	errIdleTimeout     = errors.New("stream idle timeout")
)

type connKey struct{}

// handlerState is what ServeHTTP allocates for a request: the recorder, the stream timer,
// which most routes have, the values of the X-Forwarded-* headers and the upstream
// request.
type handlerState struct {
	rec recorder
	st  streamTimer
	fwd [4]string
	out outbound
}

// handlerStates holds the states of ended requests for new ones (see ServeHTTP): with the
// servers' own requests used again, that leaves little for the collector, whose marking
// slows every request in flight, to collect.
var handlerStates sync.Pool

// testHookReleased, when set (by tests, before any server runs), is called for each
// handler state handed on.
var testHookReleased func()

// httpHandler serves one HTTP listener: the readiness path, then routes.
type httpHandler struct {
	srv      *Server
	l        *httpListener
	scheme   string
	trusted  []netip.Prefix
	ready    string
	probe    http.Handler
	paths    pathNormalizer
	listener string
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The path is normalized once, before anything reads it: the readiness path, route
	// matching, the access log and the upstream request all see the same path.
	redirect, pathErr := h.paths.normalizePath(r)
	if pathErr == nil && !redirect && h.ready != "" && r.URL.Path == h.ready {
		h.probe.ServeHTTP(w, r)
		return
	}
	var start time.Time // only with an access log: a clock read per request saved
	if h.srv.access != nil {
		start = time.Now()
	}
	// One allocation for the recorder, the stream timer, the X-Forwarded-* values and the
	// upstream request, used again for a later request when nothing can reach it once this
	// one is over: its request had no body (so no goroutine of the upstream exchange can
	// still be sending one), it was not upgraded, it did not panic, and its stream timer,
	// if any, was stopped with nothing left holding it (streamTimer.stop).
	state, _ := handlerStates.Get().(*handlerState)
	if state == nil {
		state = new(handlerState)
	}
	state.rec.ResponseWriter = w
	keep := r.Body == nil || r.Body == http.NoBody
	rec := &state.rec
	var rt *route
	if pathErr == nil && !redirect {
		rt = h.srv.table.Load().match(hostOnly(r.Host), r.URL.Path)
	}
	var info *upstream.RequestInfo // only with an access log
	defer func() {
		// Runs on panics too (http.ErrAbortHandler when a stream breaks mid-response), so
		// that aborted requests are counted and logged.
		p := recover()
		endpoint := ""
		if info != nil {
			endpoint = info.Endpoint
		}
		h.srv.finish(h.listener, rt, r, rec, rec.status, endpoint, start)
		if p != nil {
			panic(p)
		}
		if keep {
			*state = handlerState{}
			if testHookReleased != nil {
				testHookReleased()
			}
			handlerStates.Put(state)
		}
	}()
	if pathErr != nil {
		writeError(rec, http.StatusBadRequest, fmt.Sprintf("path %q: %v", r.URL.EscapedPath(), pathErr))
		return
	}
	if redirect {
		redirectPath(rec, r)
		return
	}
	if r.Method == http.MethodConnect {
		// Tunnels are a tcp listener's; an HTTP route never forwards CONNECT, which a
		// pooled connection cannot carry. A target that is not host:port is malformed
		// (RFC 9112, section 3.2.3) whatever the method's fate.
		if r.URL.Path != "" || r.URL.Host == "" {
			writeError(rec, http.StatusBadRequest, fmt.Sprintf("CONNECT target %q is not host:port", r.RequestURI))
			return
		}
		writeError(rec, http.StatusNotImplemented, "CONNECT is not forwarded; tcp listeners tunnel")
		return
	}
	if rt == nil {
		if r.Method == "PRI" && r.RequestURI == "*" {
			// An HTTP/2 connection preface on a listener without h2c.
			writeError(rec, http.StatusHTTPVersionNotSupported, fmt.Sprintf("listener %q does not accept HTTP/2 without TLS (h2c)", h.listener))
			return
		}
		writeError(rec, http.StatusNotFound, fmt.Sprintf("no route for host %q path %q", r.Host, r.URL.Path))
		return
	}
	if err := h.authorize(rt, r); err != nil {
		writeError(rec, http.StatusForbidden, err.Error())
		return
	}
	upgrade := isUpgrade(r)
	if upgrade == "h2c" {
		// h2c is accepted with prior knowledge only; an Upgrade: h2c is served over HTTP/1.1
		// and must not be forwarded.
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
		upgrade = ""
	}
	if upgrade != "" && !(rt.spec.AllowWebSockets && httpascii.EqualFold(upgrade, "websocket")) {
		writeError(rec, http.StatusForbidden, fmt.Sprintf("route %q does not allow %s upgrades", rt.spec.Name, upgrade))
		return
	}
	h.setForwarded(r, &state.fwd)

	ctx := r.Context()
	if h.srv.access != nil {
		info = new(upstream.RequestInfo)
		ctx = upstream.WithRequestInfo(ctx, info)
	}
	if upgrade != "" {
		// A WebSocket lives as long as both sides want it: no request or idle deadline, and
		// the listener tracks the connection so that a drain can close it at its end.
		keep = false
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		if conn, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			defer h.l.upgradeEnded(conn)
		}
		hj := &wsHijacker{ResponseWriter: rec, l: h.l}
		defer hj.forget()
		rt.proxy.ServeHTTP(hj, r.WithContext(ctx))
		return
	}
	if rt.spec.Timeout > 0 || rt.spec.IdleTimeout > 0 {
		st := &state.st
		st.arm(ctx, rt.spec.Timeout, rt.spec.IdleTimeout, &h.srv.timerSlots)
		defer func() {
			if !st.stop() {
				keep = false
			}
		}()
		ctx = st
		if rt.spec.IdleTimeout > 0 {
			rec.activity = &st.last
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = &activityBody{ReadCloser: r.Body, last: &st.last}
			}
		}
	}
	rt.forward(rec, r, ctx, &state.out)
}

// redirectPath answers a path whose escaped slashes were unescaped (UnescapeAndRedirect)
// with a 307 to the normalized path and the query string as it came, so that the request is
// sent again, body and method unchanged, with one spelling of its path. gRPC clients do not
// follow redirects: they are refused.
func redirectPath(w *recorder, r *http.Request) {
	const grpc = "application/grpc"
	if ct := r.Header.Get("Content-Type"); len(ct) >= len(grpc) && httpascii.EqualFold(ct[:len(grpc)], grpc) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("path %q holds an escaped slash, and gRPC clients cannot follow the redirect to its unescaped form", r.URL.EscapedPath()))
		return
	}
	loc := r.URL.EscapedPath()
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	writeError(w, http.StatusTemporaryRedirect, "escaped slashes in the path: use "+loc)
}

// authorize is where the route's access policy is applied, before anything goes upstream.
// Routes carry no policy yet; the identity-aware policy plugs in here.
func (h *httpHandler) authorize(_ *route, _ *http.Request) error { return nil }

// setForwarded computes X-Forwarded-For/-Proto/-Host/-Port on the inbound request: kept
// and extended when the peer is a trusted proxy, replaced otherwise. A Forwarded header
// (RFC 7239) is not maintained by the proxy, so it reaches the upstream only from a
// trusted peer: from anyone else it would be a client's claim next to the proxy's own.
// The headers' values are kept in vals.
func (h *httpHandler) setForwarded(r *http.Request, vals *[4]string) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	trusted := false
	if len(h.trusted) > 0 {
		if addr, err := netip.ParseAddr(ip); err == nil {
			addr = addr.Unmap()
			for _, p := range h.trusted {
				if p.Contains(addr) {
					trusted = true
					break
				}
			}
		}
	}
	hdr := r.Header
	if prior := hdr["X-Forwarded-For"]; trusted && len(prior) > 0 {
		vals[0] = strings.Join(prior, ", ") + ", " + ip
	} else {
		vals[0] = ip
	}
	hdr["X-Forwarded-For"] = vals[0:1:1]
	if !trusted || hdr.Get("X-Forwarded-Proto") == "" {
		vals[1] = h.scheme
		hdr["X-Forwarded-Proto"] = vals[1:2:2]
	}
	if !trusted || hdr.Get("X-Forwarded-Host") == "" {
		vals[2] = r.Host
		hdr["X-Forwarded-Host"] = vals[2:3:3]
	}
	if !trusted || hdr.Get("X-Forwarded-Port") == "" {
		vals[3] = h.l.port
		hdr["X-Forwarded-Port"] = vals[3:4:4]
	}
	if !trusted {
		delete(hdr, "Forwarded")
	}
}

// isUpgrade returns the protocol a request asks to upgrade to, or "".
func isUpgrade(r *http.Request) string {
	if r.ProtoMajor != 1 {
		return ""
	}
	up := r.Header.Get("Upgrade")
	if up == "" {
		return ""
	}
	for _, v := range r.Header["Connection"] {
		for t := range strings.SplitSeq(v, ",") {
			if httpascii.EqualFold(textproto.TrimString(t), "upgrade") {
				return up
			}
		}
	}
	return ""
}

// errorHandler maps an upstream failure to the status a user expects.
func (rt *route) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	cause := reqctx.Cause(r.Context())
	switch {
	case errors.Is(err, upstream.ErrNoHealthy):
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("route %q: cluster %q has no healthy endpoint", rt.spec.Name, rt.cluster.Name()))
	case errors.Is(cause, errUpstreamTimeout):
		writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("route %q: upstream did not answer within %s", rt.spec.Name, rt.spec.Timeout))
	case errors.Is(cause, errIdleTimeout):
		writeError(w, http.StatusRequestTimeout, fmt.Sprintf("route %q: stream idle for %s", rt.spec.Name, rt.spec.IdleTimeout))
	case upstream.IsClientError(err):
		// The request's fault (an unreadable body, a head HTTP/1.1 cannot carry): the
		// endpoint was not counted, the client is told, and the log says whose it was.
		rt.log.Info("client request error", "route", rt.spec.Name, "cluster", rt.cluster.Name(), "err", err)
		writeError(w, http.StatusBadRequest, fmt.Sprintf("route %q: %v", rt.spec.Name, err))
	case r.Context().Err() != nil:
		// The client went away: nobody reads an answer. 499 is for the access log only.
		if rec, ok := w.(*recorder); ok && rec.status == 0 {
			rec.status = statusClientClosed
		}
	default:
		rt.log.Warn("upstream error", "route", rt.spec.Name, "cluster", rt.cluster.Name(), "err", err)
		writeError(w, http.StatusBadGateway, fmt.Sprintf("route %q: cluster %q: upstream error", rt.spec.Name, rt.cluster.Name()))
	}
}

// statusClientClosed is logged when the client closed the request before the answer.
const statusClientClosed = 499

// writeError writes a short plain-text error naming the proxy, so a user can tell a proxy
// error from an application error.
func writeError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, "gangway: "+http.StatusText(code)+": "+msg+"\n")
}

// recorder captures the status and size of a response, and notes activity for the idle
// timer. Unwrap lets http.ResponseController (flush, hijack, deadlines) reach the real
// writer.
type recorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	activity *atomic.Int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	if r.activity != nil {
		r.activity.Store(upstream.MonoNow())
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	if r.activity != nil {
		r.activity.Store(upstream.MonoNow())
	}
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// CanWriteForwarded and WriteForwarded pass forwardedWriter on to the server's writer when
// it is one.
func (r *recorder) CanWriteForwarded() bool {
	fw, ok := r.ResponseWriter.(forwardedWriter)
	return ok && fw.CanWriteForwarded()
}

func (r *recorder) WriteForwarded(code int, fields string, contentLength int64) {
	if r.status == 0 {
		r.status = code
	}
	if r.activity != nil {
		r.activity.Store(upstream.MonoNow())
	}
	r.ResponseWriter.(forwardedWriter).WriteForwarded(code, fields, contentLength)
}

// AdoptHeader passes h on to the server's writer when that can make it its own.
func (r *recorder) AdoptHeader(h http.Header) bool {
	a, ok := r.ResponseWriter.(headerAdopter)
	return ok && a.AdoptHeader(h)
}

// activityBody notes request body reads as activity.
type activityBody struct {
	io.ReadCloser
	last *atomic.Int64
}

func (b *activityBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.last.Store(upstream.MonoNow())
	}
	return n, err
}

// finish records metrics and the access log line of one request.
// start is when the request began (zero without an access log).
func (s *Server) finish(listener string, rt *route, r *http.Request, rec *recorder, status int, upstream string, start time.Time) {
	routeName, clusterName := "", ""
	if rt != nil {
		routeName, clusterName = rt.spec.Name, rt.cluster.Name()
		class := status / 100
		if class < 0 || class > 5 {
			class = 0
		}
		rt.requests[class].Inc()
	} else {
		s.metrics.unrouted.Inc()
	}
	if s.access == nil {
		return
	}
	d := time.Since(start)
	s.access.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("listener", listener),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.String("proto", r.Proto),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("upstream", upstream),
		slog.String("route", routeName),
		slog.String("cluster", clusterName),
		slog.String("remote", r.RemoteAddr),
	)
}
