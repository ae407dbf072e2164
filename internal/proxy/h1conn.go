package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gangway-ecs/gangway/internal/h1server"
	"github.com/gangway-ecs/gangway/internal/httpascii"
)

// framedConn is a downstream connection as the HTTP server reads it. It follows the HTTP/1
// message framing of what the client sends and holds each request head back until it is
// complete, so that a head with an ambiguous framing never reaches the server as it was sent:
//
//   - both Content-Length and Transfer-Encoding (RFC 9112 §6.1, the classic smuggling
//     vector; net/http would silently drop the Content-Length), Transfer-Encoding in an
//     HTTP/1.0 request, or an obsolete line folding (§5.2) make the head rejected: the
//     server is handed a head it answers with 400 Bad Request, and the connection ends there;
//   - anything the server itself will refuse (a bad request line, a bad Content-Length, an
//     unsupported transfer coding, a head over the size limit) is handed over as it is, and
//     the connection ends after it, whatever the server makes of it;
//   - a chunked body that is not well formed ends the connection where it goes wrong.
//
// Only message boundaries are followed; bodies pass through untouched. An HTTP/2 connection
// preface (when the listener serves HTTP/2) or a request asking for an Upgrade turns the
// checks off for the rest of the connection; the handler then closes the connection after
// any response other than 101 Switching Protocols (see recorder.closeUnlessUpgraded).
//
// On TLS listeners framedConn also owns the TLS server connection: net/http never sees a
// *tls.Conn, so the HTTP/2 it serves over TLS is detected by the connection preface, and the
// handler restores Request.TLS from tlsState.
type framedConn struct {
	net.Conn
	tls *tls.Conn // nil on plain listeners
	h2  bool      // the listener serves HTTP/2 after a connection preface
	// maxHead bounds a request head; the server refuses heads over its own, smaller, limit.
	maxHead int
	reject  func(c *framedConn, why rejection)
	// handshakeFailed, when set, hears of a failed TLS handshake.
	handshakeFailed func(c *framedConn, err error)
	// observe, when set (by tests), sees the request line of every complete head.
	observe func(requestLine []byte)

	// buf[off:ready] is checked and waits for Read; buf[ready:end] is read but not checked.
	// pooled is buf's pool entry while buf is one.
	buf             []byte
	pooled          *[]byte
	off, ready, end int
	err             error // returned once buf[off:ready] is drained; nothing more is read
	// ended: what is left to deliver is a head the server refuses, after which it closes
	// the connection. Reads then wait for the client without delivering anything more:
	// an error here would read to the server as the client going away, and cancel the
	// requests it still serves before that head.
	ended    bool
	state    frameState
	remain   uint64 // bytes left in a Content-Length body or a chunk (with its CRLF)
	requests int    // heads checked
	head     headInfo

	// handshakeTimeout bounds the TLS handshake's writes; its reads run under the
	// server's read deadline for the first request head.
	handshakeTimeout time.Duration
	handshook        bool
	alpnH2           bool        // the handshake chose HTTP/2: the preface must follow
	unchecked        atomic.Bool // an upgrade request turned the checks off
}

// rejection is why a head was refused: a metric label and a sentence for the log.
type rejection struct{ code, text string }

type frameState uint8

const (
	stateHead        frameState = iota
	stateBody                   // remain bytes of a Content-Length body
	stateChunkSize              // a chunk-size line
	stateChunkData              // remain bytes of chunk data, then CRLF
	stateChunkEnd               // the CRLF after chunk data
	stateTrailer                // trailer lines up to an empty line
	statePassthrough            // HTTP/2 or an upgraded connection: no more checks
)

// headInfo is what the checks need from one request head.
type headInfo struct {
	lines        int  // complete lines seen, the request line included
	scan         int  // where the next line starts, from the head's first byte
	empty        int  // empty lines before the request line
	start        int  // where the request line starts
	asterisk     bool // OPTIONS *, which the server answers itself
	proto        int  // 0: unknown, 10: HTTP/1.0, 11: HTTP/1.1 or a later 1.x
	contentLen   []string
	transferEnc  []string
	upgrade      bool
	folded       bool
	badStartLine bool
}

const (
	// maxChunkLine is net/http's limit on a chunk-size line (its reader's buffer); a
	// trailer section has the same bound.
	maxChunkLine = 4096
	// h1BufSize is the read size when the checks need more bytes.
	h1BufSize = 4096
)

var (
	h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	// rejectedHead is what the server gets in place of a rejected head: a header line
	// without a colon, which it answers with 400 Bad Request before closing.
	rejectedHead = []byte("GET / HTTP/1.1\r\nHost: rejected\r\nrejected\r\n\r\n")

	errFraming = errors.New("malformed HTTP/1 message framing")
	// errNoPreface: a connection that chose HTTP/2 by ALPN did not start with its preface.
	errNoPreface = errors.New("no HTTP/2 connection preface after ALPN chose h2")

	rejectCLTE   = rejection{"content_length_and_transfer_encoding", "both Content-Length and Transfer-Encoding"}
	rejectTE10   = rejection{"transfer_encoding_http10", "Transfer-Encoding in an HTTP/1.0 request"}
	rejectFolded = rejection{"obsolete_line_folding", "obsolete line folding in a header"}
)

var h1BufPool = sync.Pool{New: func() any { b := make([]byte, h1BufSize); return &b }}

func newFramedConn(c net.Conn, tlsConn *tls.Conn, h2 bool, maxHead int, handshakeTimeout time.Duration, reject func(*framedConn, rejection)) *framedConn {
	return &framedConn{Conn: c, tls: tlsConn, h2: h2, maxHead: maxHead, handshakeTimeout: handshakeTimeout, reject: reject}
}

// tlsState returns the connection's TLS state, or nil on a plain connection.
func (c *framedConn) tlsState() *tls.ConnectionState {
	if c.tls == nil {
		return nil
	}
	st := c.tls.ConnectionState()
	return &st
}

// CloseWrite passes a half-close on (a TCP FIN, or a TLS close_notify).
func (c *framedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *framedConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.tls != nil && !c.handshook {
		if err := c.handshake(); err != nil {
			return 0, err
		}
	}
	for {
		if c.off < c.ready {
			n := copy(p, c.buf[c.off:c.ready])
			c.off += n
			c.release()
			return n, nil
		}
		if c.err != nil {
			return 0, c.err
		}
		if c.ended {
			return c.discard()
		}
		if c.end == c.ready {
			// Nothing read ahead: large bodies and passthrough go straight into p.
			switch {
			case c.state == statePassthrough:
				return c.Conn.Read(p)
			case c.state == stateBody || c.state == stateChunkData && c.remain > 2:
				limit := c.remain
				if c.state == stateChunkData {
					limit -= 2 // the CRLF after the data is checked in buf
				}
				if uint64(len(p)) > limit {
					p = p[:limit]
				}
				n, err := c.Conn.Read(p)
				c.remain -= uint64(n)
				if c.state == stateBody && c.remain == 0 {
					c.state = stateHead
				}
				return n, err
			}
		}
		err := c.fill()
		c.check()
		if err != nil && c.off == c.ready && c.err == nil {
			// Bytes not checked yet stay for the next Read (after a deadline, say).
			return 0, err
		}
	}
}

// discard reads and drops what the client sends until the connection fails or a
// deadline passes.
func (c *framedConn) discard() (int, error) {
	c.release()
	var scratch [512]byte
	for {
		if _, err := c.Conn.Read(scratch[:]); err != nil {
			return 0, err
		}
	}
}

// fill reads more of the connection into buf, behind what is not checked yet.
func (c *framedConn) fill() error {
	if c.buf == nil {
		c.pooled = h1BufPool.Get().(*[]byte)
		c.buf = *c.pooled
	}
	if c.off > 0 {
		// Drop what was delivered.
		copy(c.buf, c.buf[c.off:c.end])
		c.ready -= c.off
		c.end -= c.off
		c.off = 0
	}
	if c.end == len(c.buf) {
		c.buf = append(c.buf, make([]byte, len(c.buf))...)
		c.pooled = nil // too big to keep
	}
	n, err := c.Conn.Read(c.buf[c.end:])
	c.end += n
	return err
}

// release returns the buffer to the pool once everything in it is delivered.
func (c *framedConn) release() {
	if c.off != c.end {
		return
	}
	if c.pooled != nil {
		h1BufPool.Put(c.pooled)
		c.pooled, c.buf = nil, nil
	}
	c.off, c.ready, c.end = 0, 0, 0
}

// check moves ready over what it can classify in buf[ready:end].
func (c *framedConn) check() {
	for c.err == nil && !c.ended && c.ready < c.end {
		u := c.buf[c.ready:c.end]
		switch c.state {
		case statePassthrough:
			c.ready = c.end
		case stateHead:
			if !c.checkHead(u) {
				return
			}
		case stateBody, stateChunkData:
			n := uint64(len(u))
			if c.state == stateChunkData {
				if c.remain <= 2 {
					c.state = stateChunkEnd
					continue
				}
				n = min(n, c.remain-2)
			} else {
				n = min(n, c.remain)
			}
			c.ready += int(n)
			c.remain -= n
			if c.state == stateBody && c.remain == 0 {
				c.state = stateHead
			}
		case stateChunkEnd:
			if len(u) < 2 {
				return
			}
			if u[0] != '\r' || u[1] != '\n' {
				c.err = errFraming
				return
			}
			c.ready += 2
			c.remain = 0
			c.state = stateChunkSize
		case stateChunkSize:
			i := bytes.IndexByte(u, '\n')
			if i < 0 {
				if len(u) >= maxChunkLine {
					c.err = errFraming
				}
				return
			}
			size, ok := parseChunkLine(u[:i+1])
			if !ok {
				c.err = errFraming
				return
			}
			c.ready += i + 1
			if size == 0 {
				c.state, c.remain = stateTrailer, 0
			} else {
				c.state, c.remain = stateChunkData, size+2
			}
		case stateTrailer:
			if len(u) < 2 {
				return
			}
			if u[0] == '\r' && u[1] == '\n' {
				c.ready += 2
				c.state = stateHead
				continue
			}
			// Trailer fields: lines ending with CRLF up to an empty one. (net/http also
			// takes bare LFs when a CRLFCRLF follows within its read buffer; such bodies
			// end the connection here.)
			end := bytes.Index(u, []byte("\r\n\r\n"))
			if end < 0 && len(u) < maxChunkLine {
				return
			}
			pos := end + 4
			if end < 0 || pos > maxChunkLine || bytes.Count(u[:pos], []byte("\n")) != bytes.Count(u[:pos], []byte("\r\n")) {
				c.err = errFraming
				return
			}
			c.ready += pos
			c.state = stateHead
		}
	}
}

// parseChunkLine parses a chunk-size line (with its CRLF) as net/http does: hex digits,
// optional whitespace and extensions, CRLF and no other CR.
func parseChunkLine(line []byte) (uint64, bool) {
	if len(line) < 2 || line[len(line)-2] != '\r' || bytes.IndexByte(line, '\r') != len(line)-2 {
		return 0, false
	}
	line = line[:len(line)-2]
	if len(line) >= maxChunkLine {
		return 0, false
	}
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	var n uint64
	for _, b := range line {
		switch {
		case '0' <= b && b <= '9':
			b -= '0'
		case 'a' <= b && b <= 'f':
			b = b - 'a' + 10
		case 'A' <= b && b <= 'F':
			b = b - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(b)
	}
	return n, true
}

// checkHead looks at the head starting at u[0]; it reports whether it got anywhere (a
// complete head classified, or the checks ended).
func (c *framedConn) checkHead(u []byte) bool {
	h := &c.head
	if c.requests == 0 && c.h2 && h.lines == 0 {
		n := min(len(u), len(h2Preface))
		if bytes.Equal(u[:n], h2Preface[:n]) {
			if n < len(h2Preface) {
				return false // maybe a preface: wait for the rest
			}
			c.state = statePassthrough
			c.ready = c.end
			return true
		}
		if c.alpnH2 {
			// ALPN settled on HTTP/2 and this is not its preface: a connection error
			// (RFC 9113, 3.4), not an HTTP/1.1 request. As a read error, net/http closes
			// the connection without an answer.
			c.err = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errNoPreface}
			return true
		}
	}
	for {
		i := bytes.IndexByte(u[h.scan:], '\n')
		if i < 0 {
			if len(u) > c.maxHead {
				// Over the server's limit too: it answers 431 and closes.
				c.ready = c.end
				c.ended = true
				return true
			}
			return false
		}
		line := u[h.scan : h.scan+i]
		h.scan += i + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if h.lines > 0 && len(line) == 0 {
			break // the empty line that ends the head
		}
		if h.lines == 0 && len(line) == 0 && h.empty < h1server.MaxLeadingEmptyLines {
			// Ignored by the server, as many as it ignores; they pass with the head.
			h.empty++
			h.start = h.scan
			continue
		}
		h.lines++
		if h.lines == 1 {
			h.startLine(line)
			if len(line) == 0 {
				break // an empty request line: the server refuses it
			}
			continue
		}
		h.headerLine(line)
	}
	if c.observe != nil {
		line, _, _ := bytes.Cut(u[h.start:], []byte("\n"))
		c.observe(bytes.TrimSuffix(line, []byte("\r")))
	}
	c.classify(u[:h.scan])
	c.head = headInfo{}
	c.requests++
	return true
}

// startLine reads the HTTP version off a request line, as net/http does.
func (h *headInfo) startLine(line []byte) {
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 {
		h.badStartLine = true
		return
	}
	h.asterisk = string(method) == "OPTIONS" && string(target) == "*"
	switch {
	case string(proto) == "HTTP/1.1":
		h.proto = 11
	case string(proto) == "HTTP/1.0":
		h.proto = 10
	case len(proto) == len("HTTP/1.x") && string(proto[:7]) == "HTTP/1." && '0' <= proto[7] && proto[7] <= '9':
		h.proto = 11
		if proto[7] == '0' {
			h.proto = 10
		}
	default:
		h.badStartLine = true
	}
}

func (h *headInfo) headerLine(line []byte) {
	if line[0] == ' ' || line[0] == '\t' {
		h.folded = true
		return
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return // the server refuses a line without a colon
	}
	switch {
	case httpascii.EqualFold(name, "content-length"):
		h.contentLen = append(h.contentLen, string(trimOWS(value)))
	case httpascii.EqualFold(name, "transfer-encoding"):
		h.transferEnc = append(h.transferEnc, string(trimOWS(value)))
	case httpascii.EqualFold(name, "upgrade"):
		h.upgrade = true
	}
}

// trimOWS trims what net/textproto trims around a header value.
func trimOWS[T string | []byte](b T) T {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// classify decides what follows the complete head in headBytes (at buf[ready:]).
func (c *framedConn) classify(headBytes []byte) {
	h := &c.head
	var reject rejection
	switch {
	case h.badStartLine:
		// The server answers 400 (or 505) itself.
	case len(h.contentLen) > 0 && len(h.transferEnc) > 0:
		reject = rejectCLTE
	case h.proto == 10 && len(h.transferEnc) > 0:
		reject = rejectTE10
	case h.folded:
		reject = rejectFolded
	}
	if reject.code != "" {
		if c.reject != nil {
			c.reject(c, reject)
		}
		c.buf = append(c.buf[:c.ready], rejectedHead...)
		c.pooled = nil
		c.ready = len(c.buf)
		c.end = c.ready
		c.ended = true
		return
	}
	c.ready += len(headBytes)
	if h.badStartLine {
		c.ended = true
		return
	}
	switch {
	case len(h.transferEnc) > 0:
		if len(h.transferEnc) != 1 || !httpascii.EqualFold(h.transferEnc[0], "chunked") {
			c.ended = true // 501 from the server
			return
		}
		c.state = stateChunkSize
	case len(h.contentLen) > 0:
		for _, v := range h.contentLen[1:] {
			if v != h.contentLen[0] {
				c.ended = true // 400 from the server
				return
			}
		}
		n, err := strconv.ParseUint(h.contentLen[0], 10, 63)
		if err != nil {
			c.ended = true
			return
		}
		if n > 0 {
			c.state, c.remain = stateBody, n
		}
	}
	if h.upgrade && !h.asterisk {
		// What follows may be another protocol: the handler closes the connection unless
		// it switches protocols. The server answers OPTIONS * itself, so that request is
		// never upgraded, and no handler would close the connection after it.
		c.unchecked.Store(true)
		c.state = statePassthrough
	}
}

// handshake runs the TLS handshake under the server's read deadline (set before its first
// read). A client speaking plain HTTP gets a plain 400, as net/http answers it.
func (c *framedConn) handshake() error {
	c.handshook = true
	if c.handshakeTimeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.handshakeTimeout))
		defer c.Conn.SetWriteDeadline(time.Time{})
	}
	err := c.tls.Handshake()
	if err == nil {
		c.alpnH2 = c.h2 && c.tls.ConnectionState().NegotiatedProtocol == "h2"
		return nil
	}
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
		io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		re.Conn.Close()
	}
	c.err = fmt.Errorf("TLS handshake: %w", err)
	if c.handshakeFailed != nil {
		c.handshakeFailed(c, err)
	}
	return c.err
}

func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// framedListener hands the HTTP server framedConns: plain, or TLS server connections whose
// handshake runs on the connection's first read.
type framedListener struct {
	net.Listener
	tls              *tls.Config
	h2               bool
	maxHead          int
	handshakeTimeout time.Duration
	reject           func(*framedConn, rejection)
	handshakeFailed  func(*framedConn, error)
}

func (l *framedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	var tc *tls.Conn
	inner := c
	if l.tls != nil {
		tc = tls.Server(c, l.tls)
		inner = tc
	}
	fc := newFramedConn(inner, tc, l.h2, l.maxHead, l.handshakeTimeout, l.reject)
	fc.handshakeFailed = l.handshakeFailed
	return fc, nil
}
