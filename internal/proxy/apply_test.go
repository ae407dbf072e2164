package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// TestFailedApplyChangesNothing: an Apply whose listener address is taken by another socket
// fails, and the data plane keeps serving exactly the previous spec: listeners, routes,
// clusters and health checks.
func TestFailedApplyChangesNothing(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	sp := testSpec([]spec.Route{prefixRoute("r", "/", "a")}, []spec.Cluster{{Name: "a", Endpoints: []string{a.addr}}})
	srv := startServer(t, sp)
	addr := srv.Addr("public")
	sp.Listeners[0].Address = addr
	c := newClient()

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	extra := freeAddr(t)

	// Every part changes: a new listener (bound before the failing one), the public
	// listener's address, cluster a's endpoints, a new cluster, new routes.
	next := *sp
	next.Version = "v2"
	next.Listeners = []spec.Listener{
		{Name: "extra", Address: extra},
		{Name: "public", Address: taken.Addr().String(), ReadinessPath: "/gangway/ready"},
	}
	next.Clusters = []spec.Cluster{{Name: "a", Endpoints: []string{b.addr}}, {Name: "new", Endpoints: []string{b.addr}}}
	next.Routes = []spec.Route{prefixRoute("new", "/new", "new"), prefixRoute("r", "/", "a")}
	err = srv.Apply(&next)
	if err == nil || !strings.Contains(err.Error(), `listener "public"`) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Apply onto a taken address: %v", err)
	}

	if got := srv.Addr("public"); got != addr {
		t.Fatalf("public listener moved to %q", got)
	}
	for _, path := range []string{"/", "/new"} {
		if code, body := get(t, c, "http://"+addr+path); code != 200 || !strings.HasPrefix(body, "a ") {
			t.Fatalf("GET %s after the failed Apply: %d %q, want the old route to a", path, code, body)
		}
	}
	if b.hits.Load() != 0 {
		t.Fatalf("b took %d requests: the new clusters or routes leaked", b.hits.Load())
	}
	if conn, err := net.DialTimeout("tcp", extra, time.Second); err == nil {
		conn.Close()
		t.Fatalf("the new listener's address %s still accepts after the failed Apply", extra)
	}
	if srv.Addr("extra") != "" {
		t.Fatal("the new listener is registered after the failed Apply")
	}
	for _, name := range []string{"proxy.listener.extra", "upstream.cluster.new"} {
		if rec, ok := record(srv.reg, name); ok {
			t.Fatalf("check %s registered by the failed Apply: %+v", name, rec)
		}
	}
	for _, name := range []string{"proxy.listener.public", "upstream.cluster.a"} {
		rec, _ := record(srv.reg, name)
		if rec.Status != health.Running || rec.Err != "" || rec.Version != "v1" {
			t.Fatalf("check %s after the failed Apply: %s %q at %q, want RUNNING at v1", name, rec.Status, rec.Err, rec.Version)
		}
	}
	if code, _ := get(t, c, "http://"+addr+"/gangway/ready"); code != 200 {
		t.Fatalf("readiness after the failed Apply: %d", code)
	}

	// The same change with a free address applies.
	next.Listeners[1].Address = addr
	if err := srv.Apply(&next); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, c, "http://"+addr+"/new"); code != 200 || !strings.HasPrefix(body, "b ") {
		t.Fatalf("after the good Apply: %d %q", code, body)
	}
	if srv.Addr("extra") != extra {
		t.Fatalf("extra listener at %q, want %s", srv.Addr("extra"), extra)
	}
}

// TestReplaceListenerOnSameAddressFailsNoRequest: replacing a listener on the same address
// hands its socket over and lets the old server answer what it accepted, so clients opening
// connections all along see no refused connect and no failed request.
func TestReplaceListenerOnSameAddressFailsNoRequest(t *testing.T) {
	a := startBackend(t, "a")
	sp := testSpec([]spec.Route{prefixRoute("r", "/", "a")}, []spec.Cluster{{Name: "a", Endpoints: []string{a.addr}}})
	srv := startServer(t, sp)
	addr := srv.Addr("public")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			// A fresh connection per request: every request goes through accept.
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for i := 0; i < 5000 && ctx.Err() == nil; i++ {
				resp, err := client.Get("http://" + addr + "/")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
						continue
					}
				}
				failed.Add(1)
				var msg string
				if err != nil {
					msg = err.Error()
				} else {
					msg = resp.Status
				}
				firstErr.CompareAndSwap(nil, &msg)
			}
		})
	}
	const replacements = 8
	for i := range replacements {
		next := *sp
		next.Version = fmt.Sprintf("v%d", i+2)
		next.Listeners = []spec.Listener{{Name: "public", Address: addr, ReadinessPath: fmt.Sprintf("/ready%d", i)}}
		if err := srv.Apply(&next); err != nil {
			t.Fatalf("replacement %d: %v", i, err)
		}
		if got := srv.Addr("public"); got != addr {
			t.Fatalf("replacement %d moved the listener to %s", i, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across %d replacements on one address; first: %s", failed.Load(), failed.Load()+ok.Load(), replacements, *firstErr.Load())
	}
	if ok.Load() < replacements {
		t.Fatalf("only %d requests were made across %d replacements", ok.Load(), replacements)
	}
	t.Logf("%d requests on fresh connections across %d replacements on one address, none failed", ok.Load(), replacements)
}

// A demo upstream is bound when a change is prepared but answers only once the change is
// committed: a rolled-back change never serves a request from its demo.
func TestDemoServesOnlyAfterCommit(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := startDemo(context.Background(), "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	addr := d.ln.Addr().String()
	c := rawConn(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n > 0 || !isTimeoutErr(err) {
		t.Fatalf("a prepared demo answered before serve (%d bytes, %v)", n, err)
	}
	d.serve()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.stop(ctx)
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	// Never served: stop just releases the socket.
	d2, err := startDemo(context.Background(), "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	addr2 := d2.ln.Addr().String()
	d2.stop(context.Background())
	if c, err := net.DialTimeout("tcp", addr2, 2*time.Second); err == nil {
		c.Close()
		t.Fatal("the socket of a demo that never served is still open")
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
