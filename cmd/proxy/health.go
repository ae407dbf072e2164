package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/probecmd"
	"github.com/gangway-ecs/gangway/internal/version"
)

// HealthCommand asks a running proxy's probe server for a verdict. It takes the flags of
// the healthcheck binary, with the same defaults (-probe container), and exits with the same
// codes (both come from internal/probecmd); it gives the same verdict as the probe endpoint
// (the server evaluates; this command only reports), with the state of each failing check
// added. Ask -probe ready to see why the load balancer does not route to the replica.
type HealthCommand struct {
	env env
}

// Run executes the command.
func (c *HealthCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("health", c.env)
	var opts probecmd.Options
	opts.Bind(fs, c.env.getenv)
	if err := opts.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	if opts.Version {
		fmt.Fprintln(c.env.stdout, version.Line("gangway proxy"))
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	client := &http.Client{}
	base := "http://" + opts.Addr

	code, body, err := fetch(ctx, client, base+opts.Target())
	if err != nil {
		return &exitError{code: probecmd.ExitNoVerdict, err: fmt.Errorf("%s: %s unreachable: %w", opts.Probe, opts.Addr, err)}
	}
	// /status adds each failing check's attributes and the time of its last change. It is
	// best effort: the verdict above stands without it.
	var states map[string]health.StatusJSON
	if _, sb, err := fetch(ctx, client, base+health.PathStatus); err == nil {
		_ = json.Unmarshal([]byte(sb), &states)
	}

	out := c.env.stdout
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		failing := strings.HasPrefix(line, "[-]")
		if !failing && !opts.Verbose && strings.HasPrefix(line, "[+]") {
			continue
		}
		fmt.Fprintln(out, line)
		if name := checkName(line); name != "" && (failing || opts.Verbose) {
			if st, ok := states[name]; ok {
				printState(out, st)
			}
		}
	}
	switch {
	case probecmd.StatusExit(code) == probecmd.ExitHealthy:
		return nil
	case code == http.StatusServiceUnavailable:
		return &exitError{code: probecmd.StatusExit(code), err: fmt.Errorf("%s: unhealthy", opts.Probe)}
	default:
		return &exitError{code: probecmd.StatusExit(code), err: fmt.Errorf("%s: unexpected HTTP status %d", opts.Probe, code)}
	}
}

func fetch(ctx context.Context, client *http.Client, u string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", err
	}
	return resp.StatusCode, string(b), nil
}

// checkName extracts NAME from "[+]NAME ok", "[+]NAME excluded: ok" or "[-]NAME: reason".
func checkName(line string) string {
	if !strings.HasPrefix(line, "[+]") && !strings.HasPrefix(line, "[-]") {
		return ""
	}
	rest := line[3:]
	if i := strings.IndexAny(rest, ": "); i >= 0 {
		return rest[:i]
	}
	return rest
}

func printState(w io.Writer, st health.StatusJSON) {
	fmt.Fprintf(w, "    status %s since %s", st.Status, st.Since.Format(time.RFC3339))
	if st.Version != "" {
		fmt.Fprintf(w, ", config version %s", st.Version)
	}
	fmt.Fprintln(w)
	for _, k := range slices.Sorted(maps.Keys(st.Attributes)) {
		fmt.Fprintf(w, "    %s=%s\n", k, st.Attributes[k])
	}
}
