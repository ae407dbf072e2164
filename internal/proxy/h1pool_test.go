package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
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

// Responses framed by Content-Length reuse the connection; a response delimited by the
// connection's close, an interim 100 Continue, HEAD and trailers all pass through.
func TestH1PoolFraming(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go serveRawUpstream(c)
		}
	}()
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

// The checks a reused connection and a request head go through cost no allocation.
func TestPoolChecksDoNotAllocate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	c := poolConn(t, ln.Addr().String(), nil)
	if c.peek == nil {
		t.Log("no socket peek on this platform")
	}
	req, _ := http.NewRequest("GET", "http://e/a/b?x=1", nil)
	req.Header = http.Header{"User-Agent": {"u"}, "Accept": {"*/*"}, "X-Forwarded-For": {"10.0.0.1"}}
	if n := testing.AllocsPerRun(100, func() {
		if err := c.idleErr(); err != nil {
			t.Fatal(err)
		}
		if err := checkRequestLine(req.Method, "/a/b?x=1"); err != nil {
			t.Fatal(err)
		}
		for k, vv := range req.Header {
			if err := checkField(k, vv); err != nil {
				t.Fatal(err)
			}
		}
	}); n != 0 {
		t.Fatalf("%v allocations per check, want none", n)
	}
}

// Over TLS, bytes crypto/tls decrypted but nobody read are not in the socket: the idle check
// finds them too, and a quiet connection stays usable after it.
func TestIdleCheckSeesWhatTLSHolds(t *testing.T) {
	ca := newCA(t, "up-ca")
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", 7, time.Hour)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, DynamicRecordSizingDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	send := make(chan []byte)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if c.(*tls.Conn).Handshake() != nil {
			return
		}
		for b := range send {
			c.Write(b) // one record each
		}
	}()
	c := poolConn(t, ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err := c.idleErr(); err != nil {
		t.Fatalf("quiet connection: %v", err)
	}
	// A record larger than the reader's buffer: after reading one buffer's worth, the rest
	// is held by crypto/tls, and nothing waits in the socket.
	send <- bytes.Repeat([]byte("x"), 5000)
	if _, err := c.br.Discard(4096); err != nil {
		t.Fatal(err)
	}
	if c.br.Buffered() != 0 {
		t.Fatalf("%d bytes buffered, want 0 for the test to mean anything", c.br.Buffered())
	}
	if err := c.idleErr(); !errors.Is(err, errUnsolicited) {
		t.Fatalf("idle check with 904 bytes held by crypto/tls: %v, want errUnsolicited", err)
	}
	// The check read nothing away and left no deadline behind.
	if n, err := c.br.Discard(904); n != 904 || err != nil {
		t.Fatalf("read %d of the 904 bytes after the check: %v", n, err)
	}
	send <- []byte("y")
	if b, err := c.br.ReadByte(); b != 'y' || err != nil {
		t.Fatalf("read %q, %v after the checks", b, err)
	}
	close(send)
}

// poolConn dials addr as an h1Pool does, over TLS when tlsConf is set; the connection is
// closed when the test ends.
func poolConn(t *testing.T, addr string, tlsConf *tls.Config) *h1Conn {
	t.Helper()
	p := newH1Pool(func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil || tlsConf == nil {
			return raw, err
		}
		tc := tls.Client(raw, tlsConf)
		return tc, tc.HandshakeContext(ctx)
	}, 1, nil)
	c, err := p.newConn(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.conn.Close(); p.CloseIdleConnections() })
	return c
}
