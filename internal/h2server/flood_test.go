package h2server

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/http2"
)

// floodServer serves a handler that reads the request body to its end, and returns the
// address and a channel that receives each connection's counts as it ends.
func floodServer(t *testing.T, maxHeaderBytes int) (string, <-chan connStats) {
	t.Helper()
	done := make(chan connStats, 4)
	addr := serve(t, &Server{connDone: func(st connStats) { done <- st }, MaxHeaderBytes: maxHeaderBytes, ErrorLog: discardLog(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 512)
		for {
			if _, err := r.Body.Read(buf); err != nil {
				return
			}
		}
	})})
	return addr, done
}

// flood sends up to n frames made by frame after prep, then a PING, and reads until
// the server's GOAWAY. The server must send GOAWAY code before it answers the PING,
// which it would if it processed all n frames; the connection's counts are returned
// once it has ended.
func flood(t *testing.T, addr string, done <-chan connStats, code http2.ErrCode, n int, prep, frame func(c *rawConn, i int) error) connStats {
	t.Helper()
	c := dialRaw(t, addr)
	finished := [8]byte{'f', 'i', 'n', 'i', 's', 'h', 'e', 'd'}
	go func() {
		if prep != nil && prep(c, 0) != nil {
			return
		}
		for i := range n {
			if frame(c, i) != nil {
				return // the server has closed the connection
			}
		}
		c.mu.Lock()
		c.fr.WritePing(false, finished)
		c.mu.Unlock()
	}()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY before the connection ended: %v", err)
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() && p.Data == finished {
			t.Fatalf("the server processed all %d frames", n)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != code {
				t.Fatalf("GOAWAY %v, want %v", ga.ErrCode, code)
			}
			break
		}
	}
	c.nc.Close()
	select {
	case st := <-done:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not end after its GOAWAY")
		return connStats{}
	}
}

// write writes one frame under the connection's write lock.
func (c *rawConn) write(f func(fr *http2.Framer) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f(c.fr)
}

// openBody opens stream 1 with a request whose body has not ended.
func openBody(c *rawConn, _ int) error { return c.request(1, "/", false) }

// TestFramesWithoutProgress sends, for each kind of frame that makes no progress, far
// more of them than the limit: the server must end the connection with
// ENHANCE_YOUR_CALM after at most maxIdleFrames of them (a header block counts whole).
func TestFramesWithoutProgress(t *testing.T) {
	const n = 20 * maxIdleFrames
	cases := []struct {
		name  string
		prep  func(c *rawConn, i int) error
		frame func(c *rawConn, i int) error
	}{
		{"empty DATA", openBody, func(c *rawConn, i int) error {
			return c.write(func(fr *http2.Framer) error { return fr.WriteData(1, false, nil) })
		}},
		{"padding-only DATA", openBody, func(c *rawConn, i int) error {
			return c.write(func(fr *http2.Framer) error { return fr.WriteDataPadded(1, false, nil, make([]byte, 1)) })
		}},
		{"zero-increment WINDOW_UPDATE", openBody, func(c *rawConn, i int) error {
			return c.write(func(fr *http2.Framer) error { return fr.WriteRawFrame(http2.FrameWindowUpdate, 0, 1, make([]byte, 4)) })
		}},
		{"empty header blocks", nil, func(c *rawConn, i int) error {
			// Ten-frame blocks of nothing, each a malformed request on a new stream.
			id := uint32(2*(i/10) + 1)
			return c.write(func(fr *http2.Framer) error {
				if i%10 == 0 {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndStream: true})
				}
				return fr.WriteContinuation(id, i%10 == 9, nil)
			})
		}},
		{"PING", nil, func(c *rawConn, i int) error {
			return c.write(func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{1}) })
		}},
		{"SETTINGS", nil, func(c *rawConn, i int) error {
			return c.write(func(fr *http2.Framer) error { return fr.WriteSettings() })
		}},
		{"PRIORITY", nil, func(c *rawConn, i int) error {
			return c.write(func(fr *http2.Framer) error {
				return fr.WritePriority(uint32(2*i+1), http2.PriorityParam{StreamDep: 0, Weight: 15})
			})
		}},
		{"RST_STREAM", openBody, func(c *rawConn, i int) error {
			return c.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
		}},
		{"WINDOW_UPDATE", nil, func(c *rawConn, i int) error {
			return c.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1) })
		}},
		{"unknown frame type", nil, func(c *rawConn, i int) error {
			return c.write(func(fr *http2.Framer) error { return fr.WriteRawFrame(0xfa, 0, 0, nil) })
		}},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			addr, done := floodServer(t, 0)
			st := flood(t, addr, done, http2.ErrCodeEnhanceYourCalm, n, tc.prep, tc.frame)
			// The preface's SETTINGS and the opening request come before the flood.
			if limit := int64(maxIdleFrames + 12); st.frames > limit {
				t.Fatalf("%d frames read, want at most %d", st.frames, limit)
			}
		})
	}
}

// TestEmptyContinuationFlood opens a header block and never ends it: empty
// CONTINUATION frames carry no byte that a byte limit could count. The server must end
// the connection after the block's frame limit.
func TestEmptyContinuationFlood(t *testing.T) {
	addr, done := floodServer(t, 0)
	prep := func(c *rawConn, _ int) error {
		return c.write(func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82, 0x86, 0x84}})
		})
	}
	st := flood(t, addr, done, http2.ErrCodeEnhanceYourCalm, 1_000_000, prep, func(c *rawConn, i int) error {
		return c.write(func(fr *http2.Framer) error { return fr.WriteContinuation(1, false, nil) })
	})
	maxBlockFrames := blockLists * http.DefaultMaxHeaderBytes / 16384
	if limit := int64(maxBlockFrames + 2); st.frames > limit {
		t.Fatalf("%d frames read, want at most %d", st.frames, limit)
	}
}

// TestHPACKBomb puts one large field in the HPACK dynamic table, then sends header
// blocks of one-byte references to it: each block is a few kilobytes on the wire and
// 64 MB decoded. Decoding stops at the header list limit (answered 431), and blocks that
// start no request are bounded per connection: the server must end the connection after
// a few of them, having decoded at most idleHeaderLists header lists and a little.
func TestHPACKBomb(t *testing.T) {
	const maxHeader = 64 << 10
	addr, done := floodServer(t, maxHeader)
	prep := func(c *rawConn, _ int) error {
		// A request without :path (reset, no progress) puts "x-big: aaa…" (4037 bytes
		// as HPACK counts them) at index 62.
		return c.headers(1, true, ":method", "GET", ":scheme", "http", "x-big", strings.Repeat("a", 4000))
	}
	refs := bytes.Repeat([]byte{0x80 | 62}, 16000)
	block := append([]byte{0x82, 0x86, 0x84}, refs...) // GET, http, "/"
	st := flood(t, addr, done, http2.ErrCodeEnhanceYourCalm, 1000, prep, func(c *rawConn, i int) error {
		return c.write(func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 3), BlockFragment: block, EndStream: true, EndHeaders: true})
		})
	})
	if st.progress != 0 {
		t.Fatalf("%d steps of progress: the 431 answers are none", st.progress)
	}
	if limit := int64((idleHeaderLists + 2) * maxHeader); st.headerBytes > limit {
		t.Fatalf("%d header bytes decoded, want at most %d", st.headerBytes, limit)
	}
	if limit := int64(idleHeaderLists + 3); st.frames > limit {
		t.Fatalf("%d frames read, want at most %d", st.frames, limit)
	}
}

// TestHeaderBlockOverEncodedLimit sends a header block whose encoding alone is past
// blockLists header lists, in full frames of a table size update repeated (which
// decodes to nothing): a connection error, not a block decoded without end.
func TestHeaderBlockOverEncodedLimit(t *testing.T) {
	const maxHeader = 16 << 10
	addr, done := floodServer(t, maxHeader)
	frag := bytes.Repeat([]byte{0x20}, 16384) // dynamic table size update to 0
	prep := func(c *rawConn, _ int) error {
		return c.write(func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: frag})
		})
	}
	st := flood(t, addr, done, http2.ErrCodeEnhanceYourCalm, 10_000, prep, func(c *rawConn, i int) error {
		return c.write(func(fr *http2.Framer) error { return fr.WriteContinuation(1, false, frag) })
	})
	if limit := int64(blockLists*maxHeader/16384 + 2); st.frames > limit {
		t.Fatalf("%d frames read, want at most %d", st.frames, limit)
	}
}

// TestProgressResetsTheAllowance makes sure that legitimate traffic is not cut: PINGs
// and WINDOW_UPDATEs between requests, many times the limit in all, are paid for by
// the requests.
func TestProgressResetsTheAllowance(t *testing.T) {
	addr, _ := floodServer(t, 0)
	c := dialRaw(t, addr)
	for id := uint32(1); id < 2*5+1; id += 2 {
		for range maxIdleFrames/2 - 5 {
			c.write(func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{}) })
			c.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1) })
		}
		c.open(id, "/", true)
		for {
			f, err := c.next()
			if err != nil {
				t.Fatal(err)
			}
			if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamID == id {
				break
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				t.Fatalf("GOAWAY before stream %d: %v", id, f)
			}
		}
	}
}

// TestHPACKBombHeldStreams sends requests whose header blocks are a few bytes of
// references to one large field, each decoding to nearly the header list limit, after
// closing the client's flow-control window: no response can finish, so every request
// stays in memory. Streams past heldHeaderLists header lists are refused.
func TestHPACKBombHeldStreams(t *testing.T) {
	const maxHeader = 64 << 10
	release := make(chan struct{})
	defer close(release)
	addr := serve(t, &Server{MaxHeaderBytes: maxHeader, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 8<<10)) // past the buffer: the headers leave, the data waits for window
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})})
	c := dialRaw(t, addr)
	c.write(func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	})
	// Stream 1 puts "x-big: aaa…" (4037 bytes as HPACK counts them) at index 62; it is
	// held too.
	c.open(1, "/", true, "x-big", strings.Repeat("a", 4000))
	block := append([]byte{0x82, 0x86, 0x84}, bytes.Repeat([]byte{0x80 | 62}, 15)...) // about 60 KB decoded
	const streams = 6                                                                 // the refused ones count as waste (see waste): a few more would end the connection
	for i := range streams {
		c.write(func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 3), BlockFragment: block, EndStream: true, EndHeaders: true})
		})
	}
	served, refused := 0, 0
	for served+refused < streams+1 {
		f, err := c.next()
		if err != nil {
			t.Fatalf("after %d responses and %d refusals: %v", served, refused, err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			served++
		case *http2.RSTStreamFrame:
			if f.ErrCode != http2.ErrCodeRefusedStream {
				t.Fatalf("stream %d reset with %v", f.StreamID, f.ErrCode)
			}
			refused++
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v after %d responses", f.ErrCode, served)
		}
	}
	// 4 KB for stream 1, then about 60.6 KB each: four more fit in four lists of 64 KB.
	if served != 5 {
		t.Fatalf("%d requests held at once, want 5 (%d refused)", served, refused)
	}
}

// TestUnfinishedHeaderBlockIdle opens a header block and sends nothing more: the
// connection has no stream yet, so the idle timeout closes it, at the instant it passes
// on the synctest bubble's clock.
func TestUnfinishedHeaderBlockIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln, _ := serveMem(t, &Server{IdleTimeout: 200 * time.Millisecond, Handler: http.NotFoundHandler()})
		c := dialRawMem(t, ln)
		start := time.Now()
		c.write(func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82, 0x86}})
		})
		var goAway *http2.GoAwayFrame
		var after time.Duration
		for {
			f, err := c.fr.ReadFrame() // not next: a SETTINGS ACK would break the block
			if err != nil {
				break
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				goAway, after = ga, time.Since(start)
			}
		}
		if goAway == nil || goAway.ErrCode != http2.ErrCodeNo {
			t.Fatalf("closed after %v, want a graceful GOAWAY", goAway)
		}
		if after != 200*time.Millisecond {
			t.Fatalf("GOAWAY after %v, want the 200ms idle timeout", after)
		}
	})
}
