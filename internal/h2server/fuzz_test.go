package h2server

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fuzzMaxHeader is the header list limit of the fuzzed server: small, so that inputs
// reach it.
const fuzzMaxHeader = 4 << 10

// FuzzConn feeds arbitrary bytes, after the client preface, to a connection of a server
// whose handler reads the request body and answers with some of the request. The server
// must not panic or hang, and its work must stay within the bounds it promises: frames
// and decoded header bytes per step of progress, and queued output.
func FuzzConn(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	done := make(chan connStats, 1)
	s := &Server{MaxConcurrentStreams: 8, MaxHeaderBytes: fuzzMaxHeader, ErrorLog: discardLog(), connDone: func(st connStats) { done <- st }}
	s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Len", strings.Repeat("n", int(n%64)))
		w.Header().Set("Trailer", "X-Trailer")
		io.WriteString(w, r.Method+" "+r.RequestURI)
		w.Header().Set("X-Trailer", r.Trailer.Get("X-T"))
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			s.ServeConn(context.Background(), server)
		}()
		// Read what the server sends until the PING sent after the input is answered,
		// or the connection ends; then close.
		acked := make(chan struct{})
		go func() {
			defer close(acked)
			fr := http2.NewFramer(nil, client)
			fr.SetMaxReadFrameSize(1 << 24)
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					io.Copy(io.Discard, client)
					return
				}
				if p, ok := f.(*http2.PingFrame); ok && p.IsAck() && p.Data == fuzzPing {
					return
				}
				if _, ok := f.(*http2.GoAwayFrame); ok {
					return
				}
			}
		}()
		go func() {
			client.Write(data)
			client.Write(make([]byte, completion(data)))
			http2.NewFramer(client, nil).WritePing(false, fuzzPing)
		}()
		select {
		case <-acked:
		case <-time.After(5 * time.Second):
			t.Fatal("the server neither answered the PING after the input nor ended the connection")
		}
		// Handlers may wait for body or window the input never gave; closing ends them.
		client.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end 10 s after the client closed it")
		}
		st := <-done

		steps := st.progress + 1
		maxBlockFrames := int64(max(minBlockFrames, blockLists*fuzzMaxHeader/16384))
		if limit := steps * (maxIdleFrames + maxBlockFrames + 1); st.frames > limit {
			t.Fatalf("%d frames read with %d steps of progress, want at most %d", st.frames, st.progress, limit)
		}
		// Between two steps: blocks that start no request up to the limit, then one more
		// block, whose last field may cross the list limit with two strings of the limit.
		perStep := int64((idleHeaderLists+3)*fuzzMaxHeader + 32)
		if limit := steps * perStep; st.headerBytes > limit {
			t.Fatalf("%d header bytes decoded with %d steps of progress, want at most %d", st.headerBytes, st.progress, limit)
		}
		if limit := 2*maxQueued + 2*16384; st.maxOut > limit {
			t.Fatalf("%d bytes of output queued, want at most %d", st.maxOut, limit)
		}
	})
}

var fuzzPing = [8]byte{'f', 'u', 'z', 'z'}

// completion is how many bytes complete the frame data ends inside, if it does, so that
// the PING after it is read as one: zeros, for a header, make a frame of no payload. A
// frame longer than the server reads is an error once its header is read.
func completion(data []byte) int {
	pos := 0
	for pos+9 <= len(data) {
		pos += 9 + (int(data[pos])<<16 | int(data[pos+1])<<8 | int(data[pos+2]))
	}
	if pos < len(data) {
		// Inside a header: zeros complete it, then its payload.
		var h [9]byte
		copy(h[:], data[pos:])
		pos += 9 + (int(h[0])<<16 | int(h[1])<<8 | int(h[2]))
	}
	return min(pos-len(data), 16384+9)
}

// fuzzSeeds are frame sequences that reach each part of the server: requests with and
// without bodies and trailers, CONTINUATION, control frames, malformed fields, floods.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	add := func(build func(fr *http2.Framer, block func(fields ...string) []byte)) {
		var buf bytes.Buffer
		fr := http2.NewFramer(&buf, nil)
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		block := func(fields ...string) []byte {
			hb.Reset()
			for i := 0; i+1 < len(fields); i += 2 {
				enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
			}
			return bytes.Clone(hb.Bytes())
		}
		fr.WriteSettings()
		build(fr, block)
		seeds = append(seeds, buf.Bytes())
	}
	get := []string{":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/"}
	post := []string{":method", "POST", ":scheme", "https", ":authority", "a:1", ":path", "/p?q", "content-length", "5", "trailer", "x-t"}
	add(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(get...), EndStream: true, EndHeaders: true})
	})
	add(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(post...), EndHeaders: true})
		fr.WriteData(1, false, []byte("hel"))
		fr.WriteDataPadded(1, false, []byte("lo"), make([]byte, 3))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("x-t", "v"), EndStream: true, EndHeaders: true})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block(get...), EndStream: true, EndHeaders: true})
	})
	add(func(fr *http2.Framer, block func(...string) []byte) {
		b := block(append(get, "x-long", strings.Repeat("v", 100))...)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:10], EndStream: true})
		fr.WriteContinuation(1, false, b[10:20])
		fr.WriteContinuation(1, true, b[20:])
	})
	add(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
		fr.WritePing(false, [8]byte{1})
		fr.WriteWindowUpdate(0, 100)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(get...), EndStream: true, EndHeaders: true, Priority: http2.PriorityParam{StreamDep: 3, Weight: 7}})
		fr.WritePriority(5, http2.PriorityParam{StreamDep: 1})
		fr.WriteWindowUpdate(1, 10)
		fr.WriteRSTStream(1, http2.ErrCodeCancel)
		fr.WriteRawFrame(0x0a, 0, 0, []byte("x"))
		fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	})
	add(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":method", "GET /admin HTTP/1.1", ":scheme", "http", ":path", "/"), EndStream: true, EndHeaders: true})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block(append(get, "x-a", " v")...), EndStream: true, EndHeaders: true})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: block(":method", "CONNECT", ":authority", "h:443"), EndHeaders: true})
		fr.WriteData(5, true, []byte("tunnel"))
	})
	add(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(get...)})
		for range 40 {
			fr.WriteContinuation(1, false, nil)
		}
	})
	add(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(append(get, "x-big", strings.Repeat("a", 3000))...), EndStream: true, EndHeaders: true})
		for id := uint32(3); id < 2*40+3; id += 2 {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: append([]byte{0x82, 0x86, 0x84}, bytes.Repeat([]byte{0x80 | 62}, 200)...), EndStream: true, EndHeaders: true})
		}
	})
	add(func(fr *http2.Framer, block func(...string) []byte) {
		for range maxIdleFrames + 100 {
			fr.WritePing(false, [8]byte{})
		}
	})
	return seeds
}
