package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// unreadBodyPython is Python's stock http.server answering a POST with 401 without reading
// its body, on a keep-alive HTTP/1.1 connection: it then reads the body as the next request.
const unreadBodyPython = `
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.answer(401, "unauthorized")
    def do_GET(self):
        self.answer(200, "GET " + self.path)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
`

// startPython runs a Python upstream script that prints its port, and returns its address.
func startPython(t *testing.T, script string) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the test needs Python's http.server as the upstream")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		if p == "" {
			t.Fatal("the Python upstream did not start")
		}
		return "127.0.0.1:" + p
	case <-time.After(20 * time.Second):
		t.Fatal("the Python upstream did not print its port")
	}
	return ""
}

// TestUnreadRequestBodyDoesNotShiftResponses: an upstream that answers a POST without
// reading its body (Python's http.server, 401) reads that body as a request of its own and
// answers it too. That second answer belongs to nobody: each later client gets the answer
// to its own request.
func TestUnreadRequestBodyDoesNotShiftResponses(t *testing.T) {
	up := startPython(t, unreadBodyPython)
	srv := startServer(t, testSpec([]Route{prefixRoute("app", "/", "app")}, []Cluster{{Name: "app", Endpoints: []string{up}}}))
	c := newClient()
	for i := range 20 {
		resp, err := c.Post(srv.url("public", "/login"), "text/plain", strings.NewReader("GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || string(body) != "unauthorized" {
			t.Fatalf("POST %d: %d %q, want the upstream's 401", i, resp.StatusCode, body)
		}
		if code, body := get(t, c, srv.url("public", "/mine")); code != 200 || body != "GET /mine" {
			t.Fatalf("GET after POST %d: %d %q, want the answer to GET /mine", i, code, body)
		}
	}
}
