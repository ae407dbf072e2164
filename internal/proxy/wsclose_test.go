package proxy

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// captureConn records what is written to it.
type captureConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error)      { return c.buf.Write(p) }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

// frame builds a server-to-client frame (unmasked) with a payload of n bytes.
func frame(op byte, n int, masked bool) []byte {
	b := []byte{0x80 | op}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, bytes.Repeat([]byte{'x'}, n)...)
}

var closeFrame = append([]byte{0x88, 12, 0x03, 0xe9}, "going away"...)

// TestWSConnClosesAtFrameBoundary streams a 101 response and frames of every length class in
// random chunks, asks for the close at a random moment, and checks that the client sees
// whole frames followed by exactly one close frame.
func TestWSConnClosesAtFrameBoundary(t *testing.T) {
	resp := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	var frames [][]byte
	for _, n := range []int{0, 1, 125, 126, 300, 65535, 65536, 70000} {
		frames = append(frames, frame(0x2, n, false))
	}
	frames = append(frames, frame(0x9, 4, true)) // a masked ping: the header has a key
	var stream []byte
	ends := map[int]bool{len(resp): true} // offsets where a frame may start
	stream = append(stream, resp...)
	for _, f := range frames {
		stream = append(stream, f...)
		ends[len(stream)] = true
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		cc := &captureConn{}
		w := newWSConn(cc)
		closeAt := rng.IntN(len(stream))
		asked := false
		for off := 0; off < len(stream); {
			n := 1 + rng.IntN(5000)
			if off+n > len(stream) {
				n = len(stream) - off
			}
			if !asked && off >= closeAt {
				w.goAway()
				asked = true
			}
			w.Write(stream[off : off+n])
			off += n
		}
		if !asked {
			w.goAway()
		}
		out := cc.buf.Bytes()
		if !bytes.HasSuffix(out, closeFrame) || bytes.Count(out, closeFrame) != 1 {
			t.Fatalf("trial %d: output does not end with one close frame (len %d)", trial, len(out))
		}
		body := out[:len(out)-len(closeFrame)]
		if !bytes.Equal(body, stream[:len(body)]) {
			t.Fatalf("trial %d: forwarded bytes differ from the stream", trial)
		}
		if !ends[len(body)] {
			t.Fatalf("trial %d: close frame written at offset %d, inside a frame", trial, len(body))
		}
		select {
		case <-w.sent:
		default:
			t.Fatalf("trial %d: sent not closed", trial)
		}
	}
}
