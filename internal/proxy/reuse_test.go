package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// TestHandlerStatesUsedAgain: a request without a body leaves its handler state (recorder,
// stream timer, X-Forwarded-* values, upstream request) for a later request, which
// forwards nothing of the one before; a request with a body, or whose stream timer expired,
// leaves its state to the collector.
func TestHandlerStatesUsedAgain(t *testing.T) {
	var released atomic.Int64
	testHookReleased = func() { released.Add(1) }
	t.Cleanup(func() { testHookReleased = nil })

	// The upstream answers with what it was sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(500 * time.Millisecond)
		}
		io.Copy(io.Discard, r.Body)
		var keys []string
		for k, vv := range r.Header {
			keys = append(keys, k+"="+strings.Join(vv, ","))
		}
		slices.Sort(keys)
		fmt.Fprintf(w, "%s %s host=%s %s", r.Method, r.URL, r.Host, strings.Join(keys, " "))
	})}
	go echo.Serve(ln)
	t.Cleanup(func() { echo.Close() })

	slow := prefixRoute("slow", "/slow", "app")
	slow.Timeout = 100 * time.Millisecond
	srv := startServer(t, testSpec([]spec.Route{slow, prefixRoute("app", "/", "app")},
		[]spec.Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))
	addr := srv.Addr("public")
	_, port, _ := net.SplitHostPort(addr)
	client := newClient()
	do := func(method, path, body string, header ...string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, "http://"+addr+path, rd)
		for i := 0; i < len(header); i += 2 {
			req.Header.Add(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The first request dials the upstream, which hands its context's Done channel out (the
	// dialer watches it): its state is not used again.
	do("GET", "/first", "")
	released.Store(0)
	fwd := "X-Forwarded-For=127.0.0.1 X-Forwarded-Host=" + addr + " X-Forwarded-Port=" + port + " X-Forwarded-Proto=http"
	for i := range 30 {
		var got, want string
		if i%2 == 0 {
			_, got = do("GET", fmt.Sprintf("/even/%d?q=%d", i, i), "", "X-Even", "e", "X-Forwarded-For", "10.9.9.9")
			want = fmt.Sprintf("GET /even/%d?q=%d host=%s Accept-Encoding=gzip User-Agent=Go-http-client/1.1 X-Even=e %s", i, i, ln.Addr(), fwd)
		} else {
			_, got = do("DELETE", fmt.Sprintf("/odd/%d", i), "", "X-Odd", "o")
			want = fmt.Sprintf("DELETE /odd/%d host=%s Accept-Encoding=gzip User-Agent=Go-http-client/1.1 %s X-Odd=o", i, ln.Addr(), fwd)
		}
		if got != want {
			t.Fatalf("request %d: the upstream saw\n%s\nwant\n%s", i, got, want)
		}
	}
	if n := released.Load(); n != 30 {
		t.Fatalf("%d of 30 handler states released", n)
	}
	if code, got := do("POST", "/body", "a body"); code != http.StatusOK || !strings.HasPrefix(got, "POST /body ") {
		t.Fatalf("POST: %d %q", code, got)
	}
	if code, _ := do("GET", "/slow", ""); code != http.StatusGatewayTimeout {
		t.Fatalf("GET /slow: %d, want 504", code)
	}
	if n := released.Load(); n != 30 {
		t.Fatalf("%d released, want still 30: not the state of a request with a body, or of one whose timer expired", n)
	}
}
