package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gangway-ecs/gangway/internal/h1server"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// framingSeeds are streams whose message framing is easy to get wrong: both lengths,
// Transfer-Encoding in HTTP/1.0, folding, bare LFs, broken chunks, upgrades.
var framingSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: b\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \t\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabcGET /smuggled HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"GET / HTTP/1.1\nHost: a\n\nGET /lf HTTP/1.1\n\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
	"GET / HTTP/1.2\r\nHost: a\r\n\r\nGET / HTTP/2.0\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x05hello",
	"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
}

// FuzzProxyBoundaries sends arbitrary bytes through the real proxy (h1server, routing,
// forwarding, the upstream pool) to a recording upstream, and holds it to an oracle, not
// only to not panicking:
//
//   - the requests the upstream receives (method, target, body bytes) are, in order, among
//     the requests h1server alone parses off the same bytes: the proxy may refuse or answer
//     some itself, but never forwards a request boundary h1server did not see;
//   - the i-th response the client reads answers the i-th request h1server parsed: a
//     response the upstream tagged was caused by that very request, on this connection;
//   - the proxy answers every request the reference answers, within a bound (no request
//     stalls it), or stops after a response with Connection: close.
//
// The requests are written in pieces of a fuzzed size, so that heads and bodies arrive
// split where the input says.
func FuzzProxyBoundaries(f *testing.F) {
	for _, s := range framingSeeds {
		f.Add([]byte(s), uint16(0))
	}
	for _, s := range []string{
		"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun\u212Aed\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhiGET /f HTTP/1.0\r\n\r\n",
		"GET http://other/abs?x HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;ext=1\r\nhi\r\n0\r\nX-Trailer: 1\r\n\r\nGET /u HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(0))
		f.Add([]byte(s), uint16(7))
	}
	up := startRecorder(f)
	// The log goes nowhere: F.Log may not be called while the fuzz target runs.
	quiet := func(o *Options) { o.Logger = slog.New(slog.DiscardHandler) }
	srv := startServer(f, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{up.addr}}}), quiet)
	ref := startReference(f, srv.spec.MaxHeaderBytes)
	active := srv.metrics.activeConns.WithLabelValues("public")
	f.Fuzz(func(t *testing.T, in []byte, chunk uint16) {
		if len(in) > 16<<10 {
			return
		}
		parsed, answers := ref.parse(t, in)
		gen := up.next()
		got := throughProxy(t, srv.Addr("public"), in, int(chunk), parsed, answers)
		// Everything the proxy started ends before the upstream's record is read.
		deadline := time.Now().Add(5 * time.Second)
		for testutil.ToFloat64(active) != 0 || up.inflight.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the proxy still has a connection or the upstream a request 5 s after the client left")
			}
			time.Sleep(time.Millisecond)
		}
		seen := up.take(gen)

		// The upstream's requests are among h1server's, in order.
		j := 0
		for _, u := range seen {
			for j < len(parsed) && !parsed[j].sameAs(u) {
				j++
			}
			if j == len(parsed) {
				t.Fatalf("the upstream received %s, which is not among (or is out of order with) the requests h1server parsed:\n%s", u, listOf(parsed))
			}
			j++
		}
		// The proxy answers each request the reference answered, or stops after a response
		// that says so.
		if len(got) < len(answers) && (len(got) == 0 || !got[len(got)-1].close) {
			t.Fatalf("the proxy closed the connection after %d responses without saying so; the reference answered %d", len(got), len(answers))
		}
		// Each tagged response answers the request h1server parsed at its position.
		for i, resp := range got {
			if resp.tag < 0 {
				continue
			}
			u, ok := up.byTag(gen, resp.tag)
			if !ok {
				t.Fatalf("response %d carries tag %d, which the upstream gave a request of another connection", i+1, resp.tag)
			}
			k := answers[i]
			if k < 0 {
				t.Fatalf("response %d answers %s from the upstream, where h1server answered itself", i+1, u)
			}
			if !parsed[k].sameAs(u) {
				t.Fatalf("response %d answers %s, but the request at its position is %s", i+1, u, parsed[k])
			}
		}
	})
}

// message is a request as a server saw it: what framing decides.
type message struct {
	method, target string
	body           string
	complete       bool // the body was read to its end
}

func (m message) String() string {
	return fmt.Sprintf("%s %q with a %d-byte body %q", m.method, m.target, len(m.body), m.body)
}

func (m message) sameAs(u message) bool {
	return m.complete && m.method == u.method && m.target == u.target && m.body == u.body
}

func listOf(ms []message) string {
	var s string
	for i, m := range ms {
		s += fmt.Sprintf("\t%d: %s (complete %v)\n", i, m, m.complete)
	}
	return s
}

// reference is h1server on its own, with a handler that records each request and answers
// 204 with its index in X-Ref.
type reference struct {
	addr string
	mu   sync.Mutex
	seen map[string][]message // by client address
}

func startReference(f *testing.F, maxHeader int) *reference {
	ref := &reference{seen: map[string][]message{}}
	s := &h1server.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			ref.mu.Lock()
			k := len(ref.seen[r.RemoteAddr])
			ref.seen[r.RemoteAddr] = append(ref.seen[r.RemoteAddr], message{r.Method, r.URL.RequestURI(), string(b), err == nil})
			ref.mu.Unlock()
			w.Header().Set("X-Ref", strconv.Itoa(k))
			w.WriteHeader(http.StatusNoContent)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go s.Serve(ln)
	f.Cleanup(func() { s.Close() })
	ref.addr = ln.Addr().String()
	return ref
}

// parse sends in to the reference and half-closes; it returns the requests the handler
// saw and, for each response, the index of the request it answers (-1: the server
// answered itself), up to the first request whose body did not end.
func (ref *reference) parse(t *testing.T, in []byte) ([]message, []int) {
	c, err := net.Dial("tcp", ref.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
	}()
	br := bufio.NewReader(c)
	var answers []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		k := -1
		if v := resp.Header.Get("X-Ref"); v != "" {
			k, _ = strconv.Atoi(v)
		}
		answers = append(answers, k)
		if resp.StatusCode == 101 {
			break
		}
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the reference did not close the connection: %v", err)
	}
	ref.mu.Lock()
	parsed := ref.seen[c.LocalAddr().String()]
	delete(ref.seen, c.LocalAddr().String())
	ref.mu.Unlock()
	for i, k := range answers {
		if k >= 0 && !parsed[k].complete {
			answers = answers[:i] // the proxy waits for the rest of that body
			break
		}
	}
	return parsed, answers
}

// proxied is a response read through the proxy: the upstream's tag, or -1.
type proxied struct {
	status, tag int
	close       bool // the response said Connection: close
}

// throughProxy sends in through the proxy, in writes of chunk bytes (all at once for 0),
// and reads the responses the reference says are owed, each within a bound; the proxy may
// close the connection sooner.
func throughProxy(t *testing.T, addr string, in []byte, chunk int, parsed []message, answers []int) []proxied {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if chunk == 0 {
		chunk = len(in) + 1
	}
	go func() {
		for p := in; len(p) > 0; p = p[min(chunk, len(p)):] {
			if _, err := c.Write(p[:min(chunk, len(p))]); err != nil {
				return
			}
		}
	}()
	br := bufio.NewReader(c)
	var got []proxied
	for len(got) < len(answers) {
		method := http.MethodGet
		if k := answers[len(got)]; k >= 0 {
			method = parsed[k].method
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatalf("no response %d within 5 s (the reference answered %d)", len(got)+1, len(answers))
			}
			break // closed: the proxy refused what the reference did not
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			continue
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			break
		}
		p := proxied{status: resp.StatusCode, tag: -1, close: resp.Close}
		if v := resp.Header.Get("X-Tag"); v != "" {
			p.tag, _ = strconv.Atoi(v)
		}
		got = append(got, p)
		if resp.StatusCode == 101 {
			break
		}
	}
	return got
}

// recordingUpstream is the upstream: it records each request under the current generation (one
// per fuzz input) and answers 204 with the request's tag, unique across generations.
type recordingUpstream struct {
	addr     string
	inflight atomic.Int32
	mu       sync.Mutex
	gen      int
	tags     map[int]taggedMessage
	order    []int // tags of the current generation, in arrival order
	nextTag  int
}

type taggedMessage struct {
	gen int
	message
}

func startRecorder(f *testing.F) *recordingUpstream {
	up := &recordingUpstream{tags: map[int]taggedMessage{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	s := &http.Server{Handler: up, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go s.Serve(ln)
	f.Cleanup(func() { s.Close() })
	up.addr = ln.Addr().String()
	return up
}

func (up *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("User-Agent") == "gangway-health-check" {
		return
	}
	up.inflight.Add(1)
	defer up.inflight.Add(-1)
	b, err := io.ReadAll(r.Body)
	up.mu.Lock()
	tag := up.nextTag
	up.nextTag++
	up.tags[tag] = taggedMessage{up.gen, message{r.Method, r.RequestURI, string(b), err == nil}}
	up.order = append(up.order, tag)
	up.mu.Unlock()
	w.Header().Set("X-Tag", strconv.Itoa(tag))
	w.WriteHeader(http.StatusNoContent)
}

// next starts a generation and returns it.
func (up *recordingUpstream) next() int {
	up.mu.Lock()
	defer up.mu.Unlock()
	up.gen++
	up.order = up.order[:0]
	clear(up.tags)
	return up.gen
}

// take returns the generation's complete requests in arrival order.
func (up *recordingUpstream) take(gen int) []message {
	up.mu.Lock()
	defer up.mu.Unlock()
	var out []message
	for _, tag := range up.order {
		if m := up.tags[tag]; m.gen == gen && m.complete {
			out = append(out, m.message)
		}
	}
	return out
}

func (up *recordingUpstream) byTag(gen, tag int) (message, bool) {
	up.mu.Lock()
	defer up.mu.Unlock()
	m, ok := up.tags[tag]
	return m.message, ok && m.gen == gen
}
