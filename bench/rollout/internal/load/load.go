// Package load is the rollout harness's load generator. It keeps HTTP/1.1 keep-alive
// clients, HTTP/2 (cleartext, prior knowledge) clients and WebSocket clients busy against
// the load balancer and counts every request and its outcome.
//
// What counts as a request: one HTTP request (its final outcome, after what the Go client
// does on its own — see below), one WebSocket message round trip, one failed WebSocket
// dial.
//
// What counts as a failure, erring on counting:
//   - an HTTP response other than 200, by status code (502, 503, 504, ...);
//   - a body that is not exactly what the upstream echoes (truncated or mixed up);
//   - a connection error, by kind (refused, reset, EOF, ...), and a timeout (no complete
//     answer within Options.Timeout);
//   - a WebSocket dial that fails or is answered without 101;
//   - a WebSocket closed in any way other than a close frame with 1000 (normal) or 1001
//     (going away), or a message whose echo does not come back or differs.
//
// What does not count as a failure, but is counted and reported:
//   - a keep-alive connection that the server closes (Connection: close, GOAWAY, idle
//     close) and that the client replaces on the next request;
//   - a request that Go's transport retried on a new connection because the reused one was
//     closed before any byte of a response came back (net/http does this for GET and for a
//     request whose body it can replay and that was not written; HTTP/2 for a stream the
//     server refused unprocessed). Every widely used client library does the same;
//   - a WebSocket closed by the server with 1000 or 1001: the client reconnects and sends
//     the message whose echo it was waiting for again (a server that says "going away"
//     tells the client to go elsewhere); the message counts once, by its final outcome.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Options size the load.
type Options struct {
	// HTTPURL is the base URL of the HTTP/1.1 frontend ("http://127.0.0.1:8080"); WebSocket
	// clients use it too.
	HTTPURL string
	// H2CURL is the base URL of the HTTP/2 cleartext frontend.
	H2CURL string
	// H1Clients is the number of HTTP/1.1 keep-alive clients, each with its own connection.
	H1Clients int
	// H2Conns is the number of HTTP/2 connections; H2Streams clients share each one.
	H2Conns, H2Streams int
	// WSClients is the number of WebSocket clients; each waits WSInterval after an echo
	// before it sends the next message.
	WSClients  int
	WSInterval time.Duration
	// Timeout bounds one request or one WebSocket round trip.
	Timeout time.Duration
	// SlowEvery makes every n-th HTTP request of a client ask the upstream to wait SlowDelay
	// before it answers, so that requests are in flight when a replica stops. 0: none.
	SlowEvery int
	SlowDelay time.Duration
	// MaxRequests stops the load after this many requests in all. 0: no limit.
	MaxRequests int64
	// Rate paces the HTTP clients to about this many requests per second in all, each
	// client taking an equal share; a client whose request took longer than its share goes
	// on at once. 0: as fast as they can. Pacing leaves the machine some headroom, so
	// that the timers of the load balancer and the proxies run on time.
	Rate float64
	// Dial opens the clients' connections; nil: a net.Dialer with a 5 s timeout. A test
	// passes an in-memory network's, to run the clients on a synctest bubble's clock.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o *Options) dial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if o.Dial != nil {
		return o.Dial
	}
	return (&net.Dialer{Timeout: 5 * time.Second}).DialContext
}

// Generator is running load. Stop ends it.
type Generator struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	wg     sync.WaitGroup
	issued atomic.Int64
	// done and failed count every finished request as it finishes, for Progress; the
	// tallies keep the detail for Stop.
	done, failed atomic.Int64
	results      []*tally // one per client, merged by Stop
	start        time.Time
}

// tally is one client's counts; only that client writes it until Stop has waited for it.
type tally struct {
	g         *Generator
	proto     string // "h1", "h2", "ws"
	requests  int64
	failures  map[string]int64
	latencies []time.Duration
	retries   int64 // requests that Go's transport sent again on a new connection
	reconnect int64 // WebSocket clean closes (1000/1001) followed by a reconnect
	resent    int64 // WebSocket messages sent again after a clean close
	aborted   int64 // requests cut short by the end of the run, not counted
}

func (t *tally) fail(kind string) {
	t.requests++
	t.failures[t.proto+" "+kind]++
	t.g.done.Add(1)
	t.g.failed.Add(1)
}

func (t *tally) ok(d time.Duration) {
	t.requests++
	t.latencies = append(t.latencies, d)
	t.g.done.Add(1)
}

// Start starts the clients. They run until Stop, MaxRequests, or ctx ends.
func Start(ctx context.Context, o Options) *Generator {
	ctx, cancel := context.WithCancel(ctx)
	g := &Generator{opts: o, ctx: ctx, cancel: cancel, stop: make(chan struct{}), start: time.Now()}
	newTally := func(proto string) *tally {
		t := &tally{g: g, proto: proto, failures: map[string]int64{}}
		g.results = append(g.results, t)
		return t
	}
	for i := range o.H1Clients {
		tr := &http.Transport{
			DialContext:         o.dial(),
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
			Protocols:           protocols(false),
		}
		t := newTally("h1")
		g.spawn(func() { g.httpClient(tr, o.HTTPURL, "a"+strconv.Itoa(i), t) }, tr)
	}
	for c := range o.H2Conns {
		tr := &http.Transport{
			DialContext:        o.dial(),
			DisableCompression: true,
			Protocols:          protocols(true),
		}
		warmUp(ctx, tr, o.H2CURL, o.Timeout)
		for s := range o.H2Streams {
			id := "b" + strconv.Itoa(c) + "." + strconv.Itoa(s)
			t := newTally("h2")
			g.spawn(func() { g.httpClient(tr, o.H2CURL, id, t) }, tr)
		}
	}
	for i := range o.WSClients {
		t := newTally("ws")
		g.spawn(func() { g.wsClient("w"+strconv.Itoa(i), t) }, nil)
	}
	return g
}

// warmUp opens an HTTP/2 connection with one uncounted request before the clients that
// share it start: clients starting together on a transport without a connection would
// each dial one, and the transport would drop all but one of them at once.
func warmUp(ctx context.Context, tr *http.Transport, base string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/echo?id=warm-up", nil)
	if err != nil {
		return
	}
	if resp, err := tr.RoundTrip(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func protocols(h2c bool) *http.Protocols {
	p := new(http.Protocols)
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	return p
}

func (g *Generator) spawn(f func(), tr *http.Transport) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
		if tr != nil {
			tr.CloseIdleConnections()
		}
	}()
}

// take reserves one request; false when the load must end.
func (g *Generator) take() bool {
	select {
	case <-g.stop:
		return false
	case <-g.ctx.Done():
		return false
	default:
	}
	n := g.issued.Add(1)
	return g.opts.MaxRequests == 0 || n <= g.opts.MaxRequests
}

// Issued is the number of requests started so far.
func (g *Generator) Issued() int64 { return g.issued.Load() }

// Progress returns the requests finished so far and how many of them failed, while the
// load runs: what a timeline samples. Stop's Result is the final account.
func (g *Generator) Progress() (requests, failed int64) { return g.done.Load(), g.failed.Load() }

// Stop lets every client finish the request it has in flight (bounded by Options.Timeout),
// stops them, and returns the counts.
func (g *Generator) Stop() Result {
	close(g.stop)
	g.wg.Wait()
	g.cancel()
	return g.result()
}

func (g *Generator) httpClient(tr *http.Transport, base, id string, t *tally) {
	client := &http.Client{Transport: tr, Timeout: g.opts.Timeout}
	var every time.Duration
	if clients := g.opts.H1Clients + g.opts.H2Conns*g.opts.H2Streams; g.opts.Rate > 0 && clients > 0 {
		every = time.Duration(float64(clients) / g.opts.Rate * float64(time.Second))
	}
	next := time.Now()
	for n := 0; ; n++ {
		if every > 0 {
			g.pause(time.Until(next))
			next = maxTime(next.Add(every), time.Now())
		}
		if !g.take() { // after the pacing wait: no request starts after Stop
			return
		}
		want := id + "-" + strconv.Itoa(n)
		q := url.Values{}
		var delay time.Duration // asked of the upstream; not counted in the latency
		if g.opts.SlowEvery > 0 && n%g.opts.SlowEvery == g.opts.SlowEvery-1 {
			delay = g.opts.SlowDelay
			q.Set("delay", delay.String())
		}
		var req *http.Request
		var err error
		if n%4 == 3 {
			req, err = http.NewRequestWithContext(g.ctx, http.MethodPost, base+"/echo?"+q.Encode(), bytes.NewBufferString(want))
		} else {
			q.Set("id", want)
			req, err = http.NewRequestWithContext(g.ctx, http.MethodGet, base+"/echo?"+q.Encode(), nil)
		}
		if err != nil {
			t.fail("build request: " + err.Error())
			continue
		}
		conns := 0
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(httptrace.GotConnInfo) { conns++ },
		}))
		begin := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil:
			case resp.StatusCode != http.StatusOK:
				err = statusError(resp.StatusCode)
			case string(body) != want:
				err = errBadBody
			}
		}
		if conns > 1 {
			t.retries++
		}
		switch {
		case err == nil:
			t.ok(time.Since(begin) - delay)
		case g.ctx.Err() != nil:
			t.aborted++
		default:
			t.fail(Classify(err))
			g.pause(failurePause) // a client that just failed must not spin while nothing answers
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pause waits d, or until Stop or the context ends the load.
func (g *Generator) pause(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.stop:
	case <-g.ctx.Done():
	}
}

const failurePause = 20 * time.Millisecond

type statusError int

func (e statusError) Error() string { return "status " + strconv.Itoa(int(e)) }

var errBadBody = errors.New("bad body")

// Classify names the kind of a failure: "status 502", "refused", "reset", "eof",
// "timeout", "bad body", "ws close 1006", ... Unknown errors keep their message.
func Classify(err error) string {
	var se statusError
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return se.Error()
	case errors.Is(err, errBadBody):
		return "bad body"
	case errors.As(err, &ce):
		return "close " + strconv.Itoa(ce.Code)
	case errors.Is(err, websocket.ErrBadHandshake):
		return "bad handshake"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "eof"
	}
	return "error: " + err.Error()
}

func (g *Generator) wsClient(id string, t *tally) {
	u, err := url.Parse(g.opts.HTTPURL)
	if err != nil {
		t.fail("bad url")
		return
	}
	u.Scheme = "ws"
	u.Path = "/ws"
	dialer := websocket.Dialer{
		NetDialContext:   g.opts.dial(),
		HandshakeTimeout: g.opts.Timeout,
	}
	n := 0
	next := func() (string, bool) {
		if !g.take() {
			return "", false
		}
		n++
		return id + "-" + strconv.Itoa(n), true
	}
	msg := "" // the next message to send; after a clean close, the one whose echo was lost
	for {
		if msg == "" {
			var ok bool
			if msg, ok = next(); !ok {
				return
			}
		} else {
			t.resent++
		}
		conn, resp, err := dialer.DialContext(g.ctx, u.String(), nil)
		if err != nil {
			switch {
			case g.ctx.Err() != nil:
				t.aborted++
				return
			case resp != nil:
				t.fail("dial: status " + strconv.Itoa(resp.StatusCode))
			default:
				t.fail("dial: " + Classify(err))
			}
			msg = ""              // the message failed with its dial
			g.pause(failurePause) // a client that just failed must not spin while nothing answers
			continue
		}
		if resp.Body != nil {
			resp.Body.Close()
		}
		msg = g.wsSession(conn, msg, next, t)
		conn.Close()
		if g.ctx.Err() != nil {
			return
		}
	}
}

// wsSession sends first, then further messages from next, each after the echo of the one
// before, until next says stop (it returns "") or the connection ends. After a clean close
// by the server it returns the message whose echo did not come back, to be sent again on
// the next connection.
func (g *Generator) wsSession(conn *websocket.Conn, first string, next func() (string, bool), t *tally) string {
	msg := first
	for {
		begin := time.Now()
		conn.SetWriteDeadline(begin.Add(g.opts.Timeout))
		err := conn.WriteMessage(websocket.TextMessage, []byte(msg))
		var reply []byte
		if err == nil {
			conn.SetReadDeadline(begin.Add(g.opts.Timeout))
			_, reply, err = conn.ReadMessage()
		} else {
			// The write may fail because the server already closed: read what it sent
			// before closing, which may be a close frame.
			conn.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, rerr := conn.ReadMessage(); rerr != nil {
				var ce *websocket.CloseError
				if errors.As(rerr, &ce) {
					err = rerr
				}
			}
		}
		var ce *websocket.CloseError
		switch {
		case err == nil && string(reply) == msg:
			t.ok(time.Since(begin))
		case err == nil:
			t.fail(Classify(errBadBody))
		case g.ctx.Err() != nil:
			t.aborted++
			return ""
		case errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway):
			t.reconnect++
			return msg
		default:
			t.fail(Classify(err))
			return ""
		}
		if g.opts.WSInterval > 0 {
			g.pause(g.opts.WSInterval)
		}
		var ok bool
		if msg, ok = next(); !ok {
			closeWS(conn)
			return ""
		}
	}
}

// closeWS ends a connection with a close handshake, as a well-behaved client does.
func closeWS(conn *websocket.Conn) {
	deadline := time.Now().Add(time.Second)
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
	conn.SetReadDeadline(deadline)
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

// Result is the outcome of a run.
type Result struct {
	Requests int64
	// ByProto is the number of requests of each protocol ("h1", "h2", "ws").
	ByProto map[string]int64
	// Failures counts failed requests by protocol and kind ("h1 status 502", "ws close 1006").
	Failures map[string]int64
	// Retries, Reconnects, Resent and Aborted are counted and not failures (see the package
	// documentation).
	Retries, Reconnects, Resent, Aborted int64
	// Duration is how long the load ran.
	Duration time.Duration
	// HTTP and WS are latency percentiles of the successful requests and round trips. The
	// latency of a slow request is counted without the delay it asked the upstream for, so
	// that the percentiles show what the path through the load balancer and the proxy adds.
	HTTP, WS Percentiles
}

// Percentiles of latency.
type Percentiles struct{ P50, P99, Max time.Duration }

// Failed is the number of failed requests.
func (r Result) Failed() int64 {
	var n int64
	for _, v := range r.Failures {
		n += v
	}
	return n
}

// Rate is the number of requests per second.
func (r Result) Rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

func (g *Generator) result() Result {
	r := Result{ByProto: map[string]int64{}, Failures: map[string]int64{}, Duration: time.Since(g.start)}
	var httpLat, wsLat []time.Duration
	for _, t := range g.results {
		r.Requests += t.requests
		r.ByProto[t.proto] += t.requests
		for k, v := range t.failures {
			r.Failures[k] += v
		}
		r.Retries += t.retries
		r.Reconnects += t.reconnect
		r.Resent += t.resent
		r.Aborted += t.aborted
		if t.proto == "ws" {
			wsLat = append(wsLat, t.latencies...)
		} else {
			httpLat = append(httpLat, t.latencies...)
		}
	}
	r.HTTP = percentiles(httpLat)
	r.WS = percentiles(wsLat)
	return r
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(d))+0.5) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	return Percentiles{P50: at(0.50), P99: at(0.99), Max: d[len(d)-1]}
}

// String summarizes a result on one line.
func (r Result) String() string {
	return fmt.Sprintf("%d requests (h1 %d, h2 %d, ws %d) in %s, %d failed, p99 %s",
		r.Requests, r.ByProto["h1"], r.ByProto["h2"], r.ByProto["ws"], r.Duration.Round(time.Millisecond),
		r.Failed(), r.HTTP.P99)
}
