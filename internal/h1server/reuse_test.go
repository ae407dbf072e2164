package h1server

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// describe is what a handler sees of its request, field by field.
func describe(r *http.Request) string {
	var keys []string
	for k, vv := range r.Header {
		keys = append(keys, k+"="+strings.Join(vv, ","))
	}
	slices.Sort(keys)
	return fmt.Sprintf("%s %s host=%s uri=%s len=%d nobody=%v close=%v trailer=%v err=%v header=%s",
		r.Method, r.URL, r.Host, r.RequestURI, r.ContentLength, r.Body == http.NoBody, r.Close, r.Trailer, r.Context().Err(), strings.Join(keys, " "))
}

// TestResponsesUsedAgain: the response of a request without a body is used for a later
// request, which sees nothing of the one before (its header, URL, context); one whose
// request had a body, or whose context's Done channel was handed out, is left to the
// collector.
func TestResponsesUsedAgain(t *testing.T) {
	var released atomic.Int64
	testHookReleased = func() { released.Add(1) }
	t.Cleanup(func() { testHookReleased = nil })
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/done":
			_ = r.Context().Done() // handed out: someone may wait on it
		case "/body":
			io.Copy(io.Discard, r.Body)
		}
		io.WriteString(w, describe(r))
	})})
	c, br := dial(t, addr)
	do := func(head, method string) string {
		t.Helper()
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		_, body := readResponse(t, br, method)
		return body
	}
	for i := range 40 {
		var got, want string
		if i%2 == 0 {
			got = do(fmt.Sprintf("GET /even/%d?q=%d HTTP/1.1\r\nHost: e\r\nX-Even: e\r\nX-Even: E\r\nCookie: a=1\r\n\r\n", i, i), "GET")
			want = fmt.Sprintf("GET /even/%d?q=%d host=e uri=/even/%d?q=%d len=0 nobody=true close=false trailer=map[] err=<nil> header=Cookie=a=1 X-Even=e,E", i, i, i, i)
		} else {
			got = do(fmt.Sprintf("DELETE /odd/%d HTTP/1.1\r\nHost: o\r\nX-Odd: o\r\n\r\n", i), "DELETE")
			want = fmt.Sprintf("DELETE /odd/%d host=o uri=/odd/%d len=0 nobody=true close=false trailer=map[] err=<nil> header=X-Odd=o", i, i)
		}
		if got != want {
			t.Fatalf("request %d saw\n%s\nwant\n%s", i, got, want)
		}
	}
	// A response is released after the connection has finished it, before it reads the
	// next request: every one but the last is released by now.
	if n := released.Load(); n < 39 {
		t.Fatalf("%d of the first 39 responses released", n)
	}
	if got := do("POST /body HTTP/1.1\r\nHost: b\r\nContent-Length: 6\r\n\r\na body", "POST"); !strings.HasPrefix(got, "POST /body ") {
		t.Fatalf("POST answered %q", got)
	}
	if got := do("GET /done HTTP/1.1\r\nHost: d\r\n\r\n", "GET"); !strings.HasPrefix(got, "GET /done ") {
		t.Fatalf("GET /done answered %q", got)
	}
	do("GET /last HTTP/1.1\r\nHost: l\r\n\r\n", "GET")
	time.Sleep(20 * time.Millisecond) // for the last request's release
	if n := released.Load(); n != 41 {
		t.Fatalf("%d released, want 41: the first 40 and the last, not the one with a body or the one whose Done was handed out", n)
	}
}
