package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gangway-ecs/gangway/internal/reqctx"
)

// h1Pool is the connection pool and HTTP/1.1 client of a cluster that speaks HTTP/1.1 to its
// endpoints. Unlike http.Transport, which hands every request to a writer and a reader
// goroutine per connection, it writes the request and reads the response head in the
// calling goroutine; the response body is read by whoever reads the response. That saves
// two goroutine hand-offs per request on the proxy's hot path.
//
// A request body is written by a goroutine of its own while the response is read (full
// duplex), so an endpoint may answer before it has read the whole body. A request that
// fails on a reused connection before any byte of a response arrived (the endpoint closed
// it while idle) is sent once more on a new connection when it has no body and its method
// is idempotent: the endpoint may have acted on it before it closed, and a proxy must not
// retry any other request (RFC 9112, section 9.3.1).
//
// HTTP/1.1 matches responses to requests by order alone, so a connection that may be one
// response ahead or behind must never carry another request. A connection returns to the
// pool only when its request was sent in full, its response body was read to the end,
// neither side asked to close it, nothing arrived past the response, and, if the request
// had a body, the response is a 2xx that came after the whole body was written: an
// endpoint that answers a request with a body early, or refuses it (401, 413, a redirect),
// may not have read that body and may read it as a request of its own, whose answer would
// go to the next client. An idle connection on which anything arrives (bytes or the
// endpoint's close) is closed: that is checked when the connection is taken, before a
// byte of the next request is written, and every idleSweep in the background, as
// http.Transport's read on idle connections does.
type h1Pool struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration
	idleSweep   time.Duration
	log         *slog.Logger

	mu       sync.Mutex
	idle     map[string][]*h1Conn // by endpoint address, most recently used last
	closed   bool
	sweeping bool          // the sweeper runs
	stop     chan struct{} // closed to stop the sweeper
	swept    chan struct{} // closed when the sweeper has returned
}

// Limits of the upstream HTTP/1.1 client.
const (
	// maxResponseHeadBytes bounds the bytes read for the heads of one exchange: every
	// interim (1xx) head and the final one together, as http.Transport's
	// MaxResponseHeaderBytes does since Go 1.24 (its default is 10 MiB).
	maxResponseHeadBytes = 1 << 20
	// maxInterimResponses bounds the interim (1xx) responses before the final one, as
	// CPython's http.client and Ruby's net/http do.
	maxInterimResponses = 100
	// defaultIdleTimeout is how long a connection may stay idle in the pool.
	defaultIdleTimeout = 90 * time.Second
	// defaultIdleSweep is how often idle connections are checked in the background.
	defaultIdleSweep = time.Second
)

type h1Conn struct {
	conn     net.Conn
	in       headBudget // what br reads from
	br       *bufio.Reader
	bw       *bufio.Writer
	addr     string
	lastUsed int64       // MonoNow
	peek     *socketPeek // nil where the socket cannot be peeked
	tls      bool        // conn is a *tls.Conn, which buffers what it decrypted
}

func newH1Pool(dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int, log *slog.Logger) *h1Pool {
	return &h1Pool{dial: dial, maxIdle: maxIdle, idleTimeout: defaultIdleTimeout, idleSweep: defaultIdleSweep, log: log,
		idle: map[string][]*h1Conn{}, stop: make(chan struct{}), swept: make(chan struct{})}
}

// get returns an idle connection to addr on which nothing arrived, or nil.
func (p *h1Pool) get(addr string) *h1Conn {
	for {
		c := p.pop(addr)
		if c == nil {
			return nil
		}
		if err := c.idleErr(); err != nil {
			p.discard(c, err)
			continue
		}
		return c
	}
}

// pop takes the most recently used idle connection to addr that has not expired.
func (p *h1Pool) pop(addr string) *h1Conn {
	now := MonoNow()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		list := p.idle[addr]
		if len(list) == 0 {
			return nil
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		// An emptied list stays, so that the put after this exchange does not allocate
		// one again; the sweep deletes the lists still empty (endpoints come and go with
		// DNS).
		p.idle[addr] = list[:len(list)-1]
		if time.Duration(now-c.lastUsed) < p.idleTimeout {
			return c
		}
		c.conn.Close()
	}
}

// discard closes a connection found out of step, saying so when the endpoint sent bytes
// nobody asked for: that endpoint answers requests it was not sent, or more than once.
func (p *h1Pool) discard(c *h1Conn, err error) {
	c.conn.Close()
	if errors.Is(err, errUnsolicited) && p.log != nil {
		p.log.Warn("upstream sent bytes on an idle connection; closed it", "endpoint", c.addr)
	}
}

// put returns a connection whose exchange ended in step to the pool.
func (p *h1Pool) put(c *h1Conn) {
	if c.br.Buffered() > 0 {
		// More than the response: the endpoint is ahead of its requests.
		p.discard(c, errUnsolicited)
		return
	}
	c.lastUsed = MonoNow()
	p.mu.Lock()
	if !p.closed && len(p.idle[c.addr]) < p.maxIdle {
		p.idle[c.addr] = append(p.idle[c.addr], c)
		if !p.sweeping {
			p.sweeping = true
			go p.sweep()
		}
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.conn.Close()
}

// sweep closes, every idleSweep, the idle connections that expired or on which something
// arrived, until CloseIdleConnections.
func (p *h1Pool) sweep() {
	defer close(p.swept)
	t := time.NewTicker(p.idleSweep)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		now := MonoNow()
		var bad []*h1Conn
		var errs []error
		p.mu.Lock()
		for addr, list := range p.idle {
			keep := list[:0]
			for _, c := range list {
				// The pool owns idle connections: checking them under mu keeps get away.
				err := c.idleErr()
				if err == nil && time.Duration(now-c.lastUsed) >= p.idleTimeout {
					err = errIdleExpired
				}
				if err != nil {
					bad, errs = append(bad, c), append(errs, err)
					continue
				}
				keep = append(keep, c)
			}
			clear(list[len(keep):])
			if len(keep) == 0 {
				delete(p.idle, addr)
			} else {
				p.idle[addr] = keep
			}
		}
		p.mu.Unlock()
		for i, c := range bad {
			p.discard(c, errs[i])
		}
	}
}

var errIdleExpired = errors.New("idle timeout")

// CloseIdleConnections closes every pooled connection and retires the pool: connections
// in use are closed when their exchange ends instead of returning to it. It stops the
// sweeper and waits for it. A cluster calls it when it stops.
func (p *h1Pool) CloseIdleConnections() {
	p.mu.Lock()
	wasClosed, sweeping := p.closed, p.sweeping
	p.closed = true
	idle := p.idle
	p.idle = map[string][]*h1Conn{}
	p.mu.Unlock()
	if !wasClosed {
		close(p.stop)
	}
	if sweeping {
		<-p.swept
	}
	for _, list := range idle {
		for _, c := range list {
			c.conn.Close()
		}
	}
}

func (p *h1Pool) newConn(ctx context.Context, addr string) (*h1Conn, error) {
	conn, err := p.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{conn: conn, bw: bufio.NewWriterSize(conn, 4096), addr: addr}
	c.in = headBudget{src: conn, left: unlimited}
	c.br = bufio.NewReaderSize(&c.in, 4096)
	c.peek = newSocketPeek(conn)
	_, c.tls = conn.(*tls.Conn)
	return c, nil
}

// errUnsolicited is bytes from an endpoint that no request of the connection asked for.
var errUnsolicited = errors.New("unsolicited bytes from the endpoint")

// idleErr reports whether anything arrived on an idle connection: bytes (errUnsolicited),
// the endpoint's close (io.EOF) or an error. It reads nothing from the socket.
func (c *h1Conn) idleErr() error {
	if c.br.Buffered() > 0 {
		return errUnsolicited
	}
	if c.peek != nil {
		if err := c.peek.pending(); err != nil {
			return err
		}
	}
	if c.tls {
		// Bytes tls.Conn decrypted or holds as whole records are not in the socket: a read
		// that may not wait returns them, and only them.
		c.conn.SetReadDeadline(aLongTimeAgo)
		_, err := c.br.Peek(1)
		c.conn.SetReadDeadline(time.Time{})
		if err == nil {
			return errUnsolicited
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	return nil
}

var aLongTimeAgo = time.Unix(1, 0)

// unlimited is a headBudget that does not limit.
const unlimited = math.MaxInt64

// headBudget is what a connection's reader reads from: the connection, with a budget of
// bytes while response heads are read (maxResponseHeadBytes for all the heads of one
// exchange), unlimited for bodies. The reader's read-ahead counts too.
type headBudget struct {
	src  io.Reader // the connection
	left int64
	// capture, while set, gets a copy of every byte read (readResponse, for a head that
	// was not all buffered when its parse began).
	capture *[]byte
}

var errHeadTooLarge = fmt.Errorf("response head over %d bytes", maxResponseHeadBytes)

func (r *headBudget) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.src.Read(p)
	r.left -= int64(n)
	if r.capture != nil {
		*r.capture = append(*r.capture, p[:n]...)
	}
	return n, err
}

// errNoResponse marks a failure before any byte of a response arrived.
var errNoResponse = errors.New("connection closed before a response")

// RoundTrip sends req to req.URL.Host (an endpoint address).
func (p *h1Pool) RoundTrip(req *http.Request) (*http.Response, error) { return p.roundTrip(req, nil) }

// roundTrip is RoundTrip; with ans, a simple response comes without its header map, made
// in ans (readResponse).
func (p *h1Pool) roundTrip(req *http.Request, ans *Answer) (*http.Response, error) {
	ctx := req.Context()
	addr := req.URL.Host
	if c := p.get(addr); c != nil {
		resp, err := p.exchange(ctx, c, req, ans)
		if err == nil || !errors.Is(err, errNoResponse) || !retryable(req) || ctx.Err() != nil {
			return resp, err
		}
		// The endpoint closed the idle connection: try once on a fresh one.
	}
	c, err := p.newConn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return p.exchange(ctx, c, req, ans)
}

// exchange writes req on c and reads the response head. On error c is closed.
func (p *h1Pool) exchange(ctx context.Context, c *h1Conn, req *http.Request, ans *Answer) (*http.Response, error) {
	// Cancelling the request (client gone, route timeout) closes the connection, which
	// unblocks any read or write on it.
	stop := closeOnCancel(ctx, c.conn)
	fail := func(err error) (*http.Response, error) {
		stop.stop()
		c.conn.Close()
		return nil, err
	}
	var sent chan error // the result of writing the request, when a goroutine writes its body
	var body *clientBody
	if req.Body == nil || req.Body == http.NoBody {
		if err := sendRequest(c, req); err != nil {
			if IsClientError(err) {
				return fail(err) // refused before a byte was written: no retry
			}
			return fail(fmt.Errorf("write request: %w: %w", errNoResponse, err))
		}
	} else {
		// The writer checks the head too, but by then the response is awaited.
		if err := checkRequestHead(req); err != nil {
			return fail(err)
		}
		// Full duplex: the body goes out while the response is awaited, so that an
		// endpoint that answers before reading it all (413, 401, a redirect...) is heard
		// at once. When the downstream body fails, the endpoint would wait for the rest:
		// closing the connection ends both sides.
		sent = make(chan error, 1)
		out := req
		var ok bool
		if body, ok = req.Body.(*clientBody); !ok {
			body = &clientBody{ReadCloser: req.Body}
			cp := *req
			cp.Body = body
			out = &cp
		}
		go func() {
			err := sendRequest(c, out)
			if err != nil && body.failure() != nil {
				c.conn.Close()
			}
			sent <- err
		}()
	}
	resp, err := awaitResponse(c, req, ans)
	if err != nil {
		if body != nil {
			if cerr := body.failure(); cerr != nil {
				return fail(cerr)
			}
		}
		if sent != nil {
			select {
			case werr := <-sent:
				if werr != nil {
					return fail(fmt.Errorf("write request: %w", werr))
				}
			default:
			}
		}
		return fail(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection now belongs to the upgraded protocol; ReverseProxy needs a
		// ReadWriteCloser body and owns it until it closes it.
		if !stop.stop() {
			return fail(reqctx.Cause(ctx))
		}
		resp.Body = &upgradedConn{c: c}
		return resp, nil
	}
	reusable := !resp.Close && !req.Close
	if sent != nil {
		// Whether the body was all out when the answer came decides, not whether it is by
		// the end of the response: see h1Pool.
		reusable = reusable && requestSent(sent) && resp.StatusCode >= 200 && resp.StatusCode < 300
	}
	if resp.Body == http.NoBody {
		if stop.stop() && reusable {
			p.put(c)
		} else {
			c.conn.Close()
		}
		return resp, nil
	}
	hb := wrapperRoom(resp.Body).pooledBody()
	*hb = h1Body{rc: resp.Body, c: c, p: p, stop: stop, reusable: reusable}
	resp.Body = hb
	return resp, nil
}

// cancelWatch closes a connection when the context of its exchange is cancelled, until
// stopped.
type cancelWatch struct {
	st       ConnWatcher // the exchange's context, which watches conn itself
	conn     net.Conn
	afterFun func() bool // otherwise, the stop function of a context.AfterFunc
}

// ConnWatcher is an exchange's context that closes the exchange's connection itself when it
// ends (the data plane's stream timer), saving an AfterFunc per exchange.
type ConnWatcher interface {
	Watch(conn io.Closer) bool
	Unwatch(conn io.Closer) bool
}

func closeOnCancel(ctx context.Context, conn net.Conn) cancelWatch {
	if st, ok := ctx.(ConnWatcher); ok && st.Watch(conn) {
		return cancelWatch{st: st, conn: conn}
	}
	return cancelWatch{afterFun: context.AfterFunc(ctx, func() { conn.Close() })}
}

// stop reports whether it stopped the watch before the cancellation closed the
// connection, as the stop function of context.AfterFunc does.
func (w cancelWatch) stop() bool {
	if w.st != nil {
		return w.st.Unwatch(w.conn)
	}
	return w.afterFun()
}

// sendRequest writes req (head and body) on c and flushes it.
func sendRequest(c *h1Conn, req *http.Request) error {
	if err := writeRequest(c.bw, req); err != nil {
		return err
	}
	return c.bw.Flush()
}

// awaitResponse reads the response head off c, skipping interim responses (100 Continue,
// 103 Early Hints), which are not forwarded: at most maxInterimResponses of them, and
// maxResponseHeadBytes for every head together.
func awaitResponse(c *h1Conn, req *http.Request, ans *Answer) (*http.Response, error) {
	c.in.left = maxResponseHeadBytes
	defer func() { c.in.left = unlimited }()
	for interim := 0; ; interim++ {
		if _, err := c.br.Peek(1); err != nil {
			if interim == 0 {
				return nil, fmt.Errorf("read response: %w: %w", errNoResponse, err)
			}
			return nil, fmt.Errorf("read response: %w", err)
		}
		r, err := readResponse(c.br, &c.in, req, ans)
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if r.StatusCode >= 100 && r.StatusCode < 200 && r.StatusCode != http.StatusSwitchingProtocols {
			if interim == maxInterimResponses {
				return nil, fmt.Errorf("read response: more than %d interim (1xx) responses", maxInterimResponses)
			}
			continue
		}
		return r, nil
	}
}

// requestSent reports whether the request's body, written by its own goroutine, is all
// out, without waiting.
func requestSent(sent chan error) bool {
	select {
	case err := <-sent:
		return err == nil
	default:
		return false
	}
}

// h1Body returns its connection to the pool once the body was read to the end and closed.
type h1Body struct {
	rc       io.ReadCloser
	c        *h1Conn
	p        *h1Pool
	stop     cancelWatch
	reusable bool
	eof      bool
	done     bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("read on closed response body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.rc.Close()
	if b.stop.stop() && b.eof && b.reusable && err == nil {
		b.p.put(b.c)
	} else {
		b.c.conn.Close()
	}
	return err
}

// upgradedConn is an upgraded connection as a response body: reads drain what the response
// reader buffered first.
type upgradedConn struct{ c *h1Conn }

func (u *upgradedConn) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgradedConn) Write(p []byte) (int, error) { return u.c.conn.Write(p) }
func (u *upgradedConn) Close() error                { return u.c.conn.Close() }

// idleConns counts the idle connections by endpoint address, and those of them that would
// be discarded on reuse because something is pending on them.
func (p *h1Pool) idleConns() (idle map[string]int, pending int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	idle = map[string]int{}
	for addr, list := range p.idle {
		if len(list) == 0 {
			continue
		}
		idle[addr] = len(list)
		for _, pc := range list {
			if pc.idleErr() != nil {
				pending++
			}
		}
	}
	return idle, pending
}
