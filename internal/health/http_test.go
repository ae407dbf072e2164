package health

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func get(t *testing.T, srv *httptest.Server, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestProbeEndpoints(t *testing.T) {
	r := NewRegistry()
	cfg := r.Register(Spec{Name: "config.build", Gates: Startup | Readiness, Versioned: true})
	up := r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness})
	srv := httptest.NewServer(Handler(r))
	defer srv.Close()

	code, body, _ := get(t, srv, "/readyz")
	if code != 503 || !strings.Contains(body, "[-]config.build: status STARTING") {
		t.Fatalf("before start: %d %q", code, body)
	}
	if code, _, _ := get(t, srv, "/startupz"); code != 503 {
		t.Fatalf("startupz before start = %d", code)
	}
	if code, _, _ := get(t, srv, "/livez"); code != 200 {
		t.Fatalf("livez before start = %d", code)
	}
	code, body, _ = get(t, srv, "/containerz")
	if code != 503 || !strings.Contains(body, "[-]config.build: never ready: status STARTING") || !strings.Contains(body, "containerz check failed") {
		t.Fatalf("containerz before start: %d %q", code, body)
	}

	r.SetConfigVersion("abc")
	cfg.Running("abc", A("source", "file"))
	up.Running("", A("healthy", "1/1"))
	code, body, hdr := get(t, srv, "/readyz")
	if code != 200 || body != "ok\n" {
		t.Fatalf("ready: %d %q", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	code, body, _ = get(t, srv, "/readyz?verbose")
	want := "[+]config.build ok\n[+]upstream.cluster.app ok\nreadyz check passed\n"
	if code != 200 || body != want {
		t.Fatalf("verbose: %d %q, want %q", code, body, want)
	}

	up.Fail(errors.New("0/2 endpoints healthy"))
	code, body, _ = get(t, srv, "/readyz")
	if code != 503 || body != "[-]upstream.cluster.app: 0/2 endpoints healthy\nreadyz check failed\n" {
		t.Fatalf("failing: %d %q", code, body)
	}
	code, body, _ = get(t, srv, "/readyz?verbose&exclude=upstream.cluster.app")
	if code != 200 || !strings.Contains(body, "[+]upstream.cluster.app excluded: ok") {
		t.Fatalf("exclude: %d %q", code, body)
	}
	if code, _, _ := get(t, srv, "/livez"); code != 200 {
		t.Fatalf("a dependency error failed livez: %d", code)
	}
	if code, body, _ := get(t, srv, "/containerz"); code != 200 || body != "ok\n" {
		t.Fatalf("a dependency error after startup failed containerz: %d %q", code, body)
	}

	r.BeginShutdown()
	code, body, _ = get(t, srv, "/readyz?exclude=upstream.cluster.app")
	if code != 503 || !strings.Contains(body, "[-]shutdown: process is terminating") {
		t.Fatalf("terminating: %d %q", code, body)
	}
	if code, _, _ := get(t, srv, "/livez"); code != 200 {
		t.Fatalf("livez while terminating = %d", code)
	}
	if code, _, _ := get(t, srv, "/containerz"); code != 200 {
		t.Fatalf("containerz while terminating = %d", code)
	}
}

func TestProbeMethods(t *testing.T) {
	r := NewRegistry()
	srv := httptest.NewServer(Handler(r))
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/readyz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST = %d allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, err = srv.Client().Head(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 0 {
		t.Fatalf("HEAD = %d body %q", resp.StatusCode, b)
	}
}

func TestStatusDocument(t *testing.T) {
	r := NewRegistry()
	r.SetConfigVersion("v9")
	r.Register(Spec{Name: "config.build", Gates: Startup | Readiness, Versioned: true}).Running("v9")
	src := r.Register(Spec{Name: "config.source", Gates: Readiness})
	src.Running("", A("backend", "file"))
	src.Fail(errors.New("watch failed"), A("backend", "file"))
	srv := httptest.NewServer(Handler(r))
	defer srv.Close()

	code, body, hdr := get(t, srv, "/status")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %s", code, hdr.Get("Content-Type"))
	}
	// The shape documented in docs/health.md: keyed by check name; "ok" as
	// gangway_health_check_ok says; attributes as an object.
	var doc map[string]struct {
		OK         *bool             `json:"ok"`
		Status     string            `json:"status"`
		Error      string            `json:"error"`
		Version    string            `json:"version"`
		Since      string            `json:"since"`
		Attributes map[string]string `json:"attributes"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if c := doc["config.build"]; c.OK == nil || !*c.OK || c.Status != "RUNNING" || c.Version != "v9" || c.Since == "" {
		t.Fatalf("config.build = %+v", c)
	}
	// A failed check reads ok: false, whatever its lifecycle status says.
	c := doc["config.source"]
	if c.OK == nil || *c.OK || c.Status != "RUNNING" || c.Error != "watch failed" || len(c.Attributes) != 1 || c.Attributes["backend"] != "file" {
		t.Fatalf("config.source = %+v\n%s", c, body)
	}
	if !strings.Contains(body, `"attributes": {
      "backend": "file"
    }`) {
		t.Fatalf("attributes are not an object:\n%s", body)
	}
}

func TestCollectorAgreesWithProbes(t *testing.T) {
	r := NewRegistry()
	r.Register(Spec{Name: "config.build", Gates: Startup | Readiness}).Running("")
	up := r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness})
	up.Running("")
	up.Fail(errors.New("down"))

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(r))
	want := `
# HELP gangway_health_check_ok 1 when the check passes every probe it gates, 0 otherwise.
# TYPE gangway_health_check_ok gauge
gangway_health_check_ok{check="config.build"} 1
gangway_health_check_ok{check="upstream.cluster.app"} 0
# HELP gangway_health_probe_ok 1 when the probe (startup, readiness, liveness, container) passes.
# TYPE gangway_health_probe_ok gauge
gangway_health_probe_ok{probe="container"} 1
gangway_health_probe_ok{probe="liveness"} 1
gangway_health_probe_ok{probe="readiness"} 0
gangway_health_probe_ok{probe="startup"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gangway_health_check_ok", "gangway_health_probe_ok"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(NewCollector(r), "gangway_health_check_status"); n != 6 {
		t.Fatalf("status series = %d, want 2 checks x 3 statuses", n)
	}
}
