package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// backend is a real upstream HTTP server on 127.0.0.1 that answers with its name.
type backend struct {
	name string
	addr string
	srv  *http.Server
	hits atomic.Int64
	// status, when set, is the status every request gets (health checks included).
	status atomic.Int64
	// delay, when set, is how long each answer waits.
	delay atomic.Int64
	// lastReq holds the last request seen (headers, host, path).
	lastReq atomic.Pointer[http.Request]
	// paths holds every path seen, for tests where a request still on its way could
	// arrive after the one they check.
	paths sync.Map
}

// saw reports whether a request for path reached the backend.
func (b *backend) saw(path string) bool {
	_, ok := b.paths.Load(path)
	return ok
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: ln.Addr().String()}
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("User-Agent") != "gangway-health-check" {
		b.hits.Add(1)
		b.lastReq.Store(r.Clone(context.Background()))
		b.paths.Store(r.URL.Path, true)
	}
	if d := b.delay.Load(); d > 0 {
		select {
		case <-time.After(time.Duration(d)):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("X-Powered-By", "backend")
	if st := b.status.Load(); st != 0 {
		w.WriteHeader(int(st))
	}
	fmt.Fprintf(w, "%s %s %s", b.name, r.Proto, r.URL.Path)
}

// serveEach accepts ln's connections until ln is closed, counting them, and hands each to
// serve in a goroutine of its own.
func serveEach(ln net.Listener, serve func(net.Conn)) *atomic.Int64 {
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go serve(c)
		}
	}()
	return &accepted
}

// freeAddr returns a 127.0.0.1 address nobody listens on (connects are refused).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// testSpec is a spec with one HTTP listener "public" on a free port and the given routes
// and clusters.
func testSpec(routes []spec.Route, clusters []spec.Cluster) *spec.Spec {
	return &spec.Spec{
		Version:           "v1",
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    1 << 20,
		ListenerGrace:     time.Second,
		Listeners:         []spec.Listener{{Name: "public", Address: "127.0.0.1:0", ReadinessPath: "/gangway/ready"}},
		Routes:            routes,
		Clusters:          clusters,
	}
}

func prefixRoute(name, prefix, cluster string) spec.Route {
	return spec.Route{Name: name, Path: spec.PathMatch{Prefix: prefix}, Cluster: cluster, Timeout: 30 * time.Second, IdleTimeout: time.Minute}
}

type testServer struct {
	*Server
	reg *health.Registry
}

func startServer(t testing.TB, spec *spec.Spec, opts ...func(*Options)) *testServer {
	t.Helper()
	reg := health.NewRegistry()
	reg.SetConfigVersion(spec.Version)
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	o := Options{Health: reg, Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, f := range opts {
		f(&o)
	}
	s, err := New(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return &testServer{Server: s, reg: reg}
}

// url returns http://<listener address><path>.
func (s *testServer) url(listener, path string) string {
	return "http://" + s.Addr(listener) + path
}

// testWriter sends logs to t.Log, until the test ends.
type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// get performs a GET and returns status and body.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// eventually polls cond every 20 ms until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// record returns the named check's record.
func record(reg *health.Registry, name string) (health.Record, bool) {
	for _, r := range reg.Snapshot().Records {
		if r.Name == name {
			return r, true
		}
	}
	return health.Record{}, false
}

func attr(rec health.Record, key string) string {
	for _, a := range rec.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

func newClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
}

func mustPrefixes(t *testing.T, cidrs ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
