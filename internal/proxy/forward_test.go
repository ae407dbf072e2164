package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestHopByHopHeadersAreNotForwarded(t *testing.T) {
	a := startBackend(t, "a")
	srv := startServer(t, testSpec([]Route{prefixRoute("app", "/", "app")}, []Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	req, _ := http.NewRequest("GET", srv.url("public", "/"), nil)
	req.Header.Set("Connection", "X-Secret, keep-alive")
	req.Header.Set("X-Secret", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic eDp5")
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-Kept", "yes")
	resp, err := newClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := a.lastReq.Load().Header
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization"} {
		if got.Get(k) != "" {
			t.Errorf("%s forwarded: %q", k, got.Get(k))
		}
	}
	if got.Get("Te") != "trailers" || got.Get("X-Kept") != "yes" {
		t.Errorf("upstream headers %v", got)
	}
	if got.Get("User-Agent") != "Go-http-client/1.1" {
		t.Errorf("User-Agent %q, want the client's", got.Get("User-Agent"))
	}
}

// A response of unknown length is flushed as it arrives, not when it ends.
func TestStreamingResponseIsFlushed(t *testing.T) {
	release := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "data: second\n\n")
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	srv := startServer(t, testSpec([]Route{prefixRoute("app", "/", "app")}, []Cluster{{Name: "app", Endpoints: []string{ln.Addr().String()}}}))
	resp, err := newClient().Get(srv.url("public", "/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest %q", rest)
	}
}
