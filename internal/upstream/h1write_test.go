package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// writeRequest writes the same bytes as http.Request.Write, on its own path and on the
// requests it hands to Request.Write; bodiless requests take its own path. A head that
// HTTP/1.1 cannot carry, which Request.Write cleans or writes as it is, is refused instead:
// nothing is written.
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	own := map[string]bool{"get": true, "empty method": true, "head": true, "delete": true, "post no body": true,
		"put no body": true, "patch no body": true, "options": true, "nobody": true, "user agent": true,
		"two user agents": true, "empty path": true, "force query": true, "escaped path": true, "preserved host": true,
		"url host": true, "excluded headers": true, "invalid name": true, "value cleaning": true, "many headers": true,
		"control in path": true, "control in query": true, "space in query": true, "method with space": true,
		"method with tab": true, "method with parens": true, "nul in value": true}
	refused := map[string]bool{"invalid name": true, "value cleaning": true,
		"control in query": true, "space in query": true, "method with space": true, "method with tab": true,
		"method with parens": true, "nul in value": true, "nul in body request": true, "lf in body request": true}
	mk := func(method, target string, h http.Header, edit func(*http.Request)) func() *http.Request {
		return func() *http.Request {
			u, err := url.Parse(target)
			if err != nil {
				t.Fatal(err)
			}
			r := &http.Request{Method: method, URL: u, Header: h.Clone(), Host: u.Host}
			if edit != nil {
				edit(r)
			}
			return r
		}
	}
	base := http.Header{"User-Agent": {""}, "Accept": {"*/*"}, "X-Forwarded-For": {"10.0.0.1"}}
	cases := map[string]func() *http.Request{
		"get":                mk("GET", "http://10.0.0.2:8080/a/b?x=1&y=%20", base, nil),
		"empty method":       mk("", "http://10.0.0.2:8080/", base, nil),
		"head":               mk("HEAD", "http://e/", base, nil),
		"delete":             mk("DELETE", "http://e/", base, nil),
		"post no body":       mk("POST", "http://e/p", base, nil),
		"put no body":        mk("PUT", "http://e/p", base, nil),
		"patch no body":      mk("PATCH", "http://e/p", base, nil),
		"options":            mk("OPTIONS", "http://e/p", base, nil),
		"nobody":             mk("GET", "http://e/", base, func(r *http.Request) { r.Body = http.NoBody }),
		"user agent":         mk("GET", "http://e/", http.Header{"User-Agent": {" curl/8 "}}, nil),
		"two user agents":    mk("GET", "http://e/", http.Header{"User-Agent": {"a", "b"}}, nil),
		"no user agent":      mk("GET", "http://e/", http.Header{"Accept": {"x"}}, nil),
		"empty path":         mk("GET", "http://e", base, nil),
		"force query":        mk("GET", "http://e/?", base, nil),
		"escaped path":       mk("GET", "http://e/a%2Fb/c%20d", base, nil),
		"preserved host":     mk("GET", "http://10.0.0.2:80/", base, func(r *http.Request) { r.Host = "app.example.com" }),
		"url host":           mk("GET", "http://10.0.0.2:80/", base, func(r *http.Request) { r.Host = "" }),
		"ipv6 zone":          mk("GET", "http://[fe80::1%25eth0]:80/", base, nil),
		"unicode host":       mk("GET", "http://e/", base, func(r *http.Request) { r.Host = "bücher.example" }),
		"invalid host":       mk("GET", "http://e/", base, func(r *http.Request) { r.Host = "a b/c" }),
		"control in path":    mk("GET", "http://e/", base, func(r *http.Request) { r.URL.Path = "/a\x01b" }),
		"control in query":   mk("GET", "http://e/", base, func(r *http.Request) { r.URL.RawQuery = "a=\x01" }),
		"connect":            mk("CONNECT", "http://e:443", base, nil),
		"space in query":     mk("GET", "http://e/", base, func(r *http.Request) { r.URL.RawQuery = "a HTTP/1.1\r\nX: y" }),
		"method with space":  mk("GET /admin HTTP/1.1", "http://e/", base, nil),
		"method with tab":    mk("GET\t/admin", "http://e/", base, nil),
		"method with parens": mk("G(E)T", "http://e/", base, nil),
		"nul in value":       mk("GET", "http://e/", http.Header{"User-Agent": {"u"}, "X-A": {"a\x00b"}}, nil),
		"nul in body request": mk("POST", "http://e/", http.Header{"User-Agent": {"u"}, "X-A": {"a\x00b"}}, func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("hello")), 5
		}),
		"lf in body request": mk("POST", "http://e/", http.Header{"User-Agent": {"u"}, "X-A": {"a\nGET /x HTTP/1.1"}}, func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("hello")), 5
		}),
		"close":            mk("GET", "http://e/", base, func(r *http.Request) { r.Close = true }),
		"excluded headers": mk("GET", "http://e/", http.Header{"User-Agent": {"u"}, "Host": {"h"}, "Content-Length": {"5"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}}, nil),
		"invalid name":     mk("GET", "http://e/", http.Header{"User-Agent": {"u"}, "Bad Name": {"x"}, "Ok": {"y"}}, nil),
		"value cleaning":   mk("GET", "http://e/", http.Header{"User-Agent": {"u\r\nv"}, "X-A": {"  a\nb\t", "", "c\r"}}, nil),
		"many headers": mk("GET", "http://e/", func() http.Header {
			h := http.Header{"User-Agent": {"u"}}
			for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
				h["X-"+string(c)] = []string{string(c), "2"}
			}
			return h
		}(), nil),
		"body": mk("POST", "http://e/", base, func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("hello")), 5
		}),
		"chunked body": mk("POST", "http://e/", base, func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("hello")), -1
		}),
		"trailer": mk("POST", "http://e/", base, func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("hello")), -1
			r.Trailer = http.Header{"X-T": nil}
		}),
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			var want, got bytes.Buffer
			werr := req().Write(&want)
			bw := bufio.NewWriter(&got)
			gerr := writeRequest(bw, req())
			bw.Flush()
			if refused[name] {
				if !IsClientError(gerr) || got.Len() != 0 {
					t.Fatalf("error %v, wrote %q; want a client error and nothing written", gerr, got.String())
				}
				return
			}
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("error %v, Request.Write's %v", gerr, werr)
			}
			if got.String() != want.String() {
				t.Fatalf("wrote\n%q\nRequest.Write wrote\n%q", got.String(), want.String())
			}
			var scratch bytes.Buffer
			if handled, _ := writeSimpleRequest(bufio.NewWriter(&scratch), req()); handled != own[name] {
				t.Fatalf("writeSimpleRequest handled it: %v, want %v", handled, own[name])
			}
		})
	}
}
