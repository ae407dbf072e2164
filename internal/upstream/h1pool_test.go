package upstream

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
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/testcert"
)

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
	ca := testcert.New(t, "up-ca")
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

// On a plain TCP connection a bodiless request is flushed and its answer awaited in one read
// of the socket. The answer is read whole however late it comes and however large the
// request head (larger than the writer's buffer, so part of it leaves before the final
// flush); the connection is reused after it; an endpoint that closes instead of answering
// is a failure before any response, which a reused connection retries.
func TestBodilessRequestWaitsInTheFlush(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					switch req.URL.Path {
					case "/late":
						time.Sleep(50 * time.Millisecond)
					case "/hang-up":
						return
					}
					body := req.URL.Path + " " + strconv.Itoa(len(req.Header.Get("X-Big")))
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				}
			}()
		}
	}()
	p := newH1Pool((&net.Dialer{}).DialContext, 4, nil)
	defer p.CloseIdleConnections()
	roundTrip := func(path string, header http.Header) (string, error) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+path, nil)
		req.Header = header
		resp, err := p.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	big := strings.Repeat("b", 6<<10)
	for _, tc := range []struct {
		path   string
		header http.Header
		want   string
	}{
		{"/a", nil, "/a 0"},
		{"/late", nil, "/late 0"},
		{"/big", http.Header{"X-Big": {big}}, "/big 6144"},
		{"/b", nil, "/b 0"},
	} {
		if got, err := roundTrip(tc.path, tc.header); err != nil || got != tc.want {
			t.Fatalf("%s: %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections for four requests, want 1", n)
	}
	if _, err := roundTrip("/hang-up", nil); err == nil || !errors.Is(err, errNoResponse) {
		t.Fatalf("endpoint closed without answering: %v, want an error before any response", err)
	}
}

// Flushing and waiting in one read of the socket allocates nothing.
func TestFlushThenWaitDoesNotAllocate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			io.Copy(c, c) // echo
		}
	}()
	c := poolConn(t, ln.Addr().String(), nil)
	if c.peek == nil {
		t.Skip("no socket peek on this platform: requests are flushed and read as on any connection")
	}
	var b [1]byte
	if n := testing.AllocsPerRun(100, func() {
		c.bw.WriteByte('x')
		if err := c.peek.flushThenWait(c.bw); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per flush and wait, want none", n)
	}
}
