// Command proxy is Gangway's sidecar: it fronts an application on ECS, reports its health
// through one model, and drains cleanly on shutdown.
//
//	proxy run       serve traffic and probes (the container's main process)
//	proxy health    print a probe's verdict, /containerz by default (same flags as healthcheck)
//	proxy validate  check a configuration file
//	proxy version   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gangway-ecs/gangway/internal/probecmd"
	"github.com/gangway-ecs/gangway/internal/sidecar"
	"github.com/gangway-ecs/gangway/internal/version"
)

// Exit codes, all of them: this table and exitCode are the only places a code is chosen
// (docs/ecs.md, "Exit codes", has the table). The first four are shared by every
// subcommand and by bin/healthcheck: the health probe's (internal/probecmd), which `proxy
// health` and bin/healthcheck both use. 2 is never used: Docker reserves it for health
// checks, and a subcommand may serve as one.
const (
	exitOK = probecmd.ExitHealthy
	// exitFailure: the command ran and the answer is no (unhealthy, invalid config, lint
	// findings, a failed deployment), or a file it was given cannot be read.
	exitFailure = probecmd.ExitUnhealthy
	// exitUnreached: no verdict. The server or API that holds the answer could not be asked
	// or did not answer usably: unreachable, timed out, refused the call (credentials,
	// permissions, no such service), or sent something unparseable. The thing checked was
	// not judged; retrying, or fixing access, may give an answer.
	exitUnreached = probecmd.ExitNoVerdict
	exitUsage     = probecmd.ExitUsage // bad flags or arguments

	// `proxy rollout` only.
	exitRolledBack probecmd.ExitCode = 5 // the deployment was rolled back: the service runs the previous revision
	exitTimedOut   probecmd.ExitCode = 6 // the watch ran out of time; the deployment is still going
	exitSuperseded probecmd.ExitCode = 7 // a newer deployment of another task definition stopped the one watched
)

// exitError carries a specific exit code out of a command. err is never nil; shown says
// that it has been printed already (flag's parse errors, which the flag package prints with
// the usage).
type exitError struct {
	code  probecmd.ExitCode
	err   error
	shown bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the one mapping from a command's error to the process's exit code: nil and
// -h are 0, an exitError its code, any other error exitFailure.
func exitCode(err error) probecmd.ExitCode {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	default:
		return exitFailure
	}
}

// usageError reports bad flags or arguments (exit 4).
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// command is one subcommand: Run parses its own flags from args.
type command interface {
	Run(ctx context.Context, args []string) error
}

// env is what a command needs from the process, injectable for tests.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal: stderr is a terminal, so a person is watching (make run): proxy run tells
	// them what Ctrl-C does.
	terminal bool
	// memoryWarning is what sidecar.TuneGC said of the container's memory limit, for proxy
	// run to log.
	memoryWarning string
	// threadsFrom is what sidecar.TuneProcs based the thread count on, for proxy run to log.
	threadsFrom string
}

func commands(e env) map[string]command {
	return map[string]command{
		"run":       &RunCommand{env: e},
		"health":    &HealthCommand{env: e},
		"version":   versionCommand{env: e},
		"validate":  &ValidateCommand{env: e},
		"lint":      &LintCommand{env: e},
		"rollout":   &RolloutCommand{env: e},
		"bootstrap": &BootstrapCommand{env: e},
	}
}

func main() {
	e := env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, terminal: isTerminal(os.Stderr)}
	if len(os.Args) > 1 && os.Args[1] == "run" {
		// Process-wide, so here rather than in RunCommand (which tests run in-process).
		e.threadsFrom = sidecar.TuneProcs()
		e.memoryWarning = sidecar.TuneGC()
	}
	os.Exit(int(runMain(context.Background(), os.Args[1:], e)))
}

// runMain dispatches to a subcommand and maps its error to an exit code.
func runMain(ctx context.Context, args []string, e env) probecmd.ExitCode {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := commands(e)[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "proxy: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return exitUsage
	}
	err := cmd.Run(ctx, args[1:])
	var ee *exitError
	if err != nil && !errors.Is(err, flag.ErrHelp) && !(errors.As(err, &ee) && ee.shown) {
		fmt.Fprintf(e.stderr, "proxy %s: %v\n", args[0], err)
	}
	return exitCode(err)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: proxy <command> [flags]

commands:
  run        serve traffic and health probes; SIGHUP or a file change reloads, SIGTERM drains
  health     print a probe's verdict (container by default; -probe ready for the load balancer's)
  validate   check a configuration file and print every error
  lint       check a task definition against ECS's ranges and the timing budget
  rollout    watch, deploy, continue or roll back an ECS service deployment
  bootstrap  print an Envoy bootstrap that uses this control plane
  version    print the version and the commit (also proxy --version)

Run 'proxy <command> -h' for a command's flags.
`)
}

type versionCommand struct{ env env }

func (c versionCommand) Run(_ context.Context, args []string) error {
	if len(args) > 0 {
		return usageError("version takes no arguments, got %q", args)
	}
	fmt.Fprintln(c.env.stdout, version.Line("gangway proxy"))
	return nil
}

// newFlagSet returns a flag set that reports errors instead of exiting (flag.ExitOnError
// would exit 2, a code this binary never uses).
func newFlagSet(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("proxy "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args and maps a parse error to a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// parseOnly parses args, leaving arguments after the flags to the caller. A parse error,
// which the flag package has printed with the usage, is a usage error shown already.
func parseOnly(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return &exitError{code: exitUsage, err: err, shown: true}
	}
	return err
}

// isTerminal reports whether f is a character device: a terminal, not a file, pipe or the
// ECS agent's log driver.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
