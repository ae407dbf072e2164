package h2server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countReleases counts the streams handed on for new ones until the test ends.
func countReleases(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	testHookReleased = func() { n.Add(1) }
	t.Cleanup(func() { testHookReleased = nil })
	return &n
}

// describe is what a handler sees of its request, field by field.
func describe(r *http.Request) string {
	var keys []string
	for k, vv := range r.Header {
		keys = append(keys, k+"="+strings.Join(vv, ","))
	}
	slices.Sort(keys)
	return fmt.Sprintf("%s %s host=%s uri=%s len=%d nobody=%v trailer=%v err=%v header=%s",
		r.Method, r.URL, r.Host, r.RequestURI, r.ContentLength, r.Body == http.NoBody, r.Trailer, r.Context().Err(), strings.Join(keys, " "))
}

// TestStreamsUsedAgain: an ended stream without a body is used for a later request, which
// sees nothing of the one before (its header, URL, context); a stream that read a body,
// panicked, was reset or handed its context's Done channel out is left to the collector.
func TestStreamsUsedAgain(t *testing.T) {
	released := countReleases(t)
	addr := serve(t, &Server{WriteTimeout: time.Minute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			panic(http.ErrAbortHandler)
		case "/done":
			_ = r.Context().Done() // handed out: someone may wait on it
		case "/body":
			io.Copy(io.Discard, r.Body)
		case "/reset":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for deadline := time.Now().Add(5 * time.Second); r.Context().Err() == nil && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond) // Err, not Done: the context stays quiet
			}
			return
		}
		io.WriteString(w, describe(r))
	})})
	client := h2Client()
	get := func(method, path string, body io.Reader, header ...string) (string, error) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, body)
		for i := 0; i < len(header); i += 2 {
			req.Header.Add(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for i := range 40 {
		var got, want string
		var err error
		if i%2 == 0 {
			got, err = get("GET", fmt.Sprintf("/even/%d?q=%d", i, i), nil, "X-Even", "e", "X-Even", "E", "Cookie", "a=1", "Cookie", "b=2")
			want = fmt.Sprintf("GET /even/%d?q=%d host=%s uri=/even/%d?q=%d len=0 nobody=true trailer=map[] err=<nil> header=Accept-Encoding=gzip Cookie=a=1; b=2 User-Agent=Go-http-client/2.0 X-Even=e,E",
				i, i, addr, i, i)
		} else {
			got, err = get("DELETE", fmt.Sprintf("/odd/%d", i), nil, "X-Odd", "o")
			want = fmt.Sprintf("DELETE /odd/%d host=%s uri=/odd/%d len=0 nobody=true trailer=map[] err=<nil> header=Accept-Encoding=gzip User-Agent=Go-http-client/2.0 X-Odd=o", i, addr, i)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("request %d saw\n%s\nwant\n%s", i, got, want)
		}
	}
	// Each handler's stream is released after its response has gone out: wait for the last.
	for deadline := time.Now().Add(5 * time.Second); released.Load() < 40 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := released.Load(); n != 40 {
		t.Fatalf("%d of 40 streams without a body released", n)
	}

	for _, tc := range []struct{ method, path string }{{"POST", "/body"}, {"GET", "/panic"}, {"GET", "/done"}} {
		var body io.Reader
		if tc.method == "POST" {
			body = strings.NewReader("a body")
		}
		got, err := get(tc.method, tc.path, body)
		if tc.path == "/panic" {
			if err == nil {
				t.Fatalf("%s: answered %q", tc.path, got)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // for a release that should not come
		if n := released.Load(); n != 40 {
			t.Fatalf("%s %s: the stream was released (%d)", tc.method, tc.path, n)
		}
	}

	// Reset by the client while its handler runs.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/reset", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	if got, err := get("GET", "/after", nil); err != nil || !strings.HasPrefix(got, "GET /after ") {
		t.Fatalf("after the reset: %q, %v", got, err)
	}
	time.Sleep(20 * time.Millisecond)
	if n := released.Load(); n != 41 {
		t.Fatalf("%d released, want 41: the reset stream's and the next's", n)
	}
}
