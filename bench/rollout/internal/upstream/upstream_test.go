package upstream

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestEcho(t *testing.T) {
	s, err := Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr()
	c := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/echo?id=a-1", "", 200, "a-1"},
		{"POST", "/echo?delay=10ms", "b-2", 200, "b-2"},
		{"GET", "/echo?id=x&delay=1h", "", 400, ""},
		{"PUT", "/echo", "", 405, ""},
		{"GET", "/healthz", "", 200, "ok"},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		begin := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.want != "" && string(body) != tc.want) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.want)
		}
		if strings.Contains(tc.path, "delay=10ms") && time.Since(begin) < 10*time.Millisecond {
			t.Errorf("%s %s answered before its delay", tc.method, tc.path)
		}
	}
}

// WebSocket messages come back unchanged; Close ends open WebSockets too.
func TestWebSocket(t *testing.T) {
	s, err := Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, m := range []string{"one", "two"} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := conn.ReadMessage()
		if err != nil || string(got) != m {
			t.Fatalf("echo of %q: %q, %v", m, got, err)
		}
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a WebSocket open")
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Error("the WebSocket is still open after Close")
	}
}

// An outage fails every request, the health check included, and ends when SetDown(false).
func TestOutage(t *testing.T) {
	s, err := Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &http.Client{Timeout: 5 * time.Second}
	status := func(path string) int {
		resp, err := c.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	s.SetDown(true)
	for _, p := range []string{"/healthz", "/echo?id=a", "/ws"} {
		if got := status(p); got != http.StatusServiceUnavailable {
			t.Errorf("GET %s during the outage = %d, want 503", p, got)
		}
	}
	s.SetDown(false)
	if got := status("/healthz"); got != http.StatusOK {
		t.Errorf("GET /healthz after the outage = %d", got)
	}
}
