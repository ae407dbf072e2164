package h1server

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Tests named after Go net/http server security fixes (docs/security/http1-server.md): the class
// each fixed, tried against this server.

// CVE-2023-24534: header parsing allocated far more memory than the head it parsed
// (net/textproto sized its map by counting lines past the head). A head at the size
// limit made of the shortest lines is answered, or refused, with memory in proportion to
// its size: a few times the head (bounded at ten here, the process being shared), where this
// server spent 56 times before it counted
// fields (MaxHeaderFields).
func TestCVE_2023_24534_HeaderMemoryBounded(t *testing.T) {
	for _, line := range []string{"a:\r\n", "a:\n", "X-Long-Name-Of-A-Header: v\r\n"} {
		var served atomic.Int32
		addr := start(t, &Server{Handler: echoPath(&served)})
		c, br := dial(t, addr)
		head := []byte("GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat(line, (http.DefaultMaxHeaderBytes-64)/len(line)) + "\r\n")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c.Write(head)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%q: %d-byte head, status %d, %d bytes allocated", line, len(head), resp.StatusCode, alloc)
		if limit := uint64(10 * len(head)); alloc > limit {
			t.Errorf("%q lines: a %d-byte head cost %d bytes (more than %d)", line, len(head), alloc, limit)
		}
	}
}

// MaxHeaderFields field lines are served, one more is 431.
func TestMaxHeaderFields(t *testing.T) {
	var served atomic.Int32
	addr := start(t, &Server{Handler: echoPath(&served)})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /ok HTTP/1.1\r\n"+strings.Repeat("X-A: 1\r\n", MaxHeaderFields-1)+"Host: a\r\n\r\n")
	if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("%d fields: status %d %q", MaxHeaderFields, resp.StatusCode, body)
	}
	expectRefused(t, "GET / HTTP/1.1\r\n"+strings.Repeat("X-A: 1\r\n", MaxHeaderFields)+"Host: a\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge)
}

// bodyRecorder answers each request with its method, path and body, or with 400 and
// the error when reading the body failed; it counts requests by path.
type bodyRecorder struct {
	paths sync.Map // path → *atomic.Int32
}

func (b *bodyRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := b.paths.LoadOrStore(r.URL.Path, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "body: "+err.Error())
		return
	}
	io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(body))
}

func (b *bodyRecorder) served(path string) int32 {
	if n, ok := b.paths.Load(path); ok {
		return n.(*atomic.Int32).Load()
	}
	return 0
}

const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

// CVE-2022-1705: net/http took "Transfer-Encoding: \rchunked" as chunked. A CR inside a
// field value is refused here, whatever the field.
func TestCVE_2022_1705_TransferEncodingWithCR(t *testing.T) {
	for _, te := range []string{"\rchunked", "chunked\r", "chun\rked"} {
		expectRefused(t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "+te+"\r\n\r\n1\r\na\r\n0\r\n\r\n", http.StatusBadRequest)
	}
}

// CVE-2022-41721: x/net/http2/h2c upgraded a request with a body to HTTP/2, smuggling
// what followed. This server never upgrades to HTTP/2 (only the prior-knowledge preface
// starts it): an Upgrade: h2c request is an HTTP/1 request whose body is a body; not taken
// over by its handler, it is the last request of its connection.
func TestCVE_2022_41721_NoH2CUpgrade(t *testing.T) {
	rec := new(bodyRecorder)
	addr := start(t, &Server{Handler: rec, HTTP2: func(context.Context, net.Conn) { t.Error("HTTP/2 served") }})
	c, br := dial(t, addr)
	body := string(h2Preface) + smuggled
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body+"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, got := readResponse(t, br, "POST"); resp.StatusCode != 200 || !resp.Close || got != "POST /up "+body {
		t.Fatalf("status %d, close %v, body %q", resp.StatusCode, resp.Close, got)
	}
	expectClosed(t, br)
	if rec.served("/smuggled") != 0 || rec.served("/next") != 0 {
		t.Fatal("the body was served as a request")
	}
}

// CVE-2023-39326: chunk extensions let a client make the server read far more than the
// body. Bodies are decoded by net/http's chunked reader, which gives up when the
// overhead outgrows the data; a chunk-size line is at most the read buffer (4 KiB).
func TestCVE_2023_39326_ChunkExtensionOverhead(t *testing.T) {
	rec := new(bodyRecorder)
	addr := start(t, &Server{Handler: rec})
	c, br := dial(t, addr)
	ext := ";" + strings.Repeat("e", 2000)
	var chunks strings.Builder
	for range 64 { // 128 KiB on the wire for 64 bytes of body
		chunks.WriteString("1" + ext + "\r\nx\r\n")
	}
	go io.WriteString(c, "POST /ext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+chunks.String()+"0\r\n\r\n"+smuggled)
	resp, got := readResponse(t, br, "POST")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d %q: the body was read to its end", resp.StatusCode, got)
	}
	expectClosed(t, br)
	if rec.served("/smuggled") != 0 {
		t.Fatal("the request after the body was served")
	}
	// One line longer than the buffer is an error at once.
	c, br = dial(t, addr)
	go io.WriteString(c, "POST /ext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;"+strings.Repeat("e", 8<<10)+"\r\nx\r\n0\r\n\r\n")
	if resp, got := readResponse(t, br, "POST"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an 8 KiB chunk extension: status %d %q", resp.StatusCode, got)
	}
}

// CVE-2025-22871: net/http took a bare LF as the end of a chunk-size line, which a proxy
// in front may take as part of a chunk extension. It is a malformed body here, and the
// connection ends with it.
func TestCVE_2025_22871_BareLFInChunkSize(t *testing.T) {
	for _, chunked := range []string{"3\nabc\r\n0\r\n\r\n", "3;ext\nabc\r\n0\r\n\r\n", "3\r\nabc\r\n0\n\r\n"} {
		rec := new(bodyRecorder)
		addr := start(t, &Server{Handler: rec})
		c, br := dial(t, addr)
		io.WriteString(c, "POST /lf HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+chunked+smuggled)
		if resp, got := readResponse(t, br, "POST"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: status %d %q", chunked, resp.StatusCode, got)
		}
		expectClosed(t, br)
		if rec.served("/smuggled") != 0 {
			t.Errorf("%q: the request after the body was served", chunked)
		}
	}
}

// CVE-2024-24791 was net/http's client left out of step by a final response to an
// Expect: 100-continue request. The server's half of that exchange: a handler answers
// without reading the body it never asked for, so the client may send it anyway or not;
// the server cannot tell a body from a next request, and closes the connection.
func TestCVE_2024_24791_ExpectContinueAnsweredWithoutBody(t *testing.T) {
	rec := new(bodyRecorder)
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/deny" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rec.ServeHTTP(w, r)
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "POST /deny HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: "+strconv.Itoa(len(smuggled))+"\r\n\r\n")
	resp, _ := readResponse(t, br, "POST")
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("status %d, close %v: want 401 and Connection: close", resp.StatusCode, resp.Close)
	}
	io.WriteString(c, smuggled) // the body, sent after all
	expectClosed(t, br)
	if rec.served("/smuggled") != 0 {
		t.Fatal("the body was served as a request")
	}
}

// CVE-2025-47912: net/url took a non-IPv6 host in brackets. Absolute-form targets are
// parsed with it, so this server refuses them with the toolchain's fix.
func TestCVE_2025_47912_BracketedHostInTarget(t *testing.T) {
	for _, target := range []string{"http://[example.com]/", "http://[1.2.3.4]/", "http://[::1%25zone]x/"} {
		expectRefused(t, "GET "+target+" HTTP/1.1\r\nHost: a\r\n\r\n", http.StatusBadRequest)
	}
}

// Trailer sections are held to MaxHeaderFields lines, like heads.
func TestTrailerFieldsBounded(t *testing.T) {
	rec := new(bodyRecorder)
	addr := start(t, &Server{Handler: rec})
	c, br := dial(t, addr)
	io.WriteString(c, "POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"+strings.Repeat("a:\r\n", MaxHeaderFields+1)+"\r\n")
	if resp, got := readResponse(t, br, "POST"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%d trailer fields: status %d %q", MaxHeaderFields+1, resp.StatusCode, got)
	}
}
