package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestUpstreamTimeoutIs504(t *testing.T) {
	a := startBackend(t, "a")
	a.delay.Store(int64(3 * time.Second))
	r := prefixRoute("slow", "/", "app")
	r.Timeout = 200 * time.Millisecond
	srv := startServer(t, testSpec([]Route{r}, []Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	code, body := get(t, newClient(), srv.url("public", "/"))
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "did not answer within 200ms") {
		t.Fatalf("%d %q", code, body)
	}
}

func TestStreamIdleTimeoutIs408(t *testing.T) {
	a := startBackend(t, "a")
	a.delay.Store(int64(3 * time.Second))
	r := prefixRoute("idle", "/", "app")
	r.Timeout = 0
	r.IdleTimeout = 200 * time.Millisecond
	srv := startServer(t, testSpec([]Route{r}, []Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	code, body := get(t, newClient(), srv.url("public", "/"))
	if code != http.StatusRequestTimeout || !strings.Contains(body, "stream idle for 200ms") {
		t.Fatalf("%d %q", code, body)
	}
}

// rawConn opens a TCP connection to addr with a generous deadline.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKeepAliveIdleTimeoutClosesConnection(t *testing.T) {
	a := startBackend(t, "a")
	spec := testSpec([]Route{prefixRoute("app", "/", "app")}, []Cluster{{Name: "app", Endpoints: []string{a.addr}}})
	spec.IdleTimeout = 300 * time.Millisecond
	srv := startServer(t, spec)
	c := rawConn(t, srv.Addr("public"))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection: read %v, want EOF", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("closed after %s, before the idle timeout", d)
	}
}

func TestHeaderReadTimeoutClosesConnection(t *testing.T) {
	a := startBackend(t, "a")
	spec := testSpec([]Route{prefixRoute("app", "/", "app")}, []Cluster{{Name: "app", Endpoints: []string{a.addr}}})
	spec.ReadHeaderTimeout = 300 * time.Millisecond
	srv := startServer(t, spec)
	c := rawConn(t, srv.Addr("public"))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n") // never finishes the headers
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	// Go's server closes a connection whose headers time out; it may say 408 first.
	if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 408") {
		t.Fatalf("got %q, want 408 or a plain close", got)
	}
	if a.hits.Load() != 0 {
		t.Fatal("an incomplete request reached the upstream")
	}
}

func TestWriteTimeoutBoundsTheWholeRequest(t *testing.T) {
	a := startBackend(t, "a")
	a.delay.Store(int64(3 * time.Second))
	r := prefixRoute("app", "/", "app")
	r.Timeout = 0
	spec := testSpec([]Route{r}, []Cluster{{Name: "app", Endpoints: []string{a.addr}}})
	spec.WriteTimeout = 300 * time.Millisecond
	srv := startServer(t, spec)
	resp, err := newClient().Get(srv.url("public", "/"))
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Fatalf("got %d, want the connection closed by the write timeout", resp.StatusCode)
	}
}

func TestRetryOnAnotherEndpointAfterConnectFailure(t *testing.T) {
	a := startBackend(t, "a")
	dead := freeAddr(t)
	srv := startServer(t, testSpec([]Route{prefixRoute("app", "/", "app")}, []Cluster{{Name: "app", Endpoints: []string{dead, a.addr}}}))
	c := newClient()
	for i := range 6 {
		if code, body := get(t, c, srv.url("public", "/")); code != 200 {
			t.Fatalf("GET %d: %d %q", i, code, body)
		}
	}
	// A POST with a body is not retried: it may not be safe.
	failed := 0
	for range 4 {
		resp, err := c.Post(srv.url("public", "/"), "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway {
			failed++
			if !strings.Contains(string(body), "upstream error") {
				t.Fatalf("502 body %q", body)
			}
		}
	}
	if failed != 2 {
		t.Fatalf("%d of 4 POSTs failed, want 2 (those sent to the dead endpoint)", failed)
	}
}

func TestUpstreamResetIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the request, then hang up without answering.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	}()
	srv := startServer(t, testSpec([]Route{prefixRoute("app", "/", "app")}, []Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))
	code, body := get(t, newClient(), srv.url("public", "/"))
	if code != http.StatusBadGateway {
		t.Fatalf("%d %q", code, body)
	}
}

// TestRequestSmuggling sends ambiguous framing on raw sockets. Go's server rejects
// conflicting Content-Length headers and any transfer coding but a single "chunked"; a
// request with both Transfer-Encoding: chunked and Content-Length is framed by
// Transfer-Encoding and forwarded without the Content-Length (RFC 9112 section 6.3), so the
// upstream never sees two framings.
func TestRequestSmuggling(t *testing.T) {
	a := startBackend(t, "a")
	srv := startServer(t, testSpec([]Route{prefixRoute("app", "/", "app")}, []Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	for _, tc := range []struct {
		name, req string
		want      int
	}{
		{"conflicting content-length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400},
		{"unsupported transfer-encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"two transfer-encoding headers", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 501},
		{"invalid content-length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"space before colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.hits.Load()
			c := rawConn(t, srv.Addr("public"))
			io.WriteString(c, tc.req)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if a.hits.Load() != before {
				t.Fatal("the request reached the upstream")
			}
		})
	}
	t.Run("content-length and chunked", func(t *testing.T) {
		c := rawConn(t, srv.Addr("public"))
		io.WriteString(c, "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := a.lastReq.Load()
		if resp.StatusCode != 200 || got.URL.Path != "/first" || got.Header.Get("Content-Length") != "" || got.ContentLength == 40 {
			t.Fatalf("status %d; upstream saw %s with Content-Length %q (%d)", resp.StatusCode, got.URL.Path, got.Header.Get("Content-Length"), got.ContentLength)
		}
	})
}
