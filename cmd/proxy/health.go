package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
)

// HealthCommand asks a running proxy's probe server for a verdict. It takes the flags of
// the healthcheck binary, with the same defaults (-probe container), and gives the same
// verdict as the probe endpoint (the server evaluates; this command only reports), with the
// state of each failing check added. Ask -probe ready to see why the load balancer does
// not route to the replica.
//
// Exit codes: 0 healthy, 1 unhealthy, 3 unreachable or timed out, 4 bad usage.
type HealthCommand struct {
	env env
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// Run executes the command.
func (c *HealthCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("health", c.env)
	defAddr := health.DefaultAddr
	if v := c.env.getenv(envHealthAddr); v != "" {
		defAddr = v
	}
	addr := fs.String("addr", defAddr, "probe server host:port (env "+envHealthAddr+")")
	probeName := fs.String("probe", "container", "probe: container, ready, live or startup")
	timeout := fs.Duration("timeout", 2*time.Second, "deadline for the whole request")
	verbose := fs.Bool("v", false, "print every check, not only failing ones")
	var exclude stringList
	fs.Var(&exclude, "exclude", "ignore this check (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	probe, err := health.ParseProbe(*probeName)
	if err != nil {
		return usageError("-probe: %v", err)
	}
	if *timeout <= 0 {
		return usageError("-timeout must be positive")
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client := &http.Client{}
	base := "http://" + *addr

	q := url.Values{"exclude": exclude}
	q.Set("verbose", "")
	code, body, err := fetch(ctx, client, base+probePath(probe)+"?"+q.Encode())
	if err != nil {
		return &exitError{code: exitUnreached, err: fmt.Errorf("%s unreachable: %w", *addr, err)}
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
		if !failing && !*verbose && strings.HasPrefix(line, "[+]") {
			continue
		}
		fmt.Fprintln(out, line)
		if name := checkName(line); name != "" && (failing || *verbose) {
			if st, ok := states[name]; ok {
				printState(out, st)
			}
		}
	}
	switch code {
	case http.StatusOK:
		return nil
	case http.StatusServiceUnavailable:
		return &exitError{code: exitFailure, err: fmt.Errorf("%s: unhealthy", probe)}
	default:
		return &exitError{code: exitFailure, err: fmt.Errorf("%s: unexpected HTTP status %d", probe, code)}
	}
}

func probePath(p health.Probe) string {
	switch p {
	case health.Startup:
		return health.PathStartup
	case health.Liveness:
		return health.PathLive
	case health.Container:
		return health.PathContainer
	}
	return health.PathReady
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
	attrs := append([]health.Attr(nil), st.Attributes...)
	sort.SliceStable(attrs, func(i, j int) bool { return attrs[i].Key < attrs[j].Key })
	for _, a := range attrs {
		fmt.Fprintf(w, "    %s=%s\n", a.Key, a.Value)
	}
}
