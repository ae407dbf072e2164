package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// An endpoint that closes idle keep-alive connections sooner than the pool does: the
// request that meets a closed pooled connection is sent again on a new one.
func TestH1PoolRetriesStaleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	up := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       50 * time.Millisecond,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
	}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))
	c := newClient()
	for i := range 3 {
		if code, body := get(t, c, srv.url("public", "/")); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		time.Sleep(150 * time.Millisecond) // the endpoint closes the pooled connection
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d upstream connections, want 3 (one per request after each idle close)", n)
	}
}

// An endpoint that reads a request on a pooled connection and closes it without a byte of
// an answer may have acted on the request: an idempotent one is sent once more on a new
// connection, any other gets a 502 and is not sent again (RFC 9112, section 9.3.1).
func TestH1PoolRetriesOnlyIdempotentRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var got atomic.Int64 // requests the endpoint read
	serveEach(ln, func(c net.Conn) {
		// The first request of a connection is answered and keeps it; the second is read
		// and the connection closed.
		defer c.Close()
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			got.Add(1)
			if i == 1 {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n%s", req.Method[:2])
		}
	})
	c := newClient()
	var srv *testServer
	send := func(method string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.url("public", "/"), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		method string
		code   int
		sent   int64 // times the endpoint read the second request
	}{
		{"GET", 200, 2},
		{"PUT", 200, 2},
		{"POST", http.StatusBadGateway, 1},
		{"PATCH", http.StatusBadGateway, 1},
	} {
		// A proxy of its own, whose pool the first request leaves one connection in; the
		// second meets its close.
		srv = startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))
		if code, _ := send(tc.method); code != 200 {
			t.Fatalf("%s: first request got %d", tc.method, code)
		}
		before := got.Load()
		code, body := send(tc.method)
		if code != tc.code || code == 200 && body != tc.method[:2] {
			t.Fatalf("%s on a connection the endpoint closed: %d %q, want %d", tc.method, code, body, tc.code)
		}
		if n := got.Load() - before; n != tc.sent {
			t.Fatalf("%s: the endpoint read it %d times, want %d", tc.method, n, tc.sent)
		}
	}
}

// Responses framed by Content-Length reuse the connection; a response delimited by the
// connection's close, an interim 100 Continue, HEAD and trailers all pass through.
func TestH1PoolFraming(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := serveEach(ln, serveRawUpstream)
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))
	c := newClient()
	for i := range 2 {
		if code, body := get(t, c, srv.url("public", "/length")); code != 200 || body != "hello" {
			t.Fatalf("length %d: %d %q", i, code, body)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections for two Content-Length responses, want 1", n)
	}
	if code, body := get(t, c, srv.url("public", "/close")); code != 200 || body != "until close" {
		t.Fatalf("close-delimited: %d %q", code, body)
	}
	if code, body := get(t, c, srv.url("public", "/continue")); code != 200 || body != "after 100" {
		t.Fatalf("interim response: %d %q", code, body)
	}
	resp, err := c.Head(srv.url("public", "/length"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 5 {
		t.Fatalf("HEAD: %d length %d", resp.StatusCode, resp.ContentLength)
	}
	resp, err = c.Get(srv.url("public", "/trailer"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "chunked" || resp.Trailer.Get("X-Checksum") != "42" {
		t.Fatalf("trailer: %q %v", body, resp.Trailer)
	}
}

// serveRawUpstream answers requests on c with hand-written framing, by path.
func serveRawUpstream(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		var out string
		switch req.URL.Path {
		case "/length":
			out = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
			if req.Method != http.MethodHead {
				out += "hello"
			}
		case "/close":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")
			return
		case "/continue":
			out = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nafter 100"
		case "/trailer":
			out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n7\r\nchunked\r\n0\r\nX-Checksum: 42\r\n\r\n"
		default:
			out = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
		}
		if _, err := io.WriteString(c, out); err != nil || strings.Contains(out, "Connection: close") {
			return
		}
	}
}

// An endpoint that answers before reading the request body (full-duplex HTTP/1.1): its
// answer reaches the client while the body is still coming, and the connection, whose
// request was not sent in full, is not used again.
func TestH1PoolEarlyResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if n == 1 {
					// Answer at once and never read the body.
					io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big\n")
					<-hold
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))

	c := rawConn(t, srv.Addr("public"))
	const size = 32 << 20 // far more than the socket buffers hold
	go func() {
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response while the body was still being sent: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(body) != "too big\n" {
		t.Fatalf("got %d %q, want the endpoint's 413", resp.StatusCode, body)
	}

	if code, body := get(t, newClient(), srv.url("public", "/")); code != 200 || body != "ok" {
		t.Fatalf("next request: %d %q", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections, want 2 (the first is not reused)", n)
	}
}
