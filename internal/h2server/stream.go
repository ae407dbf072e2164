package h2server

import (
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/reqctx"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// stream is one request and its response. Fields below mu are guarded by the
// connection's mu.
type stream struct {
	c   *conn
	id  uint32
	req *http.Request
	ctx reqctx.Context // the request's
	rw  responseWriter // used by the handler's goroutine only

	readTimer, writeTimer *time.Timer // nil once stopped

	// The connection's mu guards the rest.
	cond           sync.Cond // on c.mu: body data, end, or reset
	sendWindow     int64
	recvWindow     int64 // what the client may still send on this stream
	refund         int64 // consumed bytes not yet returned to the stream window
	body           []byte
	bodyOff        int
	bodyErr        error // io.EOF after END_STREAM; the reset's cause after a reset
	bodyClosed     bool  // the handler closed the body
	declared       int64 // the request's Content-Length, -1 if none
	received       int64
	expectContinue bool
	remoteDone     bool // the client has ended its side (END_STREAM)
	localDone      bool // the response has ended (END_STREAM sent)
	closed         bool // no longer in the connection's stream map
	resetErr       error
	trailer        http.Header // received trailers, for the request once its body is read
	headerTooLarge bool        // answered 431 without the handler
	headerSize     int64       // the request's decoded header list, as conn.heldHeader counts it
	noBody         bool        // the request came without a body (END_STREAM on its headers)
	timerLate      bool        // a timer's function may run: it had fired when stopped

	// request, fields and url hold the request, its header values and (for a usual
	// target) its URL, in the stream's allocation: a request costs fewer allocations.
	request http.Request
	fields  [maxInlineFields]string
	url     url.URL
	// header is the request's header map as made, kept emptied with the stream for the
	// next request when the stream is used again (release).
	header http.Header
}

// streams holds ended streams for new ones (see release): the stream and its request are
// most of what a request allocates, and fewer bytes allocated make the collector, whose
// marking slows every request in flight, run less often.
var streams sync.Pool

// testHookReleased, when set (by tests, before any server runs), is called for each
// stream that release hands on.
var testHookReleased func()

// maxInlineFields is how many header values a request may have for them to fit in its
// stream (stream.fields).
const maxInlineFields = 16

// newStream builds the request of a new stream from its header block, whose fields
// readHeaderBlock has checked one by one. A malformed request returns the stream error
// code to reset it with. It is called with c.mu held, by the reading goroutine.
func (c *conn) newStream(f *http2.MetaHeadersFrame) (*stream, http2.ErrCode) {
	var method, scheme, authority, path string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		}
	}
	if !validRequestPseudos(method, scheme, authority, path, c.block.pseudos) {
		return nil, http2.ErrCodeProtocol
	}
	isConnect := method == "CONNECT"

	st, _ := streams.Get().(*stream)
	if st == nil {
		st = new(stream)
	}
	header := st.header // empty
	*st = stream{c: c, id: f.StreamID, declared: -1, sendWindow: c.peerWindow, recvWindow: streamWindow}
	st.cond.L = &c.mu
	regular := f.RegularFields()
	if header == nil {
		header = make(http.Header, len(regular))
	}
	st.header = header
	values := st.fields[:0]
	if len(regular) > len(st.fields) {
		values = make([]string, 0, len(regular))
	}
	var cookies []string
	for _, hf := range regular {
		switch hf.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return nil, http2.ErrCodeProtocol // connection-specific (RFC 9113, 8.2.2)
		case "te":
			if hf.Value != "trailers" {
				return nil, http2.ErrCodeProtocol
			}
		case "cookie":
			// Split for compression; joined again for HTTP/1 semantics (8.2.3).
			cookies = append(cookies, hf.Value)
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(hf.Name)
		if vv := header[k]; vv != nil {
			header[k] = append(vv, hf.Value)
		} else {
			values = append(values, hf.Value)
			header[k] = values[len(values)-1 : len(values) : len(values)]
		}
	}
	if len(cookies) > 0 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if authority == "" {
		// The Host field stands in for :authority (RFC 9113 §8.3.1), held to the same
		// rules: it becomes the upstream's Host.
		if hosts := header["Host"]; len(hosts) > 0 {
			if len(hosts) > 1 || !validAuthority(hosts[0]) {
				return nil, http2.ErrCodeProtocol
			}
			authority = hosts[0]
		}
	}
	delete(header, "Host")

	if f.Truncated {
		// Over MaxHeaderBytes: answered with 431 like net/http, without the handler.
		st.req = &http.Request{Method: method, Header: http.Header{}, Proto: "HTTP/2.0", ProtoMajor: 2, Body: http.NoBody, URL: &url.URL{}}
		st.ctx.Context = c.baseCtx
		st.req = st.req.WithContext(&st.ctx)
		st.headerTooLarge = true
		return st, http2.ErrCodeNo
	}

	var u *url.URL
	var err error
	requestURI := path
	if isConnect {
		st.url = url.URL{Host: authority}
		u = &st.url
		requestURI = authority
	} else if u, err = httpascii.ParseRequestURI(path, &st.url); err != nil {
		return nil, http2.ErrCodeProtocol
	}

	contentLength := int64(-1)
	if vv := header["Content-Length"]; len(vv) > 0 {
		for _, v := range vv[1:] {
			if v != vv[0] {
				return nil, http2.ErrCodeProtocol
			}
		}
		n, err := strconv.ParseUint(vv[0], 10, 63)
		if err != nil {
			return nil, http2.ErrCodeProtocol
		}
		contentLength = int64(n)
		st.declared = contentLength
	}

	var trailer http.Header
	for _, v := range header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
			if k == "" || !httpguts.ValidTrailerHeader(k) {
				continue
			}
			if trailer == nil {
				trailer = make(http.Header)
			}
			trailer[k] = nil
		}
	}
	delete(header, "Trailer")

	st.ctx.Context = c.baseCtx
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Host:       authority,
		RemoteAddr: c.remote,
		TLS:        c.tlsState,
		RequestURI: requestURI,
		Trailer:    trailer,
	}
	if f.StreamEnded() {
		if contentLength > 0 {
			return nil, http2.ErrCodeProtocol
		}
		req.ContentLength = 0
		req.Body = http.NoBody
		st.noBody = true
	} else {
		req.ContentLength = contentLength
		if contentLength == 0 {
			req.ContentLength = -1 // as net/http: a zero length with a body still to end
		}
		req.Body = &requestBody{st: st}
		st.expectContinue = httpguts.HeaderValuesContainsToken(header["Expect"], "100-continue")
	}
	// WithContext is the only way to set a request's context; inlined here, its copy does
	// not escape, and the request is made in st.
	st.request = *req.WithContext(&st.ctx)
	st.req = &st.request
	return st, http2.ErrCodeNo
}

// trailerFields returns a trailer block's fields, or false if one may not be a trailer.
func trailerFields(f *http2.MetaHeadersFrame) (http.Header, bool) {
	h := make(http.Header)
	for _, hf := range f.RegularFields() {
		k := textproto.CanonicalMIMEHeaderKey(hf.Name)
		if !httpguts.ValidTrailerHeader(k) {
			return nil, false
		}
		h[k] = append(h[k], hf.Value)
	}
	return h, true
}

// abort ends the stream with err: its handler's context is cancelled and its body and
// writes fail. It is called with c.mu held.
func (st *stream) abort(err error) {
	if st.resetErr == nil {
		st.resetErr = err
	}
	if st.bodyErr == nil {
		st.bodyErr = err
	}
	st.ctx.Cancel(err)
	st.stopTimers()
	st.cond.Broadcast()
	if st.c.waiters > 0 {
		st.c.cond.Broadcast()
	}
}

func (st *stream) wakeReader() { st.cond.Signal() }

// returnWindow gives n consumed bytes back to the client's stream window, in batches. It
// is called with c.mu held.
func (st *stream) returnWindow(n int64) {
	if st.remoteDone || st.closed {
		return
	}
	st.refund += n
	if st.refund >= streamWindow/4 {
		st.c.wfr.WriteWindowUpdate(st.id, uint32(st.refund))
		st.recvWindow += st.refund
		st.refund = 0
		st.c.wake()
	}
}

// startTimers arms http.Server's ReadTimeout (the request body) and WriteTimeout (the
// whole stream) as net/http's HTTP/2 server does. It is called with c.mu held.
func (st *stream) startTimers() {
	if d := st.c.readTimeout; d > 0 && !st.remoteDone {
		st.readTimer = time.AfterFunc(d, st.onReadTimeout)
	}
	if d := st.c.writeTimeout; d > 0 {
		st.writeTimer = time.AfterFunc(d, st.onWriteTimeout)
	}
}

func (st *stream) stopReadTimer() { st.stopTimer(&st.readTimer) }

func (st *stream) stopTimers() {
	st.stopTimer(&st.readTimer)
	st.stopTimer(&st.writeTimer)
}

// stopTimer stops *t, if set, and notes whether its function may yet run.
func (st *stream) stopTimer(t **time.Timer) {
	if *t != nil {
		if !(*t).Stop() {
			st.timerLate = true
		}
		*t = nil
	}
}

// reusableLocked reports whether nothing but its handler's goroutine can reach the stream
// once the handler is done, if the handler returned without a panic and the request's
// context was quiet (reqctx.Context.Quiet) before the stream's own cancellation: it read no
// body (so no goroutine of the handler's can still be reading it), it ended normally
// (closed, so out of the connection's map, and never reset), and no timer function of it
// may still run. Anything else is left to the collector. It is called with c.mu held.
func (st *stream) reusableLocked() bool {
	return st.noBody && st.closed && st.resetErr == nil && !st.timerLate &&
		st.readTimer == nil && st.writeTimer == nil
}

// release hands a stream that runHandler found reusable on for a new one (newStream). It
// is called without c.mu, after the response writer's release, by the goroutine that ran
// the handler.
func (st *stream) release() {
	header := st.header
	if len(header) > maxInlineFields {
		header = nil // a large map is not kept for every request after it
	}
	clear(header)
	*st = stream{header: header}
	if testHookReleased != nil {
		testHookReleased()
	}
	streams.Put(st)
}

func (st *stream) onReadTimeout() {
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	if !st.remoteDone && st.bodyErr == nil {
		st.bodyErr = os.ErrDeadlineExceeded
		st.cond.Broadcast()
	}
}

func (st *stream) onWriteTimeout() {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !st.closed && c.dead == nil {
		c.resetStream(st.id, http2.ErrCodeInternal, errWriteTimeout)
	}
}

// requestBody is a stream's request body: what the client has sent and the handler not
// yet read. Reading returns window to the client.
type requestBody struct {
	st *stream
}

func (b *requestBody) Read(p []byte) (int, error) {
	st := b.st
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.expectContinue {
		st.expectContinue = false
		if len(st.body) == st.bodyOff && st.bodyErr == nil && !st.closed {
			c.writeHeaderBlock(st.id, false, 100, nil, nil)
		}
	}
	for len(st.body) == st.bodyOff && st.bodyErr == nil && !st.bodyClosed {
		st.cond.Wait()
	}
	if st.bodyClosed {
		return 0, http.ErrBodyReadAfterClose
	}
	if len(st.body) == st.bodyOff {
		if st.bodyErr == io.EOF && st.trailer != nil {
			for k, v := range st.trailer {
				st.req.Trailer[k] = v
			}
			st.trailer = nil
		}
		return 0, st.bodyErr
	}
	n := copy(p, st.body[st.bodyOff:])
	st.bodyOff += n
	if st.bodyOff == len(st.body) {
		st.body, st.bodyOff = st.body[:0], 0
	}
	c.returnConnWindow(int64(n))
	st.returnWindow(int64(n))
	return n, nil
}

func (b *requestBody) Close() error {
	st := b.st
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.bodyClosed {
		return nil
	}
	st.bodyClosed = true
	if !st.closed {
		c.returnConnWindow(int64(len(st.body) - st.bodyOff))
	}
	st.body, st.bodyOff = nil, 0
	st.cond.Broadcast()
	return nil
}
