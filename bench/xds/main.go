// Command xds benchmarks Gangway's control plane: one ADS server, many simulated data planes
// (goroutines, each on its own gRPC connection and ADS stream over loopback, in a second
// process so that the control plane's memory is its own), and a configuration with many
// routes. It reports the time to compile a version, the time until every data plane has
// acknowledged a new version (p50, p99, max), and the control plane's resident memory,
// against the goals in docs/benchmarks.md.
//
//	go run ./bench/xds -clients 1000 -routes 10000
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/xds/resource"
	"github.com/gangway-ecs/gangway/internal/xds/server"
)

const (
	goalACK = 2 * time.Second
	goalRSS = 1 << 30
)

func main() {
	role := flag.String("role", "control", "control (the benchmark) or clients (started by it)")
	addr := flag.String("addr", "", "clients: the control plane's address")
	clients := flag.Int("clients", 1000, "simulated data planes")
	routes := flag.Int("routes", 10000, "routes in the configuration")
	rounds := flag.Int("rounds", 3, "new versions to publish and time")
	limit := flag.Duration("timeout", 5*time.Minute, "bound on the whole run")
	cpuProfile := flag.String("cpuprofile", "", "control: write a CPU profile of the timed rounds here")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	var err error
	if *role == "clients" {
		err = runClients(ctx, *addr, *clients)
	} else {
		err = runControl(ctx, *clients, *routes, *rounds, *cpuProfile)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-xds:", err)
		os.Exit(1)
	}
}

// configYAML has routes spread over hosts (100 routes per host) and 100 clusters.
func configYAML(routes int, timeout time.Duration) []byte {
	var b strings.Builder
	b.WriteString("listeners: [{name: public, address: \"127.0.0.1:8080\"}]\nroutes:\n")
	for i := 0; i < routes; i++ {
		fmt.Fprintf(&b, "  - {name: r%d, match: {hosts: [svc%d.example.com], path_prefix: /api/v%d/}, cluster: c%d, timeout: %s}\n",
			i, i/100, i%100, i%100, timeout)
	}
	b.WriteString("clusters:\n")
	for c := 0; c < 100; c++ {
		fmt.Fprintf(&b, "  - {name: c%d, endpoints: [\"127.0.0.%d:%d\"]}\n", c, 1+c/50, 3000+c)
	}
	return []byte(b.String())
}

func runControl(ctx context.Context, clients, routes, rounds int, cpuProfile string) error {
	reg := health.NewRegistry()
	srv, err := server.NewServer(server.ServerOptions{Health: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() { stop(); <-served }()

	parseStart := time.Now()
	cfg, err := config.Parse("bench.yaml", configYAML(routes, 30*time.Second))
	if err != nil {
		return err
	}
	parse := time.Since(parseStart)
	compileStart := time.Now()
	res, err := resource.Compile(cfg)
	if err != nil {
		return err
	}
	compile := time.Since(compileStart)
	if err := srv.PublishResources(ctx, res); err != nil {
		return err
	}

	// The data planes, in a second process.
	child := exec.CommandContext(ctx, os.Args[0], "-role", "clients", "-addr", ln.Addr().String(), "-clients", strconv.Itoa(clients))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); child.Wait() }() // closing stdin ends the clients

	acks := make(chan ack, clients)
	go readAcks(out, acks)

	start := time.Now()
	first, err := waitAll(ctx, acks, clients, res.Version, start)
	if err != nil {
		return fmt.Errorf("initial sync: %w", err)
	}
	fmt.Printf("bench-xds: %d clients, %d routes (%d virtual-host route entries), RouteConfiguration %d KiB\n",
		clients, routes, routeEntries(res), routeConfigSize(res)/1024)
	fmt.Printf("  parse config      %8s   (not part of the goal)\n", parse.Round(time.Millisecond))
	fmt.Printf("  compile           %8s   (config -> xDS resources -> version)\n", compile.Round(time.Millisecond))
	fmt.Printf("  initial sync      p50 %8s  p99 %8s  max %8s\n", pct(first, 50), pct(first, 99), pct(first, 100))

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var worst []time.Duration
	for r := 1; r <= rounds; r++ {
		cfg, err := config.Parse("bench.yaml", configYAML(routes, time.Duration(30+r)*time.Second))
		if err != nil {
			return err
		}
		cpu0 := cpuTime()
		t0 := time.Now()
		res, err := resource.Compile(cfg)
		if err != nil {
			return err
		}
		build := time.Since(t0)
		if err := srv.PublishResources(ctx, res); err != nil {
			return err
		}
		published := time.Since(t0)
		lat, err := waitAll(ctx, acks, clients, res.Version, t0)
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		fmt.Printf("  new version %d     build %8s  publish %8s  ACK p50 %8s  p99 %8s  max %8s  control plane CPU %s\n", r,
			build.Round(time.Millisecond), published.Round(time.Millisecond), pct(lat, 50), pct(lat, 99), pct(lat, 100),
			(cpuTime() - cpu0).Round(time.Millisecond))
		if worst == nil || pct(lat, 100) > pct(worst, 100) {
			worst = lat
		}
	}
	rss, hwm := memory()
	fmt.Printf("  control plane RSS %d MiB now, %d MiB peak\n", rss>>20, hwm>>20)
	okACK, okRSS := pct(worst, 100) <= goalACK, hwm <= goalRSS
	fmt.Printf("  goal: every client ACKs within %s: %s (worst max %s, %.2fx the goal)\n", goalACK, verdict(okACK), pct(worst, 100), float64(pct(worst, 100))/float64(goalACK))
	fmt.Printf("  goal: control plane under %d MiB: %s (peak %d MiB, %.2fx the goal)\n", goalRSS>>20, verdict(okRSS), hwm>>20, float64(hwm)/float64(goalRSS))
	// The control plane's own count agrees once it has read the last ACKs.
	want := fmt.Sprintf("%d/%d", clients, clients)
	for deadline := time.Now().Add(30 * time.Second); attr(reg, "nodes") != want; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("xds.server counts nodes %s, want %s", attr(reg, "nodes"), want)
		}
	}
	fmt.Printf("  xds.server: nodes %s at the last version\n", want)
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

type ack struct {
	client  int
	version string
	at      time.Time
}

func readAcks(r io.Reader, out chan<- ack) {
	defer close(out)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "ack" {
			continue
		}
		id, _ := strconv.Atoi(f[1])
		ns, _ := strconv.ParseInt(f[3], 10, 64)
		out <- ack{client: id, version: f[2], at: time.Unix(0, ns)}
	}
}

// waitAll waits until every client has acknowledged version, and returns each one's delay
// since t0.
func waitAll(ctx context.Context, acks <-chan ack, clients int, version string, t0 time.Time) ([]time.Duration, error) {
	seen := map[int]time.Duration{}
	for len(seen) < clients {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d clients acknowledged %s: %w", len(seen), clients, version, ctx.Err())
		case a, ok := <-acks:
			if !ok {
				return nil, errors.New("the clients exited")
			}
			if a.version == version {
				seen[a.client] = a.at.Sub(t0)
			}
		}
	}
	out := make([]time.Duration, 0, clients)
	for _, d := range seen {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p+99)/100 - 1
	return sorted[min(max(i, 0), len(sorted)-1)].Round(time.Millisecond)
}

func routeEntries(res *resource.Resources) int {
	n := 0
	for _, rc := range res.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			n += len(vh.GetRoutes())
		}
	}
	return n
}

func routeConfigSize(res *resource.Resources) int {
	n := 0
	for _, rc := range res.Routes {
		n += proto.Size(rc)
	}
	return n
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory returns the process's resident and peak resident set sizes, from /proc.
func memory() (rss, hwm int64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

func attr(reg *health.Registry, key string) string {
	for _, r := range reg.Snapshot().Records {
		if r.Name == server.ServerCheckName {
			for _, a := range r.Attrs {
				if a.Key == key {
					return a.Value
				}
			}
		}
	}
	return ""
}

// ---- the simulated data planes

// runClients opens one connection and ADS stream per client. Each subscribes to every
// listener and cluster, to the route configuration, and to the endpoints of the clusters it
// is sent; it acknowledges every response at once, and prints "ack CLIENT VERSION UNIXNANO"
// when it has acknowledged one version for all four types. It stops when stdin closes.
func runClients(ctx context.Context, addr string, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()

	w := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	report := func(id int, version string) {
		mu.Lock()
		fmt.Fprintf(w, "ack %d %s %d\n", id, version, time.Now().UnixNano())
		w.Flush()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client(ctx, addr, i, report); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func client(ctx context.Context, addr string, id int, report func(int, string)) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return err
	}
	defer cc.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	names := map[string][]string{resource.RouteType: {resource.RouteConfigName}}
	send := func(typeURL, version, nonce string) error {
		return stream.Send(&discovery.DiscoveryRequest{
			Node:          &core.Node{Id: fmt.Sprintf("bench-%d", id)},
			TypeUrl:       typeURL,
			VersionInfo:   version,
			ResponseNonce: nonce,
			ResourceNames: names[typeURL],
		})
	}
	for _, t := range []string{resource.ClusterType, resource.ListenerType, resource.RouteType} {
		if err := send(t, "", ""); err != nil {
			return err
		}
	}
	acked := map[string]string{}
	reported := ""
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		t := resp.GetTypeUrl()
		if t == resource.ClusterType {
			var eds []string
			for _, a := range resp.GetResources() {
				c := &cluster.Cluster{}
				if err := a.UnmarshalTo(c); err != nil {
					return err
				}
				if c.GetType() == cluster.Cluster_EDS {
					eds = append(eds, c.GetName())
				}
			}
			sort.Strings(eds)
			if strings.Join(eds, ",") != strings.Join(names[resource.EndpointType], ",") {
				names[resource.EndpointType] = eds
				if err := send(resource.EndpointType, acked[resource.EndpointType], ""); err != nil {
					return err
				}
			}
		}
		if err := send(t, resp.GetVersionInfo(), resp.GetNonce()); err != nil {
			return err
		}
		acked[t] = resp.GetVersionInfo()
		v := acked[resource.ListenerType]
		if v != "" && v != reported && acked[resource.RouteType] == v && acked[resource.ClusterType] == v && acked[resource.EndpointType] == v {
			reported = v
			report(id, v)
		}
	}
}
