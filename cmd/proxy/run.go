package main

import (
	"context"
	"os"
	"time"

	"github.com/gangway-ecs/gangway/internal/probecmd"
	"github.com/gangway-ecs/gangway/internal/sidecar"
)

// RunCommand is `proxy run`: it serves traffic and probes until SIGTERM or SIGINT, then
// runs the shutdown choreography (internal/lifecycle) and exits 0. A second signal exits at
// once with status 1. The process itself is internal/sidecar's.
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
const envHealthAddr = probecmd.AddrEnv

// Run executes the command.
func (c *RunCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("run", c.env)
	cfgPath := fs.String("config", "", "configuration file (default: $GANGWAY_CONFIG, else $GANGWAY_CONFIG_YAML, else a\n\tsidecar config from $GANGWAY_UPSTREAM, else the embedded default)")
	adminAddr := fs.String("admin-addr", "", "probe server address, overrides $"+envHealthAddr+" and admin.address")
	watch := fs.Bool("watch", true, "reload when the configuration file changes (SIGHUP always reloads)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// sidecar.ErrInterrupted, like any other error, exits with exitFailure.
	return sidecar.Run(ctx, sidecar.Options{
		ConfigPath: *cfgPath,
		AdminAddr:  *adminAddr,
		Watch:      *watch,
		Stdout:     c.env.stdout,
		Stderr:     c.env.stderr,
		Getenv:     c.env.getenv,
		Terminal:   c.env.terminal,
		Signals:    c.signals,
		Ready:      c.ready,
		LoopTTL:    c.loopTTL,

		MemoryWarning: c.env.memoryWarning,
		ThreadsFrom:   c.env.threadsFrom,
	})
}
