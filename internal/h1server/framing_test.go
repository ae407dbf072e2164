package h1server

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// echoPath answers each request with its method, path and body.
func echoPath(served *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	})
}

// expectRefused sends req on a new connection and expects the server to answer it with
// code, without running the handler, and to close the connection.
func expectRefused(t *testing.T, req string, code int) {
	t.Helper()
	var served atomic.Int32
	addr := start(t, &Server{Handler: echoPath(&served)})
	c, br := dial(t, addr)
	io.WriteString(c, req)
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != code {
		t.Errorf("%q: status %d (%q), want %d", req, resp.StatusCode, body, code)
	}
	expectClosed(t, br)
	if served.Load() != 0 {
		t.Errorf("%q: the handler ran", req)
	}
}

// TestTransferCodingASCIIOnly: a transfer coding that is "chunked" only under Unicode
// case folding (the Kelvin sign U+212A folds to k) is an unknown coding, answered 501
// as nginx and net/http answer it; the handler never runs.
func TestTransferCodingASCIIOnly(t *testing.T) {
	for _, te := range []string{"chun\u212Aed", "CHUN\u212AED", "chunked\u017F"} {
		expectRefused(t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "+te+"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", http.StatusNotImplemented)
	}
	// Upper case ASCII is still chunked.
	var served atomic.Int32
	addr := start(t, &Server{Handler: echoPath(&served)})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if resp, body := readResponse(t, br, "POST"); resp.StatusCode != 200 || body != "POST / hello" {
		t.Fatalf("CHUNKED: %d %q", resp.StatusCode, body)
	}
}

// TestTransferEncodingHTTP10Refused: RFC 9112 §6.1 has a Transfer-Encoding in an HTTP/1.0
// request make the framing faulty. net/http ignores the header and frames by
// Content-Length, which a proxy in front may not; it is refused with 400.
func TestTransferEncodingHTTP10Refused(t *testing.T) {
	for _, req := range []string{
		"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
		"GET / HTTP/1.0\r\nTransfer-Encoding: x\r\n\r\n",
	} {
		expectRefused(t, req, http.StatusBadRequest)
	}
}

// TestEmptyLinesBeforeRequestLine: RFC 9112 §2.2 has a server ignore at least one empty
// line before a request line; old clients send a CRLF after a POST body. Up to
// MaxLeadingEmptyLines are ignored, each CRLF or LF, and the requests around them are
// served; more is a 400.
func TestEmptyLinesBeforeRequestLine(t *testing.T) {
	for _, tc := range []struct {
		name, stream string
		want         []string
	}{
		{"CRLF first", "\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET /a "}},
		{"LF first", "\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET /a "}},
		{"mixed, at the bound", strings.Repeat("\r\n\n", MaxLeadingEmptyLines/2) + "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET /a "}},
		{"CRLF after a POST body, pipelined", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n", []string{"POST /p hello", "GET /b "}},
		{"CRLF after a chunked body, pipelined", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n", []string{"POST /p hello", "GET /b "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var served atomic.Int32
			addr := start(t, &Server{Handler: echoPath(&served)})
			c, br := dial(t, addr)
			io.WriteString(c, tc.stream)
			for _, want := range tc.want {
				resp, body := readResponse(t, br, "GET")
				if resp.StatusCode != 200 || body != want {
					t.Fatalf("%d %q, want 200 %q", resp.StatusCode, body, want)
				}
			}
		})
	}
	t.Run("CRLF after a POST body, then the client closes", func(t *testing.T) {
		var served atomic.Int32
		addr := start(t, &Server{Handler: echoPath(&served)})
		c, br := dial(t, addr)
		io.WriteString(c, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\r\n")
		if _, body := readResponse(t, br, "POST"); body != "POST /p hello" {
			t.Fatalf("body %q", body)
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
		expectClosed(t, br) // at once: not after a header timeout (dial's deadline is 10 s)
	})
	t.Run("over the bound", func(t *testing.T) {
		expectRefused(t, strings.Repeat("\r\n", MaxLeadingEmptyLines+1)+"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", http.StatusBadRequest)
	})
}
