package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// ConnectTimeout bounds connecting to an upstream endpoint, TLS handshake included. It is
// fixed on purpose: a longer one only hides a dead endpoint from the retry and the outlier
// detector.
const ConnectTimeout = 10 * time.Second

// firstCheckRetry is how soon an endpoint that has not passed a health check since it was
// added is checked again after a failed one. The application in the proxy's task starts
// just before it and is usually listening a moment later, and the proxy is ready only once
// the check passes: a whole interval's wait would be added to every cold start whose first
// check came too soon. The delay doubles after each failure; once it would reach the
// interval, the endpoint is checked with the others, on the interval.
const firstCheckRetry = 100 * time.Millisecond

// ErrNoHealthy is returned when a cluster has no endpoint to send to.
var ErrNoHealthy = errors.New("no healthy endpoint")

// connectError is a failed connect (TCP or TLS handshake): nothing was sent upstream, so an
// idempotent request may be retried on another endpoint.
type connectError struct {
	addr string
	err  error
}

func (e *connectError) Error() string { return fmt.Sprintf("connect to %s: %v", e.addr, e.err) }
func (e *connectError) Unwrap() error { return e.err }

// endpoint is one upstream address of a cluster.
type endpoint struct {
	addr string
	// inflight counts requests and tunnels in progress (least_request).
	inflight atomic.Int64

	// Outlier counters, updated on the request path.
	consec5xx, consecConnFail atomic.Int32

	// Guarded by cluster.mu.
	hcHealthy    bool // active health check verdict (true when there is no health check)
	hcPasses     int  // consecutive passes
	hcFails      int  // consecutive failures
	ejectedUntil time.Time
	ejections    int
	// passed: a health check passed since the endpoint was added. Until one does, a failed
	// check is tried again early (firstCheckRetry): retryDelay after it, at retryAt (zero:
	// no early check due).
	passed     bool
	retryDelay time.Duration
	retryAt    time.Time
}

// Cluster is the running form of a spec.Cluster: its endpoints, their health, the load
// balancer and the connection pool. It owns two goroutines: discover runs the cluster's
// source of endpoints (static, DNS or ECS), and run applies the endpoint sets it reports,
// runs the health checks and expires ejections; Stop ends both and waits.
type Cluster struct {
	spec   spec.Cluster
	deps   Deps
	source source
	// transport sends requests to endpoints: an h1Pool for HTTP/1.1, an http.Transport for
	// HTTP/2. Both are connection pools keyed by endpoint address.
	transport interface {
		http.RoundTripper
		CloseIdleConnections()
	}
	// tunnelTLS, when not nil, is the TLS a TCP tunnel speaks to endpoints (the cluster's
	// upstream TLS without ALPN: the bytes inside are not HTTP).
	tunnelTLS *tls.Config
	check     *health.Check
	version   atomic.Pointer[string]
	latency   prometheus.Observer

	// ready holds the endpoints that take traffic: healthy and not ejected.
	ready atomic.Pointer[[]*endpoint]
	rr    atomic.Uint64

	mu  sync.Mutex
	all []*endpoint
	// settled: DNS resolved once or ECS discovery reported once, and every endpoint
	// checked once.
	settled bool
	lastErr error // discovery error (DNS, ECS), kept for the health check
	// pending is the newest endpoint set the source reported, not applied yet
	// (hasPending); run applies it.
	pending    []string
	hasPending bool

	kick       chan struct{} // re-arms the ejection timer / re-checks new endpoints
	discovered chan struct{} // an endpoint set is pending
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// Deps is what a cluster needs from the data plane around it.
type Deps struct {
	Health *health.Registry
	Log    *slog.Logger
	// AccessLog records, in each request's RequestInfo, the endpoint that served it.
	AccessLog bool
	Resolver  *net.Resolver
	// ECS runs ECS discovery (proxy.Options.ECS); nil when the data plane has none.
	ECS     func(ctx context.Context, d spec.ECSDiscovery, update func(addrs []string), onError func(error))
	Metrics Metrics
}

// Metrics are the series a cluster reports, labelled by cluster (and endpoint).
type Metrics struct {
	Latency          *prometheus.HistogramVec
	ConnectFailures  *prometheus.CounterVec
	Ejections        *prometheus.CounterVec
	EndpointHealthy  *prometheus.GaugeVec
	ClusterEndpoints *prometheus.GaugeVec
}

// New builds a cluster without starting it or reporting anything: a failed Apply
// drops it with Stop, leaving no trace.
func New(deps Deps, spec spec.Cluster) (*Cluster, error) {
	if spec.ECS != nil && deps.ECS == nil {
		return nil, fmt.Errorf("cluster %q: ecs discovery of service %q is not available: the data plane was built without proxy.Options.ECS", spec.Name, spec.ECS.Service)
	}
	c := &Cluster{spec: spec, deps: deps, kick: make(chan struct{}, 1), discovered: make(chan struct{}, 1)}
	c.latency = deps.Metrics.Latency.WithLabelValues(spec.Name)
	t, err := c.newTransport()
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", spec.Name, err)
	}
	c.transport = t
	empty := []*endpoint{}
	c.ready.Store(&empty)
	for _, a := range spec.Endpoints {
		c.all = append(c.all, &endpoint{addr: a, hcHealthy: spec.HealthCheck == nil})
	}
	c.settled = spec.DNS == nil && spec.ECS == nil && spec.HealthCheck == nil
	c.source = newSource(spec, deps, deps.Log.With("cluster", spec.Name))
	return c, nil
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.spec.Name }

// Spec is the cluster's configuration.
func (c *Cluster) Spec() spec.Cluster { return c.spec }

// Check is the cluster's health check ("upstream.cluster.<name>"), registered by Start.
func (c *Cluster) Check() *health.Check { return c.check }

// IdleConns reports the idle connections of the cluster's HTTP/1.1 pool by endpoint address,
// and how many of them have something pending (bytes or an error) and would be discarded on
// reuse. An HTTP/2 cluster reports none. For tests and debugging.
func (c *Cluster) IdleConns() (idle map[string]int, pending int) {
	if p, ok := c.transport.(*h1Pool); ok {
		return p.idleConns()
	}
	return nil, 0
}

func clusterCheckSpec(name string, required bool) health.Spec {
	var gates health.Probe
	if required {
		gates = health.Readiness
	}
	return health.Spec{Name: "upstream.cluster." + name, Gates: gates, Versioned: true}
}

// newTransport builds the connection pool. Connects (TCP and TLS) share one ConnectTimeout.
func (c *Cluster) newTransport() (interface {
	http.RoundTripper
	CloseIdleConnections()
}, error) {
	spec := c.spec
	var tlsConf *tls.Config
	if spec.TLS != nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: TLS12CipherSuites, InsecureSkipVerify: spec.TLS.InsecureSkipVerify, ServerName: spec.TLS.ServerName}
		if spec.TLS.CAFile != "" {
			pem, err := os.ReadFile(spec.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls ca_file %s: no PEM certificate found", spec.TLS.CAFile)
			}
			tlsConf.RootCAs = pool
		}
		if spec.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(spec.TLS.CertFile, spec.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("tls client certificate: %w", err)
			}
			tlsConf.Certificates = []tls.Certificate{cert}
		}
		if spec.HTTP2 {
			tlsConf.NextProtos = []string{"h2"}
		} else {
			tlsConf.NextProtos = []string{"http/1.1"}
		}
		if tlsConf.ServerName == "" && spec.DNS != nil {
			tlsConf.ServerName = spec.DNS.Name
		}
		c.tunnelTLS = tlsConf.Clone()
		c.tunnelTLS.NextProtos = nil
	}
	idle := spec.MaxIdleConnsPerEndpoint
	if idle <= 0 {
		idle = 64
	}
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialEndpoint(ctx, dialer, network, addr, tlsConf)
	}
	if !spec.HTTP2 {
		return newH1Pool(dial, idle, c.deps.Log.With("cluster", spec.Name)), nil
	}
	t := &http.Transport{
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     defaultIdleTimeout,
		// The same budget as the HTTP/1.1 pool's for every head of an exchange (also sent
		// as SETTINGS_MAX_HEADER_LIST_SIZE).
		MaxResponseHeaderBytes: maxResponseHeadBytes,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		ForceAttemptHTTP2:      spec.HTTP2,
		Protocols:              new(http.Protocols),
	}
	if tlsConf != nil {
		t.Protocols.SetHTTP2(true)
	} else {
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	if tlsConf != nil {
		t.DialTLSContext = dial
	} else {
		t.DialContext = dial
	}
	return t, nil
}

// Start registers the cluster's check and runs its background work until Stop.
func (c *Cluster) Start(version string, required bool) {
	c.version.Store(&version)
	c.check = c.deps.Health.Register(clusterCheckSpec(c.spec.Name, required))
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.mu.Lock()
	c.recomputeLocked(time.Now())
	c.mu.Unlock()
	c.wg.Go(func() { c.run(ctx) })
	c.wg.Go(func() { c.discover(ctx) })
}

// Stop ends the background work and waits for it; in-flight requests keep their
// connections, idle ones are closed. A cluster that was never started only closes its pool.
func (c *Cluster) Stop() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
	c.transport.CloseIdleConnections()
}

// SetVersion moves a running cluster to a new config version and readiness gating.
// c.check is read under c.mu by the cluster's goroutines, so it changes under c.mu too.
func (c *Cluster) SetVersion(v string, required bool) {
	c.version.Store(&v)
	check := c.deps.Health.Register(clusterCheckSpec(c.spec.Name, required))
	c.mu.Lock()
	c.check = check
	c.reportLocked()
	c.mu.Unlock()
}

func (c *Cluster) run(ctx context.Context) {
	var hcTick <-chan time.Time
	if c.spec.HealthCheck != nil {
		c.checkAll(ctx, checkEvery)
		t := time.NewTicker(c.spec.HealthCheck.Interval)
		defer t.Stop()
		hcTick = t.C
	}
	c.mu.Lock()
	// A DNS or ECS cluster settles once its source has reported (discover, the
	// c.discovered case below).
	c.settled = c.settled || c.spec.DNS == nil && c.spec.ECS == nil
	c.mu.Unlock()
	eject := time.NewTimer(time.Hour)
	defer eject.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	set := func(t *time.Timer, at time.Time) {
		t.Stop()
		if !at.IsZero() {
			t.Reset(time.Until(at))
		}
	}
	rearm := func() {
		c.mu.Lock()
		ejected, due := c.recomputeLocked(time.Now()), c.nextRetryLocked()
		c.mu.Unlock()
		set(eject, ejected)
		set(retry, due)
	}
	rearm()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hcTick:
			c.checkAll(ctx, checkEvery)
		case <-retry.C:
			c.checkAll(ctx, checkRetries)
		case <-c.discovered:
			if c.applyDiscovered() && c.spec.HealthCheck != nil {
				c.checkAll(ctx, checkNew)
			}
			c.mu.Lock()
			c.settled = true
			c.mu.Unlock()
		case <-eject.C:
		case <-c.kick:
		}
		rearm()
	}
}

// nextRetryLocked returns when the earliest early check of an endpoint that has not passed
// one is due (zero when none is).
func (c *Cluster) nextRetryLocked() time.Time {
	var next time.Time
	for _, e := range c.all {
		if !e.retryAt.IsZero() && (next.IsZero() || e.retryAt.Before(next)) {
			next = e.retryAt
		}
	}
	return next
}

// setEndpointsLocked replaces the endpoint set with addrs (a DNS re-resolution, an ECS
// discovery). Endpoints that stay keep their health and ejection state; new ones are
// healthy at once without a health check, and otherwise wait for their first check to pass;
// the series of those that left are deleted. It reports the cluster's state and whether
// endpoints were added.
func (c *Cluster) setEndpointsLocked(addrs []string) (added bool) {
	old := map[string]*endpoint{}
	for _, e := range c.all {
		old[e.addr] = e
	}
	var next []*endpoint
	seen := map[string]bool{}
	for _, addr := range addrs {
		if seen[addr] {
			continue
		}
		seen[addr] = true
		if e, ok := old[addr]; ok {
			next = append(next, e)
			continue
		}
		next = append(next, &endpoint{addr: addr, hcHealthy: c.spec.HealthCheck == nil})
		added = true
	}
	slices.SortFunc(next, func(a, b *endpoint) int { return strings.Compare(a.addr, b.addr) })
	for _, e := range c.all {
		if !seen[e.addr] {
			c.deps.Metrics.EndpointHealthy.DeleteLabelValues(c.spec.Name, e.addr)
		}
	}
	c.all = next
	c.recomputeLocked(time.Now())
	return added
}

// discover runs the cluster's source until ctx ends. Endpoint sets are handed to run
// (c.discovered), which applies them and checks the new endpoints, so that the endpoint set
// changes in one goroutine only; errors go on the cluster's check at once.
func (c *Cluster) discover(ctx context.Context) {
	update := func(addrs []string) {
		c.mu.Lock()
		if ctx.Err() != nil {
			c.mu.Unlock()
			return
		}
		c.pending, c.hasPending = slices.Clone(addrs), true
		c.lastErr = nil
		c.mu.Unlock()
		select {
		case c.discovered <- struct{}{}:
		default: // run has not taken the previous signal yet; it will apply the newest set
		}
	}
	onError := func(err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		c.lastErr = err
		// A first discovery that fails settles the cluster: it reports what went wrong
		// instead of STARTING.
		c.settled = c.settled || !c.hasPending
		c.reportLocked()
	}
	c.source.run(ctx, update, onError)
}

// applyDiscovered applies the pending endpoint set, if any, and reports whether endpoints
// were added.
func (c *Cluster) applyDiscovered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasPending {
		return false
	}
	addrs := c.pending
	c.pending, c.hasPending = nil, false
	before := len(c.all)
	added := c.setEndpointsLocked(addrs)
	if c.spec.ECS != nil && (len(c.all) != before || added) {
		c.deps.Log.Info("ecs endpoints changed", "cluster", c.spec.Name, "service", c.spec.ECS.Service, "endpoints", len(c.all))
	}
	return added
}

// checkSet says which endpoints a health check round checks.
type checkSet int

const (
	checkEvery   checkSet = iota // every endpoint
	checkNew                     // those never checked
	checkRetries                 // those not passed yet whose early check is due
)

// checkAll runs one active health check round on the endpoints of set, in parallel.
func (c *Cluster) checkAll(ctx context.Context, set checkSet) {
	c.mu.Lock()
	var eps []*endpoint
	now := time.Now()
	for _, e := range c.all {
		skip := set == checkNew && (e.hcHealthy || e.hcFails > 0 || e.hcPasses > 0) ||
			set == checkRetries && (e.retryAt.IsZero() || now.Before(e.retryAt))
		if !skip {
			eps = append(eps, e)
		}
	}
	c.mu.Unlock()
	hc := c.spec.HealthCheck
	results := make([]error, len(eps))
	var wg sync.WaitGroup
	for i, e := range eps {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, hc.Timeout)
			defer cancel()
			results[i] = c.probe(cctx, e.addr)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now = time.Now()
	for i, e := range eps {
		first := e.hcPasses == 0 && e.hcFails == 0 && !e.hcHealthy
		if results[i] == nil {
			e.passed, e.retryAt = true, time.Time{}
			e.hcPasses++
			e.hcFails = 0
			// A new endpoint becomes healthy on its first pass, so that a cold start is not
			// delayed by HealthyThreshold intervals.
			if first || e.hcPasses >= hc.HealthyThreshold {
				if !e.hcHealthy {
					c.deps.Log.Info("endpoint healthy", "cluster", c.spec.Name, "endpoint", e.addr)
				}
				e.hcHealthy = true
			}
		} else {
			if !e.passed {
				e.retryDelay = max(firstCheckRetry, 2*e.retryDelay)
				e.retryAt = time.Time{}
				if e.retryDelay < hc.Interval {
					e.retryAt = now.Add(e.retryDelay)
				}
			}
			e.hcFails++
			e.hcPasses = 0
			switch {
			case e.hcHealthy && e.hcFails >= hc.UnhealthyThreshold:
				c.deps.Log.Warn("endpoint unhealthy", "cluster", c.spec.Name, "endpoint", e.addr, "error", results[i])
				e.hcHealthy = false
			case first:
				// An endpoint that never passes would otherwise never be logged: say why
				// its first check failed, once.
				c.deps.Log.Warn("endpoint failed its first health check", "cluster", c.spec.Name, "endpoint", e.addr, "error", results[i])
			}
		}
	}
}

// probe runs one active health check against addr.
func (c *Cluster) probe(ctx context.Context, addr string) error {
	hc := c.spec.HealthCheck
	if hc.Type == spec.TCPHealthCheck {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	scheme := "http"
	if c.spec.TLS != nil {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+hc.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "gangway-health-check")
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !hc.Accepts(resp.StatusCode) {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// recomputeLocked lifts expired ejections, rebuilds the ready set, reports health and
// returns the earliest pending ejection expiry (zero when none).
func (c *Cluster) recomputeLocked(now time.Time) time.Time {
	var ready []*endpoint
	var next time.Time
	for _, e := range c.all {
		ejected := false
		if !e.ejectedUntil.IsZero() {
			if now.Before(e.ejectedUntil) {
				ejected = true
				if next.IsZero() || e.ejectedUntil.Before(next) {
					next = e.ejectedUntil
				}
			} else {
				e.ejectedUntil = time.Time{}
				c.deps.Log.Info("endpoint returned from ejection", "cluster", c.spec.Name, "endpoint", e.addr)
			}
		}
		ok := e.hcHealthy && !ejected
		v := 0.0
		if ok {
			ready = append(ready, e)
			v = 1
		}
		c.deps.Metrics.EndpointHealthy.WithLabelValues(c.spec.Name, e.addr).Set(v)
	}
	if ready == nil {
		ready = []*endpoint{}
	}
	c.ready.Store(&ready)
	c.reportLocked()
	return next
}

func (c *Cluster) reportLocked() {
	ready := len(*c.ready.Load())
	total := len(c.all)
	c.deps.Metrics.ClusterEndpoints.WithLabelValues(c.spec.Name, "healthy").Set(float64(ready))
	c.deps.Metrics.ClusterEndpoints.WithLabelValues(c.spec.Name, "total").Set(float64(total))
	attrs := []health.Attr{health.A("healthy", strconv.Itoa(ready)), health.A("total", strconv.Itoa(total))}
	if c.lastErr != nil {
		// The last good endpoint set stays in force; readiness fails only when no endpoint
		// is healthy (below).
		attrs = append(attrs, health.A("discovery_error", c.lastErr.Error()))
	}
	version := *c.version.Load()
	switch {
	case !c.settled && ready == 0:
		rep := health.Report{Status: health.Starting, Attrs: attrs, Version: version}
		c.check.Report(rep)
	case ready == 0:
		err := fmt.Errorf("cluster %q: %w (0 of %d)", c.spec.Name, ErrNoHealthy, total)
		if c.lastErr != nil {
			err = fmt.Errorf("%w; %w", err, c.lastErr)
		}
		c.check.Report(health.Report{Status: health.Running, Err: err, Attrs: attrs, Version: version})
	default:
		c.check.Running(version, attrs...)
	}
}

// pick chooses an endpoint by the cluster's policy, avoiding skip when another is ready.
func (c *Cluster) pick(skip *endpoint) (*endpoint, error) {
	eps := *c.ready.Load()
	n := len(eps)
	if n == 0 {
		return nil, fmt.Errorf("cluster %q: %w", c.spec.Name, ErrNoHealthy)
	}
	var i int
	switch c.spec.LBPolicy {
	case spec.Random:
		i = rand.IntN(n)
	case spec.LeastRequest:
		i = rand.IntN(n)
		if n > 1 {
			j := rand.IntN(n - 1)
			if j >= i {
				j++
			}
			if eps[j].inflight.Load() < eps[i].inflight.Load() {
				i = j
			}
		}
	default:
		i = int((c.rr.Add(1) - 1) % uint64(n))
	}
	if eps[i] == skip && n > 1 {
		i = (i + 1) % n
	}
	return eps[i], nil
}

// outcome feeds passive outlier detection with the result of one exchange.
func (c *Cluster) outcome(e *endpoint, connectFailed, serverError bool) {
	o := c.spec.Outlier
	if connectFailed {
		c.deps.Metrics.ConnectFailures.WithLabelValues(c.spec.Name).Inc()
	}
	if o == nil {
		return
	}
	var trip bool
	switch {
	case connectFailed:
		n := e.consecConnFail.Add(1)
		trip = o.ConsecutiveConnectFailures > 0 && int(n) >= o.ConsecutiveConnectFailures
	case serverError:
		e.consecConnFail.Store(0)
		n := e.consec5xx.Add(1)
		trip = o.Consecutive5xx > 0 && int(n) >= o.Consecutive5xx
	default:
		if e.consec5xx.Load() != 0 {
			e.consec5xx.Store(0)
		}
		if e.consecConnFail.Load() != 0 {
			e.consecConnFail.Store(0)
		}
	}
	if trip {
		c.eject(e)
	}
}

func (c *Cluster) eject(e *endpoint) {
	o := c.spec.Outlier
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Before(e.ejectedUntil) || !slices.Contains(c.all, e) {
		return
	}
	ejected := 0
	for _, x := range c.all {
		if now.Before(x.ejectedUntil) {
			ejected++
		}
	}
	if (ejected+1)*100 > o.MaxEjectionPercent*len(c.all) {
		return
	}
	e.ejections++
	e.ejectedUntil = now.Add(time.Duration(e.ejections) * o.BaseEjectionTime)
	e.consec5xx.Store(0)
	e.consecConnFail.Store(0)
	c.deps.Metrics.Ejections.WithLabelValues(c.spec.Name).Inc()
	c.deps.Log.Warn("endpoint ejected", "cluster", c.spec.Name, "endpoint", e.addr, "until", e.ejectedUntil)
	c.recomputeLocked(now)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// RoundTrip sends req to an endpoint of the cluster. A request whose connect failed is
// retried once on another endpoint when that is safe: the method is idempotent and there is
// no body, so nothing of it was sent.
func (c *Cluster) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.Forward(req, false, nil)
}

// Forward is RoundTrip. With owned, req and req.URL are the caller's own copies, which
// Forward may change (the data plane's upstream requests): that saves copying them again.
// With ans, an HTTP/1.1 endpoint's simple answer may come without its header map (Header
// nil), made in ans, its field lines as they came in ans.Fields, checked, ending in CRLF,
// for a caller that writes them on as they are (the data plane).
func (c *Cluster) Forward(req *http.Request, owned bool, ans *Answer) (*http.Response, error) {
	e, err := c.pick(nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.roundTripTo(e, req, owned, ans)
	if err != nil && isConnectError(err) && retryable(req) {
		if e2, perr := c.pick(e); perr == nil && e2 != e {
			resp, err = c.roundTripTo(e2, req, owned, ans)
		}
	}
	return resp, err
}

// isConnectError reports whether err is a failed connect. It is a function of its own so
// that the target errors.As needs is allocated only when there is an error.
func isConnectError(err error) bool {
	var ce *connectError
	return errors.As(err, &ce)
}

// IsClientError reports whether err is the downstream request's fault (see clientError).
func IsClientError(err error) bool {
	var ce *clientError
	return errors.As(err, &ce)
}

func retryable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (c *Cluster) roundTripTo(e *endpoint, req *http.Request, owned bool, ans *Answer) (*http.Response, error) {
	out := req
	if owned {
		req.URL.Host = e.addr
	} else {
		cp := *req
		u := *req.URL
		u.Host = e.addr
		cp.URL = &u
		out = &cp
	}
	// Every body the cluster sends is read through a clientBody, so that a request that
	// failed because of it is told apart from one the endpoint failed.
	var body *clientBody
	if out.Body != nil && out.Body != http.NoBody {
		var ok bool
		if body, ok = out.Body.(*clientBody); !ok {
			body = &clientBody{ReadCloser: out.Body}
			out.Body = body
		}
	}
	if c.spec.HTTP2 {
		// The HTTP/1.1 pool checks the head as it writes it; http.Transport refuses such
		// heads too, but with errors that do not say whose fault it was.
		if err := checkRequestHead(out); err != nil {
			return nil, err
		}
	}
	if c.deps.AccessLog {
		if info := upstreamInfoFrom(req.Context()); info != nil {
			info.Endpoint = e.addr
		}
	}
	e.inflight.Add(1)
	start := MonoNow()
	var resp *http.Response
	var err error
	if p, ok := c.transport.(*h1Pool); ok && ans != nil {
		resp, err = p.roundTrip(out, ans)
	} else {
		resp, err = c.transport.RoundTrip(out)
	}
	c.latency.Observe(time.Duration(MonoNow() - start).Seconds())
	if err != nil {
		e.inflight.Add(-1)
		if body != nil {
			if ce := body.failure(); ce != nil {
				err = ce
			}
		}
		if IsClientError(err) {
			return nil, err // says nothing about the endpoint
		}
		connectFailed := isConnectError(err)
		// A request cancelled by the client says nothing about the endpoint.
		if req.Context().Err() == nil || connectFailed {
			c.outcome(e, connectFailed, !connectFailed)
		}
		return nil, err
	}
	c.outcome(e, false, resp.StatusCode >= 500)
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = upgradedBody{countedBody: &countedBody{ReadCloser: rwc, e: e}, Writer: rwc}
	} else {
		cb := wrapperRoom(resp.Body).countedBody()
		cb.ReadCloser, cb.e = resp.Body, e
		resp.Body = cb
	}
	return resp, nil
}

// countedBody keeps the endpoint's in-flight count up until the response body is closed.
type countedBody struct {
	io.ReadCloser
	e    *endpoint
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.e.inflight.Add(-1) })
	return b.ReadCloser.Close()
}

// upgradedBody is countedBody for a 101 response, whose body is the upgraded connection:
// it writes too.
type upgradedBody struct {
	*countedBody
	io.Writer
}

// dialEndpoint connects to addr within ConnectTimeout (TCP and TLS share the budget) and,
// when tlsConf is not nil, completes the TLS handshake, verifying the endpoint's host when
// tlsConf names no server. Every failure is a *connectError.
func dialEndpoint(ctx context.Context, dialer *net.Dialer, network, addr string, tlsConf *tls.Config) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	conn, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &connectError{addr: addr, err: err}
	}
	if tlsConf == nil {
		return conn, nil
	}
	cfg := tlsConf
	if cfg.ServerName == "" {
		cfg = tlsConf.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, &connectError{addr: addr, err: fmt.Errorf("tls handshake: %w", err)}
	}
	return tc, nil
}

// DialTunnel picks an endpoint and connects to it for a TCP tunnel, retrying once on another
// endpoint when the connect fails. done ends the tunnel's count on the endpoint (least_request).
func (c *Cluster) DialTunnel(ctx context.Context) (net.Conn, func(), error) {
	var tried *endpoint
	var lastErr error
	for range 2 {
		e, err := c.pick(tried)
		if err != nil {
			return nil, nil, err
		}
		if e == tried {
			break
		}
		tried = e
		conn, err := dialEndpoint(ctx, &net.Dialer{}, "tcp", e.addr, c.tunnelTLS)
		if err == nil {
			c.outcome(e, false, false)
			e.inflight.Add(1)
			return conn, func() { e.inflight.Add(-1) }, nil
		}
		lastErr = err
		c.outcome(e, true, false)
		c.deps.Log.Warn("tunnel connect failed", "cluster", c.spec.Name, "endpoint", e.addr, "err", err)
	}
	return nil, nil, fmt.Errorf("cluster %q: %w", c.spec.Name, lastErr)
}
