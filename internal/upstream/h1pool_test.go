package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/testcert"
)

// The checks a reused connection and a request head go through cost no allocation.
func TestPoolChecksDoNotAllocate(t *testing.T) {
	addr := serveOneConn(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	c := poolConn(t, addr, nil)
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

// A simple answer is made in the room the caller gives (Answer), its body with the wrappers
// the pool and the cluster put around it: an exchange of one through the pool, under a
// context that watches the connection itself as the data plane's stream timer does,
// allocates the answer's head string, and nothing else.
func TestSimpleExchangeAllocations(t *testing.T) {
	// Allocation-free, since the count is the process's: a bodiless request's head ends
	// its read (it comes in one write).
	addr := serveOneConn(t, func(c net.Conn) {
		answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil || !bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) {
				return
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	})
	p := newH1Pool(func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}, 1, nil)
	defer p.CloseIdleConnections()
	// The data plane's stream timer watches the connection for the exchange; a
	// context.AfterFunc would cost three allocations of its own.
	req, _ := http.NewRequestWithContext(watchingContext{context.Background()}, "GET", "http://"+addr+"/", nil)
	req.Header = http.Header{"User-Agent": {"u"}}
	var ans Answer
	exchange := func() {
		resp, err := p.roundTrip(req, &ans)
		if err != nil {
			t.Fatal(err)
		}
		if room := wrapperRoom(resp.Body); room == nil || resp.Body != &room.pooled {
			t.Fatalf("body %T is not its answer's own h1Body", resp.Body)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	exchange() // dials
	// The answer's head string.
	if n := testing.AllocsPerRun(200, exchange); n > 1 {
		t.Fatalf("%v allocations per exchange, want at most 1", n)
	}
}

// watchingContext is a ConnWatcher that is never cancelled.
type watchingContext struct{ context.Context }

func (watchingContext) Watch(io.Closer) bool   { return true }
func (watchingContext) Unwatch(io.Closer) bool { return true }

// serveOneConn listens on a loopback port, serves the first connection with serve and then
// closes it, and returns the address; the listener closes when the test ends.
func serveOneConn(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			serve(c)
		}
	}()
	return ln.Addr().String()
}
