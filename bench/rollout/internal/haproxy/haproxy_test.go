package haproxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// needHAProxy returns the haproxy binary, or skips saying why. With
// GANGWAY_ROLLOUT_REQUIRE=1 (set by `make test-rollout`, which installs it) a missing
// binary fails the test instead.
func needHAProxy(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("GANGWAY_ROLLOUT_REQUIRE") == "1" {
			t.Fatalf("haproxy not found: %v", err)
		}
		t.Skipf("haproxy is not installed (scripts/apt-install.sh haproxy; make test-rollout installs it): %v", err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func testConfig(t *testing.T, bin string) Config {
	return Config{
		Binary:   bin,
		Dir:      t.TempDir(),
		HTTPAddr: freeAddr(t),
		H2CAddr:  freeAddr(t),
		Slots:    3,
		Check:    Check{Path: "/ready", Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 2, Fall: 2},
	}
}

func TestWriteConfigRejects(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no slots": {Slots: 0, Check: Check{Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}},
		"no rise":  {Slots: 1, Check: Check{Interval: time.Second, Timeout: time.Second, Rise: 0, Fall: 1}},
		"no inter": {Slots: 1, Check: Check{Timeout: time.Second, Rise: 1, Fall: 1}},
	} {
		if err := WriteConfig(io.Discard, cfg, "/tmp/s.sock"); err == nil {
			t.Errorf("%s: WriteConfig accepted %+v", name, cfg)
		}
	}
}

// The generated configuration must be one that HAProxy accepts, with and without an HTTP
// check path.
func TestConfigValid(t *testing.T) {
	bin := needHAProxy(t)
	for _, path := range []string{"/gangway/ready", ""} {
		cfg := testConfig(t, bin)
		cfg.Check.Path = path
		file := cfg.Dir + "/haproxy.cfg"
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteConfig(f, cfg, cfg.Dir+"/s.sock"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if out, err := exec.Command(bin, "-c", "-f", file).CombinedOutput(); err != nil {
			t.Errorf("check path %q: haproxy -c: %v\n%s", path, err, out)
		}
	}
}

func TestParseStats(t *testing.T) {
	out := "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,\n" +
		"http,FRONTEND,,,3,5,4000,10,0,0,0,0,0,,,,,OPEN,\n" +
		"replicas,slot1,0,0,2,4,,9,0,0,,0,,1,0,0,0,UP,\n" +
		"replicas,slot2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN 1/2,\n"
	stats, err := ParseStats(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(stats), stats)
	}
	s := stats[1]
	if s.Proxy != "replicas" || s.Name != "slot1" || s.Status != "UP" || s.Current != 2 || s.Int("econ") != 1 || !s.Up() {
		t.Errorf("slot1 = %+v", s)
	}
	if stats[2].Up() {
		t.Errorf("a server going up (%q) is not up yet", stats[2].Status)
	}
}

func TestParseLogLine(t *testing.T) {
	e, ok := ParseLogLine(`1795306518.042 2004 replicas/slot2 502 SH-- 8080 "GET /echo?id=a-1 HTTP/1.1"`)
	if !ok {
		t.Fatal("not parsed")
	}
	if e.Server != "replicas/slot2" || e.Status != 502 || e.Termination != "SH--" || e.Port != "8080" ||
		e.Request != "GET /echo?id=a-1 HTTP/1.1" {
		t.Errorf("entry = %+v", e)
	}
	if e.Start.UnixMilli() != 1795306518042 || e.End.Sub(e.Start) != 2004*time.Millisecond {
		t.Errorf("start %v end %v", e.Start, e.End)
	}
	for _, line := range []string{
		"[NOTICE]   (26884) : haproxy version is 2.6.12",
		"Server replicas/slot1 is UP, reason: Layer7 check passed",
		"",
	} {
		if _, ok := ParseLogLine(line); ok {
			t.Errorf("%q parsed as an entry", line)
		}
	}
}

// backend is an HTTP server on 127.0.0.1 whose readiness can be switched and that counts the
// requests other than health checks.
type backend struct {
	addr   string
	ready  atomic.Bool
	served atomic.Int64
}

func startBackend(t *testing.T) *backend {
	b := &backend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" {
			if !b.ready.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		b.served.Add(1)
		io.WriteString(w, "hello")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func waitStatus(t *testing.T, h *HAProxy, slot int, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := h.Server(context.Background(), slot)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %q after 10s, want %q", SlotName(slot), st.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A registered server gets no request until it has passed its health checks, like a new
// ALB target; a drained one gets no new request.
func TestRegisterDrain(t *testing.T) {
	bin := needHAProxy(t)
	ctx := context.Background()
	h, err := Start(ctx, testConfig(t, bin))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	get := func() int {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + h.cfg.HTTPAddr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	b := startBackend(t) // not ready
	if err := h.Register(ctx, 1, b.addr, 0); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if code := get(); code != http.StatusServiceUnavailable {
			t.Fatalf("with no server up: status %d, want 503 from HAProxy", code)
		}
	}
	if n := b.served.Load(); n != 0 {
		t.Fatalf("a server that never passed a health check served %d requests", n)
	}
	b.ready.Store(true)
	waitStatus(t, h, 1, "UP")
	if code := get(); code != http.StatusOK || b.served.Load() != 1 {
		t.Fatalf("server up: status %d, served %d", code, b.served.Load())
	}

	b2 := startBackend(t)
	b2.ready.Store(true)
	if err := h.Register(ctx, 2, b2.addr, 0); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h, 2, "UP")
	if err := h.Drain(ctx, 1); err != nil {
		t.Fatal(err)
	}
	before := b.served.Load()
	for range 10 {
		if code := get(); code != http.StatusOK {
			t.Fatalf("status %d after draining one of two servers", code)
		}
	}
	if b.served.Load() != before || b2.served.Load() < 10 {
		t.Errorf("after drain: drained server served %d more, the other %d", b.served.Load()-before, b2.served.Load())
	}
	if err := h.Disable(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h, 1, "MAINT")

	// The health check can go to another port than the traffic (the baseline checks the
	// probe server): a server whose traffic port is dead but whose check port is ready
	// comes UP.
	if err := h.Register(ctx, 3, "127.0.0.1:1", portOf(t, b2.addr)); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h, 3, "UP")

	if err := h.set(ctx, 9, "state ready"); err == nil || !strings.Contains(err.Error(), "slot9") {
		t.Errorf("a command on a missing server: err = %v, want one naming slot9", err)
	}
}

func portOf(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
