package main

// Integration tests of the proxy's lifecycle: real listeners on 127.0.0.1, a real upstream,
// real clients (HTTP/1.1, HTTP/2 frames on the wire, WebSockets), and `proxy run` driven by
// signals. They assert what a client of a replica being stopped or reloaded would notice.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gangway-ecs/gangway/internal/probecmd"
)

// upstream is the application behind the proxy: /slow?ms=N answers after N ms, /ws echoes
// WebSocket messages, anything else answers "hello".
func startUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		var ms int
		fmt.Sscan(r.URL.Query().Get("ms"), &ms)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		io.WriteString(w, "slow done")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type lcOptions struct {
	delay, drain string
	h2c          bool
	tls          *testCert // traffic listener certificate, when set
}

// lcConfig renders a config for one http listener on trafficAddr routing to upstream.
func lcConfig(trafficAddr, upstream string, o lcOptions) string {
	tlsBlock := ""
	if o.tls != nil {
		tlsBlock = fmt.Sprintf("    tls:\n      cert_file: %s\n      key_file: %s\n", o.tls.certFile, o.tls.keyFile)
	}
	return fmt.Sprintf(`
admin:
  address: 127.0.0.1:0
log:
  level: debug
  access_log: false
shutdown:
  delay: %s
  drain_timeout: %s
  deadline: 30s
  listener_grace: 20s
listeners:
  - name: public
    address: %s
    h2c: %v
    readiness_path: /gangway/ready
%sclusters:
  - name: app
    endpoints: [%q]
routes:
  - name: app
    cluster: app
    required: true
    allow_websockets: true
    timeout: 20s
    idle_timeout: 0s
`, o.delay, o.drain, trafficAddr, o.h2c, tlsBlock, strings.TrimPrefix(upstream, "http://"))
}

// lc is a running `proxy run` under test.
type lc struct {
	t       *testing.T
	cfgPath string
	admin   string
	traffic string
	sigs    chan os.Signal
	code    <-chan probecmd.ExitCode
	stderr  *syncBuffer
}

func startLC(t *testing.T, o lcOptions) (*lc, *httptest.Server) {
	t.Helper()
	upstream := startUpstream(t)
	traffic := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	path := writeConfig(t, lcConfig(traffic, upstream.URL, o))
	admin, sigs, code, stderr := startRun(t, path, "-watch=false")
	p := &lc{t: t, cfgPath: path, admin: admin, traffic: traffic, sigs: sigs, code: code, stderr: stderr}
	t.Cleanup(func() {
		select {
		case sigs <- syscall.SIGINT:
			sigs <- syscall.SIGINT
		default:
		}
	})
	waitStatus(t, "http://"+admin+"/readyz", 200)
	return p, upstream
}

func (p *lc) waitExit(want probecmd.ExitCode) {
	p.t.Helper()
	expectExit(p.t, p.code, want, 40*time.Second, p.stderr)
}

func TestShutdownDelayKeepsServingWhileNotReady(t *testing.T) {
	p, _ := startLC(t, lcOptions{delay: "2s", drain: "2s"})
	client := &http.Client{Timeout: 5 * time.Second}
	p.sigs <- syscall.SIGTERM
	waitStatus(t, "http://"+p.admin+"/readyz", 503)
	// The traffic port's readiness path agrees with /readyz ...
	if c, _ := httpGet(t, "http://"+p.traffic+"/gangway/ready"); c != 503 {
		t.Fatalf("traffic readiness path = %d during the delay", c)
	}
	// ... while requests, on new connections, keep succeeding.
	for i := 0; i < 20; i++ {
		resp, err := client.Get("http://" + p.traffic + "/")
		if err != nil {
			t.Fatalf("request %d during the delay: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello" {
			t.Fatalf("request %d during the delay: %d %q", i, resp.StatusCode, body)
		}
	}
	p.waitExit(0)
}

func TestDrainFinishesInFlightRequestWithConnectionClose(t *testing.T) {
	p, _ := startLC(t, lcOptions{delay: "300ms", drain: "10s"})
	// A keep-alive HTTP/1.1 connection with a slow request that spans the moment the
	// listener stops accepting.
	conn, err := net.Dial("tcp", p.traffic)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "GET /slow?ms=2500 HTTP/1.1\r\nHost: test\r\n\r\n")
	time.Sleep(200 * time.Millisecond) // the request is in flight upstream
	p.sigs <- syscall.SIGTERM
	waitStatus(t, "http://"+p.admin+"/readyz", 503)

	var wire bytes.Buffer // what the client received, before parsing removes Connection
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &wire)), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v\n%s", err, p.stderr.String())
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "slow done" {
		t.Fatalf("in-flight request: %d %q", resp.StatusCode, body)
	}
	if !resp.Close || !strings.Contains(wire.String(), "\r\nConnection: close\r\n") {
		t.Fatalf("response during drain lacks Connection: close: %v\n%s", resp.Header, p.stderr.String())
	}
	// The listener no longer accepts.
	if c, err := net.DialTimeout("tcp", p.traffic, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepts during the drain")
	}
	p.waitExit(0)
}

// TestHTTP2GoAwayAndInFlightStreamFinishes speaks HTTP/2 frames (h2c, prior knowledge) so
// that the GOAWAY is seen on the wire.
func TestHTTP2GoAwayAndInFlightStreamFinishes(t *testing.T) {
	p, _ := startLC(t, lcOptions{delay: "300ms", drain: "10s", h2c: true})
	conn, err := net.Dial("tcp", p.traffic)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "test"}, {":path", "/slow?ms=2500"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	p.sigs <- syscall.SIGTERM

	var goaway *http2.GoAwayFrame
	var status string
	var body []byte
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v (goaway=%v status=%q body=%q)\n%s", err, goaway != nil, status, body, p.stderr.String())
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			goaway = f
		case *http2.HeadersFrame:
			dec.Write(f.HeaderBlockFragment())
			done = f.StreamEnded()
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			done = f.StreamEnded()
		}
	}
	if goaway == nil {
		t.Fatal("no GOAWAY before the in-flight stream ended")
	}
	if goaway.ErrCode != http2.ErrCodeNo || goaway.LastStreamID < 1 {
		t.Fatalf("GOAWAY %v last stream %d: the in-flight stream is not covered", goaway.ErrCode, goaway.LastStreamID)
	}
	if status != "200" || string(body) != "slow done" {
		t.Fatalf("in-flight stream: status %q body %q", status, body)
	}
	p.waitExit(0)
}

func TestBrokenReloadKeepsServing(t *testing.T) {
	p, _ := startLC(t, lcOptions{delay: "0s", drain: "2s"})
	good, err := os.ReadFile(p.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// A config with an unknown cluster reference: valid YAML, invalid config.
	broken := strings.Replace(string(good), "    cluster: app\n    required", "    cluster: nope\n    required", 1)
	if err := os.WriteFile(p.cfgPath, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	p.sigs <- syscall.SIGHUP

	var st map[string]struct {
		Status     string `json:"status"`
		Error      string `json:"error"`
		Attributes map[string]string
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := httpGet(t, "http://"+p.admin+"/status")
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		if st["config.build"].Error != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rejected reload never showed in /status:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cb := st["config.build"]
	if !strings.Contains(cb.Error, `"nope"`) || cb.Status != "RUNNING" {
		t.Fatalf("config.build = %+v", cb)
	}
	attrs := cb.Attributes
	if attrs["rejected_version"] == "" || attrs["reason"] == "" || attrs["serving_version"] == "" {
		t.Fatalf("config.build attributes = %v", attrs)
	}
	if c, _ := httpGet(t, "http://"+p.admin+"/readyz"); c != 200 {
		t.Fatal("a rejected reload failed readiness")
	}
	if c, _ := httpGet(t, "http://"+p.admin+"/livez"); c != 200 {
		t.Fatal("a rejected reload failed liveness")
	}
	if c, body := httpGet(t, "http://"+p.traffic+"/"); c != 200 || body != "hello" {
		t.Fatalf("traffic after a rejected reload: %d %q", c, body)
	}
	// /metrics counts it, and says that the file is not what serves.
	_, m := httpGet(t, "http://"+p.admin+"/metrics")
	for _, want := range []string{"\ngangway_config_reloads_rejected_total 1\n", "\ngangway_config_last_reload_successful 0\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics after a rejected reload lacks %q", strings.TrimSpace(want))
		}
	}
	// Fixing the file clears the error.
	os.WriteFile(p.cfgPath, good, 0o644)
	p.sigs <- syscall.SIGHUP
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, body := httpGet(t, "http://"+p.admin+"/status")
		json.Unmarshal([]byte(body), &st)
		if st["config.build"].Error == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the error stayed after a good reload:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Durations in the log are numbers of milliseconds, the access log's unit.
	if !regexp.MustCompile(`"msg":"xds version applied".*"duration_ms":[0-9.]+[,}]`).MatchString(p.stderr.String()) {
		t.Errorf("no xds version applied line with a duration_ms number:\n%s", p.stderr.String())
	}
	_, m = httpGet(t, "http://"+p.admin+"/metrics")
	for _, want := range []string{"\ngangway_config_reloads_rejected_total 1\n", "\ngangway_config_last_reload_successful 1\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics after a good reload lacks %q", strings.TrimSpace(want))
		}
	}
	p.sigs <- syscall.SIGTERM
	p.waitExit(0)
}

// TestReloadNewCertificateKeepsOldWebSocket changes the listener's certificate files in
// the config: new TLS connections get the new certificate while a WebSocket opened before
// the reload keeps working on the old listener.
func TestReloadNewCertificateKeepsOldWebSocket(t *testing.T) {
	dir := t.TempDir()
	certA := newTestCert(t, dir, "a", "gangway-a")
	certB := newTestCert(t, dir, "b", "gangway-b")
	p, upstream := startLC(t, lcOptions{delay: "0s", drain: "2s", tls: certA})

	pool := x509.NewCertPool()
	pool.AddCert(certA.cert)
	pool.AddCert(certB.cert)
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	dialer := websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 5 * time.Second}
	ws, _, err := dialer.Dial("wss://"+p.traffic+"/ws", nil)
	if err != nil {
		t.Fatalf("websocket: %v\n%s", err, p.stderr.String())
	}
	defer ws.Close()
	echo := func(msg string) {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		_, got, err := ws.ReadMessage()
		if err != nil || string(got) != msg {
			t.Fatalf("echo %q: %q %v", msg, got, err)
		}
	}
	echo("before")
	if cn := peerCN(t, p.traffic, tlsConf); cn != "gangway-a" {
		t.Fatalf("certificate before reload: %q", cn)
	}

	cfg := lcConfig(p.traffic, upstream.URL, lcOptions{delay: "0s", drain: "2s", tls: certB})
	cfg = strings.Replace(cfg, "address: 127.0.0.1:0\nlog", "address: "+p.admin+"\nlog", 1)
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p.sigs <- syscall.SIGHUP
	deadline := time.Now().Add(10 * time.Second)
	for peerCN(t, p.traffic, tlsConf) != "gangway-b" {
		if time.Now().After(deadline) {
			t.Fatalf("new connections never got the new certificate:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	echo("after the reload")
	// The replaced listener drains while the WebSocket lives, and the gauge says so.
	if _, body := httpGet(t, "http://"+p.admin+"/metrics"); !strings.Contains(body, "gangway_listeners_draining 1") {
		t.Errorf("metrics do not show one draining listener:\n%s", grepLines(body, "draining"))
	}
	if c, _ := httpGet(t, "http://"+p.admin+"/readyz"); c != 200 {
		t.Fatal("not ready after the certificate reload")
	}
	p.sigs <- syscall.SIGTERM
	p.waitExit(0)
}

// peerCN opens a TLS connection and returns the server certificate's common name.
func peerCN(t *testing.T, addr string, conf *tls.Config) string {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		return "error: " + err.Error()
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestFileChangeReloadTouchesNoConnection: editing the file reloads the routes; a keep-alive
// connection opened before the reload serves the next request with the new route, and is
// not closed.
func TestFileChangeReloadTouchesNoConnection(t *testing.T) {
	upstream := startUpstream(t)
	traffic := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := lcConfig(traffic, upstream.URL, lcOptions{delay: "0s", drain: "2s"})
	path := writeConfig(t, cfg)
	admin, sigs, code, stderr := startRun(t, path) // the file watch is on by default
	waitStatus(t, "http://"+admin+"/readyz", 200)

	conn, err := net.Dial("tcp", traffic)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	roundTrip := func() *http.Response {
		t.Helper()
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: test\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("keep-alive request: %v\n%s", err, stderr.String())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := roundTrip(); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before reload: %d close=%v", resp.StatusCode, resp.Close)
	}

	changed := strings.Replace(cfg, "    timeout: 20s\n", "    timeout: 20s\n    set_response_headers: {X-Route-Version: two}\n", 1)
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + traffic + "/")
		if err == nil {
			resp.Body.Close()
			if resp.Header.Get("X-Route-Version") == "two" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file change was never applied:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp := roundTrip()
	if resp.StatusCode != 200 || resp.Close || resp.Header.Get("X-Route-Version") != "two" {
		t.Fatalf("old connection after reload: %d close=%v headers=%v", resp.StatusCode, resp.Close, resp.Header)
	}
	sigs <- syscall.SIGTERM
	expectExit(t, code, 0, 30*time.Second, nil)
}

// TestStartupGatedOnRequiredCluster: until the required route's cluster has a healthy
// endpoint, /readyz and the traffic port's readiness path answer 503; once the upstream
// passes its health check, both flip to 200.
func TestStartupGatedOnRequiredCluster(t *testing.T) {
	var healthy atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !healthy.Load() {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "hello")
	}))
	defer up.Close()
	traffic := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := lcConfig(traffic, up.URL, lcOptions{delay: "0s", drain: "2s"})
	cfg = strings.Replace(cfg, "    endpoints: [", `    health_check:
      type: http
      path: /healthz
      interval: 300ms
      timeout: 200ms
      healthy_threshold: 1
      unhealthy_threshold: 1
    endpoints: [`, 1)
	admin, sigs, code, stderr := startRun(t, writeConfig(t, cfg), "-watch=false")

	waitStatus(t, "http://"+admin+"/livez", 200)
	for i := 0; i < 5; i++ {
		c, body := httpGet(t, "http://"+admin+"/readyz")
		if c != 503 || !strings.Contains(body, "upstream.cluster.app") {
			t.Fatalf("readyz with no healthy endpoint = %d:\n%s\n%s", c, body, stderr.String())
		}
		if c, _ := httpGet(t, "http://"+traffic+"/gangway/ready"); c != 503 {
			t.Fatalf("traffic readiness path with no healthy endpoint = %d", c)
		}
		time.Sleep(100 * time.Millisecond)
	}
	healthy.Store(true)
	flipped := time.Now()
	waitStatus(t, "http://"+admin+"/readyz", 200)
	waitStatus(t, "http://"+traffic+"/gangway/ready", 200)
	t.Logf("ready %v after the upstream became healthy (health-check interval 300ms)", time.Since(flipped).Round(time.Millisecond))
	sigs <- syscall.SIGTERM
	expectExit(t, code, 0, 30*time.Second, nil)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestWebSocketGoingAwayAtEndOfDrain: a WebSocket open at shutdown keeps working through the
// delay and the drain window, then receives a 1001 "going away" close frame, and the
// process exits 0 within its deadline.
func TestWebSocketGoingAwayAtEndOfDrain(t *testing.T) {
	p, _ := startLC(t, lcOptions{delay: "300ms", drain: "1500ms"})
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.traffic+"/ws", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.Close()
	start := time.Now()
	p.sigs <- syscall.SIGTERM
	ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte("during shutdown")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "during shutdown" {
		t.Fatalf("echo during shutdown: %q %v", msg, err)
	}
	_, _, err = ws.ReadMessage()
	ce, ok := err.(*websocket.CloseError)
	if !ok || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("want a 1001 close frame, got %v\n%s", err, p.stderr.String())
	}
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("closed after %v, before the end of the drain window", el)
	}
	p.waitExit(0)
}

// TestLivenessStaysGreenThroughShutdown: the main loop's heartbeat (process.loop, a TTL check
// gating liveness) keeps beating while the shutdown choreography runs, so a drain longer than
// the TTL never fails /livez (nor withholds the systemd watchdog).
func TestLivenessStaysGreenThroughShutdown(t *testing.T) {
	upstream := startUpstream(t)
	traffic := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	path := writeConfig(t, lcConfig(traffic, upstream.URL, lcOptions{delay: "2s", drain: "1s"}))
	var stderr syncBuffer
	sigs := make(chan os.Signal, 2)
	addrC := make(chan string, 1)
	e := env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	cmd := &RunCommand{env: e, signals: sigs, ready: func(a string) { addrC <- a }, loopTTL: 400 * time.Millisecond}
	code := make(chan probecmd.ExitCode, 1)
	go func() {
		code <- exited(cmd.Run(context.Background(), []string{"-config", path, "-watch=false"}), &stderr)
	}()
	var admin string
	select {
	case admin = <-addrC:
	case <-time.After(20 * time.Second):
		t.Fatalf("did not start:\n%s", stderr.String())
	}
	waitStatus(t, "http://"+admin+"/livez", 200)
	sigs <- syscall.SIGTERM
	waitStatus(t, "http://"+admin+"/readyz", 503)
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c, body := httpGet(t, "http://"+admin+"/livez?verbose"); c != 200 {
			t.Fatalf("liveness failed during the shutdown delay:\n%s", body)
		}
	}
	expectExit(t, code, 0, 20*time.Second, &stderr)
}
