package proxy

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
)

func TestRouteMatching(t *testing.T) {
	routes := []*route{
		{spec: spec.Route{Name: "exact", Hosts: []string{"api.example.com"}, Path: spec.PathMatch{Exact: "/v1"}}},
		{spec: spec.Route{Name: "wild", Hosts: []string{"*.example.com"}, Path: spec.PathMatch{Prefix: "/"}}},
		{spec: spec.Route{Name: "any", Path: spec.PathMatch{Prefix: "/static/"}}},
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
		[]spec.Route{func() spec.Route { r := prefixRoute("app", "/", "app"); r.Required = true; return r }()},
		[]spec.Cluster{{Name: "app", Endpoints: []string{a.addr, b.addr}}},
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
		[]spec.Route{prefixRoute("api", "/api/", "down")},
		[]spec.Cluster{{Name: "down", Endpoints: []string{dead}, HealthCheck: &spec.HealthCheck{Type: spec.TCPHealthCheck, Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 1}}},
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
	spec := testSpec([]spec.Route{r}, []spec.Cluster{{Name: "app", Endpoints: []string{dead}, HealthCheck: &spec.HealthCheck{Type: spec.TCPHealthCheck, Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 1}}})
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
	spec := testSpec([]spec.Route{r, r2, r3}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}})
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
	spec := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}})
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
