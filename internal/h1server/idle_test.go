package h1server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

// TestIdleConnectionsHoldNoBuffers holds keep-alive connections open after one request
// each and checks what each adds to the heap: without its 4 KiB reader and writer, well
// under their 8 KiB.
func TestIdleConnectionsHoldNoBuffers(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})})
	const n = 300
	// Warm up: the pools and the runtime's own structures, then settle.
	get(t, dialConn(t, addr))
	before := heapInUse()
	for range n {
		get(t, dialConn(t, addr))
	}
	// Waiting, the connections hold no buffers (polled: a connection that was slow to
	// start waiting still has them).
	var per float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if per = float64(heapInUse()-min(before, heapInUse())) / n; per <= 4<<10 {
			break
		}
	}
	t.Logf("heap per idle keep-alive connection, server and client side: %.0f bytes", per)
	if per > 4<<10 {
		t.Errorf("each idle connection adds %.0f bytes to the heap, want at most 4 KiB: its buffers are held", per)
	}
}

// TestParkedConnectionsFreeTheirStacks serves one request on each of many connections with
// a handler that grows its goroutine's stack past 32 KiB, and checks that once the
// connections have been idle for longer than parkAfter their stacks are gone, without a
// garbage collection (which shrinks idle stacks too) to help.
func TestParkedConnectionsFreeTheirStacks(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		growStack(32 << 10)
		io.WriteString(w, "ok")
	})})
	const n = 200
	get(t, dialConn(t, addr))
	before := stackInUse()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialConn(t, addr)
		get(t, conns[i])
	}
	t.Logf("stack per connection after its request: %d bytes", (stackInUse()-before)/n)
	var per uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if per = (stackInUse() - min(before, stackInUse())) / n; per <= 4<<10 {
			break
		}
	}
	t.Logf("stack per idle connection: %d bytes", per)
	if per > 8<<10 {
		t.Errorf("each idle connection holds %d bytes of stack, want at most 8 KiB", per)
	}
	// Parked connections are served as before.
	for _, c := range conns[:10] {
		get(t, c)
	}
}

//go:noinline
func growStack(n int) byte {
	var buf [1 << 10]byte
	if n <= len(buf) {
		return buf[0]
	}
	return growStack(n-len(buf)) + buf[1]
}

func stackInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// TestParkedConnectionStatesAndShutdown: a connection parked after its first request goes
// through the same states as any other (no second Idle when a new goroutine takes it
// over), is served again, and is closed at once by Shutdown.
func TestParkedConnectionStatesAndShutdown(t *testing.T) {
	states := make(chan http.ConnState, 16)
	s := &Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(c net.Conn, st http.ConnState) { states <- st },
	}
	addr := start(t, s)
	c, br := dial(t, addr)
	for range 2 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != "ok" {
			t.Fatalf("response %q", body)
		}
		time.Sleep(parkAfter + 100*time.Millisecond) // a timer parks it: nothing to wait on
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a parked connection: %v", err)
	}
	expectClosed(t, br)
	var got []http.ConnState
	for st := range states {
		if got = append(got, st); st == http.StateClosed {
			break
		}
	}
	want := []http.ConnState{http.StateNew, http.StateActive, http.StateIdle, http.StateActive, http.StateIdle, http.StateClosed}
	if !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
}

// TestRequestAfterIdleInPieces sends requests on a connection that went idle, and on one
// that was parked, with the head split across writes, pipelined behind it, and with a body.
func TestRequestAfterIdleInPieces(t *testing.T) {
	for _, idle := range []time.Duration{0, parkAfter + 100*time.Millisecond} {
		t.Run(fmt.Sprintf("idle %v", idle), func(t *testing.T) {
			addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%s %s %q", r.Method, r.URL.Path, b)
			})})
			c, br := dial(t, addr)
			io.WriteString(c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, body := readResponse(t, br, "GET"); body != `GET /one ""` {
				t.Fatalf("first response %q", body)
			}
			time.Sleep(idle) // a timer parks it: nothing to wait on
			for _, piece := range []string{"P", "OST /two HTTP/1.1\r\nHo", "st: x\r\nContent-Length: 5\r\n\r\nhel", "lo"} {
				if _, err := io.WriteString(c, piece); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond) // lets each piece arrive on its own (either way is correct)
			}
			if _, body := readResponse(t, br, "POST"); body != `POST /two "hello"` {
				t.Fatalf("second response %q", body)
			}
			time.Sleep(idle)
			io.WriteString(c, "GET /three HTTP/1.1\r\nHost: x\r\n\r\nGET /four HTTP/1.1\r\nHost: x\r\n\r\n")
			for _, want := range []string{`GET /three ""`, `GET /four ""`} {
				if _, body := readResponse(t, br, "GET"); body != want {
					t.Fatalf("response %q, want %q", body, want)
				}
			}
			time.Sleep(idle)
			// A client that closes an idle connection gets it closed.
			c.(*net.TCPConn).CloseWrite()
			expectClosed(t, br)
		})
	}
}

// TestIdleTimeoutWithoutBuffers: an idle connection is closed at the idle timeout, whether
// it is shorter than parkAfter or the connection was parked on the way.
func TestIdleTimeoutWithoutBuffers(t *testing.T) {
	for _, timeout := range []time.Duration{200 * time.Millisecond, parkAfter + 350*time.Millisecond} {
		t.Run(timeout.String(), func(t *testing.T) {
			addr := start(t, &Server{IdleTimeout: timeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			})})
			c, br := dial(t, addr)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			readResponse(t, br, "GET")
			t0 := time.Now()
			expectClosed(t, br)
			if d := time.Since(t0); d < timeout*3/4 || d > 5*time.Second {
				t.Errorf("idle connection closed after %v, want about %v", d, timeout)
			}
		})
	}
}

func dialConn(t *testing.T, addr string) net.Conn {
	c, _ := dial(t, addr)
	return c
}

// get sends one request on c and reads its whole answer with a small buffer, so that the
// client side adds little to the heap.
func get(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var buf [256]byte
	var got []byte
	for !bytes.HasSuffix(got, []byte("\r\n\r\nok")) {
		n, err := c.Read(buf[:])
		if err != nil {
			t.Fatalf("read: %v after %q", err, got)
		}
		got = append(got, buf[:n]...)
	}
}

// heapInUse is the heap's in-use bytes once pooled objects are gone (two collections empty
// a sync.Pool).
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
