package h2server

// Each test here is named after a security fix of Go's net/http or x/net/http2 HTTP/2
// server since 2022 (docs/security/http2-server.md lists them) and sends the attack it fixed.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestCVE_2022_27664_ErrorAfterGoAway: a connection closing gracefully (GOAWAY sent,
// a stream still running) hung forever when a connection error came before its streams
// ended. Here the error ends the connection and cancels the running handler. It runs in a
// synctest bubble: the GOAWAY linger passes on the fake clock.
func TestCVE_2022_27664_ErrorAfterGoAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started := make(chan struct{})
		cancelled := make(chan struct{})
		s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-r.Context().Done():
				close(cancelled)
			case <-time.After(20 * time.Second):
			}
		})}
		ln, _ := serveMem(t, s)
		c := dialRawMem(t, ln)
		c.open(1, "/", true)
		<-started
		s.Shutdown()
		if f, err := c.next(); err != nil {
			t.Fatal(err)
		} else if ga, ok := f.(*http2.GoAwayFrame); !ok || ga.ErrCode != http2.ErrCodeNo {
			t.Fatalf("got %v, want a graceful GOAWAY", f)
		}
		// DATA on stream 0: a connection error.
		c.write(func(fr *http2.Framer) error { return fr.WriteRawFrame(http2.FrameData, 0, 0, nil) })
		var codes []http2.ErrCode
		for {
			f, err := c.next()
			if err != nil {
				break // the connection has ended
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				codes = append(codes, ga.ErrCode)
			}
		}
		select {
		case <-cancelled:
		case <-time.After(10 * time.Second):
			t.Fatal("the running handler was not cancelled when the connection failed")
		}
		if fmt.Sprint(codes) != "[PROTOCOL_ERROR]" {
			t.Fatalf("GOAWAY after the error: %v, want [PROTOCOL_ERROR]", codes)
		}
	})
}

// TestCVE_2022_41717_HeaderKeyMemory: net/http's HTTP/2 server cached the canonical
// form of the header names a client sent, per connection, up to 64 MB of large names.
// Here names are canonicalised per request and nothing of them outlives it: requests
// with 10 MB of distinct names in all leave the heap as it was, the connection open.
func TestCVE_2022_41717_HeaderKeyMemory(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	c := dialRaw(t, addr)
	request := func(id uint32) {
		var extra []string
		for i := range 12 { // 12 KB: one frame
			extra = append(extra, fmt.Sprintf("x-%d-%d-%s", id, i, strings.Repeat("k", 1000)), "v")
		}
		c.open(id, "/", true, extra...)
		for {
			f, err := c.next()
			if err != nil {
				t.Fatal(err)
			}
			if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamID == id {
				return
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				t.Fatalf("stream %d: %v", id, f)
			}
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	request(1) // the connection's own allocations
	before := heap()
	for id := uint32(3); id < 2*850+3; id += 2 {
		request(id)
	}
	grown := int64(heap()) - int64(before)
	if grown > 2<<20 {
		t.Fatalf("the heap grew by %d bytes over 10 MB of distinct header names", grown)
	}
	t.Logf("the heap grew by %d bytes", grown)
}

// TestCVE_2022_41721_H2CUpgradeSmuggling: x/net's h2c handler, on "Upgrade: h2c", read
// HTTP/2 frames from where the request body had been left unread, so a body could carry
// requests. Here h2c is prior knowledge only: an Upgrade: h2c request is an HTTP/1.1
// request whose body is a body, and, not taken over by its handler, the last request of
// its connection.
func TestCVE_2022_41721_H2CUpgradeSmuggling(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Proto+" "+r.URL.Path)
		mu.Unlock()
		// The body is not read, as with a MaxBytesHandler over its limit.
	})})
	var smuggled bytes.Buffer
	smuggled.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&smuggled, nil)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/smuggled"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(nc, "POST /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"+
		"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: %d\r\n\r\n%s", smuggled.Len(), smuggled.Bytes())
	io.WriteString(nc, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Fatalf("status %d, close %v; want 200 over HTTP/1.1 and Connection: close", resp.StatusCode, resp.Close)
	}
	if resp, err := http.ReadResponse(br, nil); err == nil {
		t.Fatalf("a response (%d) after the upgrade request's", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(paths); got != "[HTTP/1.1 /upgrade]" {
		t.Fatalf("the handler saw %s", got)
	}
}

// TestCVE_2022_41723_HPACKSplitString: decoding a header string split across many
// writes was quadratic in x/net's HPACK decoder. The decoder is x/net's, fixed; and here
// a header block spans a bounded number of frames, so a string sent a byte per frame
// ends the connection after maxBlockFrames frames.
func TestCVE_2022_41723_HPACKSplitString(t *testing.T) {
	addr, done := floodServer(t, 0)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	enc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
	enc.WriteField(hpack.HeaderField{Name: "x-long", Value: strings.Repeat("\xff", 512<<10), Sensitive: true})
	block := hb.Bytes()
	prep := func(c *rawConn, _ int) error {
		return c.write(func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1]})
		})
	}
	st := flood(t, addr, done, http2.ErrCodeEnhanceYourCalm, len(block)-1, prep, func(c *rawConn, i int) error {
		return c.write(func(fr *http2.Framer) error { return fr.WriteContinuation(1, i == len(block)-2, block[i+1:i+2]) })
	})
	maxBlockFrames := blockLists * http.DefaultMaxHeaderBytes / 16384
	if limit := int64(maxBlockFrames + 2); st.frames > limit {
		t.Fatalf("%d frames read, want at most %d", st.frames, limit)
	}
}

// TestCVE_2023_44487_RapidReset (Go's CVE-2023-39325) opens and resets streams whose
// handlers do not end: the server queues them up to a bound, then cuts the connection
// off, and never runs more handlers than the stream limit.
func TestCVE_2023_44487_RapidReset(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var started atomic.Int32
	addr := serve(t, &Server{MaxConcurrentStreams: 4, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		<-release // ignores cancellation, as a slow handler might
	})})
	c := dialRaw(t, addr)
	go func() {
		for id := uint32(1); id < 200; id += 2 {
			if c.request(id, "/", false) != nil || c.reset(id) != nil {
				return
			}
		}
	}()
	for {
		f, err := c.next()
		if err != nil {
			t.Fatalf("no GOAWAY before the connection ended: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("GOAWAY %v", ga.ErrCode)
			}
			break
		}
	}
	if n := started.Load(); n > 4 {
		t.Fatalf("%d handlers ran with a limit of 4", n)
	}
}

// TestCVE_2023_45288_ContinuationFlood: x/net's server decoded CONTINUATION frames
// without end once a block was over the header list limit. Here a block is bounded in
// frames and encoded bytes: headers sent past the limit in CONTINUATION frames end the
// connection. (Empty CONTINUATION frames, which no byte limit sees, are
// TestEmptyContinuationFlood.)
func TestCVE_2023_45288_ContinuationFlood(t *testing.T) {
	addr, done := floodServer(t, 0)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	block := func(fields ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1], Sensitive: true})
		}
		return bytes.Clone(hb.Bytes())
	}
	start := block(":method", "GET", ":scheme", "http", ":path", "/")
	field := block("x-flood", strings.Repeat("v", 8000)) // never indexed: decoded each time
	prep := func(c *rawConn, _ int) error {
		return c.write(func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: start})
		})
	}
	st := flood(t, addr, done, http2.ErrCodeEnhanceYourCalm, 100_000, prep, func(c *rawConn, i int) error {
		return c.write(func(fr *http2.Framer) error { return fr.WriteContinuation(1, false, field) })
	})
	maxBlockFrames := blockLists * http.DefaultMaxHeaderBytes / 16384
	if limit := int64(maxBlockFrames + 2); st.frames > limit {
		t.Fatalf("%d frames read, want at most %d", st.frames, limit)
	}
}

// TestCVE_2026_27141_ReservedFrameTypes: frames of types 0x0a to 0x0f made x/net's
// server panic. Here frames of unknown types are ignored, on any stream, and the
// connection goes on serving.
func TestCVE_2026_27141_ReservedFrameTypes(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "still serving")
	})})
	c := dialRaw(t, addr)
	for typ := http2.FrameType(0x0a); typ <= 0x0f; typ++ {
		for _, stream := range []uint32{0, 1, 3} {
			c.write(func(fr *http2.Framer) error { return fr.WriteRawFrame(typ, 0xff, stream, []byte("payload")) })
		}
		c.write(func(fr *http2.Framer) error { return fr.WriteRawFrame(typ, 0, 0, nil) })
	}
	c.open(1, "/", true)
	for {
		f, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := f.(*http2.DataFrame); ok {
			if string(d.Data()) != "still serving" {
				t.Fatalf("body %q", d.Data())
			}
			return
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("got %v", f)
		}
	}
}

// TestCVE_2026_33814_MaxFrameSizeZero: x/net's client wrote CONTINUATION frames without
// end after a SETTINGS_MAX_FRAME_SIZE of 0. The server's writer splits header blocks by
// the same setting: a value below 16384 is a connection error (RFC 9113 §6.5.2) before
// any response can be split by it.
func TestCVE_2026_33814_MaxFrameSizeZero(t *testing.T) {
	addr, done := floodServer(t, 0)
	st := flood(t, addr, done, http2.ErrCodeProtocol, 1, nil, func(c *rawConn, i int) error {
		return c.write(func(fr *http2.Framer) error {
			if err := fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 0}); err != nil {
				return err
			}
			// GET, http, "/"
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82, 0x86, 0x84}, EndStream: true, EndHeaders: true})
		})
	})
	if st.progress != 0 {
		t.Fatalf("%d steps of progress (a response) after SETTINGS_MAX_FRAME_SIZE 0", st.progress)
	}
}
