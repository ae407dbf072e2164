package proxy

import (
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// BenchmarkProxyHTTP1 measures one keep-alive HTTP/1.1 request through the proxy to a
// minimal upstream, over real sockets on 127.0.0.1. Compare with BenchmarkDirectHTTP1.
func BenchmarkProxyHTTP1(b *testing.B) {
	up := startFastUpstream(b)
	spec := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{up}, MaxIdleConnsPerEndpoint: 256}})
	srv := startServer(b, spec)
	benchGet(b, "http://"+srv.Addr("public")+"/")
}

// BenchmarkProxyHTTP2 is BenchmarkProxyHTTP1 over h2c: streams multiplexed on the
// client's connections, HTTP/1.1 upstream.
func BenchmarkProxyHTTP2(b *testing.B) {
	up := startFastUpstream(b)
	spec := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{up}, MaxIdleConnsPerEndpoint: 256}})
	spec.Listeners[0].H2C = true
	srv := startServer(b, spec)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	benchGetWith(b, &http.Client{Transport: tr}, "http://"+srv.Addr("public")+"/")
}

// BenchmarkDirectHTTP1 is the same request sent to the upstream directly.
func BenchmarkDirectHTTP1(b *testing.B) {
	benchGet(b, "http://"+startFastUpstream(b)+"/")
}

func startFastUpstream(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte("hello from the benchmark upstream\n")
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func benchGet(b *testing.B, url string) {
	benchGetWith(b, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, url)
}

func benchGetWith(b *testing.B, c *http.Client, url string) {
	b.SetParallelism(8)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	defer func() {
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
