package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
// duplex), so an endpoint may answer before it has read the whole body. A connection
// returns to the pool when its request was sent in full, its response body was read to the
// end and neither side asked to close it. A request that fails on a reused connection
// before any byte of a response arrived (the endpoint closed it while idle) is sent once
// more on a new connection when it has no body.
type h1Pool struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by endpoint address, most recently used last
	closed bool
}

type h1Conn struct {
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	addr     string
	lastUsed int64 // monoNow
}

func newH1Pool(dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int) *h1Pool {
	return &h1Pool{dial: dial, maxIdle: maxIdle, idleTimeout: 90 * time.Second, idle: map[string][]*h1Conn{}}
}

// get returns an idle connection to addr, or nil.
func (p *h1Pool) get(addr string) *h1Conn {
	now := monoNow()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		list := p.idle[addr]
		if len(list) == 0 {
			return nil
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		if len(list) == 1 {
			delete(p.idle, addr) // endpoints come and go with DNS: keep no empty entries
		} else {
			p.idle[addr] = list[:len(list)-1]
		}
		if time.Duration(now-c.lastUsed) < p.idleTimeout {
			return c
		}
		c.conn.Close()
	}
}

// put returns a healthy connection to the pool.
func (p *h1Pool) put(c *h1Conn) {
	c.lastUsed = monoNow()
	p.mu.Lock()
	if !p.closed && len(p.idle[c.addr]) < p.maxIdle {
		p.idle[c.addr] = append(p.idle[c.addr], c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.conn.Close()
}

// CloseIdleConnections closes every pooled connection and retires the pool: connections
// in use are closed when their exchange ends instead of returning to it. A cluster calls it
// when it stops.
func (p *h1Pool) CloseIdleConnections() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = map[string][]*h1Conn{}
	p.mu.Unlock()
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
	return &h1Conn{conn: conn, br: bufio.NewReaderSize(conn, 4096), bw: bufio.NewWriterSize(conn, 4096), addr: addr}, nil
}

// errNoResponse marks a failure before any byte of a response arrived.
var errNoResponse = errors.New("connection closed before a response")

// RoundTrip sends req to req.URL.Host (an endpoint address).
func (p *h1Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	addr := req.URL.Host
	if c := p.get(addr); c != nil {
		resp, err := p.exchange(ctx, c, req)
		if err == nil || !errors.Is(err, errNoResponse) || !(req.Body == nil || req.Body == http.NoBody) || ctx.Err() != nil {
			return resp, err
		}
		// The endpoint closed the idle connection: try once on a fresh one.
	}
	c, err := p.newConn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return p.exchange(ctx, c, req)
}

// exchange writes req on c and reads the response head. On error c is closed.
func (p *h1Pool) exchange(ctx context.Context, c *h1Conn, req *http.Request) (*http.Response, error) {
	// Cancelling the request (client gone, route timeout) closes the connection, which
	// unblocks any read or write on it.
	stop := closeOnCancel(ctx, c.conn)
	fail := func(err error) (*http.Response, error) {
		stop.stop()
		c.conn.Close()
		return nil, err
	}
	var sent chan error // the result of writing the request, when a goroutine writes its body
	if req.Body == nil || req.Body == http.NoBody {
		if err := sendRequest(c, req); err != nil {
			return fail(fmt.Errorf("write request: %w: %w", errNoResponse, err))
		}
	} else {
		// Full duplex: the body goes out while the response is awaited, so that an
		// endpoint that answers before reading it all (413, 401, a redirect...) is heard
		// at once. When the downstream body fails, the endpoint would wait for the rest:
		// closing the connection ends both sides.
		sent = make(chan error, 1)
		out := *req
		body := &readErrBody{ReadCloser: req.Body}
		out.Body = body
		go func() {
			err := sendRequest(c, &out)
			if err != nil && body.err != nil {
				c.conn.Close()
			}
			sent <- err
		}()
	}
	resp, err := awaitResponse(c, req)
	if err != nil {
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
	if resp.Body == http.NoBody {
		if stop.stop() && reusable && requestSent(sent) {
			p.put(c)
		} else {
			c.conn.Close()
		}
		return resp, nil
	}
	resp.Body = &h1Body{rc: resp.Body, c: c, p: p, stop: stop, reusable: reusable, sent: sent}
	return resp, nil
}

// cancelWatch closes a connection when the context of its exchange is cancelled, until
// stopped.
type cancelWatch struct {
	st       *streamTimer // the exchange's context, which watches conn itself
	conn     net.Conn
	afterFun func() bool // otherwise, the stop function of a context.AfterFunc
}

func closeOnCancel(ctx context.Context, conn net.Conn) cancelWatch {
	if st, ok := ctx.(*streamTimer); ok && st.Watch(conn) {
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
// 103 Early Hints), which are not forwarded.
func awaitResponse(c *h1Conn, req *http.Request) (*http.Response, error) {
	for {
		if _, err := c.br.Peek(1); err != nil {
			return nil, fmt.Errorf("read response: %w: %w", errNoResponse, err)
		}
		r, err := readResponse(c.br, req)
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if r.StatusCode >= 100 && r.StatusCode < 200 && r.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return r, nil
	}
}

// requestSent reports whether the request's body, written by its own goroutine (sent is
// nil otherwise), is all out: only then may its connection carry another request. When it
// is not, the caller closes the connection, which ends the writer.
func requestSent(sent chan error) bool {
	if sent == nil {
		return true
	}
	select {
	case err := <-sent:
		return err == nil
	default:
		return false
	}
}

// readErrBody remembers whether reading the downstream body failed.
type readErrBody struct {
	io.ReadCloser
	err error
}

func (b *readErrBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// h1Body returns its connection to the pool once the body was read to the end and closed.
type h1Body struct {
	rc       io.ReadCloser
	c        *h1Conn
	p        *h1Pool
	stop     cancelWatch
	reusable bool
	sent     chan error // see requestSent
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
	if b.stop.stop() && b.eof && b.reusable && err == nil && requestSent(b.sent) {
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
