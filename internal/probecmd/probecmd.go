// Package probecmd is the health probe's command line, shared by bin/healthcheck and
// `proxy health` so that the two take the same flags, with the same defaults, and exit with
// the same codes:
//
//	0  healthy: the probe server answered 200 (or -h, -version)
//	1  unhealthy: it answered 503, or any other status
//	3  no verdict: nothing listening, connection reset, timed out, or an answer that is not
//	   HTTP/1.x. The probe could not learn the server's opinion, so it gives none.
//	4  bad usage: unknown flag, bad -probe, -timeout, -exclude or -addr (or
//	   $GANGWAY_HEALTH_ADDR), extra arguments
//
// 2 is never used: Docker reserves it for health checks. Every `proxy` subcommand gives the
// codes the same meanings (docs/ecs.md, "Exit codes").
//
// The package uses flag, net and the budget only: bin/healthcheck must not link net/http.
package probecmd

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/gangway-ecs/gangway/internal/budget"
)

// ExitCode is a process exit code with the meanings in the package comment, which every
// `proxy` subcommand and bin/healthcheck share.
type ExitCode int

// Exit codes.
const (
	ExitHealthy   ExitCode = 0
	ExitUnhealthy ExitCode = 1
	ExitNoVerdict ExitCode = 3
	ExitUsage     ExitCode = 4
)

const (
	// DefaultAddr is where the proxy's probe server listens unless configured otherwise
	// (internal/health.DefaultAddr is this).
	DefaultAddr = "127.0.0.1:28080"
	// AddrEnv overrides DefaultAddr; -addr overrides both. `proxy run` listens there too.
	AddrEnv = "GANGWAY_HEALTH_ADDR"
	// DefaultProbe is the container health check's probe: it fails for what replacing the
	// task fixes (a proxy that never started or is stuck), never for a shared dependency.
	DefaultProbe = "container"
	// DefaultTimeout is the budget's: it ends the probe, with its own message, before the
	// smallest container health-check timeout ECS allows would kill it.
	DefaultTimeout = budget.DefaultProbeTimeout
)

// Paths maps -probe values to the probe server's endpoints.
var Paths = map[string]string{
	"container": "/containerz",
	"ready":     "/readyz",
	"live":      "/livez",
	"startup":   "/startupz",
}

// Options are the parsed flags.
type Options struct {
	Addr     string
	Probe    string // a key of Paths
	Timeout  time.Duration
	Excludes []string
	Verbose  bool
	Version  bool
}

// Bind defines the probe's flags on fs, into o. The address defaults to $GANGWAY_HEALTH_ADDR
// (read with getenv) when it is set, so that -addr wins over it.
func (o *Options) Bind(fs *flag.FlagSet, getenv func(string) string) {
	addr := DefaultAddr
	if env := getenv(AddrEnv); env != "" {
		addr = env
	}
	fs.StringVar(&o.Addr, "addr", addr, "probe server `host:port`; [::1]:28080 for IPv6 (env "+AddrEnv+")")
	fs.StringVar(&o.Probe, "probe", DefaultProbe, "`probe` to run: container, ready, live or startup")
	fs.DurationVar(&o.Timeout, "timeout", DefaultTimeout, "deadline for the whole probe: connect, send and receive; keep it below the container health check's timeout")
	fs.Func("exclude", "leave the check `NAME` out of the verdict (repeatable)", func(name string) error {
		if name == "" {
			return errors.New("empty check name")
		}
		o.Excludes = append(o.Excludes, name)
		return nil
	})
	fs.BoolVar(&o.Verbose, "v", false, "print every check, not only the failing ones")
	fs.BoolVar(&o.Version, "version", false, "print the version and exit")
}

// Parse parses args with fs (on which o.Bind was called) and checks the values. Every error
// but flag.ErrHelp is bad usage (ExitUsage).
func (o *Options) Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case o.Version:
		return nil
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case Paths[o.Probe] == "":
		return fmt.Errorf("-probe %q: want container, ready, live or startup", o.Probe)
	case o.Timeout <= 0:
		return fmt.Errorf("-timeout %s: must be positive", o.Timeout)
	}
	if err := checkAddr(o.Addr); err != nil {
		return fmt.Errorf("-addr %q (or %s): %w", o.Addr, AddrEnv, err)
	}
	return nil
}

// checkAddr accepts host:port with a non-empty host and port and nothing that could end
// up splitting the Host header.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || port == "" {
		return errors.New("want host:port")
	}
	for _, r := range addr {
		if r <= ' ' || r == 0x7f {
			return errors.New("contains a space or control character")
		}
	}
	return nil
}

// Target is the request target the probe asks: the probe's path, the verbose body, and the
// excluded checks.
func (o *Options) Target() string {
	target := Paths[o.Probe] + "?verbose"
	for _, name := range o.Excludes {
		target += "&exclude=" + url.QueryEscape(name)
	}
	return target
}

// StatusExit is the exit code for the probe server's answer: 200 is healthy; 503, and any
// other status, unhealthy.
func StatusExit(status int) ExitCode {
	if status == 200 {
		return ExitHealthy
	}
	return ExitUnhealthy
}
