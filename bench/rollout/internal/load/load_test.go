package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/upstream"
	"github.com/gangway-ecs/gangway/internal/memnet"
)

// serve runs h on 127.0.0.1 with HTTP/1.1 and h2c, and returns its base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func options(base string, max int64) Options {
	return Options{
		HTTPURL: base, H2CURL: base,
		H1Clients: 2, H2Conns: 1, H2Streams: 2, WSClients: 2,
		Timeout:   5 * time.Second,
		SlowEvery: 10, SlowDelay: time.Millisecond,
		MaxRequests: max,
	}
}

func run(t *testing.T, o Options) Result {
	t.Helper()
	g := Start(context.Background(), o)
	deadline := time.Now().Add(30 * time.Second)
	for g.Issued() < o.MaxRequests && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	r := g.Stop()
	// Progress, which a timeline samples while the load runs, must end at the Result's
	// account.
	if n, f := g.Progress(); n != r.Requests || f != r.Failed() {
		t.Errorf("Progress() = %d requests, %d failed; the result says %d and %d", n, f, r.Requests, r.Failed())
	}
	return r
}

// Against the real echo upstream every request succeeds, and every one is counted once.
func TestCountsEveryRequest(t *testing.T) {
	up, err := upstream.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	base := "http://" + up.Addr()
	o := options(base, 600)
	o.H2CURL = "" // the upstream speaks HTTP/1.1 only
	o.H2Conns = 0
	r := run(t, o)
	if r.Requests != 600 || r.Failed() != 0 || r.Aborted != 0 {
		t.Fatalf("result %s, failures %v, aborted %d; want 600 requests, none failed", r, r.Failures, r.Aborted)
	}
	if r.ByProto["h1"] == 0 || r.ByProto["ws"] == 0 {
		t.Errorf("by protocol %v: every kind of client must have run", r.ByProto)
	}
	if r.HTTP.P99 <= 0 || r.HTTP.P50 > r.HTTP.P99 || r.HTTP.P99 > r.HTTP.Max {
		t.Errorf("percentiles %+v", r.HTTP)
	}
}

// Every 5th request gets a 502 and every other 7th a wrong body: each one is a failure, counted
// by kind, over HTTP/1.1 and HTTP/2.
func TestCountsFailuresByKind(t *testing.T) {
	var n atomic.Int64
	base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("id") == "warm-up" { // the HTTP/2 connection's uncounted request
			io.WriteString(w, "warm-up")
			return
		}
		i := n.Add(1)
		switch {
		case i%5 == 0:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case i%7 == 0:
			io.WriteString(w, "something else")
		case r.Method == http.MethodPost:
			io.Copy(w, r.Body)
		default:
			io.WriteString(w, r.URL.Query().Get("id"))
		}
	}))
	o := options(base, 700)
	o.WSClients = 0
	r := run(t, o)
	if r.Requests != 700 {
		t.Fatalf("%d requests, want 700", r.Requests)
	}
	var s502, bad int64
	for k, v := range r.Failures {
		switch k {
		case "h1 status 502", "h2 status 502":
			s502 += v
		case "h1 bad body", "h2 bad body":
			bad += v
		default:
			t.Errorf("unexpected failure kind %q × %d", k, v)
		}
	}
	if s502 != 140 || bad != 80 {
		t.Errorf("502s %d (want 140), bad bodies %d (want 80): %v", s502, bad, r.Failures)
	}
	if r.Failures["h1 status 502"] == 0 || r.Failures["h2 status 502"] == 0 {
		t.Errorf("both protocols must see failures: %v", r.Failures)
	}
}

// A WebSocket closed by the server with 1001 is a clean close: the client reconnects and
// sends the unanswered message again. A connection dropped without a close frame is a
// failure.
func TestWebSocketCloses(t *testing.T) {
	up := websocket.Upgrader{}
	var conns atomic.Int64
	base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		k := conns.Add(1)
		for i := 0; ; i++ {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if i == 4 { // the fifth message is never answered
				if k%2 == 1 {
					c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second))
					c.SetReadDeadline(time.Now().Add(time.Second))
					c.ReadMessage() // the client's close reply
				}
				return // an even connection just drops: 1006 for the client
			}
			c.WriteMessage(typ, msg)
		}
	}))
	o := options(base, 0)
	o.H1Clients, o.H2Conns, o.WSClients = 0, 0, 1
	o.MaxRequests = 30
	r := run(t, o)
	// Connections alternate: going away (4 answered, 1 resent on the next), drop (4
	// answered, 1 failed). Thirty messages: every one counted once.
	if r.Requests != 30 {
		t.Fatalf("%d requests, want 30: %+v", r.Requests, r)
	}
	if r.Failures["ws close 1006"] == 0 || len(r.Failures) != 1 {
		t.Errorf("failures %v: want only ws close 1006", r.Failures)
	}
	if r.Reconnects == 0 || r.Resent != r.Reconnects {
		t.Errorf("reconnects %d, resent %d: each 1001 close must lead to a resend", r.Reconnects, r.Resent)
	}
}

// A dial to a closed port is a failure of kind "refused".
func TestRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ln.Close()
	o := options(base, 40)
	r := run(t, o)
	if r.Requests != 40 || r.Failed() != 40 {
		t.Fatalf("%d requests, %d failed: want 40 and 40: %v", r.Requests, r.Failed(), r.Failures)
	}
	for k := range r.Failures {
		if k != "h1 refused" && k != "h2 refused" && k != "ws dial: refused" {
			t.Errorf("failure kind %q, want refused", k)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{statusError(503), "status 503"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "reset"},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "refused"},
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), "eof"},
		{context.DeadlineExceeded, "timeout"},
		{&websocket.CloseError{Code: 1006}, "close 1006"},
		{errBadBody, "bad body"},
		{errors.New("odd"), "error: odd"},
	} {
		if got := Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// Paced clients send what the rate asks for, whatever the machine's speed. The test runs
// in a synctest bubble over an in-memory network: the pacing runs on the fake clock, so
// the count is exact.
func TestRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var inFirstSecond, served, late atomic.Int64
		var stopped atomic.Bool
		ln := memnet.Listen("127.0.0.1:80")
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			if stopped.Load() {
				late.Add(1)
			}
			if time.Since(start) < time.Second {
				inFirstSecond.Add(1)
			}
			if r.Method == http.MethodPost {
				io.Copy(w, r.Body)
				return
			}
			io.WriteString(w, r.URL.Query().Get("id"))
		})}
		go srv.Serve(ln)
		defer srv.Close()
		o := options("http://"+ln.Addr().String(), 0)
		o.H2Conns, o.WSClients, o.SlowEvery = 0, 0, 0
		o.Rate = 100
		o.Dial = ln.DialContext
		g := Start(context.Background(), o)
		// Stop between two paced requests (every 20 ms): none may start after it.
		time.Sleep(2*time.Second + 10*time.Millisecond)
		stopped.Store(true)
		r := g.Stop()
		if n := late.Load(); n != 0 {
			t.Errorf("%d requests started after Stop, want none", n)
		}
		// Two clients at 50/s each: one request every 20ms each, from 0 to 980ms.
		if n := inFirstSecond.Load(); n != 100 {
			t.Errorf("%d requests in the first second at rate 100, want 100", n)
		}
		if r.Requests != served.Load() || r.Failed() != 0 {
			t.Errorf("%d requests counted, %d failed, %d served: want every served one counted, none failed: %v",
				r.Requests, r.Failed(), served.Load(), r.Failures)
		}
	})
}
