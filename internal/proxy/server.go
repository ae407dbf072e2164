// Package proxy is Gangway's data plane: listeners (HTTP/1.1, HTTP/2 over TLS, h2c, TCP),
// TLS termination with certificate reload and mTLS, routing, clusters with load balancing,
// active health checks and outlier ejection, connection pooling, WebSockets and TCP
// tunnels, health reporting, metrics and access logs.
//
// The data plane runs a Spec (spec.go), built by FromConfig from the user's configuration or,
// later, from xDS resources. A Server is built from a Spec, started once, reconfigured with
// Apply and drained with Shutdown:
//
//	srv, err := proxy.New(spec, proxy.Options{Health: reg, Logger: log, Metrics: promReg})
//	err = srv.Start(ctx)        // binds every listener, starts clusters
//	err = srv.Apply(newSpec)    // atomic route/cluster swap; changed listeners are replaced
//	srv.BeginDrain()            // optional: close keep-alive connections after their request
//	err = srv.Shutdown(ctx)     // stop accepting, finish in-flight, close the rest at ctx end
//
// Health checks reported (each with the Spec's Version):
//
//	proxy.listener.<name>     startup+readiness: the listener is bound and serving
//	upstream.cluster.<name>   attributes healthy/total; gates readiness only when a
//	                          route marked required sends to the cluster
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/prometheus/client_golang/prometheus"
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
}

// Server is the data plane. Its methods are safe for concurrent use.
type Server struct {
	health   *health.Registry
	log      *slog.Logger
	access   *slog.Logger
	metrics  *metrics
	gatherer prometheus.Gatherer
	resolver *net.Resolver
	bufs     *bufferPool

	// table is what requests read; Apply swaps it.
	table   atomic.Pointer[table]
	version atomic.Pointer[string]

	mu        sync.Mutex
	spec      *Spec
	started   bool
	stopped   bool
	clusters  map[string]*cluster
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
func New(spec *Spec, opts Options) (*Server, error) {
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
		bufs:      newBufferPool(),
		spec:      spec,
		clusters:  map[string]*cluster{},
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
	spec := s.spec
	if spec.Demo != nil {
		d, err := startDemo(ctx, spec.Demo.Address, s.log)
		if err != nil {
			return err
		}
		s.demo = d
	}
	if err := s.applyClusters(spec); err != nil {
		s.stopAllLocked(ctx)
		return err
	}
	for _, ls := range spec.Listeners {
		l, err := s.newListener(ctx, ls, spec.Version)
		if err != nil {
			s.stopAllLocked(ctx)
			return err
		}
		s.listeners[ls.Name] = l
	}
	for _, l := range s.listeners {
		l.serve(spec.Version)
		s.log.Info("listening", "listener", l.spec.Name, "address", l.ln.Addr().String(), "protocol", l.spec.Protocol.String(), "tls", l.spec.TLS != nil)
	}
	s.reportCertificates()
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

// stopAllLocked undoes a failed Start.
func (s *Server) stopAllLocked(ctx context.Context) {
	for name, l := range s.listeners {
		l.forceClose()
		delete(s.listeners, name)
	}
	for name, c := range s.clusters {
		c.stop()
		delete(s.clusters, name)
	}
	if s.demo != nil {
		s.demo.stop(ctx)
		s.demo = nil
	}
}

// Apply switches to spec. Routes and clusters change atomically for new requests; requests
// in flight finish on what they started with. A cluster whose definition is unchanged keeps
// its endpoints, health state and connection pool. A listener whose address, protocol or TLS
// identity changed is replaced: the new one is bound (the old one stops accepting first when
// they share an address) and the old one drains for Spec.ListenerGrace.
func (s *Server) Apply(spec *Spec) error {
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		return errors.New("proxy: Apply needs a running server")
	}
	prev := s.spec
	s.version.Store(&spec.Version)
	if err := s.applyClusters(spec); err != nil {
		s.version.Store(&prev.Version)
		return err
	}
	s.spec = spec
	if !reflect.DeepEqual(prev.Demo, spec.Demo) {
		if s.demo != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.demo.stop(ctx)
			cancel()
			s.demo = nil
		}
		if spec.Demo != nil {
			d, err := startDemo(context.Background(), spec.Demo.Address, s.log)
			if err != nil {
				return err
			}
			s.demo = d
		}
	}
	var errs []error
	keep := map[string]bool{}
	for _, ls := range spec.Listeners {
		keep[ls.Name] = true
		old := s.listeners[ls.Name]
		if old != nil && old.id == listenerKey(&ls, spec) {
			old.check.Running(spec.Version, health.A("address", old.ln.Addr().String()), health.A("protocol", ls.Protocol.String()))
			continue
		}
		if old != nil {
			old.stopAccepting()
			s.drainInBackground(old, spec.ListenerGrace)
		}
		l, err := s.newListener(context.Background(), ls, spec.Version)
		if err != nil {
			delete(s.listeners, ls.Name)
			errs = append(errs, err)
			continue
		}
		s.listeners[ls.Name] = l
		l.serve(spec.Version)
		s.log.Info("listener replaced", "listener", ls.Name, "address", l.ln.Addr().String())
	}
	for name, l := range s.listeners {
		if !keep[name] {
			delete(s.listeners, name)
			l.stopAccepting()
			s.drainInBackground(l, spec.ListenerGrace)
			s.health.Unregister(l.check.Name())
		}
	}
	s.reportCertificates()
	return errors.Join(errs...)
}

// listenerKey is what must stay equal for a listener to be kept across Apply: its own
// identity and the server-wide settings its http.Server was built with.
func listenerKey(l *Listener, spec *Spec) string {
	return fmt.Sprintf("%s|%s|%s|%s|%d", l.identity(), spec.ReadHeaderTimeout, spec.IdleTimeout, spec.WriteTimeout, spec.MaxHeaderBytes)
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

// applyClusters builds the clusters of spec (reusing unchanged ones), swaps the routing
// table and stops the clusters that are gone. Called with s.mu held.
func (s *Server) applyClusters(spec *Spec) error {
	required := map[string]bool{}
	for _, r := range spec.Routes {
		if r.Required {
			required[r.Cluster] = true
		}
	}
	next := map[string]*cluster{}
	var created []*cluster
	for _, cs := range spec.Clusters {
		if old := s.clusters[cs.Name]; old != nil && reflect.DeepEqual(old.spec, cs) {
			next[cs.Name] = old
			continue
		}
		c, err := newCluster(s, cs, required[cs.Name], spec.Version)
		if err != nil {
			for _, c := range created {
				c.stop()
			}
			return err
		}
		next[cs.Name] = c
		created = append(created, c)
	}
	t := &table{version: spec.Version, clusters: next}
	for _, rs := range spec.Routes {
		t.routes = append(t.routes, s.compileRoute(rs, next[rs.Cluster]))
	}
	// Old clusters stop before new ones report, so that a replaced cluster's last report
	// cannot overwrite its successor's.
	for name, old := range s.clusters {
		if next[name] != old {
			old.stop()
			if next[name] == nil {
				s.health.Unregister(old.check.Name())
				s.metrics.clusterEndpoints.DeletePartialMatch(prometheus.Labels{"cluster": name})
				s.metrics.endpointHealthy.DeletePartialMatch(prometheus.Labels{"cluster": name})
			}
		}
	}
	for _, c := range created {
		c.start()
	}
	for name, c := range next {
		if !containsCluster(created, c) {
			c.setVersion(spec.Version, required[name])
		}
	}
	s.table.Store(t)
	s.clusters = next
	return nil
}

func containsCluster(list []*cluster, c *cluster) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

func (s *Server) compileRoute(spec Route, c *cluster) *route {
	rt := &route{spec: spec, cluster: c, scheme: "http", bufs: s.bufs}
	if c.spec.TLS != nil {
		rt.scheme = "https"
	}
	for i, class := range statusClasses {
		rt.requests[i] = s.metrics.requests.WithLabelValues(spec.Name, c.spec.Name, class)
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

// BeginDrain asks clients to move away while the listeners still accept: HTTP/1
// keep-alive connections are closed after their current response (Connection: close) and
// idle ones at once. StopAccepting does this too; call BeginDrain to start it earlier.
func (s *Server) BeginDrain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if l.http != nil {
			l.http.SetKeepAlivesEnabled(false)
		}
	}
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
		c.stop()
		c.check.Terminating()
	}
	if s.demo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.demo.stop(ctx)
		cancel()
		s.demo = nil
	}
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
