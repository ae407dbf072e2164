package h2server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/httpdate"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// bufferSize is the response body a handler writes before it goes out as DATA: a small
// response leaves in the same batch as its headers, with a Content-Length.
const bufferSize = 4 << 10

var errTooLong = errors.New("http2: handler wrote more than the declared Content-Length")

// responseWriter is a stream's http.ResponseWriter. It is used by the handler's goroutine
// only, as net/http requires; what it sends goes through the connection's lock.
type responseWriter struct {
	st          *stream
	c           *conn
	header      http.Header
	status      int
	wroteHeader bool // the final status is set
	sentHeader  bool // its HEADERS frame is queued
	noBody      bool // HEAD, or a status without a body
	bodyErr     error
	declared    int64 // the Content-Length the handler set, -1 if none
	written     int64
	buf         []byte  // the body not yet sent; never grows past bufferSize
	pooled      *[]byte // buf's pool entry
	fields      string  // WriteForwarded's field lines, sent in place of header's fields
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufferSize); return &b }}

// grow gives rw a body buffer from the pool if it has none.
func (rw *responseWriter) grow() {
	if rw.pooled == nil {
		rw.pooled = bufPool.Get().(*[]byte)
		rw.buf = (*rw.pooled)[:0]
	}
}

// release returns the body buffer once the response has ended.
func (rw *responseWriter) release() {
	if rw.pooled != nil {
		bufPool.Put(rw.pooled)
		rw.pooled, rw.buf = nil, nil
	}
}

func (rw *responseWriter) Header() http.Header {
	if rw.header == nil {
		rw.header = make(http.Header)
	}
	return rw.header
}

// AdoptHeader makes h the response's header in place of its own, which must still be
// empty, so that a proxy hands the header of an upstream's answer over without copying
// it. It reports false, and changes nothing, once the header has a field or the head is
// written.
func (rw *responseWriter) AdoptHeader(h http.Header) bool {
	if rw.wroteHeader || len(rw.header) > 0 {
		return false
	}
	rw.header = h
	return true
}

// CanWriteForwarded reports whether WriteForwarded would set the head: it is not set yet
// and the header map has no field (which WriteForwarded would not send).
func (rw *responseWriter) CanWriteForwarded() bool {
	return !rw.wroteHeader && len(rw.header) == 0
}

// WriteForwarded is WriteHeader for an answer a proxy forwards from an HTTP/1.1 upstream as
// it came: fields are its field lines (see httpascii.Forwarded) and contentLength its body's
// length (-1: unknown). They are sent without a header map, names in lower case; the
// hop-by-hop fields and those its Connection field names are left out. Date and
// Content-Type sniffing are as for the same fields in the header. code is a final status
// (200 to 999). It does nothing once the head is set.
func (rw *responseWriter) WriteForwarded(code int, fields string, contentLength int64) {
	if rw.wroteHeader {
		return
	}
	if code < 200 || code > 999 {
		panic(fmt.Sprintf("invalid WriteForwarded code %v", code))
	}
	rw.fields = fields
	rw.setStatus(code)
	rw.declared = contentLength
}

func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An informational response (103 Early Hints, say) goes out at once.
		c := rw.c
		c.mu.Lock()
		if rw.st.writeErr() == nil {
			c.writeHeaderBlock(rw.st.id, false, code, rw.header, nil)
		}
		c.mu.Unlock()
		return
	}
	rw.setStatus(code)
	if v := rw.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 63); err == nil {
			rw.declared = int64(n)
		} else {
			rw.header.Del("Content-Length") // as net/http: an invalid one is not sent
		}
	}
}

// setStatus sets the final status; the Content-Length is not known yet.
func (rw *responseWriter) setStatus(code int) {
	rw.wroteHeader = true
	rw.status = code
	rw.declared = -1
	switch {
	case rw.st.req.Method == http.MethodHead:
		rw.noBody = true
	case code == http.StatusNoContent || code == http.StatusNotModified:
		rw.noBody = true
		rw.bodyErr = http.ErrBodyNotAllowed
	}
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.noBody {
		if rw.bodyErr != nil {
			return 0, rw.bodyErr
		}
		return len(p), nil
	}
	if rw.declared >= 0 && rw.written+int64(len(p)) > rw.declared {
		return 0, errTooLong
	}
	if rw.buffers(len(p)) {
		rw.grow()
		rw.buf = append(rw.buf, p...)
		rw.written += int64(len(p))
		return len(p), nil
	}
	c := rw.c
	c.mu.Lock()
	defer c.mu.Unlock()
	rw.sendHeader(false, false)
	err := c.writeData(rw.st, rw.buf, false)
	rw.buf = rw.buf[:0]
	if err == nil {
		err = c.writeData(rw.st, p, false)
	}
	if err != nil {
		return 0, err
	}
	rw.written += int64(len(p))
	return len(p), nil
}

func (rw *responseWriter) WriteString(s string) (int, error) {
	if rw.buffers(len(s)) {
		rw.grow()
		rw.buf = append(rw.buf, s...)
		rw.written += int64(len(s))
		return len(s), nil
	}
	return rw.Write([]byte(s))
}

// buffers reports whether n more body bytes are only buffered: the status is set, the
// response has a body, they fit the buffer and the declared length.
func (rw *responseWriter) buffers(n int) bool {
	return rw.wroteHeader && !rw.noBody && len(rw.buf)+n <= bufferSize &&
		(rw.declared < 0 || rw.written+int64(n) <= rw.declared)
}

// Flush sends the headers and whatever body is buffered.
func (rw *responseWriter) Flush() { _ = rw.FlushError() }

// FlushError is Flush, for http.ResponseController.
func (rw *responseWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	c := rw.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := rw.st.writeErr(); err != nil {
		return err
	}
	rw.sendHeader(false, false)
	err := c.writeData(rw.st, rw.buf, false)
	rw.buf = rw.buf[:0]
	return err
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController: a zero time
// removes the stream's deadline.
func (rw *responseWriter) SetReadDeadline(t time.Time) error {
	st := rw.st
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	st.stopReadTimer()
	st.readTimer = nil
	if !t.IsZero() && !st.remoteDone {
		st.readTimer = time.AfterFunc(time.Until(t), st.onReadTimeout)
	}
	return nil
}

func (rw *responseWriter) SetWriteDeadline(t time.Time) error {
	st := rw.st
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	if st.writeTimer != nil {
		st.writeTimer.Stop()
		st.writeTimer = nil
	}
	if !t.IsZero() && !st.closed {
		st.writeTimer = time.AfterFunc(time.Until(t), st.onWriteTimeout)
	}
	return nil
}

// EnableFullDuplex serves http.ResponseController: HTTP/2 streams always are.
func (rw *responseWriter) EnableFullDuplex() error { return nil }

// finish ends the response after the handler returns: headers if not yet sent, the
// buffered body, and the trailers or END_STREAM.
func (rw *responseWriter) finish() {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	st, c := rw.st, rw.c
	trailer := rw.trailers()
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.writeErr() != nil {
		return
	}
	if rw.declared >= 0 && rw.written < rw.declared && !rw.noBody {
		// A short body under a Content-Length: the client must see it fail.
		c.resetStream(st.id, http2.ErrCodeInternal, errStreamClosed)
		return
	}
	end := len(trailer) == 0
	if !rw.sentHeader {
		rw.sendHeader(true, end && len(rw.buf) == 0)
		if end && len(rw.buf) == 0 {
			rw.ended()
			return
		}
	}
	if err := c.writeData(st, rw.buf, end); err != nil {
		return
	}
	if !end {
		c.writeHeaderBlock(st.id, true, 0, trailer, nil)
	}
	rw.ended()
}

// ended records that the response is complete. It is called with c.mu held.
func (rw *responseWriter) ended() {
	st := rw.st
	st.localDone = true
	st.stopTimers()
	if st.remoteDone {
		rw.c.closeStream(st)
	}
}

// trailers collects the trailer values the handler set: keys it declared in the Trailer
// header, and keys with http.TrailerPrefix.
func (rw *responseWriter) trailers() http.Header {
	var t http.Header
	add := func(k string, v []string) {
		if len(v) == 0 || !httpguts.ValidTrailerHeader(k) {
			return
		}
		if t == nil {
			t = make(http.Header)
		}
		t[k] = v
	}
	for _, v := range rw.header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			add(k, rw.header[k])
		}
	}
	for k, v := range rw.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			add(http.CanonicalHeaderKey(k[len(http.TrailerPrefix):]), v)
		}
	}
	return t
}

// sendHeader queues the response's HEADERS frame if it is not yet queued. done says the
// handler has returned, so rw.buf is the whole body: it gets a Content-Length. It is
// called with c.mu held.
func (rw *responseWriter) sendHeader(done, endStream bool) {
	if rw.sentHeader {
		return
	}
	rw.sentHeader = true
	var fwd *httpascii.Forwarded
	var hasType, encoded, hasDate bool
	if rw.fields != "" {
		f := httpascii.ReadForwarded(rw.fields)
		fwd, hasType, encoded, hasDate = &f, f.HasType, f.Encoded, f.HasDate
	} else {
		_, hasType = rw.header["Content-Type"]
		encoded = rw.header.Get("Content-Encoding") != ""
		_, hasDate = rw.header["Date"]
	}
	var extra [3]hpack.HeaderField
	n := 0
	if !hasType && !rw.noBody && len(rw.buf) > 0 && !encoded {
		extra[n] = hpack.HeaderField{Name: "content-type", Value: http.DetectContentType(rw.buf)}
		n++
	}
	if done && rw.declared < 0 && !rw.noBody && rw.status >= 200 {
		extra[n] = hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(rw.buf))}
		n++
	}
	if !hasDate {
		extra[n] = hpack.HeaderField{Name: "date", Value: httpdate.Now()}
		n++
	}
	if !rw.st.headerTooLarge {
		rw.c.progress()
	}
	if fwd != nil {
		rw.c.writeFieldsBlock(rw.st.id, endStream, rw.status, fwd, extra[:n])
		return
	}
	rw.c.writeHeaderBlock(rw.st.id, endStream, rw.status, rw.header, extra[:n])
}

// writeErr is why a stream can no longer be written. It is called with c.mu held.
func (st *stream) writeErr() error {
	if st.c.dead != nil {
		return st.c.dead
	}
	if st.resetErr != nil {
		return st.resetErr
	}
	if st.closed {
		return errStreamClosed
	}
	return nil
}

// writeData queues p as DATA frames on st within the flow-control windows and the peer's
// frame size, waiting for window or output space as needed; end sets END_STREAM on the
// last. It is called with c.mu held.
func (c *conn) writeData(st *stream, p []byte, end bool) error {
	for {
		if err := st.writeErr(); err != nil {
			return err
		}
		if len(p) == 0 && !end {
			return nil
		}
		n := min(int64(len(p)), int64(c.peerFrame), st.sendWindow, c.sendWindow)
		if len(c.out) >= maxQueued || len(p) > 0 && n <= 0 {
			c.wait()
			continue
		}
		last := end && n == int64(len(p))
		c.wfr.WriteData(st.id, last, p[:n])
		if !st.headerTooLarge {
			c.progress() // a handler's response; not the 431 for a block decoded in vain
		}
		st.sendWindow -= n
		c.sendWindow -= n
		p = p[n:]
		c.wake()
		if len(p) == 0 {
			return nil
		}
	}
}

// writeHeaderBlock queues a header block: :status (unless 0, for trailers), h's fields
// and extra, as HEADERS and CONTINUATION frames. It is called with c.mu held.
func (c *conn) writeHeaderBlock(id uint32, endStream bool, status int, h http.Header, extra []hpack.HeaderField) {
	c.hbuf = c.hbuf[:0]
	if status != 0 {
		c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	}
	for k, vv := range h {
		name, ok := wireName(k)
		if !ok {
			continue
		}
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				c.henc.WriteField(hpack.HeaderField{Name: name, Value: v})
			}
		}
	}
	c.writeBlock(id, endStream, extra)
}

// writeFieldsBlock is writeHeaderBlock for an answer's field lines (WriteForwarded):
// :status, the fields fwd does not skip, names in lower case and values trimmed, and extra.
// It is called with c.mu held.
func (c *conn) writeFieldsBlock(id uint32, endStream bool, status int, fwd *httpascii.Forwarded, extra []hpack.HeaderField) {
	c.hbuf = c.hbuf[:0]
	c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	for r := fwd.Lines; r != ""; {
		name, value, rest := httpascii.CutField(r)
		r = rest
		if !fwd.Skip(name) {
			c.henc.WriteField(hpack.HeaderField{Name: lowerName(name), Value: httpascii.TrimOWS(value)})
		}
	}
	c.writeBlock(id, endStream, extra)
}

// lowerName is a valid field name in lower case, as HTTP/2 sends it; names already so, and
// the usual ones in canonical form, cost no allocation.
func lowerName(name string) string {
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			if v := commonLower[name]; v != "" {
				return v
			}
			return httpascii.Lower(name)
		}
	}
	return name
}

// writeBlock ends the header block in c.hbuf with extra and queues it as HEADERS and
// CONTINUATION frames. It is called with c.mu held.
func (c *conn) writeBlock(id uint32, endStream bool, extra []hpack.HeaderField) {
	for _, f := range extra {
		c.henc.WriteField(f)
	}
	block := c.hbuf
	first := true
	for first || len(block) > 0 {
		n := min(len(block), c.peerFrame)
		frag := block[:n]
		block = block[n:]
		if first {
			c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: endStream, EndHeaders: len(block) == 0})
			first = false
		} else {
			c.wfr.WriteContinuation(id, len(block) == 0, frag)
		}
	}
	c.wake()
}

// wireName is a response header's name on the wire: lower case, or false for a name that
// is invalid or connection-specific (RFC 9113, 8.2.2), or a trailer declaration.
func wireName(k string) (string, bool) {
	if v, ok := commonLower[k]; ok {
		return v, v != ""
	}
	if !httpguts.ValidHeaderFieldName(k) || strings.HasPrefix(k, http.TrailerPrefix) {
		return "", false
	}
	return httpascii.Lower(k), true
}

var commonLower = func() map[string]string {
	m := map[string]string{
		// Connection-specific: never sent.
		"Connection": "", "Proxy-Connection": "", "Keep-Alive": "", "Transfer-Encoding": "", "Upgrade": "",
	}
	for _, k := range []string{
		"Accept", "Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Allow", "Alt-Svc", "Cache-Control", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Location", "Content-Range",
		"Content-Security-Policy", "Content-Type", "Date", "Etag", "Expires", "Last-Modified", "Link",
		"Location", "Referrer-Policy", "Retry-After", "Server", "Set-Cookie", "Strict-Transport-Security",
		"Trailer", "Vary", "Via", "Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options",
		"X-Request-Id", "X-Xss-Protection",
	} {
		m[k] = httpascii.Lower(k)
	}
	return m
}()

// statusText is a status code as :status carries it.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 404:
		return "404"
	}
	return strconv.Itoa(code)
}
