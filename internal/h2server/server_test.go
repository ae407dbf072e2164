package h2server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gangway-ecs/gangway/internal/h1server"
	"github.com/gangway-ecs/gangway/internal/memnet"
	"github.com/gangway-ecs/gangway/internal/reqctx"
)

// serve starts a server on 127.0.0.1 whose HTTP/2 connections (h2c, prior knowledge) s
// serves, as the proxy's listeners do, and returns its address.
func serve(t *testing.T, s *Server) string {
	addr, _ := serveH1(t, s)
	return addr
}

// serveH1 is serve, returning the HTTP/1 server that hands s its connections too.
func serveH1(t *testing.T, s *Server) (string, *h1server.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), serveOn(t, s, ln)
}

// serveMem is serveH1 on an in-memory listener, for a test in a synctest bubble: the
// servers' timers and their connections' deadlines then run on the bubble's fake clock,
// and synctest.Wait returns once the servers wait for the client.
func serveMem(t *testing.T, s *Server) (*memnet.Listener, *h1server.Server) {
	t.Helper()
	ln := memnet.Listen("127.0.0.1:80")
	return ln, serveOn(t, s, ln) // whose Shutdown ends the idle handler goroutines
}

// serveOn serves ln with an HTTP/1 server that hands s its HTTP/2 connections, until the
// test ends.
func serveOn(t *testing.T, s *Server, ln net.Listener) *h1server.Server {
	h1 := &h1server.Server{Handler: s.Handler, ErrorLog: s.ErrorLog, HTTP2: s.ServeConn}
	h1.RegisterOnShutdown(s.Shutdown)
	done := make(chan struct{})
	go func() { h1.Serve(ln); close(done) }()
	t.Cleanup(func() { h1.Close(); s.Shutdown(); <-done })
	return h1
}

func h2Client() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// h2ClientMem is h2Client dialling ln, for a test in a synctest bubble. Its connections
// close when the test ends, so that their goroutines end within the bubble.
func h2ClientMem(t *testing.T, ln *memnet.Listener) *http.Client {
	c := h2Client()
	c.Transport.(*http.Transport).DialContext = ln.DialContext
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestRequestAndResponse(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s %s %s %q %s", r.Proto, r.Method, r.Host, r.RequestURI, r.URL.Query().Get("q"), r.Header.Get("Cookie"), r.Header.Get("X-A"))
	})})
	req, _ := http.NewRequest("GET", "http://"+addr+"/p/a?q=1", nil)
	req.Header.Set("X-A", "b")
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	resp, err := h2Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`HTTP/2.0 GET %s /p/a?q=1 1 "a=1; b=2" b`, addr)
	if resp.ProtoMajor != 2 || string(body) != want {
		t.Fatalf("got %s %q, want %q", resp.Proto, body, want)
	}
	if resp.ContentLength != int64(len(want)) || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("Date") == "" {
		t.Fatalf("headers: length %d, %v", resp.ContentLength, resp.Header)
	}
}

// TestLargeBodies streams bodies well past every flow-control window both ways, on
// several streams of one connection at once.
func TestLargeBodies(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(h, w), r.Body)
		if err != nil {
			t.Errorf("reading the body: %v after %d bytes", err, n)
		}
		w.Header().Set("Trailer:Sum", fmt.Sprintf("%x", h.Sum(nil)))
	})})
	client := h2Client()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := bytes.Repeat([]byte{byte('a' + i)}, 5<<20+i)
			resp, err := client.Post("http://"+addr+"/", "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("stream %d: %d bytes back of %d, %v", i, len(got), len(payload), err)
				return
			}
			if want := fmt.Sprintf("%x", sha256.Sum256(payload)); resp.Trailer.Get("Sum") != want {
				t.Errorf("stream %d: trailer %v, want Sum %s", i, resp.Trailer, want)
			}
		}()
	}
	wg.Wait()
}

func TestRequestTrailersAndDeclaredResponseTrailers(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Got")
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("ok"))
		w.Header().Set("X-Got", r.Trailer.Get("X-Checksum"))
	})})
	req, _ := http.NewRequest("PUT", "http://"+addr+"/", io.MultiReader(strings.NewReader("body")))
	req.Trailer = http.Header{"X-Checksum": {"c1"}}
	req.ContentLength = -1
	resp, err := h2Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Trailer.Get("X-Got") != "c1" {
		t.Fatalf("status %d, trailer %v", resp.StatusCode, resp.Trailer)
	}
}

func TestClientResetCancelsHandler(t *testing.T) {
	cancelled := make(chan error, 1)
	started := make(chan struct{})
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(started)
		select {
		case <-r.Context().Done():
			cancelled <- reqctx.Cause(r.Context()) // context.Cause cannot see a custom context's cause
		case <-time.After(10 * time.Second):
			cancelled <- errors.New("handler context never ended")
		}
	})})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	resp, err := h2Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	resp.Body.Close()
	if err := <-cancelled; !errors.Is(err, errClientReset) {
		t.Fatalf("handler context: %v", err)
	}
}

func TestHeadNoContentAndShortBody(t *testing.T) {
	writeErr := make(chan error, 1)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
			_, err := w.Write([]byte("x"))
			writeErr <- err
		case "/short":
			w.Header().Set("Content-Length", "10")
			w.Write([]byte("12345"))
		default:
			w.Write([]byte("body of a GET"))
		}
	})})
	client := h2Client()
	resp, err := client.Head("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); len(b) != 0 || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, b)
	}
	resp, err = client.Get("http://" + addr + "/204")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-writeErr; resp.StatusCode != 204 || !errors.Is(err, http.ErrBodyNotAllowed) {
		t.Fatalf("204: status %d, write error %v", resp.StatusCode, err)
	}
	resp, err = client.Get("http://" + addr + "/short")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("a body shorter than its Content-Length was delivered as complete")
	}
}

func TestInformationalAndContinue(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})})
	var codes []int
	var mu sync.Mutex
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		mu.Lock()
		codes = append(codes, code)
		mu.Unlock()
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", "http://"+addr+"/", strings.NewReader("continued"))
	req.Header.Set("Expect", "100-continue")
	tr := h2Client().Transport.(*http.Transport)
	tr.ExpectContinueTimeout = 10 * time.Second
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if string(b) != "continued" || fmt.Sprint(codes) != "[103 100]" {
		t.Fatalf("body %q, informational responses %v (want [103 100])", b, codes)
	}
}

func TestPanicResetsOnlyItsStream(t *testing.T) {
	addr := serve(t, &Server{ErrorLog: discardLog(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.Write([]byte("fine"))
	})})
	client := h2Client()
	if _, err := client.Get("http://" + addr + "/panic"); err == nil {
		t.Fatal("a panicking handler's response succeeded")
	}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "fine" {
		t.Fatalf("after a panic: %q", b)
	}
}

func TestHeaderListTooLarge(t *testing.T) {
	var called atomic.Bool
	addr := serve(t, &Server{MaxHeaderBytes: 1 << 10, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called.Store(true)
	})})
	// Each field fits the limit (a single larger one fails decoding, a connection error);
	// together they are over it.
	var extra []string
	for i := range 20 {
		extra = append(extra, fmt.Sprintf("x-big-%d", i), strings.Repeat("x", 200))
	}
	c := dialRaw(t, addr)
	c.open(1, "/", true, extra...)
	f, err := c.next()
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := f.(*http2.MetaHeadersFrame); !ok || h.PseudoValue("status") != "431" || called.Load() {
		t.Fatalf("got %v, handler called %v", f, called.Load())
	}
}

// TestWriteTimeoutResetsStream runs in a synctest bubble: the stream is reset at the
// instant its write timeout passes on the fake clock.
func TestWriteTimeoutResetsStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln, _ := serveMem(t, &Server{WriteTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				<-r.Context().Done()
				return
			}
			w.Write([]byte("quick"))
		})})
		client := h2ClientMem(t, ln)
		start := time.Now()
		if _, err := client.Get("http://" + ln.Addr().String() + "/slow"); err == nil {
			t.Fatal("a stream past its write timeout succeeded")
		}
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Fatalf("the stream failed after %v, want the 200ms write timeout", d)
		}
		resp, err := client.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
}

// rawConn is a client speaking frames directly, for what http.Transport does not do.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	fr *http2.Framer
	hb bytes.Buffer
	he *hpack.Encoder
	mu sync.Mutex // writes
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return newRawConn(t, nc)
}

func dialRawMem(t *testing.T, ln *memnet.Listener) *rawConn {
	t.Helper()
	nc, err := ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	return newRawConn(t, nc)
}

// newRawConn sends the client preface and SETTINGS on nc, which it closes when the test ends.
func newRawConn(t *testing.T, nc net.Conn) *rawConn {
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawConn{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	c.he = hpack.NewEncoder(&c.hb)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	io.WriteString(nc, http2.ClientPreface)
	c.fr.WriteSettings()
	return c
}

// request opens stream id with a GET of path and extra header fields.
func (c *rawConn) request(id uint32, path string, end bool, extra ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hb.Reset()
	fields := append([]string{":method", "GET", ":scheme", "http", ":authority", "x", ":path", path}, extra...)
	for i := 0; i+1 < len(fields); i += 2 {
		c.he.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hb.Bytes(), EndStream: end, EndHeaders: true})
}

// open is request, failing the test on a write error.
func (c *rawConn) open(id uint32, path string, end bool, extra ...string) {
	c.t.Helper()
	if err := c.request(id, path, end, extra...); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) reset(id uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
}

// next returns the next frame that is not SETTINGS, WINDOW_UPDATE or PING.
func (c *rawConn) next() (http2.Frame, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.mu.Lock()
				c.fr.WriteSettingsAck()
				c.mu.Unlock()
			}
		case *http2.WindowUpdateFrame, *http2.PingFrame:
		default:
			return f, nil
		}
	}
}

func TestConcurrentStreamLimit(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, &Server{MaxConcurrentStreams: 2, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	})})
	c := dialRaw(t, addr)
	c.open(1, "/", true)
	c.open(3, "/", true)
	c.open(5, "/", true)
	f, err := c.next()
	if rst, ok := f.(*http2.RSTStreamFrame); err != nil || !ok || rst.StreamID != 5 || rst.ErrCode != http2.ErrCodeRefusedStream {
		t.Fatalf("third stream: %v %v", f, err)
	}
	close(release)
}

// TestIdleTimeoutAndShutdown runs in a synctest bubble over memnet connections: the idle
// timeout and the GOAWAY linger pass on the fake clock, so the timeout is checked to the
// instant and the test takes no real time.
func TestIdleTimeoutAndShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln, _ := serveMem(t, &Server{IdleTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("x"))
		})})

		c := dialRawMem(t, ln)
		c.open(1, "/", true)
		var goAwayAfter time.Duration
		start := time.Now()
		for {
			f, err := c.next()
			if err != nil {
				if goAwayAfter == 0 {
					t.Fatalf("closed without GOAWAY: %v", err)
				}
				break
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				goAwayAfter = time.Since(start)
				if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
					t.Fatalf("GOAWAY %v last %d", ga.ErrCode, ga.LastStreamID)
				}
			}
		}
		// The stream ended at once: the connection was idle from the start.
		if goAwayAfter != 200*time.Millisecond {
			t.Fatalf("GOAWAY on the idle connection after %v, want the 200ms idle timeout", goAwayAfter)
		}

		// A stream resets the count: the connection is idle from its end, not the start.
		c = dialRawMem(t, ln)
		start = time.Now()
		c.open(1, "/", true)
		time.Sleep(150 * time.Millisecond)
		c.open(3, "/", true)
		goAwayAfter = 0
		for goAwayAfter == 0 {
			f, err := c.next()
			if err != nil {
				t.Fatalf("closed without GOAWAY: %v", err)
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				goAwayAfter = time.Since(start)
			}
		}
		if goAwayAfter != 350*time.Millisecond {
			t.Fatalf("GOAWAY %v after a stream at 0 and one at 150ms, want 350ms", goAwayAfter)
		}

		// Shutdown: the stream under way finishes, then the connection closes.
		release := make(chan struct{})
		ln, h1 := serveMem(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
			w.Write([]byte("finished"))
		})})
		c = dialRawMem(t, ln)
		c.open(1, "/", true)
		synctest.Wait() // the handler waits
		done := make(chan error, 1)
		go func() { done <- h1.Shutdown(context.Background()) }()
		var got []string
		for {
			f, err := c.next()
			if err != nil {
				break
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				got = append(got, fmt.Sprintf("GOAWAY %d", f.LastStreamID))
				close(release)
			case *http2.MetaHeadersFrame:
				got = append(got, "HEADERS "+f.PseudoValue("status"))
			case *http2.DataFrame:
				got = append(got, fmt.Sprintf("DATA %q %v", f.Data(), f.StreamEnded()))
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if want := `[GOAWAY 1 HEADERS 200 DATA "finished" true]`; fmt.Sprint(got) != want {
			t.Fatalf("frames %v, want %s", got, want)
		}
	})
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// TestShutdownEndsIdleHandlerGoroutines: the handler goroutines kept for the next stream
// end with Shutdown, not workerIdle (10 s) later.
func TestShutdownEndsIdleHandlerGoroutines(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("x"))
	})}
	addr, h1 := serveH1(t, s)
	client := h2Client()
	getSome(t, client, addr)
	if n := handlerGoroutines(s); n == 0 {
		t.Fatal("no idle handler goroutine after the streams ended: the test no longer sees them")
	}
	client.CloseIdleConnections()
	if err := h1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitNoHandlerGoroutines(t, s, 2*time.Second, "after Shutdown")
}

// TestIdleHandlerGoroutinesEnd: a handler goroutine kept for the next stream ends once it
// has waited workerIdle (here shortened) for one, and the next stream starts a new one.
func TestIdleHandlerGoroutinesEnd(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("x"))
	})}
	s.idle.idleFor = 100 * time.Millisecond
	addr, _ := serveH1(t, s)
	client := h2Client()
	defer client.CloseIdleConnections()
	for round := range 2 {
		getSome(t, client, addr)
		if n := handlerGoroutines(s); n == 0 {
			t.Fatalf("round %d: no idle handler goroutine after the streams ended", round)
		}
		start := time.Now()
		waitNoHandlerGoroutines(t, s, 2*time.Second, "idle")
		if waited := time.Since(start); waited < s.idle.idleFor/2 {
			t.Fatalf("round %d: handler goroutines ended %v after their streams, before their idle time (%v)", round, waited, s.idle.idleFor)
		}
	}
}

// getSome makes three requests with client, reading each answer to its end.
func getSome(t *testing.T, client *http.Client, addr string) {
	t.Helper()
	for range 3 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// handlerGoroutines counts s's handler goroutines, not other tests' servers'.
func handlerGoroutines(s *Server) int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for n == len(buf) { // every goroutine's stack, not the first megabyte's
		buf = make([]byte, 2*len(buf))
		n = runtime.Stack(buf, true)
	}
	return strings.Count(string(buf[:n]), fmt.Sprintf("h2server.(*Server).worker(%p,", s))
}

// waitNoHandlerGoroutines fails t unless s has no handler goroutine left within limit.
func waitNoHandlerGoroutines(t *testing.T, s *Server, limit time.Duration, when string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for n := handlerGoroutines(s); n > 0; n = handlerGoroutines(s) {
		if time.Now().After(deadline) {
			t.Fatalf("%d handler goroutines %v %s, want none", n, limit, when)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Both servers' writers (HTTP/2 here, HTTP/1.1 through the h1server in front) take a
// header map as their own while theirs is empty, and decline once it has a field or the
// head is written.
func TestAdoptHeader(t *testing.T) {
	type adopter interface{ AdoptHeader(http.Header) bool }
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := w.(adopter)
		first := a.AdoptHeader(http.Header{"X-Adopted": {"1"}})
		w.Header().Set("X-Added", "2")
		second := a.AdoptHeader(http.Header{"X-Second": {"1"}})
		w.WriteHeader(http.StatusOK)
		third := a.AdoptHeader(http.Header{"X-Third": {"1"}})
		fmt.Fprintf(w, "%v %v %v", first, second, third)
	})}
	addr, _ := serveH1(t, s)
	for _, c := range []*http.Client{{Timeout: 20 * time.Second}, h2Client()} {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "true false false" {
			t.Errorf("%s: adopted %q, want the first map only", resp.Proto, body)
		}
		if resp.Header.Get("X-Adopted") != "1" || resp.Header.Get("X-Added") != "2" || resp.Header.Get("X-Second") != "" || resp.Header.Get("X-Third") != "" {
			t.Errorf("%s: header %v, want X-Adopted and X-Added only", resp.Proto, resp.Header)
		}
	}
}
