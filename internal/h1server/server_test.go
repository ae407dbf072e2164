package h1server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gangway-ecs/gangway/internal/memnet"
)

// start serves s on a fresh 127.0.0.1 port until the test ends.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s, ln)
	return ln.Addr().String()
}

// startMem serves s on an in-memory listener until the test ends, for a test in a synctest
// bubble: the server's timers and its connections' deadlines then run on the bubble's fake
// clock, and synctest.Wait returns once the server waits for the client.
func startMem(t *testing.T, s *Server) *memnet.Listener {
	t.Helper()
	ln := memnet.Listen("127.0.0.1:80")
	serve(t, s, ln)
	return ln
}

func serve(t *testing.T, s *Server, ln net.Listener) {
	t.Helper()
	if s.ErrorLog == nil {
		s.ErrorLog = log.New(io.Discard, "", 0)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return client(t, c)
}

func dialMem(t *testing.T, ln *memnet.Listener) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	return client(t, c)
}

// client closes c when the test ends and bounds its reads and writes.
func client(t *testing.T, c net.Conn) (net.Conn, *bufio.Reader) {
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// expectClosed checks that the server closes the connection with nothing more to read.
func expectClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err == nil {
		rest, _ := br.Peek(br.Buffered())
		t.Fatalf("connection still open: read %q", append([]byte{b}, rest...))
	}
}

// The tests that follow the watcher (which starts watchAfter into a request) run in
// synctest bubbles over memnet connections: the fake clock puts each step exactly where
// the test means it, before or after the watcher starts, and a wait costs no real time.

// A client that leaves cancels its request's context: at once while the watcher reads,
// and when the watcher starts if the client left before.
func TestClientGoneCancelsSlowRequest(t *testing.T) {
	for _, leave := range []time.Duration{0, 2 * watchAfter} {
		synctest.Test(t, func(t *testing.T) {
			cancelled := make(chan error, 1)
			ln := startMem(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
					cancelled <- r.Context().Err()
				case <-time.After(time.Hour):
					cancelled <- nil
				}
			})})
			c, _ := dialMem(t, ln)
			start := time.Now()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(leave)
			c.Close()
			if err := <-cancelled; !errors.Is(err, context.Canceled) {
				t.Fatalf("client left after %v: handler ended with %v, want its context cancelled", leave, err)
			}
			if el, want := time.Since(start), max(leave, watchAfter); el != want {
				t.Fatalf("client left after %v: context cancelled after %v, want %v", leave, el, want)
			}
		})
	}
}

// A request pipelined behind a slow one, sent while the watcher reads, is served.
// While the handler waits for a body the client is slow to send, the watch timer does
// not wait with it (it once blocked on the body's lock, holding the connection's): the
// watcher starts once the body is in, and sees the client leave.
func TestClientGoneAfterSlowBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cancelled := make(chan time.Duration, 1)
		start := time.Now()
		ln := startMem(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if b, err := io.ReadAll(r.Body); string(b) != "body" || err != nil {
				t.Errorf("body %q, %v", b, err)
			}
			<-r.Context().Done()
			cancelled <- time.Since(start)
		})})
		c, _ := dialMem(t, ln)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
		time.Sleep(3*watchAfter + watchAfter/2)
		io.WriteString(c, "body")
		time.Sleep(watchAfter + watchAfter/2) // the watcher starts at the next tick
		c.Close()
		if at := <-cancelled; at != 5*watchAfter {
			t.Fatalf("context cancelled after %v, want at the client's close (%v)", at, 5*watchAfter)
		}
	})
}

func TestPipelinedDuringSlowRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := startMem(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				time.Sleep(4 * watchAfter)
			}
			io.WriteString(w, r.Method+" "+r.URL.Path)
		})})
		c, br := dialMem(t, ln)
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(2 * watchAfter) // the watcher's read is waiting by now
		io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		for _, want := range []string{"GET /slow", "GET /next"} {
			if _, body := readResponse(t, br, "GET"); body != want {
				t.Fatalf("body %q, want %q", body, want)
			}
		}
	})
}

// hijackEcho hijacks the connection after delay, answers 101 and echoes five bytes read
// from the hijacked net.Conn itself, not its bufio.Reader: bytes the server had read
// already must come back through it.
func hijackEcho(t *testing.T, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Error(err)
			return
		}
		c.Write(buf)
	})
}

// expectEcho reads hijackEcho's 101 and its echo of "hello".
func expectEcho(t *testing.T, br *bufio.Reader) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("response %v, %v", resp, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo %q, %v", buf, err)
	}
}

func TestHijackKeepsBufferedBytes(t *testing.T) {
	addr := start(t, &Server{Handler: hijackEcho(t, 0)})
	c, br := dial(t, addr)
	// The bytes after the head arrive with it: they are in the server's buffer at hijack.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello")
	expectEcho(t, br)
}

func TestConnStates(t *testing.T) {
	var mu sync.Mutex
	var states []http.ConnState
	closed := make(chan struct{})
	addr := start(t, &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ConnState: func(c net.Conn, st http.ConnState) {
			mu.Lock()
			states = append(states, st)
			mu.Unlock()
			if st == http.StateClosed {
				close(closed)
			}
		},
	})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, br, "GET")
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	readResponse(t, br, "GET")
	expectClosed(t, br)
	c.Close()
	<-closed
	want := []http.ConnState{http.StateNew, http.StateActive, http.StateIdle, http.StateActive, http.StateClosed}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(states, want) {
		t.Fatalf("states %v, want %v", states, want)
	}
}

func TestShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		inHandler := make(chan struct{}, 1)
		s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				inHandler <- struct{}{}
				<-release
			}
			io.WriteString(w, "ok")
		})}
		ran := make(chan struct{})
		s.RegisterOnShutdown(func() { close(ran) })
		ln := startMem(t, s)

		idle, idleBR := dialMem(t, ln)
		io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		readResponse(t, idleBR, "GET")
		busy, busyBR := dialMem(t, ln)
		io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		<-inHandler

		done := make(chan error, 1)
		go func() { done <- s.Shutdown(context.Background()) }()
		<-ran
		expectClosed(t, idleBR) // idle: closed at once
		// Shutdown waits for the request however long it runs (here five seconds, within
		// the client's deadline).
		time.Sleep(5 * time.Second)
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with a request in flight", err)
		default:
		}
		close(release)
		resp, body := readResponse(t, busyBR, "GET")
		if body != "ok" || !resp.Close {
			t.Fatalf("in-flight response %q, close %v: want ok with Connection: close", body, resp.Close)
		}
		expectClosed(t, busyBR)
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if _, err := ln.Dial(); err == nil {
			t.Fatal("the listener still accepts after Shutdown")
		}
	})
}

func TestHTTP2Handoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		got := make(chan string, 1)
		ln := startMem(t, &Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "h1") }),
			HTTP2: func(ctx context.Context, c net.Conn) {
				b := make([]byte, 4)
				io.ReadFull(c, b)
				got <- string(b)
				c.Close()
			},
		})
		// The preface in pieces, each read on its own, then what follows it.
		c, _ := dialMem(t, ln)
		for _, part := range []string{"PRI * HT", "TP/2.0\r\n\r\nSM", "\r\n\r\nnext"} {
			io.WriteString(c, part)
			synctest.Wait()
		}
		select {
		case s := <-got:
			if s != "next" {
				t.Fatalf("HTTP/2 server read %q after the preface, want next", s)
			}
		default:
			t.Fatal("the preface was not handed over")
		}
		// A request whose first bytes match the preface's is still HTTP/1.
		c2, br := dialMem(t, ln)
		io.WriteString(c2, "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		if _, body := readResponse(t, br, "PUT"); body != "h1" {
			t.Fatalf("body %q", body)
		}
	})
}

func TestTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := startMem(t, &Server{
			Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
			ReadHeaderTimeout: 200 * time.Millisecond,
			IdleTimeout:       300 * time.Millisecond,
		})

		// A head that stops half-way is closed unanswered at the header timeout.
		c, br := dialMem(t, ln)
		began := time.Now()
		io.WriteString(c, "GET / HTTP/1.1\r\nHo")
		expectClosed(t, br)
		if d := time.Since(began); d != 200*time.Millisecond {
			t.Fatalf("slow head closed after %v, want the 200ms header timeout", d)
		}

		// A keep-alive connection busy for longer than the idle timeout stays open; once
		// idle, it closes at the idle timeout.
		c, br = dialMem(t, ln)
		for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			readResponse(t, br, "GET")
			time.Sleep(20 * time.Millisecond)
		}
		began = time.Now().Add(-20 * time.Millisecond) // the last response
		expectClosed(t, br)
		if d := time.Since(began); d != 300*time.Millisecond {
			t.Fatalf("idle connection closed %v after its last response, want the 300ms idle timeout", d)
		}
	})
}

func TestExpectContinue(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
			return
		}
		w.WriteHeader(http.StatusForbidden)
	})})

	// The 100 Continue goes out when the handler reads the body.
	c, br := dial(t, addr)
	io.WriteString(c, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "body")
	if _, body := readResponse(t, br, "POST"); body != "body" {
		t.Fatalf("echo %q", body)
	}

	// A handler that refuses without reading gets no 100, and the connection closes:
	// the client may still send the body.
	c, br = dial(t, addr)
	io.WriteString(c, "POST /no HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	if resp, _ := readResponse(t, br, "POST"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d", resp.StatusCode)
	}
	expectClosed(t, br)
}

func TestUnreadBody(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })})
	// A small unread body is read past: the connection serves the next request.
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, br, "POST")
	if _, body := readResponse(t, br, "GET"); body != "ok" {
		t.Fatalf("second response %q", body)
	}
	// A large one closes the connection after the response.
	c, br = dial(t, addr)
	go func() {
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
		c.Write(make([]byte, 1<<20))
	}()
	readResponse(t, br, "POST")
	expectClosed(t, br)
}

func TestCloseEndsActiveConnections(t *testing.T) {
	entered := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})}
	addr := start(t, s)
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	s.Close()
	expectClosed(t, br)
}

func TestHeadTooLarge(t *testing.T) {
	addr := start(t, &Server{Handler: http.NotFoundHandler(), MaxHeaderBytes: 1024})
	c, br := dial(t, addr)
	go io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8<<10)+"\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.HasPrefix(body, "431") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	expectClosed(t, br)
}

// A handler that panics while the watcher reads, or before it would start, leaves the
// server serving (no use of the connection after it is released).
func TestPanicWithWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := startMem(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/slow":
				time.Sleep(3 * watchAfter)
				panic(http.ErrAbortHandler)
			case "/fast":
				panic("boom")
			}
			io.WriteString(w, "ok")
		})})
		for _, path := range []string{"/slow", "/fast"} {
			c, br := dialMem(t, ln)
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			expectClosed(t, br)
		}
		time.Sleep(2 * watchAfter) // a stray watch timer would fire now
		c, br := dialMem(t, ln)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != "ok" {
			t.Fatalf("body %q", body)
		}
	})
}

// The body read on another goroutine while the handler writes (as a proxy's upload does):
// the 100 Continue and the response head do not interleave.
func TestExpectContinueReadElsewhere(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(r.Body)
			got <- string(b)
		}()
		w.Header().Set("X-Early", "1")
		w.(http.Flusher).Flush()
		io.WriteString(w, <-got)
	})})
	// The body read (which sends the 100 Continue) races the Flush (which completes the
	// final head and settles the body), so the exchange runs many times: once, the two
	// took each other's lock in opposite orders and the connection hung.
	for i := range 100 {
		c, br := dial(t, addr)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
		// Either the 100 Continue goes first (the body is then read, and echoed) or the
		// final head does (the body is then closed unread, as net/http, and the
		// connection closes).
		time.Sleep(time.Duration(i%3) * time.Millisecond)
		io.WriteString(c, "body")
		resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
		if err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
		if resp.StatusCode == http.StatusContinue {
			if resp, err = http.ReadResponse(br, &http.Request{Method: "POST"}); err != nil {
				t.Fatalf("exchange %d: %v", i, err)
			}
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Early") != "1" || string(b) != "body" && (string(b) != "" || !resp.Close) {
			t.Fatalf("exchange %d: status %d header %v body %q", i, resp.StatusCode, resp.Header, b)
		}
		c.Close()
	}
}

// A byte the watcher read while a slow handler ran is still there for the hijacker.
func TestHijackAfterWatcherRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The watcher reads the client's first byte while the handler waits.
		ln := startMem(t, &Server{Handler: hijackEcho(t, 4*watchAfter)})
		c, br := dialMem(t, ln)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		time.Sleep(2 * watchAfter)
		io.WriteString(c, "hello")
		expectEcho(t, br)
	})
}
