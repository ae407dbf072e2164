package config

import (
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
)

func TestToSpecDefault(t *testing.T) {
	sp, err := ToSpec(Default())
	if err != nil {
		t.Fatal(err)
	}
	if sp.Version == "" || sp.Demo == nil || sp.Demo.Address != "127.0.0.1:18080" {
		t.Fatalf("version %q demo %+v", sp.Version, sp.Demo)
	}
	if len(sp.Listeners) != 1 || sp.Listeners[0].Address != ":8080" || sp.Listeners[0].ReadinessPath != "/gangway/ready" {
		t.Fatalf("listeners %+v", sp.Listeners)
	}
	if got := sp.Listeners[0].Paths; got != (spec.PathNormalization{Normalize: true, MergeSlashes: true, EscapedSlashes: spec.RejectEscapedSlashes}) {
		t.Errorf("default path normalization %+v, want normalize, merge, reject", got)
	}
	if len(sp.Routes) != 1 || sp.Routes[0].Path.Prefix != "/" || !sp.Routes[0].Required || sp.Routes[0].Cluster != "demo" {
		t.Fatalf("routes %+v", sp.Routes)
	}
	hc := sp.Clusters[0].HealthCheck
	if hc == nil || hc.Type != spec.TCPHealthCheck || hc.Interval != 2*time.Second {
		t.Fatalf("health check %+v", hc)
	}
}

func TestToSpecFull(t *testing.T) {
	sp := parseToSpec(t, `
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
`)
	l := sp.Listeners
	if !l[0].H2C || len(l[0].TrustedProxies) != 1 || l[0].TrustedProxies[0].String() != "10.0.0.0/8" || l[1].Protocol != spec.TCP || l[1].Cluster != "dns" {
		t.Fatalf("listeners %+v", l)
	}
	r := sp.Routes[0]
	if r.Hosts[0] != "api.example.com" || r.Path.Regex == nil || !r.Path.Regex.MatchString("/v2/x") || r.Timeout != 3*time.Second || r.IdleTimeout != 0 || !r.AllowWebSockets {
		t.Fatalf("route %+v", r)
	}
	app, dns := sp.Clusters[0], sp.Clusters[1]
	if app.LBPolicy != spec.LeastRequest || !app.HTTP2 || app.HealthCheck.Path != "/healthz" || !app.HealthCheck.Accepts(204) || !app.HealthCheck.Accepts(302) || app.HealthCheck.Accepts(205) {
		t.Fatalf("app %+v hc %+v", app, app.HealthCheck)
	}
	if app.Outlier == nil || app.Outlier.Consecutive5xx != 2 {
		t.Fatalf("outlier %+v", app.Outlier)
	}
	if dns.DNS == nil || dns.DNS.Name != "db.internal" || dns.DNS.Port != 5432 || dns.LBPolicy != spec.Random {
		t.Fatalf("dns %+v", dns)
	}
}

// TestEnumDefaultsAreSpecDefaults: a file that sets nothing but names yields the data plane's
// own defaults, so that the YAML spellings of enum defaults in this package and spec's table
// cannot drift apart.
func TestEnumDefaultsAreSpecDefaults(t *testing.T) {
	s := parseToSpec(t, `
listeners: [{name: l, address: "127.0.0.1:0"}]
routes: [{name: r, cluster: c}]
clusters: [{name: c, endpoints: ["127.0.0.1:1"], health_check: {}, outlier_detection: {}}]
`)
	l, r, c := s.Listeners[0], s.Routes[0], s.Clusters[0]
	wantPaths := spec.PathNormalization{Normalize: spec.DefaultNormalizePath, MergeSlashes: spec.DefaultMergeSlashes, EscapedSlashes: spec.DefaultEscapedSlashes}
	if l.Protocol != spec.DefaultProtocol || l.Paths != wantPaths {
		t.Errorf("listener %+v, want protocol %v and paths %+v", l, spec.DefaultProtocol, wantPaths)
	}
	if r.Path.Prefix != spec.DefaultRoutePathPrefix || r.Timeout != spec.DefaultRouteTimeout || r.IdleTimeout != spec.DefaultRouteIdleTimeout {
		t.Errorf("route %+v", r)
	}
	if c.LBPolicy != spec.DefaultLBPolicy || c.HTTP2 != spec.DefaultHTTP2 || c.MaxIdleConnsPerEndpoint != spec.DefaultMaxIdleConnsPerEndpoint {
		t.Errorf("cluster %+v", c)
	}
	hc := c.HealthCheck
	if hc.Type != spec.DefaultHealthCheckType || hc.Path != spec.DefaultHealthCheckPath || len(hc.Expected) != 1 ||
		hc.Expected[0] != (spec.StatusRange{Min: spec.DefaultExpectedMin, Max: spec.DefaultExpectedMax}) ||
		hc.Interval != spec.DefaultHealthCheckInterval || hc.Timeout != spec.DefaultHealthCheckTimeout ||
		hc.HealthyThreshold != spec.DefaultHealthyThreshold || hc.UnhealthyThreshold != spec.DefaultUnhealthyThreshold {
		t.Errorf("health check %+v", hc)
	}
	o := c.Outlier
	if o.Consecutive5xx != spec.DefaultConsecutive5xx || o.ConsecutiveConnectFailures != spec.DefaultConsecutiveConnectFail ||
		o.BaseEjectionTime != spec.DefaultBaseEjectionTime || o.MaxEjectionPercent != spec.DefaultMaxEjectionPercent {
		t.Errorf("outlier %+v", o)
	}
	if s.ReadHeaderTimeout != spec.DefaultReadHeaderTimeout || s.IdleTimeout != spec.DefaultIdleTimeout || s.WriteTimeout != spec.DefaultWriteTimeout ||
		s.MaxHeaderBytes != spec.DefaultMaxHeaderBytes || s.ListenerGrace != spec.DefaultListenerGrace {
		t.Errorf("spec %+v", s)
	}
}

// parseToSpec parses a configuration and translates it, failing t on either error.
func parseToSpec(t *testing.T, yaml string) *spec.Spec {
	t.Helper()
	cfg, err := Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ToSpec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
