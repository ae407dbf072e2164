package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/lifecycle"
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
}

// heartbeat is how often the main loop proves it is alive; process.loop's TTL is
// loopTTL, so a loop wedged for that long fails liveness.
const (
	heartbeat = time.Second
	loopTTL   = 15 * time.Second
)

// Run executes the command.
func (c *RunCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("run", c.env)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded default configuration)")
	adminAddr := fs.String("admin-addr", "", "probe server address, overrides admin.address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	reg := health.NewRegistry()
	loop := reg.Register(health.Spec{Name: "process.loop", Gates: health.Liveness, TTL: loopTTL})
	loop.Running("")
	cfgCheck := reg.Register(health.Spec{Name: "config.build", Gates: health.Startup | health.Readiness, Versioned: true})

	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err // nothing is listening yet: a bad config at start is fatal
	}
	if *adminAddr != "" {
		cfg.Admin.Address = *adminAddr
	}
	logger := newLogger(c.env, cfg.Log.Level)
	logger.Info("starting", "version", version.String(), "config", cfg.File, "config_version", cfg.Version)
	reg.SetConfigVersion(cfg.Version)
	cfgCheck.Running(cfg.Version, health.A("source", cfg.File))

	admin, err := startAdmin(cfg.Admin.Address, reg, logger)
	if err != nil {
		return err
	}
	if c.ready != nil {
		c.ready(admin.addr)
	}

	sysd := &health.Systemd{Registry: reg, Logger: logger}
	sysCtx, stopSysd := context.WithCancel(context.Background())
	sysDone := make(chan struct{})
	go func() { defer close(sysDone); sysd.Run(sysCtx) }()
	defer func() { stopSysd(); <-sysDone }()

	sigs := c.signals
	if sigs == nil {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(sigs)
	}

	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var sig os.Signal
wait:
	for {
		select {
		case sig = <-sigs:
			if sig == syscall.SIGHUP {
				logger.Info("reload requested", "signal", sig.String())
				continue
			}
			break wait
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
	logger.Info("shutdown begins", "signal", sig.String())
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
		Delay:        cfg.Shutdown.Delay,
		DrainTimeout: cfg.Shutdown.DrainTimeout,
		Deadline:     cfg.Shutdown.Deadline,
		Health:       reg,
		Logger:       logger,
		Drainers:     []lifecycle.Drainer{admin},
	}
	sd.Run(start, abort)
	select {
	case <-abort:
		return &exitError{code: exitFailure, err: errors.New("interrupted by a second signal")}
	default:
	}
	return nil
}

// loadConfig reads the file, or the embedded default when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

func newLogger(e env, level config.LogLevel) *slog.Logger {
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
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: l}))
}

// adminServer is the probe and metrics server. During shutdown it keeps answering (503 on
// /readyz) until the very end, so it stops only in Close.
type adminServer struct {
	srv    *http.Server
	addr   string
	failed chan error
}

func startAdmin(addr string, reg *health.Registry, logger *slog.Logger) (*adminServer, error) {
	check := reg.Register(health.Spec{Name: "admin.listener", Gates: health.Startup | health.Readiness})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin.address %s: %w", addr, err)
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(
		health.NewCollector(reg),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
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
