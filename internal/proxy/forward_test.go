package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gangway-ecs/gangway/internal/spec"
)

func TestHopByHopHeadersAreNotForwarded(t *testing.T) {
	a := startBackend(t, "a")
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	req, _ := http.NewRequest("GET", srv.url("public", "/"), nil)
	req.Header.Set("Connection", "X-Secret, keep-alive")
	req.Header.Set("X-Secret", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic eDp5")
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-Kept", "yes")
	resp, err := newClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := a.lastReq.Load().Header
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization"} {
		if got.Get(k) != "" {
			t.Errorf("%s forwarded: %q", k, got.Get(k))
		}
	}
	if got.Get("Te") != "trailers" || got.Get("X-Kept") != "yes" {
		t.Errorf("upstream headers %v", got)
	}
	if got.Get("User-Agent") != "Go-http-client/1.1" {
		t.Errorf("User-Agent %q, want the client's", got.Get("User-Agent"))
	}
}

// A response of unknown length is flushed as it arrives, not when it ends.
func TestStreamingResponseIsFlushed(t *testing.T) {
	release := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "data: second\n\n")
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))
	resp, err := newClient().Get(srv.url("public", "/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest %q", rest)
	}
}

// A client cannot remove the headers the proxy owns by naming them in Connection: they are
// set after the hop-by-hop headers are removed.
func TestConnectionHeaderCannotRemoveForwardedHeaders(t *testing.T) {
	a := startBackend(t, "a")
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	c := rawConn(t, srv.Addr("public"))
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: shop.example.com\r\nX-Forwarded-For: 6.6.6.6\r\n"+
		"Connection: keep-alive, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port\r\n\r\n")
	expectStatus(t, bufio.NewReader(c), 200)
	got := a.lastReq.Load().Header
	if got.Get("X-Forwarded-For") != "127.0.0.1" || got.Get("X-Forwarded-Proto") != "http" || got.Get("X-Forwarded-Host") != "shop.example.com" || got.Get("X-Forwarded-Port") == "" {
		t.Fatalf("upstream forwarding headers %q %q %q %q, want 127.0.0.1, http, shop.example.com and the listener's port",
			got.Get("X-Forwarded-For"), got.Get("X-Forwarded-Proto"), got.Get("X-Forwarded-Host"), got.Get("X-Forwarded-Port"))
	}
}

func expectStatus(t *testing.T, br *bufio.Reader, want int) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d", resp.StatusCode, want)
	}
}

// trailerUpstream records the trailers of each request it reads to the end.
func trailerUpstream(t *testing.T) (addr string, trailers chan http.Header) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trailers = make(chan http.Header, 4)
	up := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		trailers <- r.Trailer.Clone()
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	return ln.Addr().String(), trailers
}

// Request trailers go upstream only when declared in the Trailer header and allowed in a
// trailer (RFC 9110, 6.5.1): one rule for HTTP/1 and HTTP/2 clients.
func TestRequestTrailersAreFiltered(t *testing.T) {
	up, trailers := trailerUpstream(t)
	spec := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{up}}})
	spec.Listeners[0].H2C = true
	srv := startServer(t, spec)
	want := http.Header{"X-Checksum": {"42"}}

	t.Run("http1", func(t *testing.T) {
		c := rawConn(t, srv.Addr("public"))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, Authorization, Cookie\r\n\r\n"+
			"5\r\nhello\r\n0\r\nX-Checksum: 42\r\nAuthorization: Bearer stolen\r\nCookie: s=1\r\nHost: evil.example\r\n"+
			"Content-Length: 5\r\nX-Undeclared: 1\r\n\r\n")
		expectStatus(t, bufio.NewReader(c), 200)
		if got := <-trailers; !equalHeader(got, want) {
			t.Fatalf("upstream trailers %v, want %v", got, want)
		}
	})
	t.Run("http2", func(t *testing.T) {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("POST", srv.url("public", "/"), nil)
		req.Trailer = http.Header{"X-Checksum": nil, "Cookie": nil}
		// Set at the end of the body: X-Undeclared goes out undeclared.
		req.Body = io.NopCloser(&trailerSetter{r: strings.NewReader("hello"), set: func() {
			req.Trailer.Set("X-Checksum", "42")
			req.Trailer.Set("Cookie", "s=1")
			req.Trailer.Set("X-Undeclared", "1")
		}})
		req.ContentLength = -1
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
		}
		if got := <-trailers; !equalHeader(got, want) {
			t.Fatalf("upstream trailers %v, want %v", got, want)
		}
	})
}

type trailerSetter struct {
	r   io.Reader
	set func()
}

func (s *trailerSetter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF && s.set != nil {
		s.set()
		s.set = nil
	}
	return n, err
}

// equalHeader compares the fields that have values.
func equalHeader(a, b http.Header) bool {
	n := 0
	for k, v := range a {
		if len(v) == 0 {
			continue
		}
		n++
		if strings.Join(v, ",") != strings.Join(b[k], ",") {
			return false
		}
	}
	return n == len(b)
}

// CONNECT is never forwarded by an HTTP route: a target that is not host:port is malformed
// (400), and one that is gets 501; the upstream sees neither.
func TestConnectIsNotForwarded(t *testing.T) {
	a := startBackend(t, "a")
	r := spec.Route{Name: "any", Path: spec.PathMatch{Regex: regexp.MustCompile(".*")}, Cluster: "app", Timeout: 30 * time.Second}
	srv := startServer(t, testSpec([]spec.Route{r}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	for _, tc := range []struct {
		target string
		want   int
	}{{"//h/abs", 400}, {"/abs", 400}, {"h.example:443", 501}} {
		c := rawConn(t, srv.Addr("public"))
		io.WriteString(c, "CONNECT "+tc.target+" HTTP/1.1\r\nHost: h.example:443\r\n\r\n")
		expectStatus(t, bufio.NewReader(c), tc.want)
	}
	if n := a.hits.Load(); n != 0 {
		t.Fatalf("%d CONNECT requests reached the upstream", n)
	}
}

// A request whose body the client fails to send (short then FIN, a malformed chunk, an
// oversized chunk extension or trailer section) is the client's error: answered 400 or
// closed, never 502, and never counted against the endpoint, which stays in service.
func TestClientBodyErrorsDoNotCountAgainstUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Answer only once the whole body is in, as most applications do.
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		io.WriteString(w, "ok")
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	var logs syncBuffer
	out := &spec.Outlier{Consecutive5xx: 2, BaseEjectionTime: time.Minute, MaxEjectionPercent: 100}
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}, Outlier: out}}),
		func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	const chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		name, req string
	}{
		{"short body then FIN", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this"},
		{"malformed chunk size", chunked + "5\r\nhello\r\nzz\r\n"},
		{"oversized chunk extension", chunked + "5;" + strings.Repeat("e", 64<<10) + "\r\nhello\r\n0\r\n\r\n"},
		{"oversized trailer section", chunked + "5\r\nhello\r\n0\r\nX-Big: " + strings.Repeat("t", 2<<20) + "\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 { // more than Consecutive5xx
				c := rawConn(t, srv.Addr("public"))
				go func() {
					io.WriteString(c, tc.req)
					c.(*net.TCPConn).CloseWrite()
				}()
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					continue // the connection closed: a client error too
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400 (or the connection closed)", resp.StatusCode)
				}
			}
		})
	}
	if n := testutil.ToFloat64(srv.metrics.ejections.WithLabelValues("app")); n != 0 {
		t.Fatalf("%v ejections for the client's errors", n)
	}
	if code, body := get(t, newClient(), srv.url("public", "/")); code != 200 || body != "ok" {
		t.Fatalf("after the broken requests: %d %q, want the endpoint's answer", code, body)
	}
	if strings.Contains(logs.String(), "upstream error") || !strings.Contains(logs.String(), "client request error") {
		t.Fatalf("client errors not logged as the client's:\n%s", logs.String())
	}
}

// The query goes upstream byte for byte, parseable or not (CVE-2022-2880, CVE-2026-39825
// were a Go proxy forwarding parameters its own parser had not seen): Gangway never parses
// it, so it cannot disagree with the upstream about it.
func TestRawQueryIsForwardedUnchanged(t *testing.T) {
	a := startBackend(t, "a")
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	const query = "a=1;b=2&c=%x&d=%zz&e=%26&&f"
	c := rawConn(t, srv.Addr("public"))
	io.WriteString(c, "GET /q?"+query+" HTTP/1.1\r\nHost: x\r\n\r\n")
	expectStatus(t, bufio.NewReader(c), 200)
	if got := a.lastReq.Load().URL.RawQuery; got != query {
		t.Fatalf("upstream query %q, want %q", got, query)
	}
}

// Redirects go to the client; the proxy never follows one, so no header of the request
// (Authorization, cookies, Proxy-Authorization) can reach another origin (CVE-2023-45289,
// CVE-2024-45336, CVE-2025-4673 were Go's client following redirects).
func TestRedirectsAreNotFollowed(t *testing.T) {
	other := startBackend(t, "other")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+other.addr+"/stolen", http.StatusFound)
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))
	c := rawConn(t, srv.Addr("public"))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\nCookie: s=1\r\n\r\n")
	expectStatus(t, bufio.NewReader(c), http.StatusFound)
	if n := other.hits.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}

// Protocol tokens are compared in ASCII only: a Kelvin sign (which folds to "k") or a long
// s (which folds to "s") does not make a token.
func TestForwardingTokensAreASCII(t *testing.T) {
	a := startBackend(t, "a")
	rt := prefixRoute("app", "/", "app")
	rt.AllowWebSockets = true
	srv := startServer(t, testSpec([]spec.Route{rt}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	c := rawConn(t, srv.Addr("public"))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /te HTTP/1.1\r\nHost: x\r\nTE: trailer\u017f\r\nConnection: TE\r\n\r\n")
	expectStatus(t, br, 200)
	if te := a.lastReq.Load().Header.Get("Te"); te != "" {
		t.Fatalf("TE %q forwarded for a non-ASCII token", te)
	}
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websoc\u212aet\r\nConnection: Upgrade\r\n\r\n")
	expectStatus(t, br, http.StatusForbidden)
}

// The upstream's answer reaches the client without its hop-by-hop headers and those its
// Connection header names, and with the route's response rewrites, over HTTP/1.1 and
// HTTP/2 and whichever parser read it (a Content-Length answer takes the short path, a
// chunked one http.ReadResponse).
func TestHopByHopResponseHeadersAreNotForwarded(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Upstream-Secret\r\nX-Upstream-Secret: 1\r\n" +
		"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: h3\r\nX-Kept: yes\r\nX-Drop: 1\r\nX-Set: old\r\n"
	answers := map[string]string{
		"/length":  head + "Content-Length: 2\r\n\r\nok",
		"/chunked": head + "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	}
	addr, _ := startRawUpstream(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.WriteString(c, answers[req.URL.Path])
		}
	})
	rt := prefixRoute("app", "/", "app")
	rt.RemoveResponseHeaders = []string{"X-Drop"}
	rt.SetResponseHeaders = map[string]string{"X-Set": "new"}
	sp := testSpec([]spec.Route{rt}, []spec.Cluster{{Name: "app", Endpoints: []string{addr}}})
	sp.Listeners[0].H2C = true
	srv := startServer(t, sp)
	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	for _, c := range []*http.Client{newClient(), {Transport: h2, Timeout: 20 * time.Second}} {
		for path := range answers {
			resp, err := c.Get(srv.url("public", path))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok" {
				t.Errorf("%s %s: status %d body %q", resp.Proto, path, resp.StatusCode, body)
			}
			for _, k := range []string{"X-Upstream-Secret", "Keep-Alive", "Proxy-Connection", "Upgrade", "X-Drop"} {
				if v := resp.Header.Get(k); v != "" {
					t.Errorf("%s %s: %s forwarded to the client: %q", resp.Proto, path, k, v)
				}
			}
			if resp.Header.Get("X-Kept") != "yes" || resp.Header.Get("X-Set") != "new" {
				t.Errorf("%s %s: header %v, want X-Kept: yes and X-Set: new", resp.Proto, path, resp.Header)
			}
		}
	}
}

// responseHeader copies the fields into the header of a writer that cannot take the map.
func TestResponseHeaderCopiesForOtherWriters(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("X-Before", "1")
	up := http.Header{"Connection": {"X-Named"}, "X-Named": {"1"}, "Keep-Alive": {"timeout=5"}, "X-Kept": {"yes"}}
	h := responseHeader(w, up)
	want := http.Header{"X-Before": {"1"}, "X-Kept": {"yes"}}
	if !reflect.DeepEqual(h, want) || !reflect.DeepEqual(w.Header(), want) {
		t.Fatalf("header %v, writer's %v; want both %v", h, w.Header(), want)
	}
	// The recorder adopts only for a writer that can.
	rec := &recorder{ResponseWriter: w}
	if rec.AdoptHeader(http.Header{}) {
		t.Fatal("the recorder adopted a header for a writer that cannot")
	}
}
