package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// unreadBodyPython is Python's stock http.server answering a POST with 401 without reading
// its body, on a keep-alive HTTP/1.1 connection: it then reads the body as the next request.
const unreadBodyPython = `
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.answer(401, "unauthorized")
    def do_GET(self):
        self.answer(200, "GET " + self.path)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
`

// startPython runs a Python upstream script that prints its port, and returns its address.
func startPython(t *testing.T, script string) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the test needs Python's http.server as the upstream")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		if p == "" {
			t.Fatal("the Python upstream did not start")
		}
		return "127.0.0.1:" + p
	case <-time.After(20 * time.Second):
		t.Fatal("the Python upstream did not print its port")
	}
	return ""
}

// TestUnreadRequestBodyDoesNotShiftResponses: an upstream that answers a POST without
// reading its body (Python's http.server, 401) reads that body as a request of its own and
// answers it too. That second answer belongs to nobody: each later client gets the answer
// to its own request.
func TestUnreadRequestBodyDoesNotShiftResponses(t *testing.T) {
	up := startPython(t, unreadBodyPython)
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{up}}}))
	c := newClient()
	for i := range 20 {
		resp, err := c.Post(srv.url("public", "/login"), "text/plain", strings.NewReader("GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || string(body) != "unauthorized" {
			t.Fatalf("POST %d: %d %q, want the upstream's 401", i, resp.StatusCode, body)
		}
		if code, body := get(t, c, srv.url("public", "/mine")); code != 200 || body != "GET /mine" {
			t.Fatalf("GET after POST %d: %d %q, want the answer to GET /mine", i, code, body)
		}
	}
}

// serveLying serves one upstream connection that misbehaves as each request's path says:
// /r/<behaviour>/<id>. Every answer it gives carries the request's id (X-Id header and
// body), so that a client can tell whose answer it got.
func serveLying(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		parts := strings.Split(req.URL.Path, "/")
		if len(parts) != 4 {
			return
		}
		behaviour, id := parts[2], parts[3]
		answer := func(status int) string {
			return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", status, http.StatusText(status), len(id), id, id)
		}
		drain := func() { io.Copy(io.Discard, req.Body) }
		var out string
		switch {
		case behaviour == "good":
			drain()
			out = answer(200)
		case behaviour == "extra":
			// A second answer nobody asked for, right behind the first.
			drain()
			out = answer(200) + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Id: bogus\r\n\r\nbogus"
		case behaviour == "early401":
			// Refused without reading the body, which the loop then reads as a request.
			out = answer(401)
		case behaviour == "expect417":
			// CVE-2024-24791's case: Expect: 100-continue answered with a final status, the
			// body never read.
			out = answer(417)
		case behaviour == "early200":
			// Answered before the body, which is read afterwards.
			io.WriteString(c, answer(200))
			drain()
			continue
		case strings.HasPrefix(behaviour, "storm"):
			n, _ := strconv.Atoi(strings.TrimPrefix(behaviour, "storm"))
			drain()
			out = strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", n) + answer(200)
		case behaviour == "truncate":
			drain()
			io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", len(id)+100, id, id))
			return
		case behaviour == "badchunk":
			drain()
			io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: %s\r\n\r\n%x\r\n%s\r\nzz\r\n", id, len(id), id))
			return
		case behaviour == "barelf":
			// CVE-2025-22871: a chunk-size line ended by a bare LF.
			drain()
			io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: %s\r\n\r\n%x\n%s\r\n0\r\n\r\n", id, len(id), id))
			return
		case behaviour == "chunkext":
			// CVE-2023-39326: chunk extensions far larger than the data they carry.
			drain()
			io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: %s\r\n\r\n", id)+
				strings.Repeat("1;"+strings.Repeat("e", 3000)+"\r\nx\r\n", 64)+"0\r\n\r\n")
			return
		case behaviour == "midhead":
			drain()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
			return
		case behaviour == "bighead":
			drain()
			io.WriteString(c, "HTTP/1.1 200 OK\r\n"+strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 2<<10))
			return
		default:
			return
		}
		if _, err := io.WriteString(c, out); err != nil {
			return
		}
	}
}

// startRawUpstream runs serve on each connection accepted on 127.0.0.1, until the test
// ends, and counts the connections.
func startRawUpstream(t *testing.T, serve func(net.Conn)) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Go(func() { serve(c) })
		}
	})
	return ln.Addr().String(), &conns
}

// lyingCase is one misbehaviour and what a client may get for it.
type lyingCase struct {
	behaviour string
	method    string
	header    http.Header
	body      func(id string) string
	// status is the answer a client must get (its own, from the upstream), or 502 for
	// gangway's; 0 means an error (a broken response) is allowed as well as the own answer,
	// and mustBreak that only an error is.
	status int
}

const mustBreak = -1

var lyingCases = []lyingCase{
	{behaviour: "good", method: "GET", status: 200},
	{behaviour: "good", method: "POST", body: smallBody, status: 200},
	{behaviour: "extra", method: "GET", status: 200},
	{behaviour: "early401", method: "POST", body: smuggledBody, status: 401},
	// The client may see its upload cut once the answer is complete (the downstream server
	// stops reading a body its handler left): an error, or its own answer.
	{behaviour: "early200", method: "POST", body: func(string) string { return strings.Repeat("b", 4<<20) }},
	{behaviour: "storm3", method: "GET", status: 200},
	{behaviour: "storm100", method: "GET", status: 200},
	{behaviour: "storm101", method: "GET", status: 502},
	{behaviour: "storm2000", method: "GET", status: 502},
	{behaviour: "expect417", method: "POST", header: http.Header{"Expect": {"100-continue"}}, body: smuggledBody, status: 417},
	{behaviour: "barelf", method: "GET", status: mustBreak},
	{behaviour: "chunkext", method: "GET", status: mustBreak},
	{behaviour: "truncate", method: "GET"},
	{behaviour: "badchunk", method: "GET"},
	{behaviour: "midhead", method: "GET", status: 502},
	{behaviour: "bighead", method: "GET", status: 502},
}

func smallBody(id string) string { return "body of " + id }

// smuggledBody is a body that reads as a request of its own.
func smuggledBody(id string) string {
	return "GET /r/good/smuggled-" + id + " HTTP/1.1\r\nHost: x\r\n\r\n"
}

// TestLyingUpstream: upstreams that send answers nobody asked for, answer before reading
// the body, send 1xx storms, truncate bodies, break chunking, close mid-response or send an
// endless head, mixed on one pool. Each of many sequential and concurrent clients gets
// its own answer or an error, nothing else; gangway refuses what it must (502); and no
// pooled connection is left with anything pending.
func TestLyingUpstream(t *testing.T) {
	up, conns := startRawUpstream(t, serveLying)
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{up}}}))
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(c.CloseIdleConnections)
	var next atomic.Int64
	do := func(tc lyingCase) error {
		id := fmt.Sprintf("id%d", next.Add(1))
		var body io.Reader
		if tc.body != nil {
			body = strings.NewReader(tc.body(id))
		}
		req, _ := http.NewRequest(tc.method, srv.url("public", "/r/"+tc.behaviour+"/"+id), body)
		for k, v := range tc.header {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		var got []byte
		if err == nil {
			got, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		switch {
		case err != nil && tc.status <= 0:
			return nil // a broken answer breaks the client's response: allowed
		case tc.status == mustBreak:
			return fmt.Errorf("%s: a broken answer reached the client whole: %d %q", tc.behaviour, resp.StatusCode, got)
		case err != nil:
			return fmt.Errorf("%s %s: %v, want status %d", tc.method, tc.behaviour, err, tc.status)
		case resp.StatusCode == http.StatusBadGateway && tc.status == http.StatusBadGateway:
			if !strings.HasPrefix(string(got), "gangway: ") {
				return fmt.Errorf("%s: 502 %q is not gangway's", tc.behaviour, got)
			}
			return nil
		case tc.status != 0 && resp.StatusCode != tc.status:
			return fmt.Errorf("%s %s: status %d %q, want %d", tc.method, tc.behaviour, resp.StatusCode, got, tc.status)
		case resp.Header.Get("X-Id") != id || string(got) != id:
			return fmt.Errorf("%s %s %s: got the answer of %q (%q)", tc.method, tc.behaviour, id, resp.Header.Get("X-Id"), got)
		}
		return nil
	}
	// Sequential: every misbehaviour followed by an honest request, twice over.
	for range 2 {
		for _, tc := range lyingCases {
			if err := do(tc); err != nil {
				t.Fatal(err)
			}
			if err := do(lyingCases[0]); err != nil {
				t.Fatalf("after %s: %v", tc.behaviour, err)
			}
		}
	}
	// Concurrent: the misbehaviours interleaved on the pool.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 30 {
				tc := lyingCases[rng.IntN(len(lyingCases))]
				if rng.IntN(2) == 0 {
					tc = lyingCases[rng.IntN(2)] // half honest
				}
				if err := do(tc); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	eventually(t, "no pooled connection with anything pending", func() bool {
		_, pending := srv.table.Load().clusters["app"].IdleConns()
		return pending == 0
	})
	before := conns.Load()
	for range 10 {
		if err := do(lyingCases[0]); err != nil {
			t.Fatal(err)
		}
	}
	if conns.Load() != before {
		t.Logf("%d new upstream connections for the last 10 honest requests", conns.Load()-before)
	}
}

// An idle pooled connection on which the endpoint sends anything is closed: at once when
// it is taken for the next request, which goes on a new connection and gets its own
// answer, and in the background when no request takes it.
func TestIdleConnectionWithUnsolicitedBytesIsClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	type upConn struct {
		stray  chan struct{} // send the unsolicited answer
		closed chan struct{} // the proxy closed the connection
	}
	accepted := make(chan upConn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			uc := upConn{stray: make(chan struct{}), closed: make(chan struct{})}
			accepted <- uc
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				id := path.Base(req.URL.Path)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", len(id), id, id)
				<-uc.stray
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Id: stray\r\n\r\nstray")
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				// A close with the stray bytes unread comes as a reset.
				if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					close(uc.closed)
				}
			}()
		}
	}()
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))
	c := newClient()
	idle := func() int {
		idle, _ := srv.table.Load().clusters["app"].IdleConns()
		return idle[ln.Addr().String()]
	}

	// Taken: the next request sees the stray bytes before writing, and goes elsewhere.
	if code, body := get(t, c, srv.url("public", "/one")); code != 200 || body != "one" {
		t.Fatalf("%d %q", code, body)
	}
	first := <-accepted
	eventually(t, "the connection in the pool", func() bool { return idle() == 1 })
	first.stray <- struct{}{}
	if code, body := get(t, c, srv.url("public", "/two")); code != 200 || body != "two" {
		t.Fatalf("next request: %d %q, want its own answer", code, body)
	}
	select {
	case <-first.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection with stray bytes was not closed")
	}

	// Not taken: the background sweep closes it.
	second := <-accepted
	eventually(t, "the connection in the pool", func() bool { return idle() == 1 })
	second.stray <- struct{}{}
	select {
	case <-second.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle connection with stray bytes was not closed in the background")
	}
	if n := idle(); n != 0 {
		t.Fatalf("%d idle connections left", n)
	}
}

// startLyingH2Upstream serves h2c with prior knowledge: after its SETTINGS (settings, which
// may be invalid), each request's HEADERS is answered by answer.
func startLyingH2Upstream(t *testing.T, settings []http2.Setting, answer func(fr *http2.Framer, stream uint32)) string {
	addr, _ := startRawUpstream(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		fr.WriteSettings(settings...)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if h, ok := f.(*http2.HeadersFrame); ok {
				answer(fr, h.StreamID)
				return
			}
		}
	})
	return addr
}

// HTTP/2 upstreams go through net/http's Transport, which carries Go's fixes for lying
// servers: an invalid SETTINGS_MAX_FRAME_SIZE (CVE-2026-33814) ends the exchange at once
// with a 502. A CONTINUATION flood without header bytes (the client-side twin of
// CVE-2023-45288) is not cut by the Transport: the route's timeout bounds it.
func TestLyingH2Upstream(t *testing.T) {
	t.Run("invalid max frame size", func(t *testing.T) {
		up := startLyingH2Upstream(t, []http2.Setting{{ID: http2.SettingMaxFrameSize, Val: 1}}, func(*http2.Framer, uint32) {})
		srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{up}, HTTP2: true}}))
		start := time.Now()
		if code, _ := get(t, newClient(), srv.url("public", "/")); code != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", code)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the exchange took %v", d)
		}
	})
	t.Run("empty continuation flood", func(t *testing.T) {
		stop := make(chan struct{})
		up := startLyingH2Upstream(t, nil, func(fr *http2.Framer, stream uint32) {
			var block bytes.Buffer
			hpack.NewEncoder(&block).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes()})
			for {
				select {
				case <-stop:
					return
				default:
				}
				if fr.WriteContinuation(stream, false, nil) != nil {
					return
				}
			}
		})
		t.Cleanup(func() { close(stop) })
		rt := prefixRoute("app", "/", "app")
		rt.Timeout = time.Second
		srv := startServer(t, testSpec([]spec.Route{rt}, []spec.Cluster{{Name: "app", Endpoints: []string{up}, HTTP2: true}}))
		start := time.Now()
		if code, _ := get(t, newClient(), srv.url("public", "/")); code != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 504", code)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("the exchange took %v with a 1 s route timeout", d)
		}
	})
}
