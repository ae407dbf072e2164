// Package proxy is Gangway's data plane: listeners (HTTP/1.1, HTTP/2 over TLS, h2c, TCP),
// TLS termination with certificate reload and mTLS, routing, clusters with load balancing
// over static, DNS or ECS endpoints, active health checks and outlier ejection, connection
// pooling, WebSockets and TCP tunnels, health reporting, metrics and access logs.
//
// The data plane runs a spec.Spec, built by config.ToSpec from the user's configuration or
// by the xDS client (resource.ToSpec) from xDS resources. A Server is built from a Spec, started once, reconfigured
// with Apply and drained with Shutdown:
//
//	srv, err := proxy.New(spec, proxy.Options{Health: reg, Logger: log, Metrics: promReg})
//	err = srv.Start(ctx)        // binds every listener, starts clusters
//	err = srv.Apply(newSpec)    // all or nothing: routes, clusters and listeners switch together
//	err = srv.Shutdown(ctx)     // stop accepting, finish in-flight, close the rest at ctx end
//
// Health checks reported (each with the Spec's Version):
//
//	proxy.listener.<name>     startup+readiness: the listener is bound and serving
//	upstream.cluster.<name>   attributes healthy/total, and discovery_error after a failed
//	                          DNS or ECS discovery; gates readiness only when a route
//	                          marked required sends to the cluster
//	tls.certificates          readiness: attribute "expires" (earliest certificate expiry)
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httputil"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
	"github.com/gangway-ecs/gangway/internal/upstream"
)

// Options are a Server's dependencies.
type Options struct {
	// Health receives the data plane's checks. Required.
	Health *health.Registry
	// Logger receives operational logs. Default: discarded.
	Logger *slog.Logger
	// AccessLog receives one line per request; nil disables access logs.
	AccessLog *slog.Logger
	// Metrics registers the data plane's series. Default: a private registry, readable
	// through Server.Gatherer.
	Metrics prometheus.Registerer
	// Resolver resolves DNS clusters. Default net.DefaultResolver.
	Resolver *net.Resolver
	// ECS runs the ECS discovery of one cluster (Cluster.ECS) until ctx ends: it calls
	// update with the first endpoint set (each "ip:port") and with later sets, and onError
	// with each failed poll, after which the last set stays in force and the error shows on
	// the cluster's check. An update clears the error, so it may repeat an unchanged set.
	// It must return soon after ctx ends and call neither function after returning. Each
	// cluster runs it in a goroutine of its own from its start to its stop. Required by
	// Specs with ECS clusters: Start and Apply fail without it.
	ECS func(ctx context.Context, d spec.ECSDiscovery, update func(addrs []string), onError func(error))
}

// Server is the data plane. Its methods are safe for concurrent use.
type Server struct {
	health   *health.Registry
	log      *slog.Logger
	access   *slog.Logger
	metrics  *metrics
	gatherer prometheus.Gatherer
	resolver *net.Resolver
	ecs      func(ctx context.Context, d spec.ECSDiscovery, update func(addrs []string), onError func(error))
	bufs     *bufferPool

	// timerSlots watch the deadlines of the routes' exchanges (streamTimer).
	timerSlots timerSlots

	// table is what requests read; Apply swaps it.
	table   atomic.Pointer[table]
	version atomic.Pointer[string]

	mu        sync.Mutex
	spec      *spec.Spec
	started   bool
	stopped   bool
	clusters  map[string]*upstream.Cluster
	listeners map[string]*httpListener // by name
	demo      *demoServer

	// Listeners replaced by Apply drain in the background, bounded by ListenerGrace and
	// by Close, which cancels bgCtx and waits for them and for watchCertificates.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	draining sync.WaitGroup
	old      map[*httpListener]struct{}

	certMu   sync.Mutex
	certs    map[*certReloader]bool // of listeners that accept
	tlsCheck *health.Check
}

// New builds a Server for spec. Nothing is bound or started until Start.
func New(spec *spec.Spec, opts Options) (*Server, error) {
	if opts.Health == nil {
		return nil, errors.New("proxy: Options.Health is required")
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	s := &Server{
		health:    opts.Health,
		log:       opts.Logger,
		access:    opts.AccessLog,
		resolver:  opts.Resolver,
		ecs:       opts.ECS,
		bufs:      newBufferPool(),
		spec:      spec,
		clusters:  map[string]*upstream.Cluster{},
		listeners: map[string]*httpListener{},
		old:       map[*httpListener]struct{}{},
		certs:     map[*certReloader]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	reg := opts.Metrics
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, s.gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		s.gatherer = g
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("proxy: metrics: %w", err)
	}
	s.metrics = m
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.version.Store(&spec.Version)
	return s, nil
}

// Gatherer returns the registry the data plane's metrics are in, when it is one (always
// when Options.Metrics was nil).
func (s *Server) Gatherer() prometheus.Gatherer { return s.gatherer }

// Start starts the demo application (when configured) and the clusters, then binds and
// serves every listener. On error nothing is left running.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("proxy: already started")
	}
	s.started = true
	c, err := s.prepare(ctx, nil, s.spec)
	if err != nil {
		return err
	}
	s.commit(c)
	s.draining.Add(1)
	go s.watchCertificates()
	return nil
}

// certWatchInterval is how often certificates are looked at without a handshake, so that
// tls.certificates follows a renewed file and fails readiness once a certificate expired.
const certWatchInterval = 30 * time.Second

// watchCertificates re-reads changed certificate files and re-reports tls.certificates
// until Close.
func (s *Server) watchCertificates() {
	defer s.draining.Done()
	t := time.NewTicker(certWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-s.bgCtx.Done():
			return
		case <-t.C:
		}
		s.certMu.Lock()
		certs := make([]*certReloader, 0, len(s.certs))
		for c := range s.certs {
			certs = append(certs, c)
		}
		s.certMu.Unlock()
		for _, c := range certs {
			c.reload()
		}
		s.reportCertificates()
	}
}

// Apply switches to spec, all or nothing. Everything the change needs is built and bound
// first — new clusters, new listeners, the demo application — while the current spec keeps
// serving untouched; when any of it fails, it is all dropped and Apply returns the error, the
// data plane serving exactly what it served before. Then, in a step that cannot fail, the
// routes and clusters switch atomically for new requests (requests in flight finish on what
// they started with), new listeners start accepting and the listeners they replace stop.
//
// A cluster whose definition is unchanged keeps its endpoints, health state and connection
// pool. A listener whose address, protocol or TLS identity changed is replaced, and the old
// one drains for Spec.ListenerGrace. A replacement on the same address takes over the old
// listener's socket (see listen): there is no moment when the port is closed or held by
// nobody, and no failure after the old listener has stopped accepting. A change from one
// address to an overlapping one (127.0.0.1:8080 to :8080) cannot share a socket: its bind
// fails and the Apply with it; make such a change in two steps.
func (s *Server) Apply(spec *spec.Spec) error {
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		return errors.New("proxy: Apply needs a running server")
	}
	c, err := s.prepare(context.Background(), s.spec, spec)
	if err != nil {
		return err
	}
	s.commit(c)
	return nil
}

// change is a prepared switch to a spec: what it builds, bound but not serving, and what it
// keeps. Nothing of it is visible to requests or health checks until commit.
type change struct {
	spec     *spec.Spec
	required map[string]bool // clusters that a required route sends to

	clusters map[string]*upstream.Cluster // the next set, by name
	created  []*upstream.Cluster          // built for this change, not started
	table    *table

	listeners map[string]*httpListener // the next set, by name
	bound     []*httpListener          // built for this change, not serving

	demoChanged bool
	demo        *demoServer // the next demo application, when demoChanged
}

// prepare builds and binds everything spec needs that does not run yet, reusing what is
// unchanged from the running spec prev (nil at Start). On error it drops what it built and
// nothing has changed. Called with s.mu held.
func (s *Server) prepare(ctx context.Context, prev, sp *spec.Spec) (_ *change, err error) {
	c := &change{spec: sp, required: map[string]bool{}, clusters: map[string]*upstream.Cluster{}, listeners: map[string]*httpListener{}}
	defer func() {
		if err != nil {
			s.abort(c)
		}
	}()
	for _, r := range sp.Routes {
		if r.Required {
			c.required[r.Cluster] = true
		}
	}
	for _, cs := range sp.Clusters {
		if old := s.clusters[cs.Name]; old != nil && reflect.DeepEqual(old.Spec(), cs) {
			c.clusters[cs.Name] = old
			continue
		}
		cl, err := upstream.New(s.clusterDeps(), cs)
		if err != nil {
			return nil, err
		}
		c.clusters[cs.Name] = cl
		c.created = append(c.created, cl)
	}
	c.table = &table{version: sp.Version, clusters: c.clusters}
	for _, rs := range sp.Routes {
		c.table.routes = append(c.table.routes, s.compileRoute(rs, c.clusters[rs.Cluster]))
	}

	if prev == nil || !reflect.DeepEqual(prev.Demo, sp.Demo) {
		c.demoChanged = true
		if sp.Demo != nil {
			if c.demo, err = startDemo(ctx, sp.Demo.Address, s.log); err != nil {
				return nil, err
			}
		}
	}

	// Listeners kept as they are, then the new ones. A new listener may take over the
	// socket of a listener that goes (replaced or removed) on the same address; each socket
	// is handed over once.
	var build []spec.Listener
	for _, ls := range sp.Listeners {
		if old := s.listeners[ls.Name]; old != nil && old.id == listenerKey(&ls, sp) {
			c.listeners[ls.Name] = old
			continue
		}
		build = append(build, ls)
	}
	handedOver := map[*httpListener]bool{}
	for _, ls := range build {
		var from *httpListener
		for _, old := range s.listeners {
			if c.listeners[old.spec.Name] != old && !handedOver[old] && sameAddress(old, ls.Address) {
				from = old
				break
			}
		}
		var fromLn net.Listener
		if from != nil {
			fromLn = from.ln
		}
		l, err := s.newListener(ctx, sp, ls, fromLn)
		if err != nil {
			return nil, err
		}
		if from != nil && l.ln.Addr().String() == from.ln.Addr().String() {
			handedOver[from] = true
		}
		c.listeners[ls.Name] = l
		c.bound = append(c.bound, l)
	}
	return c, nil
}

// sameAddress reports whether addr names the address l is bound to: its bound address, or
// its configured one unless that asked for any free port.
func sameAddress(l *httpListener, addr string) bool {
	if l.ln.Addr().String() == addr {
		return true
	}
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != "0" && l.spec.Address == addr
}

// abort drops what prepare built: nothing of it was started or reported.
func (s *Server) abort(c *change) {
	for _, l := range c.bound {
		l.forceClose()
	}
	for _, cl := range c.created {
		cl.Stop()
	}
	if c.demoChanged && c.demo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.demo.stop(ctx)
		cancel()
	}
}

// commit switches to a prepared change. Nothing in it can fail. Called with s.mu held.
func (s *Server) commit(c *change) {
	spec := c.spec
	s.spec = spec
	s.version.Store(&spec.Version)

	// Old clusters stop before new ones report, so that a replaced cluster's last report
	// cannot overwrite its successor's. The table switches once the new clusters have their
	// endpoints.
	for name, old := range s.clusters {
		if c.clusters[name] != old {
			old.Stop()
			if c.clusters[name] == nil {
				s.health.Unregister(old.Check().Name())
				s.metrics.clusterEndpoints.DeletePartialMatch(prometheus.Labels{"cluster": name})
				s.metrics.endpointHealthy.DeletePartialMatch(prometheus.Labels{"cluster": name})
			}
		}
	}
	for _, cl := range c.created {
		cl.Start(spec.Version, c.required[cl.Name()])
	}
	for name, cl := range c.clusters {
		if !slices.Contains(c.created, cl) {
			cl.SetVersion(spec.Version, c.required[name])
		}
	}
	s.table.Store(c.table)
	s.clusters = c.clusters

	if c.demoChanged {
		if s.demo != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.demo.stop(ctx)
			cancel()
		}
		s.demo = c.demo
		if s.demo != nil {
			s.demo.serve()
		}
	}

	// New listeners accept before the ones they replace stop: a socket taken over is
	// accepted on by both for a moment, never by neither.
	for name, l := range c.listeners {
		old := s.listeners[name]
		switch {
		case l == old:
			l.check.Running(spec.Version, health.A("address", l.ln.Addr().String()), health.A("protocol", l.spec.Protocol.String()))
			continue
		case old == nil:
			s.log.Info("listening", "listener", name, "address", l.ln.Addr().String(), "protocol", l.spec.Protocol.String(), "tls", l.spec.TLS != nil)
		default:
			s.log.Info("listener replaced", "listener", name, "address", l.ln.Addr().String())
		}
		l.serve(spec.Version)
	}
	for name, old := range s.listeners {
		if c.listeners[name] == old {
			continue
		}
		old.stopAccepting()
		s.drainInBackground(old, spec.ListenerGrace)
		if c.listeners[name] == nil {
			s.health.Unregister(old.check.Name())
		}
	}
	s.listeners = c.listeners
	s.reportCertificates()
}

// listenerKey is what must stay equal for a listener to be kept across Apply: its own
// identity and the server-wide settings its HTTP servers were built with.
func listenerKey(l *spec.Listener, spec *spec.Spec) string {
	return fmt.Sprintf("%s|%s|%s|%s|%d", l.Identity(), spec.ReadHeaderTimeout, spec.IdleTimeout, spec.WriteTimeout, spec.MaxHeaderBytes)
}

func (s *Server) drainInBackground(l *httpListener, grace time.Duration) {
	s.old[l] = struct{}{}
	s.metrics.drainingListeners.Inc()
	ctx, cancel := context.WithTimeout(s.bgCtx, grace)
	s.draining.Add(1)
	go func() {
		defer s.draining.Done()
		defer cancel()
		if err := l.drain(ctx); err != nil {
			s.log.Info("replaced listener closed with connections left", "listener", l.spec.Name, "err", err)
		}
		s.metrics.drainingListeners.Dec()
		s.mu.Lock()
		delete(s.old, l)
		s.mu.Unlock()
	}()
}

// clusterDeps is what the Server gives each of its clusters.
func (s *Server) clusterDeps() upstream.Deps {
	m := s.metrics
	return upstream.Deps{Health: s.health, Log: s.log, AccessLog: s.access != nil, Resolver: s.resolver, ECS: s.ecs,
		Metrics: upstream.Metrics{Latency: m.upstreamLatency, ConnectFailures: m.connectFailures, Ejections: m.ejections,
			EndpointHealthy: m.endpointHealthy, ClusterEndpoints: m.clusterEndpoints}}
}

func (s *Server) compileRoute(spec spec.Route, c *upstream.Cluster) *route {
	rt := &route{spec: spec, cluster: c, scheme: "http", bufs: s.bufs, log: s.log}
	if c.Spec().TLS != nil {
		rt.scheme = "https"
	}
	for i, class := range statusClasses {
		rt.requests[i] = s.metrics.requests.WithLabelValues(spec.Name, c.Name(), class)
	}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite:      rt.rewrite,
		Transport:    c,
		ErrorHandler: rt.errorHandler,
		BufferPool:   s.bufs,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if len(spec.SetResponseHeaders) > 0 || len(spec.RemoveResponseHeaders) > 0 {
		rt.proxy.ModifyResponse = rt.modifyResponse
	}
	return rt
}

// reportCertificates reports tls.certificates: the earliest expiry of the certificates the
// listeners serve. A replacement file that fails to load keeps the last good certificate in
// service and shows as the attribute reload_error; an expired certificate fails readiness.
func (s *Server) reportCertificates() {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	if len(s.certs) == 0 {
		if s.tlsCheck != nil {
			s.health.Unregister(s.tlsCheck.Name())
			s.tlsCheck = nil
		}
		return
	}
	if s.tlsCheck == nil {
		s.tlsCheck = s.health.Register(health.Spec{Name: "tls.certificates", Gates: health.Readiness, Versioned: true})
	}
	var earliest time.Time
	var reloadErrs []error
	for c := range s.certs {
		exp, err := c.state()
		if !exp.IsZero() && (earliest.IsZero() || exp.Before(earliest)) {
			earliest = exp
		}
		if err != nil {
			reloadErrs = append(reloadErrs, err)
		}
	}
	attrs := []health.Attr{health.A("expires", earliest.UTC().Format(time.RFC3339))}
	if err := errors.Join(reloadErrs...); err != nil {
		attrs = append(attrs, health.A("reload_error", err.Error()))
	}
	rep := health.Report{Status: health.Running, Attrs: attrs, Version: *s.version.Load()}
	if time.Now().After(earliest) {
		rep.Err = fmt.Errorf("a served certificate expired at %s", earliest.UTC().Format(time.RFC3339))
	}
	s.tlsCheck.Report(rep)
}

// Addr returns the bound address of the named listener, or "" when there is none.
func (s *Server) Addr(listener string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.listeners[listener]; l != nil {
		return l.ln.Addr().String()
	}
	return ""
}

// ActiveConns returns the number of open downstream connections (HTTP connections,
// WebSockets and TCP tunnels), draining listeners included.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, l := range s.listeners {
		n += l.active.Load()
	}
	for l := range s.old {
		n += l.active.Load()
	}
	return int(n)
}

// StopAccepting closes every listener and reports it TERMINATING. Open connections go on:
// HTTP/1 responses carry Connection: close, HTTP/2 connections get GOAWAY, WebSockets and
// TCP tunnels continue until Close. It is the first step of lifecycle.Drainer.
func (s *Server) StopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for _, l := range s.listeners {
		l.check.Terminating()
		l.stopAccepting()
	}
}

// Drain waits until every downstream connection is closed or ctx ends, and returns the
// number still open.
func (s *Server) Drain(ctx context.Context) int {
	s.mu.Lock()
	listeners := make([]*httpListener, 0, len(s.listeners))
	for _, l := range s.listeners {
		listeners = append(listeners, l)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Go(func() { l.wait(ctx) })
	}
	wg.Wait()
	return s.ActiveConns()
}

// Close force-closes what is left (WebSockets, TCP tunnels, unfinished requests, listeners
// still draining after a reload), stops the clusters and the demo application, and waits
// for every goroutine of the Server. It is safe to call more than once.
func (s *Server) Close() {
	s.StopAccepting()
	s.mu.Lock()
	listeners := make([]*httpListener, 0, len(s.listeners))
	for _, l := range s.listeners {
		listeners = append(listeners, l)
	}
	s.mu.Unlock()
	for _, l := range listeners {
		l.forceClose()
	}
	s.bgCancel()
	s.draining.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clusters {
		c.Stop()
		c.Check().Terminating()
	}
	if s.demo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.demo.stop(ctx)
		cancel()
		s.demo = nil
	}
	s.metrics.unregister()
}

// Shutdown is StopAccepting, Drain until ctx ends, then Close. The error says how many
// connections had to be closed by force.
func (s *Server) Shutdown(ctx context.Context) error {
	s.StopAccepting()
	left := s.Drain(ctx)
	s.Close()
	if left > 0 {
		return fmt.Errorf("proxy: %d connections closed at the end of the drain window", left)
	}
	return nil
}
