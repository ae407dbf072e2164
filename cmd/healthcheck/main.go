// Command healthcheck probes Gangway's health endpoints, for use as an ECS or Docker
// container health check:
//
//	"healthCheck": {"command": ["CMD", "/healthcheck", "-probe", "container"]}
//
// The image puts it at /healthcheck, next to /proxy; `make install` puts it at
// $(PREFIX)/bin/gangway-healthcheck for hosts outside a container.
//
// It sends one GET to /containerz, /readyz, /livez or /startupz on the probe server, asking
// for the verbose body, and turns the answer into an exit code: 0 healthy (200), 1 unhealthy
// (503 or any other status), 3 no verdict (nothing listening, reset, timed out, not
// HTTP/1.x), 4 bad usage. The flags, their defaults and the codes are `proxy health`'s too:
// both take them from internal/probecmd. The default -timeout (1.5 s) ends the probe, with
// its own message, before ECS's smallest health-check timeout (2 s) would kill it.
//
// It never exits 2, which Docker reserves. Everything it prints goes to stdout (usage
// errors to stderr) and is capped at 4096 bytes, what Docker keeps of a health check's
// output: on failure, a summary line and then the failing checks as the server lists them.
//
// The default probe is container (/containerz): it passes once the proxy has been ready
// once and while it is alive, so that an orchestrator that replaces unhealthy containers
// (ECS does) replaces a proxy that never started or is stuck, but never every replica at
// once because a dependency they share is down. Readiness (-probe ready) is for the load
// balancer's target group, which stops routing to a replica without replacing it.
//
// The binary is small and starts fast because ECS runs it every few seconds in every task:
// it uses the standard library (and internal/probecmd, which does too) but not net/http,
// with a minimal HTTP/1.1 client of its own (client.go) that bounds what it reads and whose
// single deadline covers connect, write and read.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gangway-ecs/gangway/internal/probecmd"
	"github.com/gangway-ecs/gangway/internal/version"
)

// Exit codes (internal/probecmd has the table).
const (
	exitHealthy     = probecmd.ExitHealthy
	exitUnhealthy   = probecmd.ExitUnhealthy
	exitUnreachable = probecmd.ExitNoVerdict
	exitUsage       = probecmd.ExitUsage
)

// maxOutputBytes is what Docker keeps of a health check's output.
const maxOutputBytes = 4096

func main() {
	os.Exit(int(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr, new(net.Dialer).DialContext)))
}

// dialFunc opens the probe's connection: net.Dialer's DialContext, or in tests an
// in-memory network's, so that a timeout runs on a synctest bubble's clock.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// run is the whole program: it parses args, probes, prints, and returns the exit code.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer, dial dialFunc) probecmd.ExitCode {
	var opts probecmd.Options
	// ContinueOnError: flag's ExitOnError would exit 2, which Docker reserves.
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints flag's errors, and the usage on stdout
	opts.Bind(fs, getenv)
	if err := opts.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, usageHead)
			fs.PrintDefaults()
			fmt.Fprint(stdout, usageTail)
			return exitHealthy
		}
		fmt.Fprintf(stderr, "healthcheck: %v\nRun 'healthcheck -h' for usage.\n", err)
		return exitUsage
	}
	if opts.Version {
		fmt.Fprintln(stdout, version.Line("gangway-healthcheck"))
		return exitHealthy
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	var out bytes.Buffer
	code := probe(ctx, dial, opts, &out)
	stdout.Write(capOutput(out.Bytes(), maxOutputBytes))
	return code
}

const usageHead = `Usage: healthcheck [flags]

Probes Gangway's health endpoint and exits 0 when it answers 200.

Flags:
`

const usageTail = `
Exit codes:
  0  healthy: the probe answered 200
  1  unhealthy: the probe answered 503 or another status
  3  no verdict: unreachable, timed out, or an unparseable response
  4  bad usage
`

// probe runs the probe and writes its report to out.
func probe(ctx context.Context, dial dialFunc, opts probecmd.Options, out *bytes.Buffer) probecmd.ExitCode {
	start := time.Now()
	resp, err := get(ctx, dial, opts.Addr, opts.Target(), "gangway-healthcheck/"+version.String())
	elapsed := time.Since(start)
	if err != nil {
		var bad *malformedError
		var netErr net.Error
		switch {
		case errors.As(err, &bad):
			fmt.Fprintf(out, "%s: bad response from %s: %v\n", opts.Probe, opts.Addr, err)
		case errors.As(err, &netErr) && netErr.Timeout():
			fmt.Fprintf(out, "%s: timed out after %s: %v\n", opts.Probe, opts.Timeout, err)
		default:
			fmt.Fprintf(out, "%s: unreachable: %v\n", opts.Probe, err)
		}
		return exitUnreachable
	}

	where := fmt.Sprintf("(%s, %s)", opts.Addr, roundDuration(elapsed))
	status := fmt.Sprintf("%d %s", resp.status, printable(resp.reason, 64))
	code := probecmd.StatusExit(resp.status)
	switch resp.status {
	case 200:
		fmt.Fprintf(out, "%s: ok %s\n", opts.Probe, where)
	case 503:
		fmt.Fprintf(out, "%s: unhealthy: %s %s\n", opts.Probe, status, where)
	default:
		fmt.Fprintf(out, "%s: unhealthy: unexpected status %s, want 200 or 503 %s\n", opts.Probe, status, where)
	}
	switch {
	case opts.Verbose:
		writeLines(out, resp.body, func([]byte) bool { return true })
		if resp.truncated {
			fmt.Fprintf(out, "(body cut at %d bytes)\n", maxBodyBytes)
		}
	case code != exitHealthy:
		writeFailures(out, resp.body)
	}
	return code
}

// writeFailures writes the body lines that explain a failure: the failing checks ("[-]")
// and warnings, such as an -exclude that names no check. A body with neither, not from
// Gangway perhaps, is written whole.
func writeFailures(out *bytes.Buffer, body []byte) {
	explains := func(line []byte) bool {
		return bytes.HasPrefix(line, []byte("[-]")) || bytes.HasPrefix(line, []byte("warn:"))
	}
	if !writeLines(out, body, explains) {
		writeLines(out, body, func([]byte) bool { return true })
	}
}

// writeLines writes the non-empty lines of body that keep accepts, made printable, and
// reports whether it wrote any.
func writeLines(out *bytes.Buffer, body []byte, keep func([]byte) bool) bool {
	wrote := false
	for line := range bytes.Lines(body) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 || !keep(line) {
			continue
		}
		out.WriteString(printable(string(line), maxOutputBytes))
		out.WriteByte('\n')
		wrote = true
	}
	return wrote
}

// printable makes text from the server safe to print on one line: control characters
// become '?', invalid UTF-8 becomes U+FFFD, and it is cut to at most max bytes.
func printable(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\t' {
			return '?'
		}
		return r
	}, s)
	if len(s) > max {
		for max > 0 && !utf8.RuneStart(s[max]) {
			max--
		}
		s = s[:max] + "..."
	}
	return s
}

// capOutput cuts out to at most max bytes, at a line boundary when there is one, and ends
// it with a line that says how much was left out.
func capOutput(out []byte, max int) []byte {
	if len(out) <= max {
		return out
	}
	// Room for a newline and the marker, whatever the count in it turns out to be.
	cut := max - 1 - len(truncationMarker(len(out)))
	if i := bytes.LastIndexByte(out[:cut], '\n'); i >= 0 {
		cut = i + 1
	} else {
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
	}
	capped := append([]byte(nil), out[:cut]...)
	if cut > 0 && capped[cut-1] != '\n' {
		capped = append(capped, '\n')
	}
	return append(capped, truncationMarker(len(out)-cut)...)
}

func truncationMarker(omitted int) string {
	return fmt.Sprintf("... (%d more bytes cut)\n", omitted)
}

// roundDuration keeps three significant digits or so: 1.23ms, 456µs.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
