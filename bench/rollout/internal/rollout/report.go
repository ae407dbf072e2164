package rollout

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Table writes one Markdown row per scenario with every variant side by side: actions,
// requests, failures, failure percentage and p99 latency of HTTP requests; then the totals.
// The upstream-outage scenario, whose failures are expected, has its own table (OutageTable).
func Table(w io.Writer, results []Result) {
	var variants, scenarios []string
	by := map[[2]string]Result{}
	for _, r := range results {
		if r.Scenario == UpstreamOutage {
			continue
		}
		if !contains(variants, r.Variant) {
			variants = append(variants, r.Variant)
		}
		if !contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
		by[[2]string{r.Variant, r.Scenario}] = r
	}
	if len(scenarios) == 0 {
		return
	}
	head := "| scenario |"
	rule := "|---|"
	for _, v := range variants {
		head += fmt.Sprintf(" %s actions | %s requests | %s failures | %s failure %% | %s p99 |", v, v, v, v, v)
		rule += "---:|---:|---:|---:|---:|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, rule)
	type total struct{ actions, requests, failures int64 }
	totals := map[string]*total{}
	for _, v := range variants {
		totals[v] = &total{}
	}
	for _, s := range scenarios {
		row := "| " + s + " |"
		for _, v := range variants {
			r, ok := by[[2]string{v, s}]
			if !ok {
				row += " | | | | |"
				continue
			}
			t := totals[v]
			t.actions += int64(r.Actions)
			t.requests += r.Load.Requests
			t.failures += r.Load.Failed()
			row += fmt.Sprintf(" %d | %d | %d | %s | %s |", r.Actions, r.Load.Requests, r.Load.Failed(),
				percent(r.Load.Failed(), r.Load.Requests), r.Load.HTTP.P99.Round(100*time.Microsecond))
		}
		fmt.Fprintln(w, row)
	}
	row := "| **total** |"
	for _, v := range variants {
		t := totals[v]
		row += fmt.Sprintf(" %d | %d | %d | %s | |", t.actions, t.requests, t.failures, percent(t.failures, t.requests))
	}
	fmt.Fprintln(w, row)
}

func percent(n, of int64) string {
	if of == 0 {
		return "-"
	}
	p := 100 * float64(n) / float64(of)
	switch {
	case n == 0:
		return "0%"
	case p < 0.001:
		return "<0.001%"
	}
	return fmt.Sprintf("%.3f%%", p)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Details writes, for every result, what the table leaves out: the failures by kind, what
// the load balancer logged about them and during which phase of which replica, the stops
// that needed SIGKILL, and what was counted but not called a failure.
func Details(w io.Writer, results []Result) {
	for _, r := range results {
		l := r.Load
		fmt.Fprintf(w, "- **%s %s**: %d actions in %s; %d requests (h1 %d, h2 %d, ws %d), %.0f/s; p50 %s, p99 %s, max %s (HTTP); ws round trip p99 %s\n",
			r.Variant, r.Scenario, r.Actions, r.Took.Round(time.Second), l.Requests, l.ByProto["h1"], l.ByProto["h2"], l.ByProto["ws"],
			l.Rate(), l.HTTP.P50.Round(10*time.Microsecond), l.HTTP.P99.Round(10*time.Microsecond), l.HTTP.Max.Round(time.Millisecond),
			l.WS.P99.Round(10*time.Microsecond))
		fmt.Fprintf(w, "  - not failures: %d requests retried by Go's transport on a new connection, %d WebSocket clean closes (1000/1001) with reconnect, %d messages sent again after one, %d requests cut by the end of the run\n",
			l.Retries, l.Reconnects, l.Resent, l.Aborted)
		fmt.Fprintf(w, "  - stops: %d SIGKILL after stopTimeout, %d exits with a status other than 0, %d UNHEALTHY container health checks in service\n",
			r.SigKilled, r.BadExits, r.Unhealthy)
		if r.Scenario == UpstreamOutage {
			fmt.Fprintf(w, "  - container check `-probe %s`: %d tasks restarted by ECS's scheduler; after the upstream's return, replicas ready in %s, traffic through the load balancer in %s\n",
				r.Probe, r.Restarts, after(r.ReadyAfter), after(r.TrafficAfter))
		}
		if len(l.Failures) > 0 {
			fmt.Fprintf(w, "  - failures: %s\n", joinCounts(l.Failures))
		}
		if len(r.LBFailures) > 0 {
			fmt.Fprintf(w, "  - HAProxy's failed transactions (replica (phase): status termination): %s\n", joinCounts(r.LBFailures))
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  - error: %s\n", e)
		}
	}
}

func joinCounts(m map[string]int64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s × %d", k, m[k]))
	}
	const most = 12
	if len(parts) > most {
		parts = append(parts[:most], fmt.Sprintf("and %d more kinds", len(parts)-most))
	}
	return strings.Join(parts, "; ")
}
