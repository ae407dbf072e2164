package proxy

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/health"
)

func TestFromConfigDefault(t *testing.T) {
	spec, err := FromConfig(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if spec.Version == "" || spec.Demo == nil || spec.Demo.Address != "127.0.0.1:18080" {
		t.Fatalf("version %q demo %+v", spec.Version, spec.Demo)
	}
	if len(spec.Listeners) != 1 || spec.Listeners[0].Address != ":8080" || spec.Listeners[0].ReadinessPath != "/gangway/ready" {
		t.Fatalf("listeners %+v", spec.Listeners)
	}
	if got := spec.Listeners[0].Paths; got != normalizeAll {
		t.Errorf("default path normalization %+v, want %+v", got, normalizeAll)
	}
	if len(spec.Routes) != 1 || spec.Routes[0].Path.Prefix != "/" || !spec.Routes[0].Required || spec.Routes[0].Cluster != "demo" {
		t.Fatalf("routes %+v", spec.Routes)
	}
	hc := spec.Clusters[0].HealthCheck
	if hc == nil || hc.Type != TCPHealthCheck || hc.Interval != 2*time.Second {
		t.Fatalf("health check %+v", hc)
	}
}

func TestFromConfigFull(t *testing.T) {
	cfg, err := config.Parse("full.yaml", []byte(`
listeners:
  - name: public
    address: "127.0.0.1:0"
    h2c: true
    trusted_proxies: ["10.0.0.0/8"]
  - name: db
    address: "127.0.0.1:0"
    protocol: tcp
    cluster: dns
routes:
  - name: api
    match: {hosts: ["API.example.com", "*.example.com"], path_regex: "^/v[0-9]+/"}
    cluster: app
    timeout: 3s
    idle_timeout: 0s
    allow_websockets: true
clusters:
  - name: app
    endpoints: ["127.0.0.1:3000", "127.0.0.1:3001"]
    lb_policy: least_request
    protocol: http2
    health_check: {path: /healthz, expected_statuses: ["200-204", "302"]}
    outlier_detection: {consecutive_5xx: 2}
  - name: dns
    dns: {name: db.internal, port: 5432, refresh: 1s}
    lb_policy: random
`))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := spec.Listeners
	if !l[0].H2C || len(l[0].TrustedProxies) != 1 || l[0].TrustedProxies[0].String() != "10.0.0.0/8" || l[1].Protocol != TCP || l[1].Cluster != "dns" {
		t.Fatalf("listeners %+v", l)
	}
	r := spec.Routes[0]
	if r.Hosts[0] != "api.example.com" || r.Path.Regex == nil || !r.Path.Regex.MatchString("/v2/x") || r.Timeout != 3*time.Second || r.IdleTimeout != 0 || !r.AllowWebSockets {
		t.Fatalf("route %+v", r)
	}
	app, dns := spec.Clusters[0], spec.Clusters[1]
	if app.LBPolicy != LeastRequest || !app.HTTP2 || app.HealthCheck.Path != "/healthz" || !app.HealthCheck.accepts(204) || !app.HealthCheck.accepts(302) || app.HealthCheck.accepts(205) {
		t.Fatalf("app %+v hc %+v", app, app.HealthCheck)
	}
	if app.Outlier == nil || app.Outlier.Consecutive5xx != 2 {
		t.Fatalf("outlier %+v", app.Outlier)
	}
	if dns.DNS == nil || dns.DNS.Name != "db.internal" || dns.DNS.Port != 5432 || dns.LBPolicy != Random {
		t.Fatalf("dns %+v", dns)
	}
}

func TestParseStatusRange(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    StatusRange
		wantErr bool
	}{
		{"200", StatusRange{200, 200}, false},
		{"200-299", StatusRange{200, 299}, false},
		{" 301 - 302 ", StatusRange{301, 302}, false},
		{"299-200", StatusRange{}, true},
		{"99", StatusRange{}, true},
		{"abc", StatusRange{}, true},
		{"200-600", StatusRange{}, true},
	} {
		got, err := parseStatusRange(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseStatusRange(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestRouteMatching(t *testing.T) {
	routes := []*route{
		{spec: Route{Name: "exact", Hosts: []string{"api.example.com"}, Path: PathMatch{Exact: "/v1"}}},
		{spec: Route{Name: "wild", Hosts: []string{"*.example.com"}, Path: PathMatch{Prefix: "/"}}},
		{spec: Route{Name: "any", Path: PathMatch{Prefix: "/static/"}}},
	}
	tbl := &table{routes: routes}
	for _, tc := range []struct{ host, path, want string }{
		{"api.example.com", "/v1", "exact"},
		{"API.Example.com:8443", "/v1", "exact"},
		{"api.example.com", "/v1/x", "wild"},
		{"a.b.example.com", "/x", "wild"},
		{"example.com", "/x", ""},
		{"other.org", "/static/a.css", "any"},
		{"other.org", "/x", ""},
		{"[::1]:8080", "/static/", "any"},
	} {
		got := ""
		if rt := tbl.match(hostOnly(tc.host), tc.path); rt != nil {
			got = rt.spec.Name
		}
		if got != tc.want {
			t.Errorf("match(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestHTTP1RoundRobinAndHealthWiring(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	spec := testSpec(
		[]Route{func() Route { r := prefixRoute("app", "/", "app"); r.Required = true; return r }()},
		[]Cluster{{Name: "app", Endpoints: []string{a.addr, b.addr}}},
	)
	srv := startServer(t, spec)
	c := newClient()

	counts := map[string]int{}
	for range 10 {
		code, body := get(t, c, srv.url("public", "/hello"))
		if code != 200 || !strings.HasSuffix(body, "HTTP/1.1 /hello") {
			t.Fatalf("got %d %q", code, body)
		}
		counts[body[:1]]++
	}
	if counts["a"] != 5 || counts["b"] != 5 {
		t.Fatalf("round robin: %v", counts)
	}

	code, body := get(t, c, srv.url("public", "/gangway/ready"))
	if code != 200 {
		t.Fatalf("readiness %d %q", code, body)
	}
	rec, _ := record(srv.reg, "upstream.cluster.app")
	if rec.Status != health.Running || attr(rec, "healthy") != "2" || attr(rec, "total") != "2" || rec.Version != "v1" || rec.Gates != health.Readiness {
		t.Fatalf("cluster check %+v", rec)
	}
	rec, _ = record(srv.reg, "proxy.listener.public")
	if rec.Status != health.Running || attr(rec, "address") != srv.Addr("public") {
		t.Fatalf("listener check %+v", rec)
	}
	if got := srv.ActiveConns(); got < 1 {
		t.Fatalf("ActiveConns = %d with a keep-alive client", got)
	}
}

func TestNoRouteAndNoHealthyEndpoint(t *testing.T) {
	dead := freeAddr(t)
	spec := testSpec(
		[]Route{prefixRoute("api", "/api/", "down")},
		[]Cluster{{Name: "down", Endpoints: []string{dead}, HealthCheck: &HealthCheck{Type: TCPHealthCheck, Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 1}}},
	)
	srv := startServer(t, spec)
	c := newClient()
	code, body := get(t, c, srv.url("public", "/nothing"))
	if code != http.StatusNotFound || !strings.Contains(body, `no route for host`) {
		t.Fatalf("unrouted: %d %q", code, body)
	}
	eventually(t, "cluster settled", func() bool {
		rec, _ := record(srv.reg, "upstream.cluster.down")
		return rec.Status == health.Running
	})
	start := time.Now()
	code, body = get(t, c, srv.url("public", "/api/x"))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `cluster "down" has no healthy endpoint`) {
		t.Fatalf("no healthy endpoint: %d %q", code, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("503 took %s", d)
	}
	rec, _ := record(srv.reg, "upstream.cluster.down")
	if rec.Err == "" || attr(rec, "healthy") != "0" || rec.Gates != 0 {
		t.Fatalf("cluster check %+v", rec)
	}
	// The cluster is not required: readiness does not wait for it.
	if code, body := get(t, c, srv.url("public", "/gangway/ready")); code != 200 {
		t.Fatalf("readiness %d %q", code, body)
	}
}

func TestRequiredClusterGatesReadiness(t *testing.T) {
	dead := freeAddr(t)
	r := prefixRoute("app", "/", "app")
	r.Required = true
	spec := testSpec([]Route{r}, []Cluster{{Name: "app", Endpoints: []string{dead}, HealthCheck: &HealthCheck{Type: TCPHealthCheck, Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 1}}})
	srv := startServer(t, spec)
	c := newClient()
	code, body := get(t, c, srv.url("public", "/gangway/ready"))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "upstream.cluster.app") {
		t.Fatalf("readiness with a dead required cluster: %d %q", code, body)
	}
}

func TestHeadersRewritesAndForwarding(t *testing.T) {
	a := startBackend(t, "a")
	r := prefixRoute("api", "/api/", "app")
	r.PrefixRewrite = "/v2/"
	r.SetRequestHeaders = map[string]string{"X-Env": "test"}
	r.RemoveRequestHeaders = []string{"X-Debug"}
	r.SetResponseHeaders = map[string]string{"Strict-Transport-Security": "max-age=1"}
	r.RemoveResponseHeaders = []string{"X-Powered-By"}
	r2 := prefixRoute("keep", "/keep", "app")
	r2.PreserveHost = true
	r3 := prefixRoute("rw", "/rw", "app")
	r3.HostRewrite = "internal.example"
	spec := testSpec([]Route{r, r2, r3}, []Cluster{{Name: "app", Endpoints: []string{a.addr}}})
	srv := startServer(t, spec)
	c := newClient()

	req, _ := http.NewRequest("GET", srv.url("public", "/api/users?q=1"), nil)
	req.Host = "shop.example.com"
	req.Header.Set("X-Debug", "1")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Port", "443")
	req.Header.Set("Forwarded", "for=6.6.6.6;proto=https")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := a.lastReq.Load()
	if got.URL.Path != "/v2/users" || got.URL.RawQuery != "q=1" {
		t.Errorf("rewritten path %q query %q", got.URL.Path, got.URL.RawQuery)
	}
	if got.Header.Get("X-Env") != "test" || got.Header.Get("X-Debug") != "" {
		t.Errorf("request headers %v", got.Header)
	}
	// The peer (127.0.0.1) is not a trusted proxy: its X-Forwarded-For is replaced.
	if xff := got.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", xff)
	}
	if got.Header.Get("X-Forwarded-Proto") != "http" || got.Header.Get("X-Forwarded-Host") != "shop.example.com" {
		t.Errorf("forwarded headers %v", got.Header)
	}
	// Nor its port, and its Forwarded header, which the proxy does not maintain, is dropped.
	if _, port, _ := net.SplitHostPort(srv.Addr("public")); got.Header.Get("X-Forwarded-Port") != port || got.Header.Get("Forwarded") != "" {
		t.Errorf("X-Forwarded-Port %q (want the listener's %s), Forwarded %q (want none)", got.Header.Get("X-Forwarded-Port"), port, got.Header.Get("Forwarded"))
	}
	if got.Host != a.addr {
		t.Errorf("upstream Host %q, want the endpoint %q", got.Host, a.addr)
	}
	if resp.Header.Get("Strict-Transport-Security") != "max-age=1" || resp.Header.Get("X-Powered-By") != "" {
		t.Errorf("response headers %v", resp.Header)
	}

	req, _ = http.NewRequest("GET", srv.url("public", "/keep"), nil)
	req.Host = "shop.example.com"
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := a.lastReq.Load().Host; h != "shop.example.com" {
		t.Errorf("preserved Host %q", h)
	}
	get(t, c, srv.url("public", "/rw"))
	if h := a.lastReq.Load().Host; h != "internal.example" {
		t.Errorf("rewritten Host %q", h)
	}
}

func TestTrustedProxyKeepsForwardedHeaders(t *testing.T) {
	a := startBackend(t, "a")
	spec := testSpec([]Route{prefixRoute("app", "/", "app")}, []Cluster{{Name: "app", Endpoints: []string{a.addr}}})
	spec.Listeners[0].TrustedProxies = mustPrefixes(t, "127.0.0.0/8")
	srv := startServer(t, spec)
	req, _ := http.NewRequest("GET", srv.url("public", "/"), nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "www.example.com")
	req.Header.Set("X-Forwarded-Port", "443")
	req.Header.Set("Forwarded", "for=203.0.113.7;proto=https")
	resp, err := newClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := a.lastReq.Load().Header
	if got.Get("X-Forwarded-For") != "203.0.113.7, 127.0.0.1" || got.Get("X-Forwarded-Proto") != "https" || got.Get("X-Forwarded-Host") != "www.example.com" ||
		got.Get("X-Forwarded-Port") != "443" || got.Get("Forwarded") != "for=203.0.113.7;proto=https" {
		t.Fatalf("forwarded headers %v", got)
	}
}
