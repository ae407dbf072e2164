package h1server

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/testcert"
)

// rejections collects what a Server reports to Rejected (before it answers 400, so a
// test that has read the 400 finds the report here).
type rejections chan Rejection

func (r rejections) add(_ net.Conn, why Rejection) { r <- why }

// take returns the reports so far.
func (r rejections) take() (got []Rejection) {
	for {
		select {
		case why := <-r:
			got = append(got, why)
		default:
			return got
		}
	}
}

// TestRejected: a head whose framing another implementation could read differently is
// answered 400 and reported to Rejected with its reason, after the requests before it were
// served and with nothing after it read, however the stream arrives.
func TestRejected(t *testing.T) {
	rec := new(bodyRecorder)
	rej := make(rejections, 16)
	addr := start(t, &Server{Handler: rec, Rejected: rej.add})
	for _, tc := range []struct {
		name, stream, reason string
	}{
		{"content-length and chunked", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "content_length_and_transfer_encoding"},
		{"content-length and another coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", "content_length_and_transfer_encoding"},
		{"transfer-encoding in HTTP/1.0", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "transfer_encoding_http10"},
		{"obsolete line folding", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tcontinued\r\n\r\n", "obsolete_line_folding"},
		{"after empty lines", "\n\r\n\n" + "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "content_length_and_transfer_encoding"},
	} {
		for _, chunk := range []int{1, 3, 4096} {
			c, br := dial(t, addr)
			stream := "\r\nGET /ok HTTP/1.1\r\nHost: a\r\n\r\n" + tc.stream + smuggled
			go func() {
				for p := stream; len(p) > 0; p = p[min(chunk, len(p)):] {
					if _, err := io.WriteString(c, p[:min(chunk, len(p))]); err != nil {
						return
					}
				}
			}()
			if resp, got := readResponse(t, br, "GET"); resp.StatusCode != 200 || got != "GET /ok " {
				t.Fatalf("%s, chunks of %d: first response %d %q", tc.name, chunk, resp.StatusCode, got)
			}
			resp, _ := readResponse(t, br, "POST")
			if resp.StatusCode != http.StatusBadRequest || !resp.Close {
				t.Fatalf("%s, chunks of %d: status %d, close %v; want 400 and Connection: close", tc.name, chunk, resp.StatusCode, resp.Close)
			}
			expectClosed(t, br)
			got := rej.take()
			if len(got) != 1 || got[0].Reason != tc.reason || got[0].Text == "" {
				t.Fatalf("%s, chunks of %d: Rejected heard %+v, want one %s", tc.name, chunk, got, tc.reason)
			}
		}
	}
	if rec.served("/smuggled") != 0 {
		t.Fatal("a request after a rejected head was served")
	}
	// Heads refused for other reasons are not rejections: no framing is ambiguous there.
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n")
	if resp, _ := readResponse(t, br, "POST"); resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("unknown coding: status %d, want 501", resp.StatusCode)
	}
	if got := rej.take(); len(got) != 0 {
		t.Fatalf("Rejected heard %+v for an unknown coding", got)
	}
}

// TestUpgradeNotTakenOverCloses: after a request asking to switch protocols that its
// handler does not take over, what the client sends next may be the other protocol (a
// proxy in front may believe the switch happened), so the connection ends with the
// response. OPTIONS *, which the server answers itself, never switches: the connection
// goes on, and its next request is checked as any.
func TestUpgradeNotTakenOverCloses(t *testing.T) {
	rec := new(bodyRecorder)
	rej := make(rejections, 16)
	addr := start(t, &Server{Handler: rec, Rejected: rej.add})

	c, br := dial(t, addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"+
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+smuggled)
	if resp, got := readResponse(t, br, "GET"); resp.StatusCode != 200 || !resp.Close || got != "GET /ws " {
		t.Fatalf("status %d, close %v, body %q; want 200 and Connection: close", resp.StatusCode, resp.Close, got)
	}
	expectClosed(t, br)
	if rec.served("/smuggled") != 0 || len(rej.take()) != 0 {
		t.Fatal("the connection was read past the upgrade request")
	}

	c, br = dial(t, addr)
	io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"+
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if resp, _ := readResponse(t, br, "OPTIONS"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("OPTIONS *: status %d, close %v; want 200 and the connection kept", resp.StatusCode, resp.Close)
	}
	if resp, _ := readResponse(t, br, "POST"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("after OPTIONS *: status %d, want 400", resp.StatusCode)
	}
	if got := rej.take(); len(got) != 1 || got[0].Reason != "content_length_and_transfer_encoding" {
		t.Fatalf("Rejected heard %+v", got)
	}
}

// startTLS serves s over TLS with a certificate for "localhost" offering protos by ALPN,
// and returns its address and a client configuration that trusts it.
func startTLS(t *testing.T, s *Server, protos ...string) (string, *tls.Config) {
	t.Helper()
	ca := testcert.New(t, "h1server test CA")
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.TLSCert(t, "localhost")}, NextProtos: protos}
	return start(t, s), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
}

func dialTLS(t *testing.T, addr string, conf *tls.Config) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// TestTLS: the server terminates TLS and checks what it decrypts as it checks plain text;
// requests carry the connection's state; a client speaking plain HTTP gets a plain 400
// that says so.
func TestTLS(t *testing.T) {
	rec := new(bodyRecorder)
	rej := make(rejections, 16)
	var sawTLS sync.Map
	addr, conf := startTLS(t, &Server{Rejected: rej.add, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && r.TLS.HandshakeComplete {
			sawTLS.Store(r.URL.Path, r.TLS.ServerName)
		}
		rec.ServeHTTP(w, r)
	})}, "http/1.1")

	c, br := dialTLS(t, addr, conf)
	io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+smuggled)
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, _ := readResponse(t, br, "POST"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if name, _ := sawTLS.Load("/ok"); name != "localhost" {
		t.Fatalf("the handler saw TLS state %v, want one for localhost", name)
	}
	if got := rej.take(); len(got) != 1 || rec.served("/smuggled") != 0 {
		t.Fatalf("Rejected heard %+v; /smuggled served %d times", got, rec.served("/smuggled"))
	}

	plain, pbr := dial(t, addr)
	io.WriteString(plain, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	got, _ := io.ReadAll(pbr)
	if !strings.HasPrefix(string(got), "HTTP/1.0 400 Bad Request") || !strings.Contains(string(got), "HTTPS server") {
		t.Fatalf("plain HTTP to the TLS server got %q", got)
	}
}

// TestTLSALPNH2: after ALPN chose h2 the connection must open with the HTTP/2 preface,
// which hands it to HTTP2 with its TLS state reachable; anything else closes it unanswered
// (RFC 9113 §3.4), even an HTTP/1.1 request.
func TestTLSALPNH2(t *testing.T) {
	handed := make(chan *tls.ConnectionState, 1)
	addr, conf := startTLS(t, &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("HTTP/1 served %s", r.URL.Path) }),
		HTTP2: func(_ context.Context, c net.Conn) {
			var st *tls.ConnectionState
			for nc := c; st == nil; {
				if tc, ok := nc.(*tls.Conn); ok {
					s := tc.ConnectionState()
					st = &s
				} else if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
					nc = u.NetConn()
				} else {
					break
				}
			}
			handed <- st
		},
	}, "h2", "http/1.1")
	conf.NextProtos = []string{"h2"}

	c, br := dialTLS(t, addr, conf)
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	if st := <-handed; st == nil || st.NegotiatedProtocol != "h2" {
		t.Fatalf("HTTP2 was handed a connection with TLS state %+v", st)
	}
	expectClosed(t, br)

	c, br = dialTLS(t, addr, conf)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if b, err := br.ReadByte(); err == nil {
		t.Fatalf("answered %q after ALPN chose h2 without the preface", b)
	}
	select {
	case <-handed:
		t.Fatal("HTTP2 was handed a connection without the preface")
	default:
	}
}
