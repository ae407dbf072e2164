package proxy

import (
	"context"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/upstream"
)

// forward sends r to the route's cluster and copies the answer to w. It does what
// httputil.ReverseProxy does for an ordinary exchange (hop-by-hop headers, trailers,
// streaming flushes, an aborted stream on a broken copy) with fewer copies and allocations;
// protocol upgrades still go through ReverseProxy (route.proxy), which owns the hijack.
// The exchange runs under ctx (r's context, or one derived from it); the upstream request
// is made in o (part of the handler's allocation).
//
// On a route that changes no response header, a simple answer of an HTTP/1.1 upstream is
// written on from its field lines as they came, without a header map, when the server's
// writer can (a forwardedWriter: upstream.Cluster.Forward's fields, the servers'
// WriteForwarded).
func (rt *route) forward(w http.ResponseWriter, r *http.Request, ctx context.Context, o *outbound) {
	out := rt.outRequest(o, r, ctx)
	var ans *upstream.Answer
	fw, raw := w.(forwardedWriter)
	if raw && len(rt.spec.RemoveResponseHeaders) == 0 && len(rt.spec.SetResponseHeaders) == 0 && fw.CanWriteForwarded() {
		ans = &o.ans
	}
	resp, err := rt.cluster.Forward(out, true, ans)
	if err != nil {
		rt.errorHandler(w, out, err) // which reads only out's context
		return
	}
	defer resp.Body.Close()

	if resp.Header == nil && ans != nil {
		fw.WriteForwarded(resp.StatusCode, ans.Fields, resp.ContentLength)
		var flush func() error
		if eventStream(ans.Fields) {
			flush = http.NewResponseController(w).Flush
		}
		if err := rt.copyBody(w, resp.Body, flush); err != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}

	h := responseHeader(w, resp.Header)
	rt.rewriteResponseHeaders(h)
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	w.WriteHeader(resp.StatusCode)

	// Streams of unknown length (server-sent events, gRPC, long polls) are flushed on every
	// write, as ReverseProxy does.
	var flush func() error
	if resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		flush = http.NewResponseController(w).Flush
	}
	if err := rt.copyBody(w, resp.Body, flush); err != nil {
		// Headers are gone: all that can be done is to abort the stream.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}

func (rt *route) copyBody(w io.Writer, body io.Reader, flush func() error) error {
	bp := rt.bufs.get()
	defer rt.bufs.put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if flush != nil {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// outbound holds an upstream request, its URL and room for its answer when it comes
// without a header map.
type outbound struct {
	req http.Request
	url url.URL
	ans upstream.Answer
}

// forwardedWriter is a response writer that writes an upstream's answer from its field
// lines as they came (both servers', and the recorder in front of them).
// CanWriteForwarded reports whether it can now: its head is not written, and its header
// map has no field.
type forwardedWriter interface {
	CanWriteForwarded() bool
	WriteForwarded(code int, fields string, contentLength int64)
}

// eventStream reports whether CRLF-ended field lines have a Content-Type (the first) that
// starts with text/event-stream, as the header map's check does.
func eventStream(fields string) bool {
	const es = "text/event-stream"
	for r := fields; r != ""; {
		name, value, rest := httpascii.CutField(r)
		r = rest
		if httpascii.EqualFold(name, "content-type") {
			return strings.HasPrefix(httpascii.TrimOWS(value), es)
		}
	}
	return false
}

// outRequest makes the upstream request in o: a shallow copy of r with ctx, its own URL
// and header, the hop-by-hop headers removed, the route's rewrites applied.
func (rt *route) outRequest(o *outbound, r *http.Request, ctx context.Context) *http.Request {
	// WithContext is the only way to set a request's context; inlined here, its copy does
	// not escape.
	o.req = *r.WithContext(ctx)
	out := &o.req
	o.url = *r.URL
	out.URL = &o.url
	rt.rewriteURL(&o.url, r.URL.Path)
	out.RequestURI = ""
	out.Close = false
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	if r.ContentLength == 0 {
		out.Body = nil
		out.GetBody = nil
	}

	// The order is the contract: hop-by-hop headers, and those the client's Connection
	// header names, go first, except the headers the proxy owns (setForwarded set them), so
	// that no client can remove them; the route's rewrites come last. r's header map becomes
	// the upstream request's: nothing reads r's header after the exchange, and a copy would
	// cost a map and an insert per field on every request.
	h := r.Header
	te := false // "TE: trailers" is the one TE value a proxy passes on (gRPC needs it).
	for _, v := range h["Te"] {
		if httpascii.EqualFold(textproto.TrimString(v), "trailers") {
			te = true
			break
		}
	}
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" {
				if k := textproto.CanonicalMIMEHeaderKey(tok); !isProxyOwned(k) {
					delete(h, k)
				}
			}
		}
	}
	for k := range h {
		if httpascii.IsHopByHop(k) {
			delete(h, k)
		}
	}
	if te {
		h["Te"] = []string{"trailers"}
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // no Go default User-Agent upstream
	}
	rt.rewriteHeaders(h)
	out.Host = rt.upstreamHost(r)
	if len(r.Trailer) > 0 && out.Body != nil {
		// r.Trailer is the servers' map, which they fill at the end of the body with
		// whatever the client sent; only forwardable fields it declared go upstream.
		out.Trailer = declaredTrailers(r.Trailer)
		out.Body = &trailerBody{ReadCloser: out.Body, in: r.Trailer, out: out.Trailer}
	} else {
		out.Trailer = nil
	}
	return out
}

// isProxyOwned reports whether k (canonical) is a header the proxy owns
// (forwardedHeaders): the listener's handler sets them on every request, and a client's
// Connection header cannot remove them.
func isProxyOwned(k string) bool { return slices.Contains(forwardedHeaders, k) }

// responseHeader returns the header of the answer to the client: the upstream's header
// hdr, without its hop-by-hop fields and those its Connection header names. Where the
// server's response writer can take hdr as its own (both of the proxy's servers can), it
// does, and nothing is copied; otherwise the fields are copied into w's header.
func responseHeader(w http.ResponseWriter, hdr http.Header) http.Header {
	removeConnectionTokens(hdr)
	for k := range hdr {
		if httpascii.IsHopByHop(k) {
			delete(hdr, k)
		}
	}
	if a, ok := w.(headerAdopter); ok && a.AdoptHeader(hdr) {
		return hdr
	}
	h := w.Header()
	for k, vv := range hdr {
		h[k] = vv
	}
	return h
}

// headerAdopter is a response writer that can make a header map its own, in place of the
// empty one it holds; AdoptHeader reports false, and changes nothing, once its header has
// a field or its head is written. internal/h1server's and internal/h2server's writers,
// and the recorder in front of them, are.
type headerAdopter interface {
	AdoptHeader(http.Header) bool
}

// forwardableTrailer reports whether a request trailer field k (canonical) may go
// upstream: RFC 9110 section 6.5.1 forbids trailers whose meaning is needed before the
// content (framing, routing, authentication, request modifiers, content format), and
// hop-by-hop fields and those the proxy owns never pass. It is the one rule for
// trailers of HTTP/1 and HTTP/2 requests, which both reach the upstream through
// outRequest.
func forwardableTrailer(k string) bool {
	if !httpguts.ValidTrailerHeader(k) || httpascii.IsHopByHop(k) {
		return false
	}
	switch k {
	case "Cookie", "Set-Cookie", "Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
		"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Age", "Expires",
		"Date", "Location", "Retry-After", "Vary", "Warning", "Proxy-Authentication-Info", "Authentication-Info":
		return false
	}
	return true
}

// declaredTrailers returns the forwardable fields of a request's declared trailers, with
// no values yet.
func declaredTrailers(declared http.Header) http.Header {
	var out http.Header
	for k := range declared {
		if forwardableTrailer(k) {
			if out == nil {
				out = make(http.Header, len(declared))
			}
			out[k] = nil
		}
	}
	return out
}

// trailerBody copies, when the body ends, the values of the fields out declares from in
// (filled by the server as it reads the body's end), before the writer sends out.
type trailerBody struct {
	io.ReadCloser
	in, out http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
	fields:
		for k := range b.out {
			vv := b.in[k]
			for _, v := range vv {
				if !httpguts.ValidHeaderFieldValue(v) {
					continue fields
				}
			}
			b.out[k] = vv
		}
	}
	return n, err
}

// removeConnectionTokens removes from h the headers that its Connection header names.
func removeConnectionTokens(h http.Header) { removeNamedHeaders(h, h) }

// removeNamedHeaders removes from dst the headers that src's Connection header names.
func removeNamedHeaders(src, dst http.Header) {
	for _, v := range src["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" {
				delete(dst, textproto.CanonicalMIMEHeaderKey(tok))
			}
		}
	}
}
