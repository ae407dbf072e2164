// Command proxy-bench measures Gangway's data plane against its peers in one run: the same
// upstream (nginx serving a small static answer on 127.0.0.1) served directly, through
// Gangway, nginx, HAProxy, Caddy and the Go floor (floor.go: the least a Go HTTP/1.1 proxy
// does, for HTTP/1.1 only); wrk drives HTTP/1.1 keep-alive and h2load drives HTTP/2
// (cleartext, prior knowledge). It prints a Markdown table with requests/s, p50 and p99
// latency and each peer's ratio to Gangway; CPU time per request of every target and
// Gangway's heap allocations per request (its go_memstats_mallocs_total over the run);
// Gangway's CPU and p99 as multiples of HAProxy's (and, for HTTP/1.1, of the floor's);
// and, for each Gangway binary on a fresh process before any load, its resident memory
// idle and with -hold keep-alive connections open (and what one connection adds), and its
// start to ready (exec until /readyz answers 200, median of -starts). Every target runs
// once per round (-rounds, 3 by default), in turn, and reports its median round; the
// ratios of every round are printed too. CPU time and allocations cover the measured run
// only, not the 1 s warm-up before it.
//
// -cpu-limit runs every proxy in a cgroup limited to that many CPUs, HAProxy and nginx with
// as many threads or workers as the limit has CPUs (rounded up); -memory-limit runs
// every proxy process in a memory cgroup of its own with that many MiB, its executable
// evicted from the page cache before it starts, and adds a table of each target's major
// page faults, its cgroup's peak memory and how often it reached the limit over the
// measured run. -rate adds a run of each protocol at that fixed rate (h2load --rps), the
// latency a proxy adds below saturation: under wrk's and h2load's saturating load every
// connection always has a request waiting, and the p99 follows the requests a second.
//
// scripts/bench-proxy.sh installs the tools and runs it (make bench-proxy). Every load run
// is bounded by -duration; the whole run takes about rounds × 11 × (duration + 2 s) plus
// startup, twice that with -rate.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Ports on 127.0.0.1. The upstream listens on upstreamH1 (HTTP/1.1) and upstreamH2 (h2c).
const (
	upstreamH1 = 18600
	upstreamH2 = 18610
	gangwayH   = 18601
	gangwayAdm = 18609
	nginxH1    = 18602
	nginxH2    = 18612
	haproxyH1  = 18603
	haproxyH2  = 18613
	caddyH     = 18604
	floorH1    = 18605
)

type options struct {
	proxyBin    string
	baseline    string // a second Gangway binary measured in the same rounds, or ""
	duration    time.Duration
	requests    int // when > 0, each load run is this many requests (h2load on both protocols) instead of duration
	conns       int
	h2Conns     int
	h2Streams   int
	hold        []int         // keep-alive connections held open for the memory measurement, ascending
	settle      time.Duration // how long the memory is read again after, with the process quiet
	cpuLimit    float64       // CPUs the proxies may use (a CFS quota), 0 for no limit
	cgroup      string        // the cgroup with that quota, when there is one
	memoryLimit int           // MiB each proxy process may use (a memory cgroup of its own), 0 for no limit
	mem         *memCgroups   // makes those cgroups, under a memory limit
	starts      int
	rounds      int
	workDir     string
	onlyGangway bool
	// rate, when > 0, adds a run of each protocol at this many requests a second in all
	// (h2load --rps, shared among the connections): the latency a proxy adds below
	// saturation, where under a saturating load the p99 follows the requests a second.
	rate float64
}

// target is one thing under load.
type target struct {
	name   string
	h1, h2 int // ports
	start  func(ctx context.Context, o *options) (*proc, error)
	// bin is the Gangway binary, "" for other targets: Gangway's allocations are read from
	// its metrics, and its memory and start-up are measured on their own.
	bin string
}

// result is one load run.
type result struct {
	// ran is false for a protocol the target does not serve, and true for one that it
	// does even when it answered nothing (a proxy starved of memory may not).
	ran      bool
	rps      float64
	p50, p99 time.Duration
	errors   int
	requests int
	// cpu is the CPU time (user + system) the target's processes used during the run.
	cpu time.Duration
	// mallocs is the number of heap allocations Gangway made during the run (its
	// go_memstats_mallocs_total), -1 for other targets.
	mallocs int64
	// mem is what the target did with its memory during the run, nil unless it ran in a
	// memory cgroup (-memory-limit).
	mem *memRun
}

// allocsPerRequest is Gangway's heap allocations per request, -1 when not known.
func (r result) allocsPerRequest() float64 {
	if r.mallocs < 0 || r.requests == 0 {
		return -1
	}
	return float64(r.mallocs) / float64(r.requests)
}

// makeCPUCgroup makes a cgroup limited to cpus CPUs: under cgroup v2 (cpu.max) when the
// cpu controller is enabled for the root's children, else under v1's cpu controller
// (cpu.cfs_quota_us).
func makeCPUCgroup(cpus float64) (string, error) {
	quota := int(cpus * 100000)
	name := fmt.Sprintf("gangway-bench-%d", os.Getpid())
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil && slices.Contains(strings.Fields(string(b)), "cpu") {
		dir := filepath.Join("/sys/fs/cgroup", name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("%w (run as root, or without -cpu-limit)", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cpu.max"), fmt.Appendf(nil, "%d 100000", quota), 0o644); err != nil {
			os.Remove(dir)
			return "", err
		}
		return dir, nil
	}
	for _, mount := range []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"} {
		if _, err := os.Stat(filepath.Join(mount, "cpu.cfs_quota_us")); err != nil {
			continue
		}
		dir := filepath.Join(mount, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("%w (run as root, or without -cpu-limit)", err)
		}
		for file, v := range map[string]int{"cpu.cfs_period_us": 100000, "cpu.cfs_quota_us": quota} {
			if err := os.WriteFile(filepath.Join(dir, file), fmt.Append(nil, v), 0o644); err != nil {
				os.Remove(dir)
				return "", err
			}
		}
		return dir, nil
	}
	return "", errors.New("no cgroup cpu controller to limit the proxies with (cgroup v2 with cpu in cgroup.subtree_control, or v1 at /sys/fs/cgroup/cpu)")
}

// cpuPerRequest is the target's CPU time per request: a measure that other processes on a
// shared machine disturb much less than throughput.
func (r result) cpuPerRequest() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.requests)
}

func main() {
	var o options
	flag.StringVar(&o.proxyBin, "proxy", "bin/proxy", "Gangway binary")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "length of each load run")
	flag.IntVar(&o.requests, "requests", 0, "make each load run this many requests, h2load driving both protocols (HTTP/1.1 with --h1), instead of -duration: CPU per request over a fixed count, for paired before/after figures with -baseline (0: timed runs, wrk for HTTP/1.1)")
	flag.IntVar(&o.conns, "c", 64, "wrk connections (HTTP/1.1; h2load's with -requests)")
	flag.IntVar(&o.h2Conns, "h2-c", 16, "h2load connections (HTTP/2)")
	flag.IntVar(&o.h2Streams, "h2-m", 8, "h2load concurrent streams per connection")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds: every target runs once per round, and each reports its median round")
	hold := flag.String("hold", "1000,5000", "keep-alive connections held open for the memory measurement: counts, ascending, comma-separated (\"\" for none)")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "read the memory again after the process has been quiet this long (0: only the read a second after)")
	flag.IntVar(&o.starts, "starts", 10, "starts of each Gangway binary timed from exec to a ready /readyz")
	flag.StringVar(&o.baseline, "baseline", "", "a second Gangway binary (say, a build of the previous commit) measured in the same rounds as \"Gangway (baseline)\", for before/after comparisons")
	flag.Float64Var(&o.cpuLimit, "cpu-limit", 0, "run every proxy (not the upstream) in a cgroup limited to this many CPUs, as an ECS task's CPU limit does (needs root and a cgroup cpu controller; 0: no limit)")
	flag.IntVar(&o.memoryLimit, "memory-limit", 0, "run every proxy process (not the upstream) in a fresh memory cgroup of its own limited to this many MiB, as an ECS task's hard memory limit does, with its executable evicted from the page cache before it starts, and report major page faults, peak memory and limit hits (needs root and a cgroup memory controller; 0: no limit)")
	flag.BoolVar(&o.onlyGangway, "only-gangway", false, "measure the upstream and Gangway only (profiling loop)")
	flag.Float64Var(&o.rate, "rate", 0, "also load each target at this fixed rate, in requests a second shared among the connections, for -duration on each protocol (h2load --rps; HTTP/1.1 with --h1): latency below saturation (0: none)")
	floorAddr := flag.String("floor-serve", "", "serve the Go floor on this address instead of benchmarking (the benchmark starts itself so)")
	flag.Parse()
	if *floorAddr != "" {
		fmt.Fprintln(os.Stderr, "proxy-bench:", serveFloor(*floorAddr, fmt.Sprintf("127.0.0.1:%d", upstreamH1)))
		os.Exit(1)
	}
	for f := range strings.SplitSeq(*hold, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || len(o.hold) > 0 && n <= o.hold[len(o.hold)-1] {
			fmt.Fprintf(os.Stderr, "proxy-bench: -hold %q: counts must be positive and ascending\n", *hold)
			os.Exit(2)
		}
		o.hold = append(o.hold, n)
	}
	if err := run(&o); err != nil {
		fmt.Fprintln(os.Stderr, "proxy-bench:", err)
		os.Exit(1)
	}
}

func run(o *options) error {
	if o.rounds < 1 {
		return fmt.Errorf("-rounds %d: at least one round is needed", o.rounds)
	}
	if o.memoryLimit < 0 {
		return fmt.Errorf("-memory-limit %d: a limit is a positive number of MiB (0 for none)", o.memoryLimit)
	}
	if err := portsFree(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gangway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.workDir = dir
	if o.proxyBin, err = filepath.Abs(o.proxyBin); err != nil {
		return err
	}
	// An interrupted run (Ctrl-C, timeout) still stops its processes and removes its
	// cgroups: the load generators are killed with the context, and the deferred stops run.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	startLoad := loadavg()
	if o.cpuLimit > 0 {
		if o.cgroup, err = makeCPUCgroup(o.cpuLimit); err != nil {
			return fmt.Errorf("-cpu-limit %g: %w", o.cpuLimit, err)
		}
		defer os.Remove(o.cgroup) // once its processes have ended: the deferred stops run first
		fmt.Printf("Every proxy ran in cgroup %s, limited to %g CPU (a CFS quota of %d µs per 100 ms).\n\n", o.cgroup, o.cpuLimit, int(o.cpuLimit*100000))
	}
	if o.memoryLimit > 0 {
		if o.mem, err = makeMemCgroups("/sys/fs/cgroup", o.memoryLimit, o.cgroup); err != nil {
			return fmt.Errorf("-memory-limit %d: %w", o.memoryLimit, err)
		}
		defer o.mem.close() // before the CPU cgroup's removal, which may be its parent
		fmt.Printf("Every proxy process ran in a memory cgroup of its own in %s, limited to %d MiB (%s), made just before it started and removed once it had ended. "+
			"Its executable was evicted from the page cache before each start, so that the kernel charged the binary's pages it read to that cgroup: "+
			"the worst case, a task started on a host whose page cache no longer holds its image", o.mem.parent, o.memoryLimit, o.mem.limitFile())
		if !o.onlyGangway {
			// The page cache keeps the pages a running process maps.
			fmt.Printf(" (but for the pages of nginx's binary that the upstream maps, and those of the Go floor's, the benchmark's own)")
		}
		fmt.Printf(".\n\n")
	}

	up, err := startNginx(ctx, o, "upstream", upstreamConf, false)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	defer stop(up)
	if err := waitPort(upstreamH1); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}

	targets := []target{
		{name: "direct (upstream)", h1: upstreamH1, h2: upstreamH2},
		{name: "Gangway", h1: gangwayH, h2: gangwayH, start: startGangway(o.proxyBin), bin: o.proxyBin},
		{name: "nginx", h1: nginxH1, h2: nginxH2, start: func(ctx context.Context, o *options) (*proc, error) {
			return startNginx(ctx, o, "nginx-proxy", nginxProxyConf, true)
		}},
		{name: "HAProxy", h1: haproxyH1, h2: haproxyH2, start: startHAProxy},
		{name: "Go floor (HTTP/1.1 only)", h1: floorH1, start: startFloor},
		{name: "Caddy", h1: caddyH, h2: caddyH, start: startCaddy},
	}
	if o.onlyGangway {
		targets = targets[:2]
	}
	if o.baseline != "" {
		bin, err := filepath.Abs(o.baseline)
		if err != nil {
			return err
		}
		targets = slices.Insert(targets, 2, target{name: "Gangway (baseline)", h1: gangwayH, h2: gangwayH, start: startGangway(bin), bin: bin})
	}
	// Every target runs once per round, in turn, and the table reports each target's
	// median round: on a shared machine, load from elsewhere comes and goes, and a single
	// pass would give it to whichever target ran at the wrong moment.
	// Memory and start-up first, each Gangway on a fresh process, before any load.
	var procs []procResult
	for _, t := range targets {
		if t.bin == "" {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s: memory and start-up\n", t.name)
		p, err := measureProcess(ctx, o, t)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		procs = append(procs, p)
	}
	runs := make([][]row, len(targets))
	for round := 1; round <= o.rounds; round++ {
		fmt.Fprintf(os.Stderr, "== round %d of %d\n", round, o.rounds)
		for i, t := range targets {
			r, err := runTarget(ctx, o, t, up)
			if err != nil {
				return err
			}
			runs[i] = append(runs[i], r)
		}
	}
	rows := make([]row, len(targets))
	for i, rs := range runs {
		rows[i] = row{name: rs[0].name, h1: median(rs, func(r row) result { return r.h1 }), h2: median(rs, func(r row) result { return r.h2 })}
		p99 := func(r result) float64 { return float64(r.p99) }
		rows[i].h1r = medianBy(rs, func(r row) result { return r.h1r }, p99)
		rows[i].h2r = medianBy(rs, func(r row) result { return r.h2r }, p99)
	}

	var g row
	for _, r := range rows {
		if r.name == "Gangway" {
			g = r
		}
	}
	fmt.Printf("| target | HTTP/1.1 req/s | p50 | p99 | HTTP/2 req/s | p50 | p99 | req/s vs Gangway (h1 / h2) | p99 vs Gangway (h1 / h2) |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Printf("| %s | %.0f | %s | %s | %s | %s | %s | %.2f / %s | %.2f / %s |\n", r.name,
			r.h1.rps, ms(r.h1.p50), ms(r.h1.p99), orDash(r.h2, "%.0f", r.h2.rps), orDash(r.h2, "%s", ms(r.h2.p50)), orDash(r.h2, "%s", ms(r.h2.p99)),
			r.h1.rps/g.h1.rps, orDash(r.h2, "%.2f", r.h2.rps/g.h2.rps),
			float64(r.h1.p99)/float64(g.h1.p99), orDash(r.h2, "%.2f", float64(r.h2.p99)/float64(g.h2.p99)))
	}
	fmt.Printf("\nCPU time and heap allocations per request (user + system of the target's processes; the upstream's own for \"direct\"; allocations from Gangway's go_memstats_mallocs_total):\n\n")
	fmt.Printf("| target | HTTP/1.1 | allocs | HTTP/2 | allocs | vs Gangway (h1 / h2) |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s | %.2f / %s |\n", r.name,
			perRequest(r.h1), allocs(r.h1), perRequest(r.h2), orDash(r.h2, "%s", allocs(r.h2)),
			float64(r.h1.cpuPerRequest())/float64(g.h1.cpuPerRequest()), orDash(r.h2, "%.2f", float64(r.h2.cpuPerRequest())/float64(g.h2.cpuPerRequest())))
	}
	if h := slices.IndexFunc(rows, func(r row) bool { return r.name == "HAProxy" }); h >= 0 {
		ha := rows[h]
		fmt.Printf("\nGangway ÷ HAProxy, median rounds (goals: CPU ≤ 1.5×, p99 ≤ 2×): CPU per request %.2f× (HTTP/1.1) and %.2f× (HTTP/2); p99 %.2f× and %.2f×.\n",
			float64(g.h1.cpuPerRequest())/float64(ha.h1.cpuPerRequest()), float64(g.h2.cpuPerRequest())/float64(ha.h2.cpuPerRequest()),
			float64(g.h1.p99)/float64(ha.h1.p99), float64(g.h2.p99)/float64(ha.h2.p99))
	}
	if f := slices.IndexFunc(rows, func(r row) bool { return r.name == "Go floor (HTTP/1.1 only)" }); f >= 0 {
		fl := rows[f]
		fmt.Printf("\nGangway ÷ the Go floor, HTTP/1.1, median rounds: CPU per request %.2f×, p99 %.2f×.\n",
			float64(g.h1.cpuPerRequest())/float64(fl.h1.cpuPerRequest()), float64(g.h1.p99)/float64(fl.h1.p99))
	}
	if o.rate > 0 {
		printFixedRate(o, rows, g)
	}
	if o.rounds > 1 {
		fmt.Printf("\nreq/s of each target ÷ Gangway's, round by round (h1 / h2):\n\n| target |")
		for round := 1; round <= o.rounds; round++ {
			fmt.Printf(" round %d |", round)
		}
		fmt.Printf("\n|---|%s\n", strings.Repeat("---:|", o.rounds))
		gi := slices.IndexFunc(rows, func(r row) bool { return r.name == "Gangway" })
		for _, rs := range runs {
			fmt.Printf("| %s |", rs[0].name)
			for j, r := range rs {
				g := runs[gi][j]
				fmt.Printf(" %.2f / %s |", r.h1.rps/g.h1.rps, orDash(r.h2, "%.2f", r.h2.rps/g.h2.rps))
			}
			fmt.Println()
		}
	}
	if bi := slices.IndexFunc(rows, func(r row) bool { return r.name == "Gangway (baseline)" }); bi >= 0 {
		printPaired(runs[slices.IndexFunc(rows, func(r row) bool { return r.name == "Gangway" })], runs[bi])
	}
	printMem(o, rows)
	fmt.Printf("\nLoad average at the start: %s; at the end: %s.\n", startLoad, loadavg())
	printProcs(o, procs)
	return nil
}

// printFixedRate prints the runs at -rate: each target's round with the median p99.
func printFixedRate(o *options, rows []row, g row) {
	// h2load's clients keep one clock: at each tick every connection sends its share at
	// once, so the rate arrives as bursts of a request per connection.
	fmt.Printf("\nAt a fixed rate of %.0f requests a second on each protocol (h2load --rps, the same connections as above, each tick a burst of one request per connection), median round by p99"+
		" (a target that served less than 95 %% of the rate fell behind, marked *):\n\n", o.rate)
	fmt.Printf("| target | HTTP/1.1 req/s | p50 | p99 | CPU per request | HTTP/2 req/s | p50 | p99 | CPU per request | p99 vs Gangway (h1 / h2) |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	served := func(r result) string {
		if !r.ran {
			return "—"
		}
		if r.rps < 0.95*o.rate {
			return fmt.Sprintf("%.0f*", r.rps)
		}
		return fmt.Sprintf("%.0f", r.rps)
	}
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f / %s |\n", r.name,
			served(r.h1r), ms(r.h1r.p50), ms(r.h1r.p99), perRequest(r.h1r),
			served(r.h2r), orDash(r.h2r, "%s", ms(r.h2r.p50)), orDash(r.h2r, "%s", ms(r.h2r.p99)), perRequest(r.h2r),
			float64(r.h1r.p99)/float64(g.h1r.p99), orDash(r.h2r, "%.2f", float64(r.h2r.p99)/float64(g.h2r.p99)))
	}
	if h := slices.IndexFunc(rows, func(r row) bool { return r.name == "HAProxy" }); h >= 0 {
		ha := rows[h]
		fmt.Printf("\nGangway ÷ HAProxy at %.0f requests a second, median rounds: p99 %.2f× (HTTP/1.1) and %.2f× (HTTP/2); CPU per request %.2f× and %.2f×.\n", o.rate,
			float64(g.h1r.p99)/float64(ha.h1r.p99), float64(g.h2r.p99)/float64(ha.h2r.p99),
			float64(g.h1r.cpuPerRequest())/float64(ha.h1r.cpuPerRequest()), float64(g.h2r.cpuPerRequest())/float64(ha.h2r.cpuPerRequest()))
	}
}

// printPaired prints Gangway's CPU per request ÷ its baseline's, round by round: the two
// ran one after the other in each round, so that the ratio holds when the machine's speed
// drifts between rounds.
func printPaired(g, base []row) {
	ratios := func(pick func(row) result) []float64 {
		var out []float64
		for i := range g {
			if b := pick(base[i]).cpuPerRequest(); b > 0 && pick(g[i]).cpuPerRequest() > 0 {
				out = append(out, float64(pick(g[i]).cpuPerRequest())/float64(b))
			}
		}
		return out
	}
	h1, h2 := ratios(func(r row) result { return r.h1 }), ratios(func(r row) result { return r.h2 })
	fmt.Printf("\nCPU per request, Gangway ÷ its baseline, round by round (h1 / h2):")
	for i := range max(len(h1), len(h2)) {
		fmt.Printf(" %s / %s", ratioAt(h1, i), ratioAt(h2, i))
	}
	fmt.Printf("; median %s / %s, range %s / %s.\n", medianRatio(h1), medianRatio(h2), ratioRange(h1), ratioRange(h2))
}

func ratioAt(r []float64, i int) string {
	if i >= len(r) {
		return "—"
	}
	return fmt.Sprintf("%.3f", r[i])
}

// medianRatio is the median of r (the mean of the middle two for an even count).
func medianRatio(r []float64) string {
	if len(r) == 0 {
		return "—"
	}
	s := slices.Sorted(slices.Values(r))
	return fmt.Sprintf("%.3f", (s[(len(s)-1)/2]+s[len(s)/2])/2)
}

func ratioRange(r []float64) string {
	if len(r) == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f–%.3f", slices.Min(r), slices.Max(r))
}

// row is one target's results: under a saturating load, and at -rate (h1r, h2r; not ran
// without -rate).
type row struct {
	name     string
	h1, h2   result
	h1r, h2r result
}

// median is the result with the median requests per second among rs's (the lower middle
// one for an even count).
func median(rs []row, pick func(row) result) result {
	return medianBy(rs, pick, func(r result) float64 { return r.rps })
}

// medianBy is the result with the median key among rs's (the lower middle one for an even
// count): at a fixed rate, where every round serves the same requests a second, the p99.
func medianBy(rs []row, pick func(row) result, key func(result) float64) result {
	all := make([]result, len(rs))
	for i, r := range rs {
		all[i] = pick(r)
	}
	slices.SortFunc(all, func(a, b result) int { return cmp.Compare(key(a), key(b)) })
	return all[(len(all)-1)/2]
}

// runTarget starts a target, loads it with wrk then h2load, and stops it.
func runTarget(ctx context.Context, o *options, t target, up *proc) (row, error) {
	var cmd *proc
	var err error
	if t.start != nil {
		if cmd, err = t.start(ctx, o); err != nil {
			return row{}, fmt.Errorf("%s: %w", t.name, err)
		}
		if err := waitPort(t.h1); err != nil {
			stop(cmd)
			dumpLogs(o)
			return row{}, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	defer stop(cmd)
	fmt.Fprintf(os.Stderr, "== %s\n", t.name)
	pgid, memcg := up.Process.Pid, ""
	if cmd != nil {
		pgid, memcg = cmd.Process.Pid, cmd.memcg
	}
	// Each measurement covers the measured load run only, not its warm-up.
	measure := func(warm, load func() (result, error)) (result, error) {
		if _, err := warm(); err != nil {
			return result{}, err
		}
		m0 := mallocs(t)
		s0 := groupStat(pgid)
		var mw *memWatch
		if memcg != "" {
			mw = o.mem.watch(memcg)
		}
		r, err := load()
		s1 := groupStat(pgid)
		r.ran = true
		r.cpu = s1.cpu - s0.cpu
		if mw != nil {
			r.mem = mw.end()
			r.mem.majflt = s1.majflt - s0.majflt
		}
		r.mallocs = -1
		if m1 := mallocs(t); m0 >= 0 && m1 >= 0 {
			r.mallocs = m1 - m0
		}
		return r, err
	}
	// The warm-up is a second, or a tenth of a fixed count, which h2load drives on both
	// protocols.
	warmUp, run := load{d: time.Second}, load{d: o.duration}
	h2loadH1 := func(l load) (result, error) { l.h1 = true; return runH2load(ctx, o, t.h1, l) }
	h1Load, h1Tool := func(l load) (result, error) { return runWrk(ctx, o, t.h1, l.d) }, "wrk"
	if o.requests > 0 {
		warmUp, run = load{n: max(1, o.requests/10)}, load{n: o.requests}
		h1Load, h1Tool = h2loadH1, "h2load --h1"
	}
	h1, err := measure(func() (result, error) { return h1Load(warmUp) }, func() (result, error) { return h1Load(run) })
	if err != nil {
		return row{}, fmt.Errorf("%s: %s: %w", t.name, h1Tool, err)
	}
	var h2 result // none for a target without HTTP/2
	if t.h2 != 0 {
		h2, err = measure(func() (result, error) { return runH2load(ctx, o, t.h2, warmUp) },
			func() (result, error) { return runH2load(ctx, o, t.h2, run) })
		if err != nil {
			return row{}, fmt.Errorf("%s: h2load: %w", t.name, err)
		}
	}
	progress := func(r result) string {
		if !r.ran {
			return "not served"
		}
		s := fmt.Sprintf("%.0f req/s p50 %s p99 %s errors %d cpu/req %s allocs/req %.1f", r.rps, r.p50, r.p99, r.errors, r.cpuPerRequest(), r.allocsPerRequest())
		if r.mem != nil {
			s += fmt.Sprintf(" majflt %d peak %s limit hits %d", r.mem.majflt, mib(r.mem.peak), r.mem.hits)
		}
		return s
	}
	fmt.Fprintf(os.Stderr, "   h1 %s | h2 %s\n", progress(h1), progress(h2))
	out := row{name: t.name, h1: h1, h2: h2}
	if o.rate > 0 {
		fixed := load{d: o.duration, rate: o.rate}
		warm := load{d: time.Second, rate: o.rate}
		if out.h1r, err = measure(func() (result, error) { return h2loadH1(warm) }, func() (result, error) { return h2loadH1(fixed) }); err != nil {
			return row{}, fmt.Errorf("%s: h2load --h1 --rps: %w", t.name, err)
		}
		if t.h2 != 0 {
			if out.h2r, err = measure(func() (result, error) { return runH2load(ctx, o, t.h2, warm) },
				func() (result, error) { return runH2load(ctx, o, t.h2, fixed) }); err != nil {
				return row{}, fmt.Errorf("%s: h2load --rps: %w", t.name, err)
			}
		}
		fmt.Fprintf(os.Stderr, "   at %.0f req/s: h1 %s | h2 %s\n", o.rate, progress(out.h1r), progress(out.h2r))
	}
	return out, nil
}

func dumpLogs(o *options) {
	logs, _ := filepath.Glob(filepath.Join(o.workDir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		fmt.Fprintf(os.Stderr, "--- %s\n%s", l, b)
	}
}

func allocs(r result) string {
	if a := r.allocsPerRequest(); a >= 0 {
		return fmt.Sprintf("%.1f", a)
	}
	return "—"
}

// mallocs reads go_memstats_mallocs_total from a Gangway target's metrics, -1 for other
// targets or when it cannot be read.
func mallocs(t target) int64 {
	if t.bin == "" {
		return -1
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", gangwayAdm))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int64(f)
		}
	}
	return -1
}

// orDash formats v with format, or is "—" when r is the run of a protocol the target does
// not serve.
func orDash(r result, format string, v any) string {
	if !r.ran {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// perRequest formats a run's CPU per request, "—" when the target was not run or no request
// completed (a proxy that stalled under -memory-limit costs nothing per request it never
// served).
func perRequest(r result) string {
	if !r.ran || r.requests == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f µs", us(r.cpuPerRequest()))
}

// ms formats a latency, "—" for none (a run in which no request completed).
func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// mib formats a size in bytes, or is "—" when it is not known (negative).
func mib(b int64) string {
	if b < 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// proc is a started process and, under -memory-limit, the memory cgroup made for it alone.
type proc struct {
	*exec.Cmd
	memcg string
}

// stop kills a started process with its process group (nginx workers), waits for it and
// removes its memory cgroup.
func stop(p *proc) {
	if p == nil || p.Cmd == nil || p.Process == nil {
		return
	}
	syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
	p.Wait()
	if p.memcg != "" {
		if err := removeCgroup(p.memcg); err != nil {
			fmt.Fprintln(os.Stderr, "proxy-bench:", err)
		}
	}
}

// portsFree checks that nothing listens on the benchmark's ports yet: a server left from
// an earlier run would answer in place of the one the benchmark starts, and be measured as
// it (its CPU time in nobody's account).
func portsFree() error {
	for _, port := range []int{upstreamH1, upstreamH2, gangwayH, gangwayAdm, nginxH1, nginxH2, haproxyH1, haproxyH2, caddyH, floorH1} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return fmt.Errorf("port %d is taken, perhaps by a server left from an earlier run (ss -ltnp 'sport = :%d' names it; stop it and run again): %w", port, port, err)
		}
		ln.Close()
	}
	return nil
}

func waitPort(port int) error {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startProxy starts a proxy with startCmd: in the cgroup with the CPU limit when there is
// one and, under -memory-limit, in a fresh memory cgroup of its own, its executable
// evicted from the page cache first.
func startProxy(ctx context.Context, o *options, dir string, env []string, name string, args ...string) (*proc, error) {
	var cgroups []string
	if o.cgroup != "" && (o.mem == nil || o.mem.parent != o.cgroup) {
		cgroups = append(cgroups, o.cgroup)
	}
	if o.mem == nil {
		cmd, err := startCmd(ctx, dir, env, cgroups, name, args...)
		if err != nil {
			return nil, err
		}
		return &proc{Cmd: cmd}, nil
	}
	memcg, err := o.mem.make()
	if err != nil {
		return nil, fmt.Errorf("memory cgroup: %w", err)
	}
	cached, size, err := evict(name)
	if err != nil {
		removeCgroup(memcg)
		return nil, fmt.Errorf("evict %s from the page cache: %w", name, err)
	}
	if cached > 0 {
		fmt.Fprintf(os.Stderr, "   %s: %s of %s still in the page cache after eviction (a running process maps it)\n", name, mib(cached), mib(size))
	}
	cmd, err := startCmd(ctx, dir, env, append(cgroups, memcg), name, args...)
	if err != nil {
		removeCgroup(memcg)
		return nil, err
	}
	return &proc{Cmd: cmd, memcg: memcg}, nil
}

// startCmd starts name with args in dir, its output in dir/NAME.log, in cgroups
// (directories of cgroup hierarchies; v1's controllers each have their own): a shell
// moves itself into each and execs name, so that the program's runtime sees the limits
// from its first instruction.
func startCmd(ctx context.Context, dir string, env []string, cgroups []string, name string, args ...string) (*exec.Cmd, error) {
	argv := append([]string{name}, args...)
	if len(cgroups) > 0 {
		const join = `while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 1; shift; done; shift; exec "$@"`
		argv = slices.Concat([]string{"/bin/sh", "-c", join, "sh"}, cgroups, []string{"--"}, argv)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	logf, err := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

const upstreamConf = `
worker_processes 1;
daemon off;
error_log stderr warn;
pid %[1]s/upstream.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:18600;
    location / { return 200 "hello from the benchmark upstream\n"; }
  }
  server {
    listen 127.0.0.1:18610 http2;
    location / { return 200 "hello from the benchmark upstream\n"; }
  }
}
`

// The peers do the work on a request's head that Gangway does on every request from a
// client it does not trust (listeners[].trusted_proxies empty, as here): X-Forwarded-For,
// -Proto, -Host and -Port replaced by the proxy's own, a Forwarded header removed
// (TestPeersForwardAsGangway). Without it they would be measured doing less than Gangway,
// which cannot be told not to. (Gangway's path normalization is not asked of them:
// HAProxy 2.6 has it only as an experimental directive; on the benchmark's path "/" it
// finds nothing to do.)

const nginxProxyConf = `
worker_processes %[2]d;
daemon off;
error_log stderr warn;
pid %[1]s/nginx-proxy.pid;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:18600; keepalive 256; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Forwarded "";
  proxy_set_header X-Forwarded-For $remote_addr;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_set_header X-Forwarded-Host $http_host;
  proxy_set_header X-Forwarded-Port $server_port;
  server {
    listen 127.0.0.1:18602;
    location / { proxy_pass http://app; }
  }
  server {
    listen 127.0.0.1:18612 http2;
    location / { proxy_pass http://app; }
  }
}
`

// startNginx starts nginx on conf as name: as a proxy (startProxy), or as the upstream,
// outside the proxies' cgroups.
func startNginx(ctx context.Context, o *options, name, conf string, proxy bool) (*proc, error) {
	prefix := filepath.Join(o.workDir, name)
	if err := os.MkdirAll(filepath.Join(prefix, "logs"), 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(prefix, "nginx.conf")
	vals := []any{prefix}
	if proxy {
		vals = append(vals, proxyThreads(o)) // nginxProxyConf's worker_processes
	}
	text := fmt.Appendf(nil, conf, vals...)
	if err := os.WriteFile(file, text, 0o644); err != nil {
		return nil, err
	}
	args := []string{"-p", prefix, "-c", file}
	if proxy {
		return startProxy(ctx, o, prefix, nil, "/usr/sbin/nginx", args...)
	}
	cmd, err := startCmd(ctx, prefix, nil, nil, "/usr/sbin/nginx", args...)
	if err != nil {
		return nil, err
	}
	return &proc{Cmd: cmd}, nil
}

const haproxyConf = `
global
  nbthread %d
  maxconn 8000
defaults
  mode http
  timeout connect 10s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend h1
  bind 127.0.0.1:18603
  default_backend app
frontend h2
  bind 127.0.0.1:18613 proto h2
  default_backend app
backend app
  http-request del-header Forwarded
  http-request set-header X-Forwarded-For %%[src]
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %%[req.hdr(host)]
  http-request set-header X-Forwarded-Port %%[dst_port]
  server up 127.0.0.1:18600
`

func startHAProxy(ctx context.Context, o *options) (*proc, error) {
	file := filepath.Join(o.workDir, "haproxy.cfg")
	if err := os.WriteFile(file, fmt.Appendf(nil, haproxyConf, proxyThreads(o)), 0o644); err != nil {
		return nil, err
	}
	return startProxy(ctx, o, o.workDir, nil, "/usr/sbin/haproxy", "-db", "-f", file)
}

const caddyfile = `{
  admin off
  auto_https off
  servers {
    protocols h1 h2c
  }
}
http://127.0.0.1:18604 {
  reverse_proxy 127.0.0.1:18600
}
`

func startCaddy(ctx context.Context, o *options) (*proc, error) {
	file := filepath.Join(o.workDir, "Caddyfile")
	if err := os.WriteFile(file, []byte(caddyfile), 0o644); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "HOME="+o.workDir, "XDG_DATA_HOME="+o.workDir, "XDG_CONFIG_HOME="+o.workDir)
	return startProxy(ctx, o, o.workDir, env, "/usr/bin/caddy", "run", "--config", file, "--adapter", "caddyfile")
}

const gangwayConf = `
admin: {address: "127.0.0.1:18609"}
log: {level: warn, access_log: false}
listeners:
  - name: bench
    address: "127.0.0.1:18601"
    h2c: true
routes:
  - name: all
    cluster: upstream
clusters:
  - name: upstream
    endpoints: ["127.0.0.1:18600"]
    max_idle_conns_per_endpoint: 512
`

// startGangway starts the Gangway binary bin on the benchmark's configuration.
func startGangway(bin string) func(ctx context.Context, o *options) (*proc, error) {
	return func(ctx context.Context, o *options) (*proc, error) {
		file := filepath.Join(o.workDir, "gangway.yaml")
		if err := os.WriteFile(file, []byte(gangwayConf), 0o644); err != nil {
			return nil, err
		}
		return startProxy(ctx, o, o.workDir, nil, bin, "run", "-config", file)
	}
}

// startFloor starts this program again as the Go floor (floor.go), under the name go-floor.
// It runs one thread unless -cpu-limit is above one CPU, as Gangway does.
func startFloor(ctx context.Context, o *options) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	name := filepath.Join(o.workDir, "go-floor")
	if _, err := os.Lstat(name); err != nil {
		if err := os.Symlink(exe, name); err != nil {
			return nil, err
		}
	}
	var env []string
	if o.cpuLimit <= 1 { // 0: no limit
		env = append(os.Environ(), "GOMAXPROCS=1")
	}
	return startProxy(ctx, o, o.workDir, env, name, "-floor-serve", fmt.Sprintf("127.0.0.1:%d", floorH1))
}

// proxyThreads is how many threads (HAProxy) or worker processes (nginx) the peers run
// with: one per CPU, or under -cpu-limit one per CPU of the limit, rounded up, as their
// operators would size them for an ECS task's CPU (Gangway and the floor run one thread
// unless the limit is above one CPU; Caddy keeps Go's default).
func proxyThreads(o *options) int {
	n := cpus()
	if o.cpuLimit > 0 {
		n = min(n, max(1, int(math.Ceil(o.cpuLimit))))
	}
	return n
}

func cpus() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 1
	}
	return max(1, bytes.Count(b, []byte("\nprocessor"))+1)
}

var (
	wrkRPS  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct  = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkReqs = regexp.MustCompile(`(\d+) requests in`)
	wrkErr  = regexp.MustCompile(`(?:Non-2xx or 3xx responses|Socket errors: connect) (\d+)`)
)

// runWrk runs wrk against port for d. A short first run is the warm-up: it fills the
// proxies' upstream pools and grows their buffers and stacks.
func runWrk(ctx context.Context, o *options, port int, d time.Duration) (result, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(o.conns), "-d"+d.String(), "--latency", url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("%w: %s", err, out)
	}
	var r result
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output: %s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, m := range wrkPct.FindAllSubmatch(out, -1) {
		d := parseDur(string(m[2]), string(m[3]))
		if string(m[1]) == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if m := wrkReqs.FindSubmatch(out); m != nil {
		r.requests, _ = strconv.Atoi(string(m[1]))
	}
	for _, m := range wrkErr.FindAllSubmatch(out, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		r.errors += n
	}
	return r, nil
}

func parseDur(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return time.Duration(f * float64(time.Microsecond))
	case "ms":
		return time.Duration(f * float64(time.Millisecond))
	}
	return time.Duration(f * float64(time.Second))
}

var (
	h2RPS    = regexp.MustCompile(`finished in [0-9.]+(?:us|ms|s), ([0-9.]+) req/s`)
	h2Failed = regexp.MustCompile(`requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored`)
)

// load is one h2load run: for d, or n requests when n > 0; HTTP/1.1 keep-alive with
// o.conns connections when h1, else h2c with prior knowledge; at rate requests a second in
// all when rate > 0, else as fast as the target answers.
type load struct {
	d    time.Duration
	n    int
	h1   bool
	rate float64
}

// runH2load runs h2load as l says and computes p50/p99 from its per-request log.
func runH2load(ctx context.Context, o *options, port int, l load) (result, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	logFile := filepath.Join(o.workDir, fmt.Sprintf("h2load-%d.tsv", port))
	conns := o.h2Conns
	args := []string{"-t1", "-c" + strconv.Itoa(o.h2Conns), "-m" + strconv.Itoa(o.h2Streams)}
	if l.h1 {
		conns = o.conns
		args = []string{"--h1", "-t1", "-c" + strconv.Itoa(o.conns)}
	}
	if l.rate > 0 {
		// --rps is each connection's rate.
		args = append(args, "--rps="+strconv.FormatFloat(l.rate/float64(conns), 'f', -1, 64))
	}
	if l.n > 0 {
		args = append(args, "-n", strconv.Itoa(l.n))
	} else {
		args = append(args, "-D", strconv.Itoa(max(1, int(l.d.Seconds()))))
	}
	// h2load leaves the file as it was when no request completes: the latencies of an
	// earlier run (the warm-up, or another target on the same port) must not pass for this
	// one's.
	if err := os.Remove(logFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return result{}, err
	}
	out, err := exec.CommandContext(ctx, "h2load", append(args, "--log-file="+logFile, url)...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("%w: %s", err, out)
	}
	var r result
	m := h2RPS.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no req/s in h2load output: %s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := h2Failed.FindSubmatch(out); m != nil {
		r.requests, _ = strconv.Atoi(string(m[1]))
		a, _ := strconv.Atoi(string(m[2]))
		b, _ := strconv.Atoi(string(m[3]))
		r.errors = a + b
	}
	if r.requests == 0 {
		// Nothing listens, or nothing answers: a row of zeros would read as a result.
		return r, fmt.Errorf("h2load completed no request on %s: %s", url, out)
	}
	lat, err := readH2Log(logFile)
	if err != nil {
		return r, err
	}
	if len(lat) == 0 {
		return r, errors.New("h2load logged no request")
	}
	slices.Sort(lat)
	r.p50 = lat[len(lat)*50/100]
	r.p99 = lat[len(lat)*99/100]
	return r, nil
}

// readH2Log reads h2load's --log-file: start time, status, duration in microseconds.
func readH2Log(path string) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []time.Duration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		us, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, time.Duration(us)*time.Microsecond)
	}
	return out, sc.Err()
}

// procResult is what one Gangway binary costs as a process, without load.
type procResult struct {
	name string
	// idle is the resident memory once started; held[i] with o.hold[i] keep-alive
	// connections open, each after one request: a second after, and (settled) after
	// o.settle more seconds of quiet.
	idle, idleSettled mem
	held, heldSettled []mem
	// start is the median time from exec to a ready /readyz over o.starts starts.
	start time.Duration
}

// mem is a process's resident memory: all of it (VmRSS) and its anonymous part
// (RssAnon), which the rest (the binary's pages, clean and shared with the page cache)
// does not include.
type mem struct{ rss, anon int64 }

func (m mem) String() string {
	return fmt.Sprintf("%.1f MiB (anon %.1f)", float64(m.rss)/(1<<20), float64(m.anon)/(1<<20))
}

// startSettle is how long after its start a Gangway process is left alone before its idle
// memory is read: longer than the 2 s after which `proxy run` gives back its start-up pages.
const startSettle = 3 * time.Second

// measureProcess starts Gangway o.starts times to time its start-up, then once more to
// read its memory idle and with o.hold keep-alive connections.
func measureProcess(ctx context.Context, o *options, t target) (procResult, error) {
	p := procResult{name: t.name}
	var starts []time.Duration
	for range o.starts {
		d, err := timeStart(ctx, o, t)
		if err != nil {
			return p, fmt.Errorf("start-up: %w", err)
		}
		starts = append(starts, d)
	}
	if len(starts) > 0 {
		slices.Sort(starts)
		p.start = starts[(len(starts)-1)/2]
	}
	cmd, err := t.start(ctx, o)
	if err != nil {
		return p, err
	}
	defer stop(cmd)
	if err := waitPort(t.h1); err != nil {
		dumpLogs(o)
		return p, err
	}
	// Warm the upstream pool with one request, then let the start-up settle: `proxy run`
	// gives back the pages of its executable that building a configuration touched 2 s after
	// the last configuration change (internal/sidecar/pages.go). One more request then maps
	// the serving path's own pages, so that the figures with connections held count what the
	// connections cost, not the code coming back once.
	if _, _, err = memWithConns(cmd.Process.Pid, t.h1, []int{1}, 0); err != nil {
		return p, err
	}
	time.Sleep(startSettle)
	if _, _, err = memWithConns(cmd.Process.Pid, t.h1, []int{1}, 0); err != nil {
		return p, err
	}
	time.Sleep(time.Second)
	p.idle = readMem(cmd.Process.Pid)
	if o.settle > 0 {
		time.Sleep(o.settle)
		p.idleSettled = readMem(cmd.Process.Pid)
	}
	if len(o.hold) > 0 {
		if p.held, p.heldSettled, err = memWithConns(cmd.Process.Pid, t.h1, o.hold, o.settle); err != nil {
			return p, fmt.Errorf("held connections: %w", err)
		}
	}
	return p, nil
}

// timeStart starts Gangway and returns how long it took until its /readyz answered 200.
func timeStart(ctx context.Context, o *options, t target) (time.Duration, error) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", gangwayAdm)
	t0 := time.Now()
	cmd, err := t.start(ctx, o)
	if err != nil {
		return 0, err
	}
	defer stop(cmd)
	for deadline := t0.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		resp, err := c.Get(url)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return time.Since(t0), nil
		}
	}
	dumpLogs(o)
	return 0, fmt.Errorf("%s not ready within 10 s", url)
}

func printProcs(o *options, procs []procResult) {
	if len(procs) == 0 {
		return
	}
	fmt.Printf("\nGangway as a process, before any load: resident memory idle and with keep-alive connections open (one request each, then idle), what each connection adds over idle, and start to ready (median of %d starts). Read a second after the last request", o.starts)
	if o.settle > 0 {
		fmt.Printf(", and again (\"quiet %s\") after that long without a request", o.settle)
	}
	fmt.Printf(":\n\n")
	fmt.Printf("| binary | idle |")
	for _, n := range o.hold {
		fmt.Printf(" %d connections | per connection |", n)
	}
	fmt.Printf(" start to ready |\n|---|---:|%s---:|\n", strings.Repeat("---:|---:|", len(o.hold)))
	row := func(name string, idle mem, held []mem, start string) {
		fmt.Printf("| %s | %s |", name, idle)
		for i, n := range o.hold {
			if i >= len(held) {
				fmt.Printf(" — | — |")
				continue
			}
			h := held[i]
			fmt.Printf(" %s | %.1f KiB (anon %.1f) |", h, float64(h.rss-idle.rss)/1024/float64(n), float64(h.anon-idle.anon)/1024/float64(n))
		}
		fmt.Printf(" %s |\n", start)
	}
	for _, p := range procs {
		row(p.name, p.idle, p.held, fmt.Sprintf("%.1f ms", float64(p.start)/float64(time.Millisecond)))
		if o.settle > 0 {
			row(fmt.Sprintf("%s, quiet %s", p.name, o.settle), p.idleSettled, p.heldSettled, "")
		}
	}
	// What each further connection adds, without the first burst's share of the heap and
	// stack allocators' growth.
	if n := len(o.hold); n >= 2 {
		fmt.Println()
		for _, p := range procs {
			if len(p.held) < n {
				continue
			}
			a, b := p.held[n-2], p.held[n-1]
			fmt.Printf("%s: from %d to %d connections, %.1f KiB each (anon %.1f).\n", p.name, o.hold[n-2], o.hold[n-1],
				float64(b.rss-a.rss)/1024/float64(o.hold[n-1]-o.hold[n-2]), float64(b.anon-a.anon)/1024/float64(o.hold[n-1]-o.hold[n-2]))
		}
	}
}

// readMem reads the resident memory of pid.
func readMem(pid int) mem {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem{}
	}
	var m mem
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = kb << 10
		case "RssAnon":
			m.anon = kb << 10
		}
	}
	return m
}

// memWithConns opens keep-alive connections to port, sends one request on each and
// reads the resident memory of pid once counts[i] connections are open (counts ascending),
// a second after the last of them answered and, when settle > 0, again after settle more
// (settled); all are closed on return.
func memWithConns(pid, port int, counts []int, settle time.Duration) (out, settled []mem, err error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	buf := make([]byte, 4096)
	for _, n := range counts {
		for i := len(conns); i < n; i++ {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return nil, nil, fmt.Errorf("connection %d: %w", i, err)
			}
			conns = append(conns, c)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(req); err != nil {
				return nil, nil, err
			}
			if _, err := c.Read(buf); err != nil && err != io.EOF {
				return nil, nil, fmt.Errorf("connection %d: %w", i, err)
			}
		}
		time.Sleep(time.Second)
		out = append(out, readMem(pid))
		if settle > 0 {
			time.Sleep(settle)
			settled = append(settled, readMem(pid))
		}
	}
	return out, settled, nil
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat (100 on Linux).
const clockTick = 10 * time.Millisecond

// procStat is what /proc/PID/stat tells of a process group's processes, summed.
type procStat struct {
	cpu    time.Duration // user + system
	majflt int64         // major page faults: pages read from disk, as a binary's code under memory pressure
}

// groupStat sums the CPU time and major page faults of every process in process group pgid.
func groupStat(pgid int) procStat {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total procStat
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		// f[n-3] is the stat's field n: majflt is 12, utime 14, stime 15.
		mf, _ := strconv.ParseInt(f[9], 10, 64)
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total.cpu += time.Duration(ut+st) * clockTick
		total.majflt += mf
	}
	return total
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
