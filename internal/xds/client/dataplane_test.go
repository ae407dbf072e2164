package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/proxy"
	"github.com/gangway-ecs/gangway/internal/spec"
	"github.com/gangway-ecs/gangway/internal/xds/server"
)

// TestTrafficThroughXDS drives a real data plane (proxy.Server) over xDS: traffic flows at
// the first version, keeps flowing on it when the next version is rejected and when the
// control plane is gone, and readiness stays green through both.
func TestTrafficThroughXDS(t *testing.T) {
	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s", r.URL.Path)
	})}
	go backend.Serve(backendLn)
	t.Cleanup(func() { backend.Close() })

	listenAddr := freeLoopback(t)
	yaml := fmt.Sprintf(`
listeners: [{name: public, address: %q, readiness_path: /ready}]
routes: [{name: app, cluster: app, required: true}]
clusters: [{name: app, endpoints: [%q]}]
`, listenAddr, backendLn.Addr().String())

	cp := startControlPlane(t, "tcp", "127.0.0.1:0", server.ServerOptions{})
	v1 := cp.publish(t, yaml)

	reg := health.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	dp := proxy.NewDataPlane(ctx, proxy.Options{Health: reg})
	client, err := NewClient(ClientOptions{
		ControlPlane: []string{cp.addr},
		Node:         &core.Node{Id: "proxy-1"},
		Apply:        dp.Apply,
		Health:       reg,
		MinBackoff:   20 * time.Millisecond,
		MaxBackoff:   200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); client.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if srv := dp.Server(); srv != nil {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			srv.Shutdown(sctx)
		}
	})

	get := func(path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + listenAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "ready at v1", func() bool { return reg.Evaluate(health.Readiness).OK && client.Status().Version == v1 })
	if code, body := get("/hello"); code != 200 || body != "backend /hello" {
		t.Fatalf("through the proxy: %d %q", code, body)
	}
	if code, _ := get("/ready"); code != 200 {
		t.Errorf("readiness path on the traffic port: %d", code)
	}

	// A version the data plane rejects: the old one keeps serving, readiness stays green.
	if err := cp.srv.PublishResources(context.Background(), envoyOnly(t, yaml)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "NACK on the control plane", func() bool { return cp.attr("nodes_rejecting") == "1" })
	if code, body := get("/after-nack"); code != 200 || body != "backend /after-nack" {
		t.Errorf("after a NACK: %d %q", code, body)
	}
	if r := reg.Evaluate(health.Readiness); !r.OK {
		t.Errorf("readiness after a NACK: %s", r.FirstFailure())
	}
	if code, _ := get("/ready"); code != 200 {
		t.Errorf("readiness path after a NACK: %d", code)
	}

	// The control plane goes away: traffic and readiness are untouched.
	cp.stop()
	waitFor(t, "disconnected", func() bool { return !client.Status().Connected })
	for i := range 5 {
		if code, body := get(fmt.Sprintf("/cp-gone-%d", i)); code != 200 || !strings.HasPrefix(body, "backend") {
			t.Errorf("without a control plane: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := reg.Evaluate(health.Readiness); !r.OK {
		t.Errorf("readiness without a control plane: %s", r.FirstFailure())
	}
}

// freeLoopback returns a 127.0.0.1 address that nothing listens on.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestDataPlaneStartsAfterAFailedFirstVersion: a first version whose listener cannot bind
// is rejected, and the next version builds a server on the same metrics registry.
func TestDataPlaneStartsAfterAFailedFirstVersion(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	specFor := func(addr string) *spec.Spec {
		t.Helper()
		cfg, err := config.Parse("dp.yaml", []byte(fmt.Sprintf(`
listeners: [{name: public, address: %q}]
routes: [{name: app, cluster: app}]
clusters: [{name: app, endpoints: ["127.0.0.1:1"]}]
`, addr)))
		if err != nil {
			t.Fatal(err)
		}
		spec, err := config.ToSpec(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return spec
	}
	reg := health.NewRegistry()
	metrics := prometheus.NewRegistry()
	dp := proxy.NewDataPlane(context.Background(), proxy.Options{Health: reg, Metrics: metrics})
	if err := dp.Apply(specFor(taken.Addr().String()), ""); err == nil {
		t.Fatal("a listener on a taken address was applied")
	}
	free := freeLoopback(t)
	if err := dp.Apply(specFor(free), ""); err != nil {
		t.Fatalf("the next version failed: %v", err)
	}
	defer dp.Server().Close()
	if dp.Server().Addr("public") == "" {
		t.Fatal("no listener after the second version")
	}
}
