package proxy

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"time"
)

// WebSocket close at the end of a drain. The data plane tunnels WebSocket bytes without
// decoding them, but a drain must end each one with a close frame (1001, "going away"), so
// that clients reconnect elsewhere at once instead of seeing a reset. A frame may only be
// written between two frames of the stream, so wsConn follows the frame boundaries of what
// the proxy writes to the client.

// goingAwayWait is how long a WebSocket may take to finish its closing handshake after the
// close frame was sent, before its connection is closed.
const goingAwayWait = time.Second

// wsState is where a wsConn is in the server-to-client stream.
type wsState int

const (
	inResponse wsState = iota // the HTTP 101 response, up to its blank line
	inHeader                  // a frame header (at a boundary when no byte of it is seen)
	inPayload                 // a frame's payload
)

// wsConn is the client side of an upgraded connection. Writes pass through while it follows
// the server-to-client stream: first the HTTP 101 response, then frames.
type wsConn struct {
	net.Conn

	mu      sync.Mutex
	state   wsState
	tail    uint32 // the last four bytes of the 101 response
	hdr     [14]byte
	hdrLen  int   // bytes of the current frame header seen
	need    int64 // payload bytes left in the current frame
	closing bool  // a close frame is due at the next boundary
	closed  bool  // the close frame was written; later writes are dropped
	sent    chan struct{}
}

func newWSConn(c net.Conn) *wsConn {
	return &wsConn{Conn: c, state: inResponse, sent: make(chan struct{})}
}

func (w *wsConn) atBoundary() bool { return w.state == inHeader && w.hdrLen == 0 }

// Write forwards p and tracks frame boundaries. After the close frame, writes are dropped:
// the stream to the client has ended.
func (w *wsConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	total := len(p)
	for len(p) > 0 {
		n := w.scan(p)
		if _, err := w.Conn.Write(p[:n]); err != nil {
			return total - len(p), err
		}
		p = p[n:]
		if w.closing && w.atBoundary() {
			w.writeClose()
			return total, nil
		}
	}
	return total, nil
}

// scan consumes the prefix of p up to the next boundary (the end of the 101 response, of a
// frame header, or of a frame) or the end of p, and returns its length.
func (w *wsConn) scan(p []byte) int {
	switch w.state {
	case inResponse:
		for i, b := range p {
			w.tail = w.tail<<8 | uint32(b)
			if w.tail == 0x0d0a0d0a { // CRLF CRLF
				w.state = inHeader
				return i + 1
			}
		}
		return len(p)
	case inHeader:
		for n := 0; n < len(p); {
			w.hdr[w.hdrLen] = p[n]
			w.hdrLen++
			n++
			if size, ok := frameSize(w.hdr[:w.hdrLen]); ok {
				w.hdrLen = 0
				if size > 0 {
					w.state, w.need = inPayload, size
				}
				return n
			}
		}
		return len(p)
	default:
		n := int64(len(p))
		if n > w.need {
			n = w.need
		}
		w.need -= n
		if w.need == 0 {
			w.state = inHeader
		}
		return int(n)
	}
}

// frameSize returns a frame's payload length once h holds its whole header (RFC 6455 5.2).
func frameSize(h []byte) (int64, bool) {
	if len(h) < 2 {
		return 0, false
	}
	want, ext := 2, 0
	switch h[1] & 0x7f {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	want += ext
	if h[1]&0x80 != 0 {
		want += 4 // mask key
	}
	if len(h) < want {
		return 0, false
	}
	switch ext {
	case 2:
		return int64(binary.BigEndian.Uint16(h[2:4])), true
	case 8:
		return int64(binary.BigEndian.Uint64(h[2:10]) & (1<<63 - 1)), true
	}
	return int64(h[1] & 0x7f), true
}

// goAway asks for a 1001 close frame: at once when the stream is between frames, else as
// soon as the current frame is written. It returns a channel closed once the frame is sent.
func (w *wsConn) goAway() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closing = true
		if w.atBoundary() {
			w.writeClose()
		}
	}
	return w.sent
}

// writeClose writes the close frame; w.mu is held.
func (w *wsConn) writeClose() {
	const reason = "going away"
	frame := make([]byte, 0, 4+len(reason))
	frame = append(frame, 0x88, byte(2+len(reason))) // FIN + close; unmasked (server to client)
	frame = binary.BigEndian.AppendUint16(frame, 1001)
	frame = append(frame, reason...)
	w.Conn.SetWriteDeadline(time.Now().Add(goingAwayWait))
	w.Conn.Write(frame)
	w.closed = true
	close(w.sent)
}

// wsHijacker wraps the ResponseWriter of an upgrade request so that the hijacked client
// connection is a wsConn, which the listener can close with a close frame.
type wsHijacker struct {
	http.ResponseWriter
	l    *httpListener
	conn *wsConn
}

// Hijack implements http.Hijacker for httputil.ReverseProxy's upgrade handling.
func (h *wsHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	ws := newWSConn(c)
	h.conn = ws
	h.l.mu.Lock()
	if h.l.websockets == nil {
		h.l.websockets = map[net.Conn]*wsConn{}
	}
	h.l.websockets[c] = ws
	h.l.mu.Unlock()
	return ws, bufio.NewReadWriter(brw.Reader, bufio.NewWriter(ws)), nil
}

// Unwrap lets http.ResponseController reach the underlying writer for other features.
func (h *wsHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// forget removes the connection from the listener once the tunnel ended.
func (h *wsHijacker) forget() {
	if h.conn == nil {
		return
	}
	h.l.mu.Lock()
	for k, v := range h.l.websockets {
		if v == h.conn {
			delete(h.l.websockets, k)
		}
	}
	h.l.mu.Unlock()
}
