package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// startTestFloor starts the floor in front of a real HTTP server that answers with a
// Content-Length, or chunked on /chunked.
func startTestFloor(t *testing.T) (floor string, dials func() int) {
	t.Helper()
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.Write([]byte("no length"))
			w.(http.Flusher).Flush()
			return
		}
		body := "answer to " + r.URL.Path
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write([]byte(body))
	}))
	var conns atomic.Int32
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	// First (cleanups run last-in first-out): Close waits for requests in progress, and a
	// floor that went wrong may leave one waiting for a body that never comes.
	t.Cleanup(up.CloseClientConnections)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go floorServe(ln, up.Listener.Addr().String())
	return ln.Addr().String(), func() int { return int(conns.Load()) }
}

func TestFloorForwardsKeepAliveRequests(t *testing.T) {
	floor, dials := startTestFloor(t)
	c, err := net.Dial("tcp", floor)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 50 {
		path := fmt.Sprintf("/r%d", i)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "answer to "+path {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if n := dials(); n != 1 {
		t.Errorf("the upstream saw %d connections for 50 sequential requests, want 1 (reused)", n)
	}
}

func TestFloorClosesOnWhatItDoesNotForward(t *testing.T) {
	floor, _ := startTestFloor(t)
	for _, req := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",        // a body
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", // a chunked body
		"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n",                         // an answer without a length
	} {
		c, err := net.Dial("tcp", floor)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(b) != 0 {
			t.Errorf("%q: read %q, %v; want the connection closed", req, b, err)
		}
	}
}
