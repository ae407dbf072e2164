package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseIn parses doc as dir/gangway.yaml, after writing test certificates into dir, and
// returns the error text with dir removed from file names.
func parseIn(t *testing.T, doc string) (*Config, string) {
	t.Helper()
	dir := t.TempDir()
	writeCerts(t, dir)
	c, err := Parse(filepath.Join(dir, "gangway.yaml"), []byte(doc))
	if err == nil {
		return c, ""
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse returned %T, want Errors: %v", err, err)
	}
	return c, strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.File != DefaultFile || len(c.Version) != 16 {
		t.Errorf("File %q Version %q", c.File, c.Version)
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Name != "public" || c.Listeners[0].Address != ":8080" ||
		c.Listeners[0].ReadinessPath != "/gangway/ready" || c.Listeners[0].Protocol != ProtocolHTTP {
		t.Errorf("listeners = %+v", c.Listeners)
	}
	if !c.DemoUpstream.Enabled || c.DemoUpstream.Address != "127.0.0.1:18080" {
		t.Errorf("demo_upstream = %+v", c.DemoUpstream)
	}
	demo := c.Cluster("demo")
	if demo == nil || !reflect.DeepEqual(demo.Endpoints, []string{c.DemoUpstream.Address}) || demo.HealthCheck == nil {
		t.Fatalf("cluster demo = %+v", demo)
	}
	if len(c.Routes) != 1 || c.Routes[0].Cluster != "demo" || !c.Routes[0].Required || c.Routes[0].Match.PathPrefix != "/" {
		t.Errorf("routes = %+v", c.Routes)
	}
	if again := Default(); again.Version != c.Version || again == c {
		t.Errorf("Default() is not a fresh, identical config each time")
	}
}

// TestParseErrors has one case per class of error, each asserting file:line:column, the
// field path and the message.
func TestParseErrors(t *testing.T) {
	const clusters = "clusters:\n  - name: app\n    endpoints: [\"127.0.0.1:3000\"]\n"
	const listener = "listeners:\n  - name: public\n    address: \":8080\"\n"
	tests := []struct {
		name string
		doc  string
		want []string // each a line of the error, in order
	}{
		{"unknown key suggests the closest", listener + "    adress: x\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[0].adress: unknown field "adress" (did you mean "address"?); allowed in listeners[0]: name, address, protocol, h2c, readiness_path, trusted_proxies, normalize_path, merge_slashes, path_with_escaped_slashes_action, tls, cluster`}},
		{"unknown top-level key", "listners: []\n",
			[]string{`gangway.yaml:1:1: listners: unknown field "listners" (did you mean "listeners"?); allowed here: services, control_plane_url, xds, admin, log, shutdown, timeout_read_header, timeout_idle, timeout_write, default_upstream_timeout, max_header_bytes, demo_upstream, listeners, routes, clusters`,
				`gangway.yaml:1:1: listeners: at least one listener is required (unless services is proxy, which gets them from the control plane)`}},
		{"enum", listener + "    protocol: udp\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[0].protocol: "udp" is not one of http, tcp`}},
		{"client_auth enum", listener + "    tls:\n      cert_file: tls.crt\n      key_file: tls.key\n      client_auth: maybe\n" + clusters,
			[]string{`gangway.yaml:7:7: listeners[0].tls.client_auth: "maybe" is not one of none, verify_if_given, require`}},
		{"wrong type: list for string", listener + clusters + "    lb_policy: [random]\n",
			[]string{`gangway.yaml:7:5: clusters[0].lb_policy: expected a string, found a list`}},
		{"wrong type: string for bool", listener + "    h2c: yes\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[0].h2c: expected true or false, found string "yes"`}},
		{"wrong type: string for number", listener + clusters + "    max_idle_conns_per_endpoint: \"64\"\n",
			[]string{`gangway.yaml:7:5: clusters[0].max_idle_conns_per_endpoint: expected a whole number, found string "64"`}},
		{"wrong type: mapping for list", listener + clusters + "routes: {name: x}\n",
			[]string{`gangway.yaml:7:1: routes: expected a list, found a mapping`}},
		{"bad duration", listener + clusters + "timeout_idle: 5 minutes\n",
			[]string{`gangway.yaml:7:1: timeout_idle: "5 minutes" is not a duration: use a number and a unit (ns, us, ms, s, m, h), like "30s", "5m" or "1h30m"`}},
		{"duration without unit", listener + clusters + "timeout_idle: 30\n",
			[]string{`gangway.yaml:7:1: timeout_idle: 30 is not a duration: use a number and a unit`}},
		{"negative duration", listener + clusters + "shutdown:\n  delay: -1s\n",
			[]string{`gangway.yaml:8:3: shutdown.delay: -1s: must not be negative`}},
		{"negative size", listener + clusters + "max_header_bytes: -5\n",
			[]string{`gangway.yaml:7:1: max_header_bytes: -5: must be at least 1 (the default is 1048576)`}},
		{"duplicate listener name", listener + "  - name: public\n    address: \":8081\"\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[1].name: "public" is already the name of listeners[0] (line 2); names must be unique`}},
		{"duplicate route name", listener + clusters + "routes:\n  - name: r\n    cluster: app\n  - name: r\n    cluster: app\n",
			[]string{`gangway.yaml:10:5: routes[1].name: "r" is already the name of routes[0] (line 8); names must be unique`}},
		{"duplicate cluster name", listener + clusters + "  - name: app\n    endpoints: [\"127.0.0.1:3001\"]\n",
			[]string{`gangway.yaml:7:5: clusters[1].name: "app" is already the name of clusters[0] (line 5); names must be unique`}},
		{"duplicate key", listener + "    address: \":8081\"\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[0].address: set twice (first at line 3)`}},
		{"route to unknown cluster", listener + clusters + "routes:\n  - name: r\n    cluster: ap\n",
			[]string{`gangway.yaml:9:5: routes[0].cluster: no cluster named "ap" (did you mean "app"?); clusters: app`}},
		{"route without cluster", listener + clusters + "routes:\n  - name: r\n",
			[]string{`gangway.yaml:8:5: routes[0].cluster: required: the cluster requests go to`}},
		{"tcp listener without cluster", listener + "  - name: db\n    address: \":5432\"\n    protocol: tcp\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[1].cluster: required for a tcp listener: the cluster it tunnels bytes to`}},
		{"tcp listener with http settings", listener + "  - name: db\n    address: \":5432\"\n    protocol: tcp\n    cluster: app\n    h2c: true\n" + clusters,
			[]string{`gangway.yaml:8:5: listeners[1].h2c: only for http listeners`}},
		{"tcp listener with path normalization", listener + "  - name: db\n    address: \":5432\"\n    protocol: tcp\n    cluster: app\n    merge_slashes: false\n" + clusters,
			[]string{`gangway.yaml:8:5: listeners[1].merge_slashes: only for http listeners; a tcp listener tunnels bytes without looking at them`}},
		{"escaped slashes enum", listener + "    path_with_escaped_slashes_action: REJECT_REQUEST\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[0].path_with_escaped_slashes_action: "REJECT_REQUEST" is not one of keep_unchanged, reject_request, unescape_and_redirect, unescape_and_forward (did you mean "reject_request"?)`}},
		{"normalize_path not a bool", listener + "    normalize_path: rfc3986\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[0].normalize_path: expected true or false, found string "rfc3986"`}},
		{"http listener with cluster", listener + "    cluster: app\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[0].cluster: only for tcp listeners; http listeners send requests to clusters through routes`}},
		{"bad listen address", "listeners:\n  - name: public\n    address: 8080\n" + clusters,
			[]string{`gangway.yaml:3:5: listeners[0].address: "8080" is not host:port (missing port in address); write ":8080" to listen on every interface`}},
		{"bad port", "listeners:\n  - name: public\n    address: \":http\"\n" + clusters,
			[]string{`gangway.yaml:3:5: listeners[0].address: ":http": port "http" must be a number from 0 to 65535`}},
		{"bad endpoint", listener + "clusters:\n  - name: app\n    endpoints: [\"127.0.0.1\"]\n",
			[]string{`gangway.yaml:6:17: clusters[0].endpoints[0]: "127.0.0.1" is not host:port (missing port in address)`}},
		{"address conflict", listener + "  - name: second\n    address: \"127.0.0.1:8080\"\n" + clusters,
			[]string{`gangway.yaml:5:5: listeners[1].address: port 8080 is already used by listeners[0].address`}},
		{"bad CIDR", listener + "    trusted_proxies: [\"10.0.0.0/8\", \"10.1.2.3\"]\n" + clusters,
			[]string{`gangway.yaml:4:37: listeners[0].trusted_proxies[1]: "10.1.2.3" is not a CIDR like "10.0.0.0/8"; for one address write "10.1.2.3/32"`}},
		{"bad regex", listener + clusters + "routes:\n  - name: r\n    cluster: app\n    match:\n      path_regex: \"^/v[0-9+/\"\n",
			[]string{`gangway.yaml:11:7: routes[0].match.path_regex: "^/v[0-9+/" is not a valid regular expression (RE2 syntax): error parsing regexp: missing closing ]`}},
		{"more than one path matcher", listener + clusters + "routes:\n  - name: r\n    cluster: app\n    match:\n      path: /x\n      path_prefix: /y\n",
			[]string{`gangway.yaml:12:7: routes[0].match.path_prefix: only one of path_prefix, path and path_regex may be set; this match also sets path`}},
		{"path without slash", listener + clusters + "routes:\n  - name: r\n    cluster: app\n    match: {path_prefix: api}\n",
			[]string{`gangway.yaml:10:13: routes[0].match.path_prefix: "api" must start with '/'`}},
		{"host with port", listener + clusters + "routes:\n  - name: r\n    cluster: app\n    match: {hosts: [\"a.example.com:443\"]}\n",
			[]string{`gangway.yaml:10:21: routes[0].match.hosts[0]: "a.example.com:443": hosts match without the port; remove it`}},
		{"cluster without endpoints", listener + "clusters:\n  - name: app\n",
			[]string{`gangway.yaml:5:5: clusters[0]: no endpoints: set one of endpoints (a list of host:port), dns or ecs`}},
		{"cluster with two sources", listener + clusters + "    dns: {name: app.internal, port: 3000}\n",
			[]string{`gangway.yaml:7:5: clusters[0].dns: a cluster takes its endpoints from one of endpoints, dns and ecs; this one also sets endpoints`}},
		{"dns without port", listener + "clusters:\n  - name: app\n    dns: {name: app.internal}\n",
			[]string{`gangway.yaml:6:5: clusters[0].dns.port: required: the endpoints' port`}},
		{"bad lb_policy", listener + clusters + "    lb_policy: round-robin\n",
			[]string{`gangway.yaml:7:5: clusters[0].lb_policy: "round-robin" is not one of round_robin, least_request, random (did you mean "round_robin"?)`}},
		{"bad upstream protocol", listener + clusters + "    protocol: h2\n",
			[]string{`gangway.yaml:7:5: clusters[0].protocol: "h2" is not one of http1, http2`}},
		{"bad health check type", listener + clusters + "    health_check: {type: grpc}\n",
			[]string{`gangway.yaml:7:20: clusters[0].health_check.type: "grpc" is not one of http, tcp`}},
		{"threshold below 1", listener + clusters + "    health_check:\n      healthy_threshold: 0\n      unhealthy_threshold: -1\n",
			[]string{`gangway.yaml:8:7: clusters[0].health_check.healthy_threshold: 0: must be at least 1`,
				`gangway.yaml:9:7: clusters[0].health_check.unhealthy_threshold: -1: must be at least 1`}},
		{"expected statuses out of range", listener + clusters + "    health_check:\n      expected_statuses: [\"200-299\", \"600\", \"300-200\"]\n",
			[]string{`gangway.yaml:8:38: clusters[0].health_check.expected_statuses[1]: "600": a status must be a number from 100 to 599; write a status ("204") or a range ("200-299") within 100-599`,
				`gangway.yaml:8:45: clusters[0].health_check.expected_statuses[2]: "300-200": a range must go from low to high`}},
		{"health check timeout above interval", listener + clusters + "    health_check: {interval: 1s, timeout: 2s}\n",
			[]string{`gangway.yaml:7:34: clusters[0].health_check.timeout: 2s is longer than interval (1s)`}},
		{"path on a tcp health check", listener + clusters + "    health_check: {type: tcp, path: /x}\n",
			[]string{`gangway.yaml:7:31: clusters[0].health_check.path: only for http health checks`}},
		{"missing certificate file", listener + "    tls:\n      cert_file: missing.crt\n      key_file: tls.key\n" + clusters,
			[]string{`gangway.yaml:5:7: listeners[0].tls.cert_file: open missing.crt: no such file or directory`}},
		{"certificate file without PEM", listener + "    tls:\n      cert_file: garbage.pem\n      key_file: tls.key\n" + clusters,
			[]string{`gangway.yaml:5:7: listeners[0].tls.cert_file: garbage.pem: tls: failed to find any PEM data in certificate input`}},
		{"key that does not match", listener + "    tls:\n      cert_file: tls.crt\n      key_file: other.key\n" + clusters,
			[]string{`gangway.yaml:6:7: listeners[0].tls.key_file: other.key: tls: private key does not match public key (cert_file tls.crt)`}},
		{"tls without key", listener + "    tls:\n      cert_file: tls.crt\n" + clusters,
			[]string{`gangway.yaml:4:5: listeners[0].tls.key_file: required with tls: the PEM private key`}},
		{"CA file without PEM", listener + "    tls: {cert_file: tls.crt, key_file: tls.key, client_ca_file: garbage.pem}\n" + clusters,
			[]string{`gangway.yaml:4:50: listeners[0].tls.client_ca_file: garbage.pem: no PEM certificate found`}},
		{"client_auth without client_ca_file", listener + "    tls: {cert_file: tls.crt, key_file: tls.key, client_auth: require}\n" + clusters,
			[]string{`gangway.yaml:4:50: listeners[0].tls.client_auth: require needs client_ca_file: the CAs that client certificates must chain to`}},
		{"upstream cert without key", listener + clusters + "    tls: {cert_file: tls.crt}\n",
			[]string{`gangway.yaml:7:5: clusters[0].tls.key_file: required with cert_file`}},
		{"upstream missing CA", listener + clusters + "    tls: {ca_file: nope.pem}\n",
			[]string{`gangway.yaml:7:11: clusters[0].tls.ca_file: open nope.pem: no such file or directory`}},
		{"shutdown does not fit the deadline", listener + clusters + "shutdown:\n  delay: 20s\n  drain_timeout: 15s\n",
			[]string{`gangway.yaml:7:1: shutdown: delay (20s) + drain_timeout (15s) + 3s margin = 38s does not fit deadline (30s)`}},
		{"deadline above Fargate's maximum", listener + clusters + "shutdown:\n  deadline: 121s\n",
			[]string{`gangway.yaml:8:3: shutdown.deadline: 2m1s is more than Fargate's maximum stopTimeout (120s)`}},
		{"zero deadline", listener + clusters + "shutdown:\n  deadline: 0\n",
			[]string{`gangway.yaml:8:3: shutdown.deadline: must be greater than 0`}},
		{"bad header name", listener + clusters + "routes:\n  - name: r\n    cluster: app\n    set_request_headers: {\"X Bad\": v}\n",
			[]string{`gangway.yaml:10:27: routes[0].set_request_headers.X Bad: "X Bad" is not a valid header name`}},
		{"host in set_request_headers", listener + clusters + "routes:\n  - name: r\n    cluster: app\n    set_request_headers: {Host: a}\n",
			[]string{`gangway.yaml:10:27: routes[0].set_request_headers.Host: set the upstream Host with host_rewrite or preserve_host_header`}},
		{"invalid name", "listeners:\n  - name: \"my listener\"\n    address: \":8080\"\n" + clusters,
			[]string{`gangway.yaml:2:5: listeners[0].name: "my listener": use at most 64 letters, digits`}},
		{"no listeners", clusters,
			[]string{`gangway.yaml:1:1: listeners: at least one listener is required (unless services is proxy, which gets them from the control plane)`}},
		{"syntax error", "listeners:\n  - name: [\n",
			[]string{`gangway.yaml:2: invalid YAML: did not find expected node content`}},
		{"two documents", listener + clusters + "---\nservices: all\n",
			[]string{`gangway.yaml:7:1: a configuration file holds one YAML document`}},
		{"not a mapping", "- a\n- b\n",
			[]string{`gangway.yaml:1:1: expected a mapping (key: value lines), found a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := parseIn(t, tt.doc)
			if c != nil {
				t.Fatalf("no error, want:\n%s", strings.Join(tt.want, "\n"))
			}
			lines := strings.Split(got, "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(tt.want), got)
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("error %d:\n got: %s\nwant: %s...", i, lines[i], want)
				}
			}
		})
	}
}

// TestParseCollectsAllErrors checks that errors of every stage come together, in file order.
func TestParseCollectsAllErrors(t *testing.T) {
	_, got := parseIn(t, `services: allx
listeners:
  - name: public
    address: ":8080"
    protocol: http
    tls:
      cert_file: nope.crt
      key_file: tls.key
      client_auth: maybe
routes:
  - name: r
    cluster: ap
    timeout: 5 minutes
clusters:
  - name: app
    endpoints: ["127.0.0.1:3000"]
    health_check: {healthy_threshold: 0}
shutdown: {delay: 20s, drain_timeout: 15s}
`)
	want := []string{
		`gangway.yaml:1:1: services: "allx" is not one of all, proxy, control (did you mean "all"?)`,
		`gangway.yaml:7:7: listeners[0].tls.cert_file: open nope.crt: no such file or directory`,
		`gangway.yaml:9:7: listeners[0].tls.client_auth: "maybe" is not one of none, verify_if_given, require`,
		`gangway.yaml:12:5: routes[0].cluster: no cluster named "ap" (did you mean "app"?); clusters: app`,
		`gangway.yaml:13:5: routes[0].timeout: "5 minutes" is not a duration`,
		`gangway.yaml:17:20: clusters[0].health_check.healthy_threshold: 0: must be at least 1`,
		`gangway.yaml:18:1: shutdown: delay (20s) + drain_timeout (15s) + 3s margin = 38s does not fit deadline (30s)`,
	}
	lines := strings.Split(got, "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), got)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d:\n got: %s\nwant: %s...", i, lines[i], want[i])
		}
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := Parse("g.yaml", []byte("listeners: 5\n"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.File != "g.yaml" || fe.Line != 1 || fe.Column != 1 || fe.Path != "listeners" {
		t.Fatalf("errors.As FieldError = %+v from %v", fe, err)
	}
}

func TestDefaultsApplied(t *testing.T) {
	c, errs := parseIn(t, `
default_upstream_timeout: 45s
listeners:
  - name: public
    address: ":8080"
    tls: {cert_file: tls.crt, key_file: tls.key, client_ca_file: ca.pem}
routes:
  - name: r
    cluster: app
  - name: r0
    cluster: app
    timeout: 0
clusters:
  - name: app
    endpoints: ["127.0.0.1:3000"]
    health_check: {interval: 1s}
    outlier_detection: {consecutive_5xx: 0}
  - name: dns
    dns: {name: app.internal, port: 3000}
`)
	if errs != "" {
		t.Fatal(errs)
	}
	want := Config{
		Services: ServicesAll, Admin: Admin{Address: "127.0.0.1:28080"}, Log: Log{Level: LogInfo, AccessLog: true},
		Shutdown:          Shutdown{Delay: 12 * time.Second, DrainTimeout: 15 * time.Second, Deadline: 30 * time.Second, ListenerGrace: 10 * time.Minute},
		TimeoutReadHeader: 10 * time.Second, TimeoutIdle: 5 * time.Minute, TimeoutWrite: 0,
		DefaultUpstreamTimeout: 45 * time.Second, MaxHeaderBytes: 1 << 20,
		DemoUpstream: DemoUpstream{Address: "127.0.0.1:18080"},
	}
	got := *c
	got.Listeners, got.Routes, got.Clusters, got.Version, got.File = nil, nil, nil, "", ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("top level:\n got %+v\nwant %+v", got, want)
	}
	if l := c.Listeners[0]; l.Protocol != ProtocolHTTP || l.TLS.ClientAuth != ClientAuthRequire {
		t.Errorf("listener defaults: %+v %+v", l, l.TLS)
	}
	if l := c.Listeners[0]; !l.NormalizePath || !l.MergeSlashes || l.PathWithEscapedSlashesAction != EscapedSlashesRejectRequest {
		t.Errorf("path defaults: normalize_path %t, merge_slashes %t, path_with_escaped_slashes_action %q; want true, true, reject_request",
			l.NormalizePath, l.MergeSlashes, l.PathWithEscapedSlashesAction)
	}
	if r := c.Routes[0]; r.Match.PathPrefix != "/" || r.Timeout != 45*time.Second || r.IdleTimeout != 5*time.Minute {
		t.Errorf("route defaults: %+v", r)
	}
	if r := c.Routes[1]; r.Timeout != 0 {
		t.Errorf("an explicit timeout: 0 became %s", r.Timeout)
	}
	app := c.Cluster("app")
	if app.LBPolicy != LBRoundRobin || app.Protocol != UpstreamHTTP1 || app.MaxIdleConnsPerEndpoint != 64 {
		t.Errorf("cluster defaults: %+v", app)
	}
	wantHC := HealthCheck{Type: HealthCheckHTTP, Path: "/", ExpectedStatuses: []string{"200-299"}, Interval: time.Second,
		Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3}
	if !reflect.DeepEqual(*app.HealthCheck, wantHC) {
		t.Errorf("health check defaults:\n got %+v\nwant %+v", *app.HealthCheck, wantHC)
	}
	wantOD := OutlierDetection{Consecutive5xx: 0, ConsecutiveConnectFailures: 3, BaseEjectionTime: 30 * time.Second, MaxEjectionPercent: 50}
	if *app.OutlierDetection != wantOD {
		t.Errorf("outlier defaults:\n got %+v\nwant %+v", *app.OutlierDetection, wantOD)
	}
	if d := c.Cluster("dns").DNS; d.Refresh != 5*time.Second {
		t.Errorf("dns refresh default = %s", d.Refresh)
	}
}

func TestRelativeFilesResolveAgainstConfigDir(t *testing.T) {
	dir := t.TempDir()
	writeCerts(t, dir)
	doc := "listeners:\n  - name: public\n    address: \":8443\"\n    tls: {cert_file: tls.crt, key_file: tls.key}\n" +
		"clusters:\n  - name: app\n    endpoints: [\"127.0.0.1:3000\"]\n"
	path := filepath.Join(dir, "gangway.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // an unrelated working directory
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Listeners[0].TLS.CertFile, filepath.Join(dir, "tls.crt"); got != want {
		t.Errorf("cert_file = %q, want %q", got, want)
	}
}

func TestVersion(t *testing.T) {
	base := "listeners:\n  - name: public\n    address: \":8080\"\nclusters:\n  - name: app\n    endpoints: [\"127.0.0.1:3000\"]\n"
	same := []string{
		"# a comment\n" + base + "\n\n",
		"clusters: [{name: app, endpoints: [\"127.0.0.1:3000\"]}]\nlisteners: [{address: \":8080\", name: public}]\n",
		base + "timeout_idle: 5m\nlog: {level: info}\n", // defaults spelled out
		base + "timeout_idle: 300s\n",
	}
	different := []string{
		base + "timeout_idle: 4m\n",
		strings.Replace(base, "3000", "3001", 1),
	}
	v := func(doc string) string {
		c, err := Parse("gangway.yaml", []byte(doc))
		if err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		return c.Version
	}
	want := v(base)
	for _, doc := range same {
		if got := v(doc); got != want {
			t.Errorf("version %s, want %s for the same config:\n%s", got, want, doc)
		}
	}
	for _, doc := range different {
		if got := v(doc); got == want {
			t.Errorf("version unchanged (%s) for a different config:\n%s", got, doc)
		}
	}
}

func TestAliasesAndMerges(t *testing.T) {
	c, errs := parseIn(t, `
x-check: &check {type: http, path: /healthz, interval: 3s}
listeners:
  - name: public
    address: ":8080"
clusters:
  - name: a
    endpoints: ["127.0.0.1:3000"]
    health_check: *check
  - name: b
    endpoints: ["127.0.0.1:3001"]
    health_check:
      <<: *check
      path: /ready
`)
	// A top-level key for anchors is still an unknown field: the schema has no free-form keys.
	if !strings.Contains(errs, `gangway.yaml:2:1: x-check: unknown field "x-check"`) || strings.Count(errs, "\n") != 0 {
		t.Fatalf("errors = %s", errs)
	}
	_ = c
	c, errs = parseIn(t, `
listeners:
  - &l {name: public, address: ":8080"}
clusters:
  - name: a
    endpoints: ["127.0.0.1:3000"]
    health_check: &check {type: http, path: /healthz, interval: 3s}
  - name: b
    endpoints: ["127.0.0.1:3001"]
    health_check:
      <<: *check
      path: /ready
`)
	if errs != "" {
		t.Fatal(errs)
	}
	a, b := c.Cluster("a").HealthCheck, c.Cluster("b").HealthCheck
	if a.Path != "/healthz" || b.Path != "/ready" || b.Interval != 3*time.Second {
		t.Errorf("a %+v b %+v", a, b)
	}
}

func TestEmptyDocument(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		_, err := Parse("g.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), "g.yaml: listeners: at least one listener is required") {
			t.Errorf("%q: err = %v", doc, err)
		}
	}
	c, err := Parse("g.yaml", []byte("services: proxy\ncontrol_plane_url: [\"control.internal:18000\"]\n"))
	if err != nil || c.Services != ServicesProxy {
		t.Errorf("proxy with no listeners: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
}

func TestHealthCheckAccepts(t *testing.T) {
	h := HealthCheck{ExpectedStatuses: []string{"200-299", "404"}}
	for status, want := range map[int]bool{199: false, 200: true, 250: true, 299: true, 300: false, 404: true, 405: false} {
		if got := h.Accepts(status); got != want {
			t.Errorf("Accepts(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestAddressConflicts(t *testing.T) {
	tests := []struct {
		addrs []string // listener addresses
		admin string
		want  string // "" for no error
	}{
		{[]string{"127.0.0.1:8080", "127.0.0.2:8080"}, "", ""},
		{[]string{"127.0.0.1:0", "127.0.0.1:0"}, "", ""},
		{[]string{":8080", ":8081"}, "", ""},
		{[]string{"127.0.0.1:8080", ":8080"}, "", "listeners[1].address: port 8080 is already used by listeners[0].address"},
		{[]string{"0.0.0.0:8080", "10.0.0.1:8080"}, "", "listeners[1].address: port 8080 is already used by listeners[0].address"},
		{[]string{"[::1]:8080", "[::1]:8080"}, "", "listeners[1].address: port 8080 is already used by listeners[0].address"},
		{[]string{":28080"}, "", "listeners[0].address: port 28080 is already used by admin.address"},
		{[]string{":9000"}, "127.0.0.1:9000", "listeners[0].address: port 9000 is already used by admin.address"},
	}
	for _, tt := range tests {
		var b strings.Builder
		if tt.admin != "" {
			b.WriteString("admin: {address: \"" + tt.admin + "\"}\n")
		}
		b.WriteString("listeners:\n")
		for i, a := range tt.addrs {
			b.WriteString("  - {name: l" + string(rune('0'+i)) + ", address: \"" + a + "\"}\n")
		}
		_, err := Parse("g.yaml", []byte(b.String()))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v", tt.addrs, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: got %v, want %s", tt.addrs, err, tt.want)
		}
	}
}
