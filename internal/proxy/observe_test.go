package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAccessLogAndMetrics(t *testing.T) {
	a := startBackend(t, "a")
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/app", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}),
		func(o *Options) {
			o.AccessLog = slog.New(slog.NewJSONHandler(&logs, nil))
			o.Metrics = reg
		})
	c := newClient()
	get(t, c, srv.url("public", "/app/x"))
	get(t, c, srv.url("public", "/app/y"))
	get(t, c, srv.url("public", "/none"))

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d access log lines: %q", len(lines), logs.String())
	}
	var first struct {
		Method, Host, Path, Upstream, Route, Cluster string
		Status                                       int
		Bytes                                        int64
		Duration                                     *float64 `json:"duration_ms"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Method != "GET" || first.Path != "/app/x" || first.Status != 200 || first.Upstream != a.addr ||
		first.Route != "app" || first.Cluster != "app" || first.Bytes != int64(len("a HTTP/1.1 /app/x")) || first.Duration == nil || first.Host != srv.Addr("public") {
		t.Fatalf("access log line %s", lines[0])
	}
	if !strings.Contains(lines[2], `"status":404`) || !strings.Contains(lines[2], `"route":""`) {
		t.Fatalf("404 line %s", lines[2])
	}

	if v := testutil.ToFloat64(srv.metrics.requests.WithLabelValues("app", "app", "2xx")); v != 2 {
		t.Fatalf("requests{2xx} = %v", v)
	}
	if v := testutil.ToFloat64(srv.metrics.unrouted); v != 1 {
		t.Fatalf("unrouted = %v", v)
	}
	if v := testutil.ToFloat64(srv.metrics.activeConns.WithLabelValues("public")); v != 1 {
		t.Fatalf("active connections = %v", v)
	}
	n, err := testutil.GatherAndCount(reg, "gangway_upstream_request_duration_seconds", "gangway_upstream_endpoints", "gangway_upstream_endpoint_healthy")
	if err != nil || n != 4 {
		t.Fatalf("gathered %d series (%v)", n, err)
	}
	if srv.Gatherer() != prometheus.Gatherer(reg) {
		t.Fatal("Gatherer is not the registry passed in")
	}
}
