package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// startEchoWS starts a WebSocket echo server on 127.0.0.1.
func startEchoWS(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			if err := c.WriteMessage(mt, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// startEchoTCP starts a TCP server on 127.0.0.1 that echoes bytes until EOF, then closes.
func startEchoTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestWebSocketThroughRoute(t *testing.T) {
	ws := startEchoWS(t)
	r := prefixRoute("ws", "/ws", "ws")
	r.AllowWebSockets = true
	r.IdleTimeout = 100 * time.Millisecond // not applied to an upgraded connection
	r.Timeout = 100 * time.Millisecond
	spec := testSpec([]spec.Route{r, prefixRoute("plain", "/", "ws")}, []spec.Cluster{{Name: "ws", Endpoints: []string{ws}}})
	srv := startServer(t, spec)

	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr("public")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer conn.Close()
	for i, msg := range []string{"hello", "gangway"} {
		if i == 1 {
			time.Sleep(300 * time.Millisecond) // longer than the route's timeouts
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := conn.ReadMessage()
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("read %q, %v", got, err)
		}
	}
	if n := srv.ActiveConns(); n != 1 {
		t.Fatalf("ActiveConns = %d with one WebSocket", n)
	}

	// A route that does not allow WebSockets refuses the upgrade.
	_, resp, err = websocket.DefaultDialer.Dial("ws://"+srv.Addr("public")+"/plain", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("upgrade on a plain route: %v %v", err, resp)
	}

	// Shutdown closes the WebSocket at the end of the drain window.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = srv.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "closed at the end of the drain window") {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("the WebSocket was closed after %s, before the drain window ended", d)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Fatal("WebSocket still open after Shutdown")
	}
	if n := srv.ActiveConns(); n != 0 {
		t.Fatalf("ActiveConns after Shutdown = %d", n)
	}
}

func TestTCPTunnel(t *testing.T) {
	echo := startEchoTCP(t)
	dead := freeAddr(t)
	sp := testSpec(nil, []spec.Cluster{{Name: "echo", Endpoints: []string{dead, echo}}})
	sp.Listeners = append(sp.Listeners, spec.Listener{Name: "db", Address: "127.0.0.1:0", Protocol: spec.TCP, Cluster: "echo"})
	srv := startServer(t, sp)

	for i := range 3 { // one of them first tries the dead endpoint and is retried
		c := rawConn(t, srv.Addr("db"))
		io.WriteString(c, "ping\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "ping\n" {
			t.Fatalf("tunnel %d: %q %v", i, line, err)
		}
		// Half-close: the echo server sees EOF, closes, and we see EOF.
		c.(*net.TCPConn).CloseWrite()
		if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
			t.Fatalf("after half-close: %q %v", rest, err)
		}
	}
	rec, _ := record(srv.reg, "proxy.listener.db")
	if rec.Status != health.Running || attr(rec, "protocol") != "tcp" {
		t.Fatalf("listener check %+v", rec)
	}

	// An open tunnel is counted, and closed when the drain window ends.
	c := rawConn(t, srv.Addr("db"))
	io.WriteString(c, "x")
	io.ReadFull(c, make([]byte, 1))
	eventually(t, "tunnel counted", func() bool { return srv.ActiveConns() >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	srv.Shutdown(ctx)
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("tunnel after shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", srv.Addr("db"), time.Second); err == nil {
		t.Fatal("tcp listener still accepts after Shutdown")
	}
}

// TestTCPTunnelTLS: a tcp listener whose cluster has upstream TLS speaks TLS to the
// endpoint (verified against the cluster's CA) and plain bytes to the client.
func TestTCPTunnelTLS(t *testing.T) {
	ca := newCA(t, "tunnel-ca")
	dir := t.TempDir()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.TLSCert(t, "db.internal")}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	caFile := writeFile(t, dir, "ca.pem", ca.PEM)
	sp := testSpec(nil, []spec.Cluster{{Name: "db", Endpoints: []string{ln.Addr().String()},
		TLS: &spec.UpstreamTLS{CAFile: caFile, ServerName: "db.internal"}}})
	sp.Listeners = append(sp.Listeners, spec.Listener{Name: "db", Address: "127.0.0.1:0", Protocol: spec.TCP, Cluster: "db"})
	srv := startServer(t, sp)
	c := rawConn(t, srv.Addr("db"))
	io.WriteString(c, "over tls\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "over tls\n" {
		t.Fatalf("tunnel over TLS: %q %v", line, err)
	}

	// A certificate the cluster's CA did not sign is refused: no bytes flow.
	other := newCA(t, "other-ca")
	spec2 := testSpec(nil, []spec.Cluster{{Name: "db", Endpoints: []string{ln.Addr().String()},
		TLS: &spec.UpstreamTLS{CAFile: writeFile(t, dir, "other.pem", other.PEM), ServerName: "db.internal"}}})
	spec2.Listeners = append(spec2.Listeners, spec.Listener{Name: "db", Address: "127.0.0.1:0", Protocol: spec.TCP, Cluster: "db"})
	srv2 := startServer(t, spec2)
	c2 := rawConn(t, srv2.Addr("db"))
	io.WriteString(c2, "x\n")
	if b, _ := io.ReadAll(c2); len(b) != 0 {
		t.Fatalf("bytes flowed through an unverified tunnel: %q", b)
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	a := startBackend(t, "a")
	a.delay.Store(int64(400 * time.Millisecond))
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	addr := srv.Addr("public")
	c := rawConn(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, "request in flight", func() bool { return a.hits.Load() == 1 })

	srv.StopAccepting()
	rec, _ := record(srv.reg, "proxy.listener.public")
	if rec.Status != health.Terminating {
		t.Fatalf("listener check %s after StopAccepting", rec.Status)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("listener accepts after StopAccepting")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if left := srv.Drain(ctx); left != 0 {
		t.Fatalf("Drain left %d connections", left)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "a HTTP/1.1 /slow" || !resp.Close {
		t.Fatalf("in-flight request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	srv.Close()
}

// TestShutdownAnswersAcceptedConnection: a connection accepted before the listener stopped,
// whose first request arrives only after, gets its answer (with Connection: close): the
// HTTP server's shutdown does not take a connection that has sent nothing yet for an idle
// one, so a client that connected just before a drain or a listener replacement sees no
// failure.
func TestShutdownAnswersAcceptedConnection(t *testing.T) {
	a := startBackend(t, "a")
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	c := rawConn(t, srv.Addr("public"))
	active := srv.metrics.activeConns.WithLabelValues("public")
	eventually(t, "the connection accepted", func() bool { return testutil.ToFloat64(active) == 1 })

	srv.StopAccepting() // closes what the HTTP server takes for idle before it returns
	io.WriteString(c, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the request sent after the listener stopped: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "a HTTP/1.1 /late" || !resp.Close {
		t.Fatalf("late request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if left := srv.Drain(ctx); left != 0 {
		t.Fatalf("Drain left %d connections", left)
	}
}

func TestShutdownSendsGoAwayOnHTTP2(t *testing.T) {
	a := startBackend(t, "a")
	a.delay.Store(int64(300 * time.Millisecond))
	spec := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}})
	spec.Listeners[0].H2C = true
	srv := startServer(t, spec)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	done := make(chan error, 1)
	go func() {
		resp, err := c.Get(srv.url("public", "/"))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = io.ErrUnexpectedEOF
			}
		}
		done <- err
	}()
	eventually(t, "request in flight", func() bool { return a.hits.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight HTTP/2 request: %v", err)
	}
}

func TestApplySwapsRoutesAtomically(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	clusters := []spec.Cluster{{Name: "a", Endpoints: []string{a.addr}}, {Name: "b", Endpoints: []string{b.addr}}}
	sp := testSpec([]spec.Route{prefixRoute("r", "/", "a")}, clusters)
	srv := startServer(t, sp)
	addr := srv.Addr("public")
	// Pin the address so that the next spec keeps the same listener.
	sp.Listeners[0].Address = addr
	c := newClient()
	if _, body := get(t, c, srv.url("public", "/")); !strings.HasPrefix(body, "a ") {
		t.Fatalf("before: %q", body)
	}
	oldCluster := srv.table.Load().clusters["a"]

	next := *sp
	next.Version = "v2"
	next.Routes = []spec.Route{prefixRoute("r", "/", "b")}
	srv.reg.SetConfigVersion("v2")
	if err := srv.Apply(&next); err != nil {
		t.Fatal(err)
	}
	if srv.Addr("public") != addr {
		t.Fatalf("listener replaced: %s -> %s", addr, srv.Addr("public"))
	}
	if _, body := get(t, c, "http://"+addr+"/"); !strings.HasPrefix(body, "b ") {
		t.Fatalf("after: %q", body)
	}
	if srv.table.Load().clusters["a"] != oldCluster {
		t.Fatal("an unchanged cluster was rebuilt")
	}
	for _, name := range []string{"proxy.listener.public", "upstream.cluster.a", "upstream.cluster.b"} {
		if rec, _ := record(srv.reg, name); rec.Version != "v2" {
			t.Fatalf("%s at version %q", name, rec.Version)
		}
	}
	if code, body := get(t, c, "http://"+addr+"/gangway/ready"); code != 200 {
		t.Fatalf("readiness after Apply: %d %q", code, body)
	}

	// Removing a cluster removes its check.
	last := next
	last.Version = "v3"
	last.Clusters = clusters[1:]
	if err := srv.Apply(&last); err != nil {
		t.Fatal(err)
	}
	if _, ok := record(srv.reg, "upstream.cluster.a"); ok {
		t.Fatal("check of a removed cluster still registered")
	}
}

func TestApplyReplacesChangedListener(t *testing.T) {
	a := startBackend(t, "a")
	a.delay.Store(int64(300 * time.Millisecond))
	sp := testSpec([]spec.Route{prefixRoute("r", "/", "a")}, []spec.Cluster{{Name: "a", Endpoints: []string{a.addr}}})
	sp.ListenerGrace = 5 * time.Second
	srv := startServer(t, sp)
	addr := srv.Addr("public")
	sp.Listeners[0].Address = addr

	// A request in flight on the old listener...
	c := rawConn(t, addr)
	io.WriteString(c, "GET /old HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, "request in flight", func() bool { return a.hits.Load() == 1 })

	// ...survives a change that replaces the listener on the same address.
	next := *sp
	next.Version = "v2"
	next.Listeners = []spec.Listener{sp.Listeners[0]}
	next.Listeners[0].ReadinessPath = "/ready2"
	if err := srv.Apply(&next); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("old listener's request: %d close=%v", resp.StatusCode, resp.Close)
	}
	srv.reg.SetConfigVersion("v2")
	if code, _ := get(t, newClient(), "http://"+addr+"/ready2"); code != 200 {
		t.Fatalf("new listener's readiness path: %d", code)
	}
}
