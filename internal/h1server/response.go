package h1server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/httpdate"
	"github.com/gangway-ecs/gangway/internal/reqctx"
	"golang.org/x/net/http/httpguts"
)

// holdMax is how much body a response without a Content-Length holds back before its
// head is sent: a handler that ends within it gets a Content-Length instead of chunks.
const holdMax = 2048

// maxInlineFields is how many header values (and the empty line) a request head may have
// for its values to fit in its response's allocation (response.fields); a load balancer's
// requests have about a dozen.
const maxInlineFields = 16

// response is the http.ResponseWriter of one request. Its head goes into the
// connection's buffer when the handler calls WriteHeader (the status line and the
// handler's header fields, which later changes to the header then do not affect, as in
// net/http) and is completed by commit, once the framing is known: at once when the
// handler declared a Content-Length, else when the held-back body overflows, the handler
// flushes, or it returns.
type response struct {
	c      *conn
	req    *http.Request
	body   *body // nil without a request body
	header http.Header
	ctx    reqctx.Context // the request's
	// request, url and fields hold the request, its URL and its header values, in the
	// response's allocation: a request costs fewer allocations.
	request http.Request
	url     url.URL
	fields  [maxInlineFields]string

	status      int
	wroteHeader bool // the final status is chosen and its head started
	committed   bool // the head is complete
	chunked     bool
	noBody      bool // HEAD, or a status without a body: body bytes are dropped
	isHEAD      bool
	sniff       bool // the head lacks a Content-Type that the first bytes decide
	teIdentity  bool
	teChunked   bool
	keepAlive10 bool // an HTTP/1.0 client asked for keep-alive
	closeAfter  bool
	// upgrade: the request asked to switch protocols; the connection ends after the
	// response unless the handler hijacks it.
	upgrade    bool
	broken     bool // a write failed: the connection is unusable
	hijacked   bool
	fullDuplex bool // EnableFullDuplex: the body is left to the handler past the head
	saidClose  bool // the head has a Connection: close
	// prefixTrailers: the header had http.TrailerPrefix fields at WriteHeader.
	prefixTrailers bool

	contentLength int64 // declared by the handler, -1 if not
	written       int64
	hold          []byte
	trailers      []string // declared trailer names

	continueSent      bool // guarded by c.wmu, like wroteHeader's effect on it
	expectationFailed bool
	done              atomic.Bool
	quiet             bool // the request's context was quiet when the handler returned

	// reqHeader is the request's header map as made, kept emptied with the response for
	// the next request when the response is used again (release).
	reqHeader http.Header
}

// responses holds ended responses for new requests (see release): the response and its
// request are most of what a request allocates, and fewer bytes allocated make the
// collector, whose marking slows every request in flight, run less often.
var responses sync.Pool

// testHookReleased, when set (by tests, before any server runs), is called for each
// response that release hands on.
var testHookReleased func()

// release hands a response whose request has been served on for a new request
// (parse) when nothing can reach it any more: its request had no body (so no goroutine of
// the handler's can still be reading it), the connection was not hijacked or upgraded,
// and the request's context was quiet (reqctx.Context.Quiet) when the handler returned.
// Anything else is left to the collector. It is called by the connection's goroutine once
// the response is finished and the connection is to serve another request; the connection
// keeps nothing of w (c.cur is cleared when the handler returns).
func (w *response) release() {
	if !w.quiet || w.body != nil || w.hijacked || w.upgrade || w.broken {
		return
	}
	header := w.reqHeader
	if len(header) > maxInlineFields {
		header = nil // a large map is not kept for every request after it
	}
	clear(header)
	*w = response{reqHeader: header}
	if testHookReleased != nil {
		testHookReleased()
	}
	responses.Put(w)
}

func (w *response) init(c *conn, r *http.Request) {
	w.c, w.req, w.contentLength, w.isHEAD = c, r, -1, r.Method == http.MethodHead
	if b, ok := r.Body.(*body); ok {
		w.body = b
	}
	w.keepAlive10 = r.ProtoMajor == 1 && r.ProtoMinor == 0 && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "keep-alive")
	w.closeAfter = r.Close
}

// cancel cancels the request's context.
func (w *response) cancel() { w.ctx.Cancel(nil) }

func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

// AdoptHeader makes h the response's header in place of its own, which must still be
// empty, so that a proxy hands the header of an upstream's answer over without copying
// it. It reports false, and changes nothing, once the header has a field or the head is
// written.
func (w *response) AdoptHeader(h http.Header) bool {
	if w.wroteHeader || w.hijacked || len(w.header) > 0 {
		return false
	}
	w.header = h
	return true
}

func (w *response) WriteHeader(code int) {
	if w.hijacked {
		w.c.s.logf("http: response.WriteHeader on hijacked connection")
		return
	}
	if w.wroteHeader {
		w.c.s.logf("http: superfluous response.WriteHeader call")
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	h := w.header
	if cl := h["Content-Length"]; len(cl) > 0 {
		if v, err := strconv.ParseInt(cl[0], 10, 64); err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.s.logf("http: invalid Content-Length of %q", cl[0])
		}
	}
	if te := h["Transfer-Encoding"]; len(te) > 0 {
		w.teIdentity = te[0] == "identity"
		w.teChunked = !w.teIdentity
		if w.teChunked {
			w.contentLength = -1
		}
	}
	bodyAllowed := bodyAllowedForStatus(code)
	w.noBody = w.isHEAD || !bodyAllowed
	_, hasType := h["Content-Type"]
	w.sniff = bodyAllowed && !hasType && !w.teChunked && h.Get("Content-Encoding") == ""
	w.saidClose = httpguts.HeaderValuesContainsToken(h["Connection"], "close")
	if !w.c.s.keepAlivesEnabled() || w.saidClose || w.req.ProtoMajor != 1 || w.upgrade && code != http.StatusSwitchingProtocols {
		w.closeAfter = true
	}
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(httpascii.TrimOWS(k)); k != "" {
				w.trailers = append(w.trailers, k)
			}
		}
	}

	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	bw := w.startHeadLocked(code)
	writeHeader(bw, h, func(k string) bool {
		switch k {
		case "Content-Length", "Transfer-Encoding":
			return true
		case "Content-Type":
			return code == http.StatusNotModified
		case "Connection":
			return w.closeAfter && !w.saidClose
		}
		return false
	})
	// As net/http: only trailers named by then count towards choosing chunks.
	w.prefixTrailers = hasPrefixTrailers(h)
	_, hasDate := h["Date"]
	w.endFieldsLocked(hasDate, bodyAllowed)
}

// startHeadLocked sets the final status and writes its status line, for WriteHeader and
// WriteForwarded, which then write the fields to the writer it returns.
func (w *response) startHeadLocked(code int) *bufio.Writer {
	w.wroteHeader = true
	w.status = code
	bw := w.c.bw
	bw.WriteString(statusLine(w.req.ProtoAtLeast(1, 1), code))
	return bw
}

// endFieldsLocked ends the fields WriteHeader and WriteForwarded write: a Date unless the
// head has one, and the head's end at once when its framing is known.
func (w *response) endFieldsLocked(hasDate, bodyAllowed bool) {
	if !hasDate {
		bw := w.c.bw
		bw.WriteString("Date: ")
		bw.WriteString(httpdate.Now())
		bw.WriteString("\r\n")
	}
	if !bodyAllowed || w.contentLength >= 0 && (!w.sniff || w.contentLength == 0 || w.isHEAD) {
		w.commitLocked(false, nil)
	}
}

// CanWriteForwarded reports whether WriteForwarded would write the head: nothing is written
// yet and the header map has no field (which WriteForwarded would not write).
func (w *response) CanWriteForwarded() bool {
	return !w.wroteHeader && !w.hijacked && len(w.header) == 0
}

// WriteForwarded is WriteHeader for an answer a proxy forwards from an HTTP/1.1 upstream
// as it came: fields are its field lines (see httpascii.Forwarded) and contentLength its
// body's length (-1: unknown). The hop-by-hop fields, those its Connection field names, and
// Content-Length, which the server writes itself, are left out; the rest is written as it
// is, in its order, without a header map. Framing, Date and Content-Type sniffing are as
// WriteHeader's with the same fields in the header. code is a final status (200 to 999).
func (w *response) WriteForwarded(code int, fields string, contentLength int64) {
	if w.hijacked || w.wroteHeader {
		w.WriteHeader(code) // says why, as WriteHeader does
		return
	}
	if code < 200 || code > 999 {
		panic(fmt.Sprintf("invalid WriteForwarded code %v", code))
	}
	w.contentLength = contentLength
	f := httpascii.ReadForwarded(fields)
	bodyAllowed := bodyAllowedForStatus(code)
	w.noBody = w.isHEAD || !bodyAllowed
	w.sniff = bodyAllowed && !f.HasType && !f.Encoded
	if !w.c.s.keepAlivesEnabled() || w.req.ProtoMajor != 1 || w.upgrade && code != http.StatusSwitchingProtocols {
		w.closeAfter = true
	}

	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	bw := w.startHeadLocked(code)
	for r := fields; r != ""; {
		name, _, rest := httpascii.CutField(r)
		line := r[:len(r)-len(rest)]
		r = rest
		if f.Skip(name) || httpascii.EqualFold(name, "content-length") ||
			code == http.StatusNotModified && httpascii.EqualFold(name, "content-type") {
			continue
		}
		bw.WriteString(line)
	}
	w.endFieldsLocked(f.HasDate, bodyAllowed)
}

// writeInformational sends a 1xx response other than 101 at once.
func (w *response) writeInformational(code int) {
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	if code == http.StatusContinue {
		if w.continueSent {
			return
		}
		w.continueSent = true
	}
	bw := w.c.bw
	bw.WriteString(statusLine(w.req.ProtoAtLeast(1, 1), code))
	writeHeader(bw, w.header, func(k string) bool { return k == "Content-Length" || k == "Transfer-Encoding" })
	bw.WriteString("\r\n")
	w.flushErr(bw.Flush())
}

// writeContinue answers an Expect: 100-continue, unless the final response has begun.
func (w *response) writeContinue() {
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	if w.wroteHeader || w.continueSent {
		return
	}
	w.continueSent = true
	w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	if w.c.bw.Flush() != nil {
		// Called from whichever goroutine reads the body: the response's own fields are
		// the handler's, and its next write fails the same way.
		w.cancel()
	}
}

// commitLocked completes the head once the framing is known; done: the handler has
// returned, so what is held back is the whole body. next is a body write about to
// follow, for Content-Type sniffing.
func (w *response) commitLocked(done bool, next []byte) {
	bw := w.c.bw
	switch {
	case w.noBody:
		if w.isHEAD && w.contentLength >= 0 {
			writeContentLength(bw, w.contentLength)
		} else if w.isHEAD && done && len(w.hold) > 0 && bodyAllowedForStatus(w.status) {
			writeContentLength(bw, int64(len(w.hold)))
		}
	case w.contentLength >= 0:
		writeContentLength(bw, w.contentLength)
	case w.teIdentity:
		w.closeAfter = true
	case done && len(w.trailers) == 0 && !w.teChunked && !w.prefixTrailers:
		writeContentLength(bw, int64(len(w.hold)))
		w.contentLength = int64(len(w.hold))
	case w.req.ProtoAtLeast(1, 1):
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		w.closeAfter = true
	}
	if w.sniff { // the status allows a body, so noBody means HEAD, which sniffs too
		p := w.hold
		if len(p) == 0 {
			p = next
		}
		if len(p) > 0 {
			bw.WriteString("Content-Type: ")
			bw.WriteString(http.DetectContentType(p))
			bw.WriteString("\r\n")
		}
	}
	if w.keepAlive10 && !w.closeAfter {
		if w.contentLength >= 0 || w.noBody {
			bw.WriteString("Connection: keep-alive\r\n")
		} else {
			w.closeAfter = true
		}
	}
	w.settleBody()
	if w.closeAfter && !w.saidClose && w.req.ProtoAtLeast(1, 1) {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	w.committed = true
	if len(w.hold) > 0 && !w.noBody {
		w.writeBody(w.hold)
	}
	w.hold = nil
}

func (w *response) commit(done bool, next []byte) {
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	w.commitLocked(done, next)
}

func (w *response) Write(p []byte) (int, error) {
	if err := w.beforeWrite(len(p)); err != nil || len(p) == 0 {
		return 0, err
	}
	if !w.committed {
		if w.contentLength < 0 && len(w.hold)+len(p) <= holdMax {
			if w.hold == nil {
				if w.c.hold == nil {
					w.c.hold = getHold()
				}
				w.hold = w.c.hold[:0]
			}
			w.hold = append(w.hold, p...)
			return len(p), nil
		}
		w.commit(false, p)
	}
	if w.noBody {
		return len(p), nil
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	if !w.committed || w.chunked || len(s) == 0 {
		return w.Write([]byte(s))
	}
	if err := w.beforeWrite(len(s)); err != nil {
		return 0, err
	}
	if w.noBody {
		return len(s), nil
	}
	if _, err := w.c.bw.WriteString(s); err != nil {
		return 0, w.flushErr(err)
	}
	return len(s), nil
}

// beforeWrite starts the response if needed and counts n body bytes about to be written.
func (w *response) beforeWrite(n int) error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if n == 0 {
		return nil
	}
	if !bodyAllowedForStatus(w.status) {
		return http.ErrBodyNotAllowed
	}
	w.written += int64(n)
	if w.contentLength >= 0 && w.written > w.contentLength {
		return http.ErrContentLength
	}
	return nil
}

func (w *response) writeBody(p []byte) error {
	bw := w.c.bw
	if w.chunked {
		if bw.Available() < 18 {
			bw.Flush()
		}
		bw.Write(append(strconv.AppendUint(bw.AvailableBuffer(), uint64(len(p)), 16), "\r\n"...))
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return w.flushErr(err)
	}
	_, err := bw.Write(p)
	return w.flushErr(err)
}

// flushErr notes a failed write: the client is gone, the request is cancelled.
func (w *response) flushErr(err error) error {
	if err != nil && !w.broken {
		w.broken = true
		w.closeAfter = true
		w.cancel()
	}
	return err
}

func (w *response) Flush() { w.FlushError() }

// FlushError sends what the response holds (http.ResponseController.Flush).
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false, nil)
	}
	return w.flushErr(w.c.bw.Flush())
}

// finish ends the response after the handler returned.
func (w *response) finish() {
	w.done.Store(true)
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true, nil)
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	if w.contentLength >= 0 && !w.noBody && w.written != w.contentLength {
		w.closeAfter = true // too short: the client would read the next response as body
	}
	w.flushErr(bw.Flush())
	if w.body != nil && !w.broken && !w.closeAfter && !w.body.discardRest() {
		w.closeAfter = true
	}
}

func (w *response) writeTrailers() {
	bw := w.c.bw
	for _, k := range w.trailers {
		for _, v := range w.header[k] {
			writeField(bw, k, v)
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				writeField(bw, name, v)
			}
		}
	}
}

// settleBody deals with what is left of the request body as the head completes, as
// net/http does unless the handler asked for full duplex: it is read and dropped up to
// maxPostHandlerReadBytes (so that a client that sends its whole request before reading
// the response cannot deadlock against it), and past that, or after a body that failed
// or that the client was told to wait for, the connection closes after the response.
// The handler cannot read the body afterwards. c.wmu is held.
func (w *response) settleBody() {
	b := w.body
	if b == nil || w.closeAfter || w.fullDuplex {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.eof:
	case b.expect || b.err != nil:
		// Expect: 100-continue not read to its end: the client may still send it, or not.
		w.closeAfter = true
	case b.closed || b.remain >= maxPostHandlerReadBytes:
		w.closeAfter = true
	default:
		if !b.discardLocked() {
			w.closeAfter = true
		}
	}
	b.closed = true
}

// hasPrefixTrailers reports whether h has http.TrailerPrefix fields, which need chunks.
func hasPrefixTrailers(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// Hijack hands the connection to the handler (http.Hijacker).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.done.Load() {
		panic("h1server: Hijack called after ServeHTTP finished")
	}
	if w.wroteHeader && !w.committed {
		w.commit(false, nil)
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	rwc, brw, err := w.c.hijackLocked()
	if err == nil {
		w.hijacked = true
	}
	return rwc, brw, err
}

// SetReadDeadline, SetWriteDeadline and EnableFullDuplex serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.forgetReadDeadline()
	return w.c.rwc.SetReadDeadline(t)
}

func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex leaves the request body to the handler while the response is written.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

var statusLines11, statusLines10 [600]string

func init() {
	for code := range statusLines11 {
		if text := http.StatusText(code); text != "" {
			statusLines11[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
			statusLines10[code] = "HTTP/1.0 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
}

// statusLine is the status line for code, "HTTP/1.0" to an HTTP/1.0 request as net/http.
func statusLine(is11 bool, code int) string {
	if code < len(statusLines11) {
		if s := statusLines11[code]; s != "" {
			if !is11 {
				return statusLines10[code]
			}
			return s
		}
	}
	proto := "HTTP/1.1 "
	if !is11 {
		proto = "HTTP/1.0 "
	}
	return proto + strconv.Itoa(code) + " status code " + strconv.Itoa(code) + "\r\n"
}

// writeHeader writes h's fields, sorted by name, except those skip names; fields with
// invalid names are dropped and line breaks in values become spaces (no response
// splitting).
func writeHeader(bw *bufio.Writer, h http.Header, skip func(string) bool) {
	var arr [24]string
	keys := arr[:0]
	for k := range h {
		if !skip(k) && !strings.HasPrefix(k, http.TrailerPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			writeField(bw, k, v)
		}
	}
}

func writeField(bw *bufio.Writer, k, v string) {
	if !httpguts.ValidHeaderFieldName(k) {
		return
	}
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(httpascii.TrimOWS(v))
	bw.WriteString("\r\n")
}

func writeContentLength(bw *bufio.Writer, n int64) {
	if bw.Available() < 40 {
		bw.Flush()
	}
	b := append(bw.AvailableBuffer(), "Content-Length: "...)
	bw.Write(append(strconv.AppendInt(b, n, 10), "\r\n"...))
}
