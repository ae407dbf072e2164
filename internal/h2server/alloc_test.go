package h2server

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// maxAllocsPerRequest bounds the heap allocations the server makes for a GET stream with
// seven header fields whose handler writes a short body: among them the HEADERS frame and
// the decoded strings HPACK does not find in its table. The stream (which holds the
// request, its header values and its URL), its header map and the map's storage are used
// again from one request to the next (19 before the header values moved into the stream
// and the decoded block into the connection, 14 before the URL did, 13 before the request
// did, 12 before streams were used again).
const maxAllocsPerRequest = 9

var okBody = []byte("ok")

// TestAllocationsPerRequest counts the server's heap allocations per stream. The client
// writes frames encoded beforehand and reads the answers' frame headers into a fixed
// buffer, so that it allocates nothing per request.
func TestAllocationsPerRequest(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(okBody)
	})})
	c := dialRaw(t, addr)
	// Settle the handshake with the framer, then go raw.
	c.open(1, "/", true)
	for {
		f, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Header().Flags.Has(http2.FlagDataEndStream) || f.Header().Flags.Has(http2.FlagHeadersEndStream) {
			break
		}
	}
	// Fields never indexed leave the decoder's table alone: every block encodes the same.
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/a/path?q=1"},
		{"user-agent", "test"}, {"accept", "*/*"}, {"x-request-id", "0123456789"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
	}
	frame := make([]byte, 9+block.Len())
	frame[2] = byte(block.Len()) // length < 256
	frame[3] = byte(http2.FrameHeaders)
	frame[4] = byte(http2.FlagHeadersEndStream | http2.FlagHeadersEndHeaders)
	copy(frame[9:], block.Bytes())
	id := uint32(3)
	var buf [4096]byte
	var have int
	do := func() {
		binary.BigEndian.PutUint32(frame[5:], id)
		id += 2
		if _, err := c.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		for ended := false; !ended; {
			for have < 9 || have < 9+(int(buf[1])<<8|int(buf[2])) {
				n, err := c.nc.Read(buf[have:])
				if err != nil {
					t.Fatal(err)
				}
				have += n
			}
			size := 9 + (int(buf[1])<<8 | int(buf[2]))
			typ, flags := http2.FrameType(buf[3]), http2.Flags(buf[4])
			ended = (typ == http2.FrameData || typ == http2.FrameHeaders) && flags.Has(http2.FlagDataEndStream)
			have = copy(buf[:], buf[size:have])
		}
	}
	for range 100 {
		do()
	}
	per := testing.AllocsPerRun(2000, do)
	want := float64(maxAllocsPerRequest)
	if raceEnabled {
		want += 4 // pooled buffers and streams, from pools that drop some of what they get back
	}
	if per > want {
		t.Errorf("%.0f allocations per request, want at most %.0f", per, want)
	}
}
