package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/ecs"
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/lifecycle"
	"github.com/gangway-ecs/gangway/internal/proxy"
	"github.com/gangway-ecs/gangway/internal/version"
)

// RunCommand is `proxy run`: it serves traffic and probes until SIGTERM or SIGINT, then
// runs the shutdown choreography (internal/lifecycle) and exits 0. A second signal exits at
// once with status 1.
type RunCommand struct {
	env env
	// signals, when set, replaces the process's signal channel (tests).
	signals chan os.Signal
	// ready, when set, is called with the admin address once the probe server listens.
	ready func(adminAddr string)
	// loopTTL, when set, replaces the process.loop TTL (tests).
	loopTTL time.Duration
}

// envHealthAddr names the probe server's address for `proxy run`, `proxy health` and
// bin/healthcheck alike.
const envHealthAddr = "GANGWAY_HEALTH_ADDR"

// heartbeat is how often the main loop proves it is alive; process.loop's TTL is
// loopTTL, so a loop wedged for that long fails liveness.
const (
	heartbeat = time.Second
	loopTTL   = 15 * time.Second
)

// Run executes the command.
func (c *RunCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("run", c.env)
	cfgPath := fs.String("config", "", "configuration file (default: $GANGWAY_CONFIG, else $GANGWAY_CONFIG_YAML, else a\n\tsidecar config from $GANGWAY_UPSTREAM, else the embedded default)")
	adminAddr := fs.String("admin-addr", "", "probe server address, overrides $"+envHealthAddr+" and admin.address")
	watch := fs.Bool("watch", true, "reload when the configuration file changes (SIGHUP always reloads)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	bg, stopBg := context.WithCancel(context.Background())
	var bgWG sync.WaitGroup
	defer func() { stopBg(); bgWG.Wait() }()

	// The watch starts before the first load, so that no change is missed in between; a
	// change it reports that is already serving is a no-op.
	// The file, when the configuration comes from one: the flag, else $GANGWAY_CONFIG.
	path := *cfgPath
	if path == "" {
		path = c.env.getenv(config.EnvConfigFile)
	}
	reloads := make(chan string, 1)
	if *watch && path != "" {
		w, err := config.Watch(bg, path, func() {
			select {
			case reloads <- "file changed":
			default: // one pending reload reads the newest file anyway
			}
		})
		if err != nil {
			return fmt.Errorf("watch %s: %w", path, err)
		}
		bgWG.Add(1)
		go func() { defer bgWG.Done(); w.Wait() }()
	}

	cfg, _, err := config.Resolve(path, c.env.getenv)
	if err != nil {
		return err // nothing is listening yet: a bad config at start is fatal
	}
	// The probe server's address: -admin-addr, else $GANGWAY_HEALTH_ADDR, which
	// bin/healthcheck and `proxy health` read too, so that one variable moves the server and
	// its clients together; else admin.address.
	adminOverride, adminSource := *adminAddr, "-admin-addr"
	if adminOverride == "" {
		adminOverride, adminSource = c.env.getenv(envHealthAddr), envHealthAddr
	}
	if adminOverride != "" {
		cfg.Admin.Address = adminOverride
	}
	logger := newLogger(c.env.stderr, cfg.Log.Level)
	logger.Info("starting", "version", version.String(), "commit", version.Revision(), "config", cfg.File, "config_version", cfg.Version)

	reg := health.NewRegistry()
	logger, taskARN := withTaskMetadata(ctx, reg, logger, c.env.getenv)
	ttl := loopTTL
	if c.loopTTL > 0 {
		ttl = c.loopTTL
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
		access = slog.New(slog.NewJSONHandler(c.env.stdout, nil))
	}
	if err := checkListeners(cfg); err != nil {
		return err
	}
	admin, err := startAdmin(cfg.Admin.Address, reg, metrics, logger)
	if err != nil {
		if adminOverride != "" {
			return fmt.Errorf("%s: %w", adminSource, err)
		}
		return err
	}
	defer admin.Close()
	svc, err := startServices(cfg, reg, proxy.Options{Health: reg, Logger: logger, AccessLog: access, Metrics: metrics, ECS: newECSDiscovery(c.env.getenv, logger).Run},
		nodeID(cfg, taskARN), logger)
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := svc.waitFirstVersion(ctx); err != nil {
		return err
	}
	p := &process{path: path, getenv: c.env.getenv, adminAddr: adminOverride, current: cfg, check: cfgCheck, svc: svc, log: logger, metrics: procMetrics}
	p.built()
	if c.env.terminal {
		sh := cfg.Shutdown
		fmt.Fprintf(c.env.stderr, "gangway: serving. Ctrl-C drains: readiness fails at once and requests are still served for %s (shutdown.delay), "+
			"then requests in flight get up to %s (shutdown.drain_timeout); a second Ctrl-C exits at once.\n", sh.Delay, sh.DrainTimeout)
	}
	if c.ready != nil {
		c.ready(admin.addr)
	}

	bgWG.Add(1)
	go func() { defer bgWG.Done(); (&health.Systemd{Registry: reg, Logger: logger}).Run(bg) }()

	sigs := c.signals
	if sigs == nil {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(sigs)
	}

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
	if c.env.terminal {
		fmt.Fprintf(c.env.stderr, "gangway: draining for %s, then up to %s for requests in flight; Ctrl-C again to exit now.\n",
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
		return &exitError{code: exitFailure, err: errors.New("interrupted by a second signal")}
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
