package proxy

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/spec"
	"github.com/gangway-ecs/gangway/internal/upstream"
)

// table is one immutable generation of routes and the clusters they send to. The Server
// swaps it atomically: a request uses the table it started with from start to end, and a
// swap touches no connection.
type table struct {
	version  string
	routes   []*route
	clusters map[string]*upstream.Cluster
}

// route is a compiled Route.
type route struct {
	spec    spec.Route
	cluster *upstream.Cluster
	log     *slog.Logger
	scheme  string // of upstream URLs: http or https
	bufs    *bufferPool
	// proxy serves protocol upgrades (WebSockets); forward serves everything else.
	proxy *httputil.ReverseProxy
	// requests counts finished requests by status class (index status/100, 0 for aborted).
	requests [6]prometheus.Counter
}

// match returns the first route matching host (without port, any case) and path.
func (t *table) match(host, path string) *route {
	for _, rt := range t.routes {
		if rt.matches(host, path) {
			return rt
		}
	}
	return nil
}

func (rt *route) matches(host, path string) bool {
	if len(rt.spec.Hosts) > 0 && !matchHost(rt.spec.Hosts, host) {
		return false
	}
	p := &rt.spec.Path
	switch {
	case p.Prefix != "":
		return strings.HasPrefix(path, p.Prefix)
	case p.Exact != "":
		return path == p.Exact
	case p.Regex != nil:
		return p.Regex.MatchString(path)
	}
	return false
}

// matchHost compares host with exact names and "*.suffix" wildcards (one or more labels).
func matchHost(patterns []string, host string) bool {
	for _, p := range patterns {
		if suffix, ok := strings.CutPrefix(p, "*"); ok {
			if len(host) > len(suffix) && strings.HasSuffix(host, suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// hostOnly returns r.Host without its port, lower case.
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return httpascii.Lower(h)
		}
	}
	return h
}

// rewrite prepares the upstream request. X-Forwarded-* were computed by the listener's
// handler on the inbound request (it knows the peer and the trusted proxies) and are
// copied here, because ReverseProxy removes them from the outbound request before Rewrite.
func (rt *route) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	rt.rewriteURL(out.URL, in.URL.Path)
	out.Host = rt.upstreamHost(in)
	for _, k := range forwardedHeaders {
		if v := in.Header[k]; v != nil {
			out.Header[k] = v
		}
	}
	rt.rewriteHeaders(out.Header)
}

// rewriteURL points u at the cluster (cluster.RoundTrip puts the endpoint in place of the
// cluster's name) and applies the route's prefix rewrite to path.
func (rt *route) rewriteURL(u *url.URL, path string) {
	s := &rt.spec
	u.Scheme = rt.scheme
	u.Host = rt.cluster.Name()
	if s.PrefixRewrite == "" {
		return
	}
	switch {
	case s.Path.Prefix != "":
		u.Path = joinRewrite(s.PrefixRewrite, strings.TrimPrefix(path, s.Path.Prefix))
		u.RawPath = ""
	case s.Path.Exact != "":
		u.Path = s.PrefixRewrite
		u.RawPath = ""
	}
}

// upstreamHost is the Host header sent upstream; "" means the endpoint's host:port.
func (rt *route) upstreamHost(in *http.Request) string {
	switch {
	case rt.spec.PreserveHost:
		return in.Host
	case rt.spec.HostRewrite != "":
		return rt.spec.HostRewrite
	}
	return ""
}

// rewriteHeaders applies the route's request header removals and settings.
func (rt *route) rewriteHeaders(h http.Header) {
	for _, k := range rt.spec.RemoveRequestHeaders {
		h.Del(k)
	}
	for k, v := range rt.spec.SetRequestHeaders {
		h.Set(k, v)
	}
}

var forwardedHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port"}

// joinRewrite joins the rewritten prefix and the rest of the path with exactly one slash
// between them when both have one.
func joinRewrite(prefix, rest string) string {
	if strings.HasSuffix(prefix, "/") && strings.HasPrefix(rest, "/") {
		return prefix + rest[1:]
	}
	if rest == "" && prefix == "" {
		return "/"
	}
	return prefix + rest
}

func (rt *route) modifyResponse(resp *http.Response) error {
	rt.rewriteResponseHeaders(resp.Header)
	return nil
}

// rewriteResponseHeaders applies the route's response header removals and settings.
func (rt *route) rewriteResponseHeaders(h http.Header) {
	for _, k := range rt.spec.RemoveResponseHeaders {
		h.Del(k)
	}
	for k, v := range rt.spec.SetResponseHeaders {
		h.Set(k, v)
	}
}

// bufferPool shares the 32 KiB copy buffers of every ReverseProxy.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

// get and put are Get and Put without allocating a slice header on each Put.
func (b *bufferPool) get() *[]byte  { return b.p.Get().(*[]byte) }
func (b *bufferPool) put(x *[]byte) { b.p.Put(x) }
