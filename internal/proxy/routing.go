package proxy

import (
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// table is one immutable generation of routes and the clusters they send to. The Server
// swaps it atomically: a request uses the table it started with from start to end, and a
// swap touches no connection.
type table struct {
	version  string
	routes   []*route
	clusters map[string]*cluster
}

// route is a compiled Route.
type route struct {
	spec    Route
	cluster *cluster
	proxy   *httputil.ReverseProxy
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
			return strings.ToLower(h)
		}
	}
	return h
}

// rewrite prepares the upstream request. X-Forwarded-* were computed by the listener's
// handler on the inbound request (it knows the peer and the trusted proxies) and are
// copied here, because ReverseProxy removes them from the outbound request before Rewrite.
func (rt *route) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	s := &rt.spec
	out.URL.Scheme = "http"
	if rt.cluster.spec.TLS != nil {
		out.URL.Scheme = "https"
	}
	out.URL.Host = rt.cluster.spec.Name // replaced by the endpoint in cluster.RoundTrip
	if s.PrefixRewrite != "" {
		switch {
		case s.Path.Prefix != "":
			out.URL.Path = joinRewrite(s.PrefixRewrite, strings.TrimPrefix(in.URL.Path, s.Path.Prefix))
			out.URL.RawPath = ""
		case s.Path.Exact != "":
			out.URL.Path = s.PrefixRewrite
			out.URL.RawPath = ""
		}
	}
	switch {
	case s.PreserveHost:
		out.Host = in.Host
	case s.HostRewrite != "":
		out.Host = s.HostRewrite
	default:
		out.Host = ""
	}
	for _, k := range forwardedHeaders {
		if v := in.Header[k]; v != nil {
			out.Header[k] = v
		}
	}
	for _, k := range s.RemoveRequestHeaders {
		out.Header.Del(k)
	}
	for k, v := range s.SetRequestHeaders {
		out.Header.Set(k, v)
	}
}

var forwardedHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"}

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
	for _, k := range rt.spec.RemoveResponseHeaders {
		resp.Header.Del(k)
	}
	for k, v := range rt.spec.SetResponseHeaders {
		resp.Header.Set(k, v)
	}
	return nil
}

// bufferPool shares the 32 KiB copy buffers of every ReverseProxy.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }
