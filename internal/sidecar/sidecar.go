// Package sidecar is the process `proxy run` starts: it composes the configuration, the probe
// server, the control plane and the data plane that the configuration's services select,
// and ECS discovery, runs their long-lived parts as one group of actors with one start and
// one ordered teardown, and on SIGTERM runs the shutdown choreography. cmd/proxy only
// parses flags and calls Run.
package sidecar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/ecs"
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/lifecycle"
	"github.com/gangway-ecs/gangway/internal/probecmd"
	"github.com/gangway-ecs/gangway/internal/proxy"
	"github.com/gangway-ecs/gangway/internal/version"
)

// Options is what Run needs from the command and the process around it.
type Options struct {
	// ConfigPath is the configuration file; "" reads $GANGWAY_CONFIG, else the other
	// sources config.Resolve knows.
	ConfigPath string
	// AdminAddr, when not "", overrides $GANGWAY_HEALTH_ADDR and admin.address.
	AdminAddr string
	// Watch reloads when the configuration file changes (SIGHUP always reloads).
	Watch bool

	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Terminal: Stderr is a terminal, so a person is watching: Run tells them what Ctrl-C
	// does.
	Terminal bool

	// Signals, when set, replaces the process's signal channel (tests).
	Signals chan os.Signal
	// Ready, when set, is called with the admin address once the probe server listens.
	Ready func(adminAddr string)
	// LoopTTL, when set, replaces the process.loop TTL (tests).
	LoopTTL time.Duration

	// MemoryWarning, when not "", is TuneGC's warning about the container's memory limit,
	// logged at start.
	MemoryWarning string
	// ThreadsFrom, when not "", is what TuneProcs based the thread count on, logged at start
	// next to it.
	ThreadsFrom string
}

// ErrInterrupted is Run's error when a second signal ended the shutdown choreography.
var ErrInterrupted = errors.New("interrupted by a second signal")

// heartbeat is how often the main loop proves it is alive; process.loop's TTL is
// loopTTL, so a loop wedged for that long fails liveness.
const (
	heartbeat = time.Second
	loopTTL   = 15 * time.Second
)

// Run is the sidecar process: it loads the configuration, starts the probe server and the
// services the configuration selects, then runs its actors (the configuration watch, the
// systemd notifier, and the main loop that reloads and, on SIGTERM or SIGINT, runs the
// shutdown choreography of internal/lifecycle) as one group: the first actor to return
// ends the others, in the reverse order of their start. Run returns nil after a complete
// shutdown, ErrInterrupted after a second signal.
func Run(ctx context.Context, o Options) error {
	var g group

	// The watch starts before the first load, so that no change is missed in between; a
	// change it reports that is already serving is a no-op.
	// The file, when the configuration comes from one: ConfigPath, else $GANGWAY_CONFIG.
	path := o.ConfigPath
	if path == "" {
		path = o.Getenv(config.EnvConfigFile)
	}
	reloads := make(chan string, 1)
	if o.Watch && path != "" {
		watchCtx, stopWatch := context.WithCancel(context.Background())
		w, err := config.Watch(watchCtx, path, func() {
			select {
			case reloads <- "file changed":
			default: // one pending reload reads the newest file anyway
			}
		})
		if err != nil {
			stopWatch()
			return fmt.Errorf("watch %s: %w", path, err)
		}
		g.add("config watch", func() error { w.Wait(); return nil }, func() { stopWatch() })
		// Until the group runs, an early return must still end the watch.
		defer stopWatch()
	}

	cfg, _, err := config.Resolve(path, o.Getenv)
	if err != nil {
		g.stop()
		return err // nothing is listening yet: a bad config at start is fatal
	}
	// The probe server's address: AdminAddr (-admin-addr), else $GANGWAY_HEALTH_ADDR, which
	// bin/healthcheck and `proxy health` read too, so that one variable moves the server and
	// its clients together; else admin.address.
	adminOverride, adminSource := o.AdminAddr, "-admin-addr"
	if adminOverride == "" {
		adminOverride, adminSource = o.Getenv(probecmd.AddrEnv), probecmd.AddrEnv
	}
	if adminOverride != "" {
		cfg.Admin.Address = adminOverride
	}
	logger := newLogger(o.Stderr, cfg.Log.Level)
	threads, gogc, memLimit := runtimeSettings()
	start := []any{"version", version.String(), "commit", version.Revision(), "config", cfg.File, "config_version", cfg.Version,
		"threads", threads}
	if o.ThreadsFrom != "" {
		start = append(start, "threads_from", o.ThreadsFrom)
	}
	start = append(start, "gogc", gogc)
	if memLimit != math.MaxInt64 {
		start = append(start, "memory_limit_bytes", memLimit)
	}
	logger.Info("starting", start...)
	if o.MemoryWarning != "" {
		logger.Warn("memory limit too small", "detail", o.MemoryWarning)
	}

	reg := health.NewRegistry()
	logger, taskARN := withTaskMetadata(ctx, reg, logger, o.Getenv)
	ttl := loopTTL
	if o.LoopTTL > 0 {
		ttl = o.LoopTTL
	}
	loop := reg.Register(health.Spec{Name: "process.loop", Gates: health.Liveness, TTL: ttl})
	loop.Running("")
	// config.build gates startup only: once a config is serving, a rejected reload is
	// reported here (error and attributes) but does not fail readiness, because the last
	// good config keeps serving.
	cfgCheck := reg.Register(health.Spec{Name: "config.build", Gates: health.Startup})

	metrics := prometheus.NewRegistry()
	metrics.MustRegister(
		health.NewCollector(reg),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	procMetrics := newProcessMetrics(metrics)
	var access *slog.Logger
	if cfg.Log.AccessLog {
		access = slog.New(slog.NewJSONHandler(o.Stdout, nil))
	}
	if err := checkListeners(cfg); err != nil {
		g.stop()
		return err
	}
	admin, err := startAdmin(cfg.Admin.Address, reg, metrics, logger)
	if err != nil {
		g.stop()
		if adminOverride != "" {
			return fmt.Errorf("%s: %w", adminSource, err)
		}
		return err
	}
	defer admin.Close()
	svc, err := startServices(cfg, reg, proxy.Options{Health: reg, Logger: logger, AccessLog: access, Metrics: metrics, ECS: newECSDiscovery(o.Getenv, logger).Run},
		nodeID(cfg, taskARN), logger)
	if err != nil {
		g.stop()
		return err
	}
	defer svc.Close()
	if err := svc.waitFirstVersion(ctx); err != nil {
		g.stop()
		return err
	}
	p := &process{path: path, getenv: o.Getenv, adminAddr: adminOverride, current: cfg, check: cfgCheck, svc: svc, log: logger, metrics: procMetrics}
	releasePages(logger, "start-up")
	p.built()
	if o.Terminal {
		sh := cfg.Shutdown
		fmt.Fprintf(o.Stderr, "gangway: serving. Ctrl-C drains: readiness fails at once and requests are still served for %s (shutdown.delay), "+
			"then requests in flight get up to %s (shutdown.drain_timeout); a second Ctrl-C exits at once.\n", sh.Delay, sh.DrainTimeout)
	}
	if o.Ready != nil {
		o.Ready(admin.addr)
	}

	systemdCtx, stopSystemd := context.WithCancel(context.Background())
	g.add("systemd notifier", func() error {
		// Not started by systemd, the notifier has nothing to do and returns at once: that
		// must not end the process, so the actor lasts until it is interrupted.
		(&health.Systemd{Registry: reg, Logger: logger}).Run(systemdCtx)
		<-systemdCtx.Done()
		return nil
	}, stopSystemd)

	sigs := o.Signals
	if sigs == nil {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(sigs)
	}
	// The main loop ends the group: it returns after the shutdown choreography. Should
	// another actor end first, the loop is asked to shut down as on SIGTERM.
	mainCtx, stopMain := context.WithCancel(ctx)
	defer stopMain()
	g.add("main loop", func() error {
		return p.serve(mainCtx, sigs, reloads, admin, loop, ttl, reg, o)
	}, stopMain)
	return g.run()
}

// serve is the main loop: reloads, the heartbeat and the probe server's failures until a
// shutdown signal (or ctx's end), then the shutdown choreography.
func (p *process) serve(ctx context.Context, sigs chan os.Signal, reloads <-chan string, admin *adminServer, loop *health.Check, ttl time.Duration, reg *health.Registry, o Options) error {
	logger, svc := p.log, p.svc
	beat := heartbeat
	if ttl < 4*beat {
		beat = ttl / 4
	}
	tick := time.NewTicker(beat)
	defer tick.Stop()
	var sig os.Signal
wait:
	for {
		select {
		case sig = <-sigs:
			if sig == syscall.SIGHUP {
				p.reload("SIGHUP")
				continue
			}
			break wait
		case why := <-reloads:
			p.reload(why)
		case <-ctx.Done():
			sig = syscall.SIGTERM
			break wait
		case err := <-admin.failed:
			loop.Fail(fmt.Errorf("probe server stopped: %w", err))
			logger.Error("probe server stopped", "error", err)
		case <-tick.C:
			loop.Running("")
		}
	}

	start := time.Now()
	logger.Info("shutdown begins", "signal", sig.String(), "connections", svc.ActiveConns())
	if o.Terminal {
		fmt.Fprintf(o.Stderr, "gangway: draining for %s, then up to %s for requests in flight; Ctrl-C again to exit now.\n",
			p.current.Shutdown.Delay, p.current.Shutdown.DrainTimeout)
	}
	abort := make(chan struct{})
	go func() {
		// A second signal ends the choreography at once.
		for s := range sigs {
			if s != syscall.SIGHUP {
				logger.Warn("second signal: exiting now", "signal", s.String())
				close(abort)
				return
			}
		}
	}()
	sd := &lifecycle.Shutdown{
		Delay:        p.current.Shutdown.Delay,
		DrainTimeout: p.current.Shutdown.DrainTimeout,
		Deadline:     p.current.Shutdown.Deadline,
		Margin:       config.ShutdownMargin,
		Health:       reg,
		Logger:       logger,
		Drainers:     []lifecycle.Drainer{svc, admin},
	}
	// The main loop no longer runs, but the process is alive and draining: keep process.loop
	// fresh, or liveness (and the systemd watchdog) would fail mid-drain once its TTL ran out.
	beatDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-tick.C:
				loop.Running("")
			case <-beatDone:
				return
			}
		}
	}()
	sd.Run(start, abort)
	close(beatDone)
	select {
	case <-abort:
		return ErrInterrupted
	default:
	}
	return nil
}

// withTaskMetadata, on ECS, reads the task's identity from the task metadata endpoint v4 and
// adds it to every log line and, as attributes, to the "ecs.task" check, which gates nothing:
// the endpoint being slow must never hold up the proxy.
func withTaskMetadata(ctx context.Context, reg *health.Registry, logger *slog.Logger, getenv func(string) string) (*slog.Logger, string) {
	md, ok := ecs.MetadataFromEnv(getenv)
	if !ok {
		return logger, ""
	}
	check := reg.Register(health.Spec{Name: "ecs.task"})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	task, err := md.Task(ctx)
	if err != nil {
		check.Fail(err)
		logger.Warn("task metadata unavailable", "error", err)
		return logger, ""
	}
	check.Running("", task.HealthAttrs()...)
	return logger.With(task.LogAttrs()...), task.TaskARN
}

// process holds what a reload changes.
type process struct {
	path   string // the configuration file; "" when it came from the environment
	getenv func(string) string
	// adminAddr is the -admin-addr or $GANGWAY_HEALTH_ADDR override, "" when neither is set.
	adminAddr string
	current   *config.Config
	check     *health.Check
	svc       *services
	log       *slog.Logger
	metrics   *processMetrics
}

// reload reads the config file again and applies it. A config that fails to parse,
// validate or apply is rejected: the last good config keeps serving, and config.build
// carries the error with the rejected version and the reason, without failing readiness.
func (p *process) reload(why string) {
	if p.path == "" {
		p.log.Info("reload ignored: the configuration does not come from a file", "trigger", why, "source", p.current.File)
		return
	}
	start := time.Now()
	cfg, _, err := config.Resolve(p.path, p.getenv)
	if err != nil {
		p.reject(why, fileDigest(p.path), err)
		return
	}
	if cfg.Version == p.current.Version {
		p.log.Debug("reload: configuration unchanged", "trigger", why, "config_version", cfg.Version)
		p.built()
		return
	}
	if p.adminAddr != "" {
		cfg.Admin.Address = p.adminAddr // the override holds across reloads
	}
	if cfg.Admin.Address != p.current.Admin.Address {
		p.log.Warn("reload: admin.address changes need a restart; keeping the current one",
			"current", p.current.Admin.Address, "configured", cfg.Admin.Address)
		cfg.Admin.Address = p.current.Admin.Address
	}
	for _, f := range []struct{ name, was, now string }{
		{"services", string(p.current.Services), string(cfg.Services)},
		{"xds", xdsSettings(p.current), xdsSettings(cfg)},
	} {
		if f.was != f.now {
			p.reject(why, cfg.Version, fmt.Errorf("%s changes need a restart (serving %q, file says %q)", f.name, f.was, f.now))
			return
		}
	}
	// The control plane publishes the new version; the data plane applies it over ADS and
	// reports it on the xds.* checks (a version it rejects keeps the last one serving).
	xdsVersion, err := p.svc.publish(context.Background(), cfg)
	if err != nil {
		p.reject(why, cfg.Version, err)
		return
	}
	msg := "reload: published"
	if xdsVersion == "" {
		msg = "reload: applied" // services: proxy: the file holds only process settings
	}
	p.log.Info(msg, "trigger", why, "from_version", p.current.Version, "config_version", cfg.Version,
		"xds_version", xdsVersion, "duration_ms", float64(time.Since(start).Microseconds())/1000)
	p.current = cfg
	p.svc.pages.changed() // what publishing touched; the data plane's apply notes its own
	p.built()
}

// xdsSettings renders what a reload cannot change, the ADS settings, by value: the TLS
// block is a pointer, so printing the struct would compare addresses and refuse every
// reload of a file that has one.
func xdsSettings(cfg *config.Config) string {
	tls := "none"
	if t := cfg.XDS.TLS; t != nil {
		tls = fmt.Sprintf("{cert_file:%q key_file:%q ca_file:%q server_name:%q}", t.CertFile, t.KeyFile, t.CAFile, t.ServerName)
	}
	return fmt.Sprintf("address:%q node_id:%q tls:%s control_plane_url:%q",
		cfg.XDS.Address, cfg.XDS.NodeID, tls, cfg.ControlPlaneURL)
}

// built reports the serving configuration on config.build, clearing a rejected reload's
// error.
func (p *process) built() {
	p.metrics.current.Set(1)
	p.check.Running(p.current.Version, health.A("source", p.current.File), health.A("services", string(p.current.Services)))
}

func (p *process) reject(why, version string, err error) {
	p.metrics.rejected.Inc()
	p.metrics.current.Set(0)
	p.log.Error("reload rejected; the last good configuration keeps serving", "trigger", why,
		"rejected_version", version, "serving_version", p.current.Version, "error", err)
	p.check.Fail(fmt.Errorf("reload rejected: %w", err),
		health.A("source", p.current.File),
		health.A("serving_version", p.current.Version),
		health.A("rejected_version", version),
		health.A("reason", err.Error()))
}

// fileDigest names a config that could not be parsed: the short sha256 of its bytes.
func fileDigest(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable"
	}
	sum := sha256.Sum256(b)
	return "file:" + hex.EncodeToString(sum[:6])
}

func newLogger(w io.Writer, level config.LogLevel) *slog.Logger {
	var l slog.Level
	switch level {
	case config.LogDebug:
		l = slog.LevelDebug
	case config.LogWarn:
		l = slog.LevelWarn
	case config.LogError:
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// adminServer is the probe and metrics server. During shutdown it keeps answering (503 on
// /readyz) until the very end, so it stops only in Close.
type adminServer struct {
	srv    *http.Server
	addr   string
	failed chan error
}

func startAdmin(addr string, reg *health.Registry, metrics prometheus.Gatherer, logger *slog.Logger) (*adminServer, error) {
	check := reg.Register(health.Spec{Name: "admin.listener", Gates: health.Startup | health.Readiness})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin.address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", health.Handler(reg))
	mux.Handle("/metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	a := &adminServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       30 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		addr:   ln.Addr().String(),
		failed: make(chan error, 1),
	}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.failed <- err
		}
	}()
	check.Running("", health.A("address", a.addr))
	logger.Info("probe server listening", "address", a.addr)
	return a, nil
}

func (a *adminServer) StopAccepting()                {}
func (a *adminServer) Drain(ctx context.Context) int { return 0 }
func (a *adminServer) Close()                        { a.srv.Close() }
