package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gangway-ecs/gangway/internal/spec"
)

func TestRandomDistribution(t *testing.T) {
	bs := []*backend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")}
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")},
		[]spec.Cluster{{Name: "app", LBPolicy: spec.Random, Endpoints: []string{bs[0].addr, bs[1].addr, bs[2].addr}}}))
	c := newClient()
	for range 300 {
		if code, _ := get(t, c, srv.url("public", "/")); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	// Expected 100 each; 60..140 is about five standard deviations.
	for _, b := range bs {
		if n := b.hits.Load(); n < 60 || n > 140 {
			t.Fatalf("random: %s got %d of 300", b.name, n)
		}
	}
}

func TestLeastRequestAvoidsTheBusyEndpoint(t *testing.T) {
	slow, fast := startBackend(t, "slow"), startBackend(t, "fast")
	slow.delay.Store(int64(5 * time.Second))
	r := prefixRoute("app", "/", "app")
	srv := startServer(t, testSpec([]spec.Route{r}, []spec.Cluster{{Name: "app", LBPolicy: spec.LeastRequest, Endpoints: []string{slow.addr, fast.addr}}}))
	c := newClient()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 20 {
		done := make(chan struct{})
		wg.Go(func() {
			defer close(done)
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.url("public", "/"), nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		})
		select {
		case <-done:
		case <-time.After(100 * time.Millisecond): // held by the slow endpoint
		}
	}
	// Round robin would send 10 to each; least request sends to the slow endpoint only
	// while it is not busier than the fast one.
	if n := slow.hits.Load(); n > 6 {
		t.Fatalf("least_request: slow endpoint got %d of 20 (fast %d)", n, fast.hits.Load())
	}
}

func TestActiveHealthCheckRemovesAndRestoresEndpoint(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	hc := &spec.HealthCheck{Type: spec.HTTPHealthCheck, Path: "/healthz", Expected: []spec.StatusRange{{Min: 200, Max: 299}}, Interval: 100 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2}
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr, b.addr}, HealthCheck: hc}}))
	healthy := func(want string) func() bool {
		return func() bool {
			rec, _ := record(srv.reg, "upstream.cluster.app")
			return attr(rec, "healthy") == want
		}
	}
	eventually(t, "both endpoints healthy", healthy("2"))
	c := newClient()

	a.status.Store(http.StatusServiceUnavailable)
	eventually(t, "endpoint a out of rotation", healthy("1"))
	for range 10 {
		if code, body := get(t, c, srv.url("public", "/")); code != 200 || !strings.HasPrefix(body, "b ") {
			t.Fatalf("with a unhealthy: %d %q", code, body)
		}
	}
	if v := testutil.ToFloat64(srv.metrics.endpointHealthy.WithLabelValues("app", a.addr)); v != 0 {
		t.Fatalf("endpoint_healthy{a} = %v", v)
	}

	a.status.Store(0)
	eventually(t, "endpoint a back in rotation", healthy("2"))
	a.hits.Store(0)
	for range 10 {
		get(t, c, srv.url("public", "/"))
	}
	if n := a.hits.Load(); n != 5 {
		t.Fatalf("after recovery a got %d of 10", n)
	}
}

// An endpoint that never passes its health check is logged once, with the reason, so that
// the log of a task whose app never comes up says why the proxy is not ready.
func TestEndpointThatNeverPassesIsLoggedOnce(t *testing.T) {
	dead := freeAddr(t)
	a := startBackend(t, "a")
	a.status.Store(http.StatusServiceUnavailable)
	var logs syncBuffer
	hc := &spec.HealthCheck{Type: spec.HTTPHealthCheck, Path: "/healthz", Expected: []spec.StatusRange{{Min: 200, Max: 299}}, Interval: 50 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2}
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{dead, a.addr}, HealthCheck: hc}}),
		func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	checked := func(addr string) func() bool {
		return func() bool {
			return strings.Count(logs.String(), "endpoint failed its first health check") == 2 && strings.Contains(logs.String(), addr)
		}
	}
	eventually(t, "both first failures logged", checked(dead))
	// Several more rounds fail; none is logged again.
	time.Sleep(10 * hc.Interval)
	out := logs.String()
	if n := strings.Count(out, "endpoint failed its first health check"); n != 2 {
		t.Fatalf("first failures logged %d times, want 2 (one per endpoint):\n%s", n, out)
	}
	for _, want := range []string{"endpoint=" + dead, "connection refused", "endpoint=" + a.addr, "status 503"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if rec, _ := record(srv.reg, "upstream.cluster.app"); attr(rec, "healthy") != "0" {
		t.Fatalf("healthy = %q, want 0", attr(rec, "healthy"))
	}
}

// An endpoint that fails its first health check because nothing listens yet (the
// application starting beside the proxy in its task) is checked again within moments, not
// an interval later, so that the proxy is ready soon after the application is; once the
// endpoint has passed, it is checked on the interval only.
func TestFailedFirstCheckIsRetriedEarly(t *testing.T) {
	addr := freeAddr(t)
	var logs syncBuffer
	hc := &spec.HealthCheck{Type: spec.TCPHealthCheck, Interval: time.Minute, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 2}
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{addr}, HealthCheck: hc}}),
		func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	eventually(t, "the first check failed", func() bool { return strings.Contains(logs.String(), "endpoint failed its first health check") })

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the endpoint's address again: %v", err)
	}
	defer ln.Close()
	accepted := serveEach(ln, func(c net.Conn) { c.Close() })
	listening := time.Now()
	healthy := func() bool {
		rec, _ := record(srv.reg, "upstream.cluster.app")
		return attr(rec, "healthy") == "1"
	}
	// The early checks come 100 ms, 200 ms, 400 ms... after each failure: within a few
	// seconds at worst on a loaded machine, where the interval is a minute.
	for !healthy() {
		if time.Since(listening) > 15*time.Second {
			t.Fatalf("endpoint not healthy %v after it listened; its next check on the interval is a minute away", time.Since(listening))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("healthy %v after the endpoint listened", time.Since(listening).Round(time.Millisecond))
	checks := accepted.Load()
	time.Sleep(time.Second)
	if n := accepted.Load(); n != checks {
		t.Fatalf("%d more checks within a second of passing; want none before the interval", n-checks)
	}
}

func TestOutlierEjection(t *testing.T) {
	bad, good := startBackend(t, "bad"), startBackend(t, "good")
	bad.status.Store(http.StatusInternalServerError)
	dead := freeAddr(t)
	out := &spec.Outlier{Consecutive5xx: 3, ConsecutiveConnectFailures: 1, BaseEjectionTime: 2 * time.Second, MaxEjectionPercent: 100}
	spec := testSpec([]spec.Route{prefixRoute("app", "/app", "app"), prefixRoute("conn", "/conn", "conn")}, []spec.Cluster{
		{Name: "app", Endpoints: []string{bad.addr, good.addr}, Outlier: out},
		{Name: "conn", Endpoints: []string{dead, good.addr}, Outlier: out},
	})
	srv := startServer(t, spec)
	c := newClient()
	fails := 0
	for range 20 {
		if code, _ := get(t, c, srv.url("public", "/app")); code == 500 {
			fails++
		}
	}
	if fails != 3 {
		t.Fatalf("%d of 20 requests failed, want 3 before the ejection", fails)
	}
	if n := testutil.ToFloat64(srv.metrics.ejections.WithLabelValues("app")); n != 1 {
		t.Fatalf("ejections = %v", n)
	}
	// The ejection ends and the endpoint is tried again.
	bad.status.Store(0)
	eventually(t, "ejected endpoint back", func() bool {
		rec, _ := record(srv.reg, "upstream.cluster.app")
		return attr(rec, "healthy") == "2"
	})
	bad.hits.Store(0)
	for range 4 {
		get(t, c, srv.url("public", "/app"))
	}
	if bad.hits.Load() != 2 {
		t.Fatalf("returned endpoint got %d of 4", bad.hits.Load())
	}

	// A refused connect ejects the dead endpoint at once; the retry hides it from clients.
	for range 6 {
		if code, _ := get(t, c, srv.url("public", "/conn")); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	// Without the ejection, round robin would send 3 of the 6 to the dead endpoint.
	if n := testutil.ToFloat64(srv.metrics.connectFailures.WithLabelValues("conn")); n < 1 || n >= 3 {
		t.Fatalf("connect failures = %v, want 1 (then ejected)", n)
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	a.status.Store(500)
	b.status.Store(500)
	out := &spec.Outlier{Consecutive5xx: 1, BaseEjectionTime: time.Minute, MaxEjectionPercent: 50}
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr, b.addr}, Outlier: out}}))
	c := newClient()
	for range 6 {
		get(t, c, srv.url("public", "/"))
	}
	rec, _ := record(srv.reg, "upstream.cluster.app")
	if attr(rec, "healthy") != "1" {
		t.Fatalf("with max_ejection_percent 50 one endpoint must stay: %+v", rec)
	}
}

// dnsServer is a tiny authoritative UDP DNS responder on 127.0.0.1 for one name.
type dnsServer struct {
	conn net.PacketConn
	mu   sync.Mutex
	ips  []netip.Addr
	name string
	seen int
}

func startDNS(t *testing.T, name string, ips ...netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{conn: pc, ips: ips, name: dnsmessage.MustNewName(name + ".").String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := d.answer(buf[:n]); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return d
}

func (d *dnsServer) set(ips ...netip.Addr) {
	d.mu.Lock()
	d.ips = ips
	d.mu.Unlock()
}

func (d *dnsServer) answer(msg []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	d.mu.Lock()
	ips := d.ips
	d.seen++
	d.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !strings.EqualFold(q.Name.String(), d.name) {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if rh.RCode == dnsmessage.RCodeSuccess {
		for _, ip := range ips {
			hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
			switch {
			case ip.Is4() && q.Type == dnsmessage.TypeA:
				b.AResource(hdr, dnsmessage.AResource{A: ip.As4()})
			case ip.Is6() && q.Type == dnsmessage.TypeAAAA:
				b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: ip.As16()})
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

func (d *dnsServer) resolver() *net.Resolver {
	addr := d.conn.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", addr)
	}}
}

// backendsOnOnePort starts backends on 127.0.0.1 and 127.0.0.2 with the same port, as DNS
// endpoints share one port.
func backendsOnOnePort(t *testing.T) (a, b *backend, port int) {
	t.Helper()
	for range 20 {
		a = startBackend(t, "a")
		_, p, _ := net.SplitHostPort(a.addr)
		ln, err := net.Listen("tcp", "127.0.0.2:"+p)
		if err != nil {
			a.srv.Close()
			continue
		}
		b = &backend{name: "b", addr: ln.Addr().String()}
		b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
		go b.srv.Serve(ln)
		t.Cleanup(func() { b.srv.Close() })
		fmt.Sscan(p, &port)
		return a, b, port
	}
	t.Skip("could not bind 127.0.0.1 and 127.0.0.2 on one port (is 127.0.0.2 routable here?)")
	return nil, nil, 0
}

func TestDNSReResolution(t *testing.T) {
	a, b, port := backendsOnOnePort(t)
	dns := startDNS(t, "app.gangway.test", netip.MustParseAddr("127.0.0.1"))
	spec := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", DNS: &spec.DNSDiscovery{Name: "app.gangway.test", Port: port, Refresh: 100 * time.Millisecond}}})
	srv := startServer(t, spec, func(o *Options) { o.Resolver = dns.resolver() })
	c := newClient()
	endpoints := func(want string) func() bool {
		return func() bool {
			rec, _ := record(srv.reg, "upstream.cluster.app")
			return attr(rec, "total") == want && attr(rec, "healthy") == want
		}
	}
	eventually(t, "first resolution", endpoints("1"))
	if code, body := get(t, c, srv.url("public", "/")); code != 200 || !strings.HasPrefix(body, "a ") {
		t.Fatalf("%d %q", code, body)
	}

	dns.set(netip.MustParseAddr("127.0.0.2"))
	eventually(t, "re-resolution to 127.0.0.2", func() bool {
		_, body := get(t, c, srv.url("public", "/"))
		return strings.HasPrefix(body, "b ")
	})

	dns.set(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"))
	eventually(t, "two records, two endpoints", endpoints("2"))
	a.hits.Store(0)
	b.hits.Store(0)
	for range 10 {
		get(t, c, srv.url("public", "/"))
	}
	if a.hits.Load() != 5 || b.hits.Load() != 5 {
		t.Fatalf("a %d b %d", a.hits.Load(), b.hits.Load())
	}
}
