package h1server

import (
	"bytes"
	"net/http"
	"testing"
)

// maxAllocsPerRequest bounds the heap allocations the server makes for a GET with a few
// header fields whose handler writes a short body and sets no header: the request's head
// string. Its response (which holds its request, URL and header values), its header map and
// the map's storage are used again from one request to the next (4 before they were).
const maxAllocsPerRequest = 1

var ok = []byte("ok")

// TestAllocationsPerRequest counts the server's heap allocations per keep-alive request,
// the client being a raw connection that allocates nothing per request.
func TestAllocationsPerRequest(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(ok) // no Content-Length: the server counts it, and sniffs the type
	})})
	c, _ := dial(t, addr)
	req := []byte("GET /a/path?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	var buf [512]byte
	do := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		got := buf[:0]
		for !bytes.HasSuffix(got, []byte("\r\n\r\nok")) {
			n, err := c.Read(buf[len(got):])
			if err != nil {
				t.Fatal(err)
			}
			got = buf[:len(got)+n]
		}
	}
	for range 100 {
		do()
	}
	per := testing.AllocsPerRun(2000, do)
	want := float64(maxAllocsPerRequest)
	if raceEnabled {
		want += 3 // the connection's buffers and responses, from pools that drop some of what they get back
	}
	if per > want {
		t.Errorf("%.0f allocations per request, want at most %.0f", per, want)
	}
}
