package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/memnet"
)

// The differential test below sends the same raw bytes to a net/http server
// (HTTP/1 only) and to a Server running the same handler, and compares what
// comes back on the wire: the responses, whatever could not be parsed as a
// response, and whether the server closed the connection.
//
// Each case runs in a synctest bubble over memnet connections: "quiet" is measured
// on the bubble's fake clock, which moves only while both servers and the client
// wait, so a loaded machine cannot cut a slow answer short, and the waits cost no
// real time.

const (
	diffPartQuiet = 150 * time.Millisecond // silence before the next part is written
	diffEndQuiet  = 300 * time.Millisecond // silence after which the client stops reading
	diffMaxTime   = 3 * time.Second        // longest one connection is watched
)

// errReplyDiffers is the reason given for every case answered by the server's
// own error reply for a request it could not accept.
const errReplyDiffers = "h1server writes its own error replies (status line, Content-Length); " +
	"only the status code, the body's leading status text and the close are compared"

type diffCase struct {
	name string
	// parts are written in order on one connection; between two parts the
	// client waits until the server has been quiet for diffPartQuiet.
	parts []string
	// closeWrite half-closes the connection after the last part.
	closeWrite bool
	// methods are the request methods of the final responses in order, so
	// that the responses to HEAD parse; missing entries mean GET.
	methods []string
	// handler serves every request of the case on both servers; nil is
	// echoHandler.
	handler        http.HandlerFunc
	maxHeaderBytes int
	// differs, when set, says why h1server intentionally answers otherwise
	// than net/http; check then decides instead of the full comparison.
	differs string
	check   func(t *testing.T, nh, h1 *exchange)
}

func TestDiffAgainstNetHTTP(t *testing.T) {
	for _, c := range diffCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.differs != "" && c.check == nil {
				t.Fatal("a case that differs on purpose needs a check")
			}
			h := c.handler
			if h == nil {
				h = echoHandler
			}
			var nh, h1 *exchange
			var nhErr, h1Err error
			synctest.Test(t, func(t *testing.T) {
				nhLn, h1Ln := startDiffServers(t, h, c.maxHeaderBytes)
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); nh, nhErr = rawExchange(nhLn, &c) }()
				go func() { defer wg.Done(); h1, h1Err = rawExchange(h1Ln, &c) }()
				wg.Wait()
			})
			if nhErr != nil || h1Err != nil {
				t.Fatalf("exchange failed: net/http: %v; h1server: %v", nhErr, h1Err)
			}
			if c.differs != "" {
				t.Logf("differs on purpose: %s", c.differs)
				c.check(t, nh, h1)
				if t.Failed() {
					t.Logf("net/http (closed=%v): %s\nh1server (closed=%v): %s", nh.closed, showRaw(nh.raw), h1.closed, showRaw(h1.raw))
				}
				return
			}
			if d := compareExchanges(nh, h1); d != "" {
				t.Errorf("h1server differs from net/http:\n%s\nnet/http (closed=%v): %s\nh1server (closed=%v): %s",
					d, nh.closed, showRaw(nh.raw), h1.closed, showRaw(h1.raw))
			}
		})
	}
}

func diffCases() []diffCase {
	const hostLine = "Host: example.test\r\n"
	const get = "GET / HTTP/1.1\r\n" + hostLine + "\r\n"
	big := strings.Repeat("x", 300<<10)
	long := "X-Long: " + strings.Repeat("a", 8<<10) + "\r\n"
	fits := "X-Long: " + strings.Repeat("a", 800) + "\r\n"

	return []diffCase{
		// Framing and connection reuse.
		{name: "simple GET", parts: []string{get}},
		{name: "pipelined GETs", parts: []string{
			"GET /a HTTP/1.1\r\n" + hostLine + "\r\n" +
				"GET /b HTTP/1.1\r\n" + hostLine + "\r\n" +
				"GET /c HTTP/1.1\r\n" + hostLine + "\r\n"}},
		{name: "HTTP 1.0 without keep-alive", parts: []string{
			"GET / HTTP/1.0\r\n\r\nGET /after HTTP/1.0\r\n\r\n"}},
		{name: "HTTP 1.0 with keep-alive", parts: []string{
			"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\nGET /after HTTP/1.0\r\n\r\n"}},
		{name: "Connection close", parts: []string{
			"GET / HTTP/1.1\r\n" + hostLine + "Connection: close\r\n\r\nGET /after HTTP/1.1\r\n" + hostLine + "\r\n"}},
		{name: "absolute-form target", parts: []string{
			"GET http://other.test/p?q=1 HTTP/1.1\r\n" + hostLine + "\r\n"}},
		{name: "OPTIONS star", parts: []string{"OPTIONS * HTTP/1.1\r\n" + hostLine + "\r\n"}},
		{name: "Pragma no-cache", parts: []string{"GET / HTTP/1.1\r\n" + hostLine + "Pragma: no-cache\r\n\r\n"},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Saw-Cache-Control", fmt.Sprintf("%q", r.Header.Values("Cache-Control")))
				io.WriteString(w, "ok")
			},
			differs: "h1server does not copy Pragma: no-cache into Cache-Control",
			check:   sameExceptHeaderLine(`X-Saw-Cache-Control: ["no-cache"]`, `X-Saw-Cache-Control: []`)},

		// Request head errors.
		{name: "missing Host on HTTP 1.1", parts: []string{"GET / HTTP/1.1\r\n\r\n"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "two Host headers", parts: []string{"GET / HTTP/1.1\r\n" + hostLine + "Host: other.test\r\n\r\n"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "invalid header name", parts: []string{"GET / HTTP/1.1\r\n" + hostLine + "B@d: x\r\n\r\n"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "CTL in header value", parts: []string{"GET / HTTP/1.1\r\n" + hostLine + "X-A: a\x01b\r\n\r\n"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "space before colon", parts: []string{"GET / HTTP/1.1\r\n" + hostLine + "X-A : b\r\n\r\n"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "obs-fold", parts: []string{"GET / HTTP/1.1\r\n" + hostLine + "X-A: b\r\n c\r\n\r\n"},
			differs: "h1server refuses obsolete line folding (RFC 9112 §5.2 allows either); net/http joins the lines",
			check:   h1Reply(400, "400 Bad Request: obsolete line folding")},
		{name: "head over MaxHeaderBytes", maxHeaderBytes: 1024,
			parts:   []string{"GET / HTTP/1.1\r\n" + hostLine + long + "\r\n"},
			differs: errReplyDiffers, check: errReply(431)},
		{name: "more than MaxHeaderFields fields", parts: []string{"GET / HTTP/1.1\r\n" + hostLine +
			strings.Repeat("X-A: 1\r\n", MaxHeaderFields) + "\r\n"},
			differs: "h1server refuses more than MaxHeaderFields field lines; net/http bounds only their bytes",
			check:   h1Reply(431, "431 Request Header Fields Too Large: too many header fields")},
		{name: "empty line before the request line", parts: []string{"\r\n" + get},
			differs: "h1server ignores up to MaxLeadingEmptyLines empty lines before any request line (RFC 9112 §2.2); net/http only after a POST",
			check: func(t *testing.T, nh, h1 *exchange) {
				if len(h1.resps) != 1 || h1.resps[0].code != 200 || h1.closed {
					t.Errorf("h1server: %d responses (first %+v), closed %v; want one 200 and the connection open", len(h1.resps), h1.resps, h1.closed)
				}
			}},
		{name: "head under MaxHeaderBytes", maxHeaderBytes: 1024,
			parts: []string{"GET / HTTP/1.1\r\n" + hostLine + fits + "\r\n"}},

		// Request line.
		{name: "version HTTP 2.0 without HTTP2", parts: []string{"GET / HTTP/2.0\r\n" + hostLine + "\r\n"},
			differs: errReplyDiffers, check: errReply(505)},
		{name: "HTTP 2 preface without HTTP2", parts: []string{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"}},
		{name: "version HTTP 1.2", parts: []string{"GET / HTTP/1.2\r\n" + hostLine + "\r\n"}},
		{name: "HTTP 0.9 request line", parts: []string{"GET /\r\n\r\n"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "invalid method token", parts: []string{"G@T / HTTP/1.1\r\n" + hostLine + "\r\n"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "lower-case method", parts: []string{"get / HTTP/1.1\r\n" + hostLine + "\r\n"}},
		{name: "space inside target", parts: []string{"GET /a b HTTP/1.1\r\n" + hostLine + "\r\n"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "percent escapes", parts: []string{"GET /a%20b/c%2Fd?x=%41 HTTP/1.1\r\n" + hostLine + "\r\n"}},
		{name: "query", parts: []string{"GET /search?q=1&r=a+b&q=2 HTTP/1.1\r\n" + hostLine + "\r\n"}},
		{name: "fragment", parts: []string{"GET /p?q=1#frag HTTP/1.1\r\n" + hostLine + "\r\n"}},
		{name: "control character in target", parts: []string{"GET /a\x01b HTTP/1.1\r\n" + hostLine + "\r\n"},
			differs: errReplyDiffers, check: errReply(400)},

		// Request bodies.
		{name: "CL and TE together", parts: []string{"POST / HTTP/1.1\r\n" + hostLine +
			"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get},
			differs: "h1server refuses a request with both (a smuggling vector, RFC 9112 §6.1); net/http drops the Content-Length",
			check:   h1Reply(400, "400 Bad Request: both Content-Length and Transfer-Encoding")},
		{name: "two different Content-Lengths", parts: []string{"POST / HTTP/1.1\r\n" + hostLine +
			"Content-Length: 3\r\nContent-Length: 5\r\n\r\nhello"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "two equal Content-Lengths", parts: []string{"POST / HTTP/1.1\r\n" + hostLine +
			"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc" + get}},
		{name: "Content-Length +5", parts: []string{"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: +5\r\n\r\nhello"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "Content-Length -1", parts: []string{"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: -1\r\n\r\nhello"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "Content-Length abc", parts: []string{"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: abc\r\n\r\nhello"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "Content-Length overflow", parts: []string{"POST / HTTP/1.1\r\n" + hostLine +
			"Content-Length: 99999999999999999999999\r\n\r\nhello"},
			differs: errReplyDiffers, check: errReply(400)},
		{name: "Transfer-Encoding gzip, chunked", parts: []string{"POST / HTTP/1.1\r\n" + hostLine +
			"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
			differs: errReplyDiffers, check: errReplyBody(501, "Unsupported transfer encoding")},
		{name: "chunked spelled with a Kelvin sign", parts: []string{"POST / HTTP/1.1\r\n" + hostLine +
			"Transfer-Encoding: chun\u212Aed\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
			differs: errReplyDiffers, check: errReplyBody(501, "Unsupported transfer encoding")},
		{name: "Transfer-Encoding in HTTP 1.0", parts: []string{"POST / HTTP/1.0\r\n" + hostLine +
			"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
			differs: "h1server refuses it (RFC 9112 §6.1: the framing is faulty); net/http ignores the header",
			check:   h1Reply(400, "400 Bad Request: Transfer-Encoding in an HTTP/1.0 request")},
		{name: "CRLF after a POST body", parts: []string{"POST / HTTP/1.1\r\n" + hostLine +
			"Content-Length: 5\r\n\r\nhello\r\n" + get}},
		{name: "chunked with extensions and trailers", parts: []string{"POST / HTTP/1.1\r\n" + hostLine +
			"Transfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
			"5;ext=1\r\nhello\r\n6;a=b;c=\"d\"\r\n world\r\n0\r\nX-T: t1\r\nX-U: u1\r\n\r\n" + get}},
		{name: "malformed chunk size", parts: []string{"POST / HTTP/1.1\r\n" + hostLine +
			"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + get}},
		{name: "body shorter than Content-Length then EOF", closeWrite: true, parts: []string{
			"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 10\r\n\r\nabc"},
			differs: "h1server says Connection: close on a response after which it closes",
			check:   sameExceptHeaderLine("", "Connection: close")},
		{name: "unread large body", handler: okHandler, parts: []string{
			"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big + get}},
		{name: "unread small body", handler: okHandler, parts: []string{
			"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 100\r\n\r\n" + strings.Repeat("y", 100) + get}},

		// Expect.
		{name: "Expect 100-continue read", parts: []string{
			"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", "hello" + get}},
		{name: "Expect 100-continue unread", handler: okHandler, parts: []string{
			"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"},
			differs: "after a Connection: close, h1server half-closes at once and reads what the client still sends; net/http waits 500 ms first",
			check:   sameButClosed},
		{name: "Expect 100-continue unread, body sent late", handler: okHandler, parts: []string{
			"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", "hello" + get}},
		{name: "Expect something else", parts: []string{
			"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 5\r\nExpect: something-else\r\n\r\nhello"}},

		{name: "read body after flush", handler: readAfterFlushHandler(false), parts: []string{
			"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 5\r\n\r\nhello" + get}},
		{name: "read body after flush, full duplex", handler: readAfterFlushHandler(true), parts: []string{
			"POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 5\r\n\r\nhello" + get}},

		// Responses.
		{name: "HEAD with body written", methods: []string{"HEAD", "GET"}, handler: helloHandler, parts: []string{
			"HEAD / HTTP/1.1\r\n" + hostLine + "\r\n" + get}},
		{name: "204 with Content-Length", handler: statusWithLengthHandler(204), parts: []string{get + get}},
		{name: "304 with Content-Length", handler: statusWithLengthHandler(304), parts: []string{get + get}},
		{name: "3000 bytes without Content-Length", parts: []string{get + get},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(bytes.Repeat([]byte("0123456789"), 300))
			}},
		{name: "10 bytes without Content-Length", parts: []string{get + get},
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "0123456789") }},
		{name: "content sniffing", parts: []string{get},
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html><body>hi</body></html>") }},
		{name: "Content-Length larger than written", parts: []string{get + get},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "10")
				io.WriteString(w, "hello")
			}},
		{name: "Content-Length smaller than written", handler: oversizedWriteHandler(),
			parts: []string{get + "GET /report HTTP/1.1\r\n" + hostLine + "\r\n"}},
		{name: "declared trailer", parts: []string{get + get},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-T")
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "body")
				w.Header().Set("X-T", "t1")
			}},
		{name: "TrailerPrefix trailer", parts: []string{get + get},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "body")
				w.(http.Flusher).Flush()
				w.Header().Set(http.TrailerPrefix+"X-U", "u1")
			}},
		{name: "TrailerPrefix trailer without flush", parts: []string{get + get},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "body")
				w.Header().Set(http.TrailerPrefix+"X-U", "u1")
			}},
		{name: "103 Early Hints", parts: []string{get},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</style.css>; rel=preload; as=style")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, "done")
			}},
		{name: "unknown status 599", handler: statusHandler(599), parts: []string{get}},
		{name: "CR LF in handler header", parts: []string{get + get},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Evil", "a\r\nInjected: yes")
				w.Header()["X-Evil-Lf"] = []string{"b\nInjected-Lf: yes"}
				w.Header()["X-Bad\r\nInjected-Key"] = []string{"v"}
				io.WriteString(w, "ok")
			}},

		// Handler failures and hijacking.
		{name: "panic before writing", parts: []string{get},
			handler: func(w http.ResponseWriter, r *http.Request) { panic("boom") }},
		{name: "ErrAbortHandler after writing", parts: []string{get},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}},
		{name: "hijack websocket upgrade", handler: hijackEchoHandler, parts: []string{
			"GET /ws HTTP/1.1\r\n" + hostLine + "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", "hello"}},
		{name: "hijack with buffered bytes", handler: hijackEchoHandler, parts: []string{
			"GET /ws HTTP/1.1\r\n" + hostLine + "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\nhello"}},
	}
}

// oversizedWriteHandler writes past a Content-Length it declared; the error of that
// write cannot reach the client in its own response, so a request for /report on the
// same connection answers with it. Each call keeps its own record, so no other case
// or run sees it.
func oversizedWriteHandler() http.HandlerFunc {
	var lastErr sync.Map // by remote address
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/report" {
			v, _ := lastErr.LoadAndDelete(r.RemoteAddr)
			fmt.Fprintf(w, "oversized write: %v", v)
			return
		}
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
		_, err := io.WriteString(w, " world")
		lastErr.Store(r.RemoteAddr, fmt.Sprint(err))
	}
}

// echoHandler answers with a description of the request as the handler saw it.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "method=%q uri=%q\n", r.Method, r.RequestURI)
	fmt.Fprintf(&b, "url scheme=%q host=%q path=%q rawpath=%q query=%q fragment=%q\n",
		r.URL.Scheme, r.URL.Host, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.URL.Fragment)
	fmt.Fprintf(&b, "proto=%q %d.%d host=%q close=%v contentlength=%d te=%q\n",
		r.Proto, r.ProtoMajor, r.ProtoMinor, r.Host, r.Close, r.ContentLength, r.TransferEncoding)
	writeSortedHeader(&b, "header", r.Header)
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	fmt.Fprintf(&b, "body=%q err=%v\n", body, err)
	writeSortedHeader(&b, "trailer", r.Trailer)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, b.String())
}

func writeSortedHeader(b *strings.Builder, what string, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "%s %q: %q\n", what, k, h[k])
	}
}

func okHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

func helloHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "hello world")
}

func statusHandler(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		io.WriteString(w, "body")
	}
}

func statusWithLengthHandler(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		io.WriteString(w, "hello")
	}
}

// readAfterFlushHandler sends the response head before it reads the
// request body, with or without full duplex enabled.
func readAfterFlushHandler(fullDuplex bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if fullDuplex {
			if err := rc.EnableFullDuplex(); err != nil {
				http.Error(w, "EnableFullDuplex: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "head sent\n")
		if err := rc.Flush(); err != nil {
			fmt.Fprintf(w, "flush: %v\n", err)
		}
		body, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "body=%q err=%v\n", body, err)
	}
}

// hijackEchoHandler takes the connection over, answers 101 and echoes five
// bytes.
func hijackEchoHandler(w http.ResponseWriter, r *http.Request) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(diffMaxTime))
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(brw, buf); err != nil {
		return
	}
	brw.Write(buf)
	brw.Flush()
}

// startDiffServers starts a net/http server limited to HTTP/1 and a Server,
// both with handler h, and returns their listeners.
func startDiffServers(t *testing.T, h http.Handler, maxHeaderBytes int) (nhLn, h1Ln *memnet.Listener) {
	t.Helper()
	quiet := log.New(io.Discard, "", 0)
	nhLn, h1Ln = memnet.Listen("127.0.0.1:80"), memnet.Listen("127.0.0.1:81")
	// A closing connection may still wait on a timer (net/http sleeps half a second
	// after a half-close, h1server lingers), and the bubble ends only once it has: its
	// clock moves on only while this goroutine waits. Cleanups run last first: this one
	// after the servers are closed.
	t.Cleanup(func() { time.Sleep(diffMaxTime) })
	var protos http.Protocols
	protos.SetHTTP1(true)
	nh := &http.Server{Handler: h, MaxHeaderBytes: maxHeaderBytes, ErrorLog: quiet, Protocols: &protos}
	h1 := &Server{Handler: h, MaxHeaderBytes: maxHeaderBytes, ErrorLog: quiet}
	nhDone := make(chan error, 1)
	h1Done := make(chan error, 1)
	go func() { nhDone <- nh.Serve(nhLn) }()
	go func() { h1Done <- h1.Serve(h1Ln) }()
	t.Cleanup(func() {
		nh.Close()
		h1.Close()
		for _, s := range []struct {
			name string
			done chan error
		}{{"net/http", nhDone}, {"h1server", h1Done}} {
			select {
			case err := <-s.done:
				if !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("%s: Serve returned %v after Close, want http.ErrServerClosed", s.name, err)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("%s: Serve did not return after Close", s.name)
			}
		}
	})
	return nhLn, h1Ln
}

// exchange is what the client saw on one connection.
type exchange struct {
	raw    []byte
	closed bool // the server ended the connection (EOF or reset) before the client stopped reading
	resps  []wireResp
	// tail is everything from the first byte that did not parse as a whole
	// response; tailErr says why it did not.
	tail    []byte
	tailErr error
}

type wireResp struct {
	code    int
	status  string   // the status line
	head    []string // the header lines, sorted, with the Date value replaced
	te      []string
	body    []byte
	trailer []string
}

// collector reads a connection in the background and remembers when bytes
// last moved in either direction.
type collector struct {
	conn net.Conn
	done chan struct{}

	mu   sync.Mutex
	buf  []byte
	last time.Time
	err  error
}

func newCollector(conn net.Conn) *collector {
	c := &collector{conn: conn, done: make(chan struct{}), last: time.Now()}
	go c.loop()
	return c
}

func (c *collector) loop() {
	defer close(c.done)
	b := make([]byte, 32<<10)
	for {
		n, err := c.conn.Read(b)
		c.mu.Lock()
		c.buf = append(c.buf, b[:n]...)
		if n > 0 {
			c.last = time.Now()
		}
		if err != nil {
			c.err = err
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

func (c *collector) touch() {
	c.mu.Lock()
	c.last = time.Now()
	c.mu.Unlock()
}

// waitQuiet returns once nothing has moved for quiet, the server has ended
// the connection, or the deadline has passed.
func (c *collector) waitQuiet(quiet time.Duration, deadline time.Time) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-tick.C:
			c.mu.Lock()
			last := c.last
			c.mu.Unlock()
			if now.Sub(last) >= quiet || now.After(deadline) {
				return
			}
		}
	}
}

// rawExchange dials ln, writes the case's parts and reads until the server
// closes or goes quiet.
func rawExchange(ln *memnet.Listener, c *diffCase) (*exchange, error) {
	conn, err := ln.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(diffMaxTime)
	// Bounds the reader and every write even if the server never answers.
	conn.SetDeadline(deadline.Add(time.Second))
	col := newCollector(conn)
	for i, p := range c.parts {
		if i > 0 {
			col.waitQuiet(diffPartQuiet, deadline)
		}
		if _, err := io.WriteString(conn, p); err != nil {
			break // the server may have closed; what it sent is still read
		}
		col.touch()
	}
	if c.closeWrite {
		conn.(*memnet.Conn).CloseWrite()
	}
	col.waitQuiet(diffEndQuiet, deadline)

	ex := &exchange{}
	select {
	case <-col.done:
		col.mu.Lock()
		ex.closed = !errors.Is(col.err, os.ErrDeadlineExceeded)
		col.mu.Unlock()
	default:
	}
	conn.Close()
	<-col.done
	col.mu.Lock()
	ex.raw = col.buf
	col.mu.Unlock()
	ex.resps, ex.tail, ex.tailErr = parseResponses(ex.raw, c.methods)
	return ex, nil
}

// parseResponses splits raw into responses; methods[i] is the request method
// of the i-th final (non-1xx) response.
func parseResponses(raw []byte, methods []string) (resps []wireResp, tail []byte, tailErr error) {
	rd := bytes.NewReader(raw)
	br := bufio.NewReader(rd)
	off, final := 0, 0
	for i := 0; i < 100 && off < len(raw); i++ {
		method := http.MethodGet
		if final < len(methods) {
			method = methods[final]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return resps, raw[off:], err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return resps, raw[off:], err
		}
		end := len(raw) - rd.Len() - br.Buffered()
		r := wireResp{code: resp.StatusCode, te: resp.TransferEncoding, body: body}
		r.status, r.head = splitHead(raw[off:end])
		for k, vs := range resp.Trailer {
			for _, v := range vs {
				r.trailer = append(r.trailer, k+": "+v)
			}
		}
		sort.Strings(r.trailer)
		resps = append(resps, r)
		off = end
		if resp.StatusCode >= 200 {
			final++
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			break // what follows is no longer HTTP/1
		}
	}
	return resps, raw[off:], nil
}

func splitHead(b []byte) (status string, lines []string) {
	head := string(b)
	if i := strings.Index(head, "\r\n\r\n"); i >= 0 {
		head = head[:i]
	} else if i := strings.Index(head, "\n\n"); i >= 0 {
		head = head[:i]
	}
	all := strings.Split(strings.ReplaceAll(head, "\r\n", "\n"), "\n")
	for _, l := range all[1:] {
		if len(l) >= 5 && httpascii.EqualFold(l[:5], "date:") {
			l = l[:5] + " <date>"
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return all[0], lines
}

var dateRE = regexp.MustCompile(`(?i)(\nDate:)[^\r\n]*`)

func normDate(b []byte) []byte { return dateRE.ReplaceAll(b, []byte("$1 <date>")) }

// normTail returns an unparsed tail with the Date value replaced and, when it
// starts with a whole response head, that head's header lines sorted.
func normTail(b []byte) []byte {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if !bytes.HasPrefix(b, []byte("HTTP/")) || i < 0 {
		return normDate(b)
	}
	status, lines := splitHead(b[:i+4])
	return fmt.Appendf(nil, "%s\r\n%s\r\n\r\n%s", status, strings.Join(lines, "\r\n"), b[i+4:])
}

func showRaw(b []byte) string {
	const max = 4096
	b = normDate(b)
	if len(b) > max {
		return fmt.Sprintf("%q... (%d bytes)", b[:max], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// compareExchanges describes every way h1 differs from nh, or returns "".
func compareExchanges(nh, h1 *exchange) string {
	var d []string
	if nh.closed != h1.closed {
		d = append(d, fmt.Sprintf("closed: net/http %v, h1server %v", nh.closed, h1.closed))
	}
	if len(nh.resps) != len(h1.resps) {
		d = append(d, fmt.Sprintf("responses: net/http %d, h1server %d", len(nh.resps), len(h1.resps)))
	}
	for i := 0; i < len(nh.resps) && i < len(h1.resps); i++ {
		a, b := nh.resps[i], h1.resps[i]
		if a.status != b.status {
			d = append(d, fmt.Sprintf("response %d status line: net/http %q, h1server %q", i, a.status, b.status))
		}
		if !slices.Equal(a.head, b.head) {
			d = append(d, fmt.Sprintf("response %d header lines: net/http %q, h1server %q", i, a.head, b.head))
		}
		if !slices.Equal(a.te, b.te) {
			d = append(d, fmt.Sprintf("response %d transfer encoding: net/http %q, h1server %q", i, a.te, b.te))
		}
		if !bytes.Equal(a.body, b.body) {
			d = append(d, fmt.Sprintf("response %d body: net/http %s, h1server %s", i, showRaw(a.body), showRaw(b.body)))
		}
		if !slices.Equal(a.trailer, b.trailer) {
			d = append(d, fmt.Sprintf("response %d trailer: net/http %q, h1server %q", i, a.trailer, b.trailer))
		}
	}
	if !bytes.Equal(normTail(nh.tail), normTail(h1.tail)) {
		d = append(d, fmt.Sprintf("unparsed tail: net/http %s (%v), h1server %s (%v)",
			showRaw(nh.tail), nh.tailErr, showRaw(h1.tail), h1.tailErr))
	}
	return strings.Join(d, "\n")
}

// errReply checks a request refused with code: net/http must answer so (this
// guards the case itself), and so must h1server, each with one response only,
// a body that starts with the status code and text, and a closed connection.
func errReply(code int) func(t *testing.T, nh, h1 *exchange) {
	return errReplyBody(code, fmt.Sprintf("%d %s", code, http.StatusText(code)))
}

// errReplyBody is errReply with the body's expected start given.
func errReplyBody(code int, prefix string) func(t *testing.T, nh, h1 *exchange) {
	return func(t *testing.T, nh, h1 *exchange) {
		t.Helper()
		for _, s := range []struct {
			name string
			ex   *exchange
		}{{"net/http", nh}, {"h1server", h1}} {
			ex := s.ex
			if len(ex.resps) != 1 || len(ex.tail) != 0 {
				t.Errorf("%s: got %d responses and %d unparsed bytes (%v), want one response",
					s.name, len(ex.resps), len(ex.tail), ex.tailErr)
				continue
			}
			r := ex.resps[0]
			if r.code != code {
				t.Errorf("%s: status %d, want %d", s.name, r.code, code)
			}
			if !bytes.HasPrefix(r.body, []byte(prefix)) {
				t.Errorf("%s: body %q, want it to start with %q", s.name, r.body, prefix)
			}
			if !ex.closed {
				t.Errorf("%s: connection left open after the error reply", s.name)
			}
		}
	}
}

// sameExceptHeaderLine checks that net/http's only response carries nhLine,
// h1server's carries h1Line, and that the exchanges are otherwise the same.
func sameExceptHeaderLine(nhLine, h1Line string) func(t *testing.T, nh, h1 *exchange) {
	return func(t *testing.T, nh, h1 *exchange) {
		t.Helper()
		if len(nh.resps) != 1 || nhLine != "" && !slices.Contains(nh.resps[0].head, nhLine) {
			t.Fatalf("net/http: want one response with %q", nhLine)
		}
		if len(h1.resps) != 1 || !slices.Contains(h1.resps[0].head, h1Line) {
			t.Fatalf("h1server: want one response with %q", h1Line)
		}
		a, b := *nh, *h1
		a.resps = []wireResp{nh.resps[0]}
		a.resps[0].head = slices.DeleteFunc(slices.Clone(nh.resps[0].head), func(l string) bool { return l == nhLine })
		b.resps = []wireResp{h1.resps[0]}
		b.resps[0].head = slices.DeleteFunc(slices.Clone(h1.resps[0].head), func(l string) bool { return l == h1Line })
		if d := compareExchanges(&a, &b); d != "" {
			t.Errorf("beyond the intended difference:\n%s", d)
		}
	}
}

// h1Reply checks only h1server's side: one reply with code whose body starts with prefix,
// and the connection closed after it.
func h1Reply(code int, prefix string) func(t *testing.T, nh, h1 *exchange) {
	return func(t *testing.T, nh, h1 *exchange) {
		t.Helper()
		if len(h1.resps) != 1 || len(h1.tail) != 0 {
			t.Fatalf("h1server: got %d responses and %d unparsed bytes, want one response", len(h1.resps), len(h1.tail))
		}
		if r := h1.resps[0]; r.code != code || !bytes.HasPrefix(r.body, []byte(prefix)) {
			t.Errorf("h1server: status %d body %q, want %d %q...", r.code, r.body, code, prefix)
		}
		if !h1.closed {
			t.Error("h1server: connection left open after the error reply")
		}
	}
}

// sameButClosed checks that the responses agree and that h1server closed the connection.
func sameButClosed(t *testing.T, nh, h1 *exchange) {
	t.Helper()
	if !h1.closed {
		t.Error("h1server: connection left open")
	}
	a := *nh
	a.closed = h1.closed
	if d := compareExchanges(&a, h1); d != "" {
		t.Errorf("beyond the intended difference:\n%s", d)
	}
}
