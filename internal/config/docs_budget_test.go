package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/budget"
)

// budgetDocs are the documents (and pictures) that quote the timing budget's numbers,
// relative to the repository root. Each must quote at least one that the rules below find.
var budgetDocs = []string{
	"README.md",
	"docs/configuration.md",
	"docs/ecs.md",
	"docs/health.md",
	"docs/getting-started.md",
	"taskdefs/README.md",
	"cdk/README.md",
	"docs/img/shutdown-timeline.svg",
}

// budgetPhrase is a way the documents write budget numbers: each capture of re is the
// named quantity, in seconds for durations.
type budgetPhrase struct {
	re     *regexp.Regexp
	fields []string
}

const num = `(\d+(?:\.\d+)?)`

func phrase(re string, fields ...string) budgetPhrase {
	p := budgetPhrase{regexp.MustCompile(strings.ReplaceAll(re, "N", num)), fields}
	// One capture may stand for several fields ("longest request and cold start 10 s").
	if p.re.NumSubexp() != len(fields) && p.re.NumSubexp() != 1 {
		panic(fmt.Sprintf("phrase %s: %d captures for %d fields", re, p.re.NumSubexp(), len(fields)))
	}
	return p
}

// budgetPhrases: every way the documents quote a default of the budget or of the proxy's
// shutdown. A new way of writing one adds its phrase here.
var budgetPhrases = []budgetPhrase{
	phrase(`N s \+ N s \+ N s = N s ≤ N s`, "ShutdownDelay", "DrainTimeout", "Margin", "ShutdownWindow", "StopTimeout"),
	phrase(`N \+ N \+ N <= N\b`, "ShutdownDelay", "DrainTimeout", "Margin", "StopTimeout"),
	phrase(`drain_timeout \+ N ?s\b`, "Margin"),
	phrase(`N ?s margin\b`, "Margin"),
	phrase(`\bmargin N ?s\b`, "Margin"),
	phrase(`\bmargin \(N ?s\)`, "Margin"),
	phrase(`shutdown delay \(?N ?s\b`, "ShutdownDelay"),
	phrase(`(?i)shutdown delay</tspan> N ?s\b`, "ShutdownDelay"),
	phrase(`drain timeout \(?N ?s\b`, "DrainTimeout"),
	phrase(`\bdrain (?:up to |≤ )?N ?s\b`, "DrainTimeout"),
	phrase(`N ?s? × N \+ N ?s? = N ?s\b`, "LBHealthInterval", "LBUnhealthyThreshold", "LBHealthTimeout", "DetectionTime"),
	phrase(`N ?s? × N \+ N ?s?\b`, "LBHealthInterval", "LBUnhealthyThreshold", "LBHealthTimeout"),
	phrase(`detection N s\b`, "DetectionTime"),
	phrase(`noticed within N s\b`, "DetectionTime"),
	phrase(`\bN s interval\b`, "LBHealthInterval"),
	phrase(`thresholds N/N\b`, "LBHealthyThreshold", "LBUnhealthyThreshold"),
	phrase(`container check N s / N s / N retries / N s start period`, "ContainerInterval", "ContainerTimeout", "ContainerRetries", "ContainerStartPeriod"),
	phrase(`probe's own timeout N s\b`, "ProbeTimeout"),
	phrase("`-timeout` \\(default N s\\)", "ProbeTimeout"),
	phrase("\\| `-timeout` \\| \\| `Ns` \\|", "ProbeTimeout"),
	phrase(`(?:timeout|-timeout`+"`"+`) (?:\+|plus) N s\b`, "ProbeMargin"),
	phrase(`N s >= N \+ N\b`, "ContainerTimeout", "ProbeTimeout", "ProbeMargin"),
	phrase(`deregistration delay N s;`, "DeregistrationDelay"),
	phrase(`N s >= N s\b`, "DeregistrationDelay", "LongestRequest"),
	phrase(`grace\s+period N s\b`, "HealthCheckGracePeriod"),
	phrase(`longest request and cold start N s\b`, "LongestRequest", "ColdStart"),
	phrase(`(?:cold start|longest request) \(N s assumed\)`, "ColdStart"),
	phrase(`N s / N s /\s+N s, stand in`, "ShutdownDelay", "DrainTimeout", "StopTimeout"),
	phrase(`(?:Fargate's )?default N s stopTimeout`, "StopTimeout"),
	phrase(`stopTimeout N ?s\b`, "StopTimeout"),
	phrase(`(?:<=|≤) N s \(Fargate\)`, "MaxStopTimeout"),
	phrase(`Fargate: default N s, at most\s+N s`, "StopTimeout", "MaxStopTimeout"),
	phrase(`interval <= N s`, "MaxContainerInterval"),
	phrase(`timeout >= N s\b`, "MinContainerTimeout"),
	phrase(`smallest health-check timeout \(N s\)`, "MinContainerTimeout"),
}

// budgetValues are the numbers the phrases name, from budget.Defaults() and the proxy's
// configuration defaults.
func budgetValues() map[string]float64 {
	d := budget.Defaults()
	s := func(t time.Duration) float64 { return t.Seconds() }
	return map[string]float64{
		"ShutdownDelay":          s(d.ShutdownDelay),
		"DrainTimeout":           s(d.DrainTimeout),
		"Margin":                 s(budget.ShutdownMargin),
		"ShutdownWindow":         s(d.ShutdownWindow()),
		"StopTimeout":            s(d.StopTimeout),
		"MaxStopTimeout":         s(budget.MaxStopTimeout),
		"LBHealthInterval":       s(d.LBHealthInterval),
		"LBHealthTimeout":        s(d.LBHealthTimeout),
		"LBHealthyThreshold":     float64(d.LBHealthyThreshold),
		"LBUnhealthyThreshold":   float64(d.LBUnhealthyThreshold),
		"DetectionTime":          s(d.DetectionTime()),
		"DeregistrationDelay":    s(d.DeregistrationDelay),
		"HealthCheckGracePeriod": s(d.HealthCheckGracePeriod),
		"ContainerInterval":      s(d.ContainerInterval),
		"ContainerTimeout":       s(d.ContainerTimeout),
		"ContainerRetries":       float64(d.ContainerRetries),
		"ContainerStartPeriod":   s(d.ContainerStartPeriod),
		"ProbeTimeout":           s(d.ProbeTimeout),
		"ProbeMargin":            s(budget.ProbeMargin),
		"LongestRequest":         s(d.LongestRequest),
		"MinimumHealthyPercent":  float64(d.MinimumHealthyPercent),
		"MaximumPercent":         float64(d.MaximumPercent),
		"ColdStart":              s(d.ColdStart),
		"MaxContainerInterval":   s(budget.MaxContainerInterval),
		"MinContainerTimeout":    s(budget.MinContainerTimeout),
	}
}

// TestBudgetDefaultsAgree keeps the proxy's configuration defaults and the budget's the same
// numbers, so that the documents can quote either.
func TestBudgetDefaultsAgree(t *testing.T) {
	d := budget.Defaults()
	for _, c := range []struct {
		name        string
		config, bud time.Duration
	}{
		{"shutdown delay", DefaultShutdownDelay, d.ShutdownDelay},
		{"drain timeout", DefaultShutdownDrainTimeout, d.DrainTimeout},
		{"deadline / stopTimeout", DefaultShutdownDeadline, d.StopTimeout},
	} {
		if c.config != c.bud {
			t.Errorf("%s: internal/config says %s, budget.Defaults() %s", c.name, c.config, c.bud)
		}
	}
}

// TestDocsBudgetNumbers finds every budget number the documents quote, by the phrases
// above, and compares it with budget.Defaults().
func TestDocsBudgetNumbers(t *testing.T) {
	want := budgetValues()
	for _, p := range budgetPhrases {
		for _, f := range p.fields {
			if _, ok := want[f]; !ok {
				t.Fatalf("phrase %s names %s, which has no value", p.re, f)
			}
		}
	}
	for _, name := range budgetDocs {
		data, err := os.ReadFile(filepath.Join("../..", name))
		if err != nil {
			t.Error(err)
			continue
		}
		found := checkBudgetNumbers(t, name, string(data), want)
		if found == 0 {
			t.Errorf("%s quotes no budget number that the phrases in this test recognise", name)
		}
		t.Logf("%s: %d budget numbers checked", name, found)
	}
}

// checkBudgetNumbers reports every quoted number in text that differs from want, and
// returns how many it checked.
func checkBudgetNumbers(t *testing.T, name, text string, want map[string]float64) int {
	t.Helper()
	n := 0
	for _, p := range budgetPhrases {
		for _, m := range p.re.FindAllStringSubmatchIndex(text, -1) {
			for i, f := range p.fields {
				g := min(i, p.re.NumSubexp()-1)
				s := text[m[2+2*g]:m[3+2*g]]
				v, _ := strconv.ParseFloat(s, 64)
				n++
				if v != want[f] {
					line := 1 + strings.Count(text[:m[0]], "\n")
					t.Errorf("%s:%d: %q: %s is %s here, %g in the code (budget.Defaults())", name, line, text[m[0]:m[1]], f, s, want[f])
				}
			}
		}
	}
	return n + checkBudgetTables(t, name, text, want)
}

// budgetKeys names the settings that tables list by the key they are rendered as.
var budgetKeys = map[string]string{
	"healthCheck.interval":                 "ContainerInterval",
	"healthCheck.timeout":                  "ContainerTimeout",
	"healthCheck.retries":                  "ContainerRetries",
	"healthCheck.startPeriod":              "ContainerStartPeriod",
	"stopTimeout":                          "StopTimeout",
	"GANGWAY_SHUTDOWN_DELAY":               "ShutdownDelay",
	"GANGWAY_SHUTDOWN_DRAIN_TIMEOUT":       "DrainTimeout",
	"GANGWAY_SHUTDOWN_DEADLINE":            "StopTimeout",
	"HealthCheckIntervalSeconds":           "LBHealthInterval",
	"HealthCheckTimeoutSeconds":            "LBHealthTimeout",
	"HealthyThresholdCount":                "LBHealthyThreshold",
	"UnhealthyThresholdCount":              "LBUnhealthyThreshold",
	"deregistration_delay.timeout_seconds": "DeregistrationDelay",
	"healthCheckGracePeriodSeconds":        "HealthCheckGracePeriod",
	"minimumHealthyPercent":                "MinimumHealthyPercent",
	"maximumPercent":                       "MaximumPercent",
}

var (
	tableKey   = regexp.MustCompile("^`([^`]+)`$")
	tableValue = regexp.MustCompile(`^` + num + `(?: ?s)?$`)
	listSep    = regexp.MustCompile(`, | / `)
)

// checkBudgetTables compares table rows whose first cell names budget settings (`ShutdownDelay`,
// or the key one is rendered as, like `stopTimeout`), several separated by ", " or " / ",
// with the first later cell that holds as many numbers.
func checkBudgetTables(t *testing.T, name, text string, want map[string]float64) int {
	t.Helper()
	n := 0
	for i, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		var fields []string
		for _, k := range listSep.Split(strings.TrimSpace(cells[0]), -1) {
			m := tableKey.FindStringSubmatch(k)
			if m == nil {
				fields = nil
				break
			}
			f := m[1]
			if alias, ok := budgetKeys[f]; ok {
				f = alias
			}
			if _, ok := want[f]; !ok {
				fields = nil
				break
			}
			fields = append(fields, f)
		}
		if fields == nil {
			continue
		}
	cells:
		for _, c := range cells[1:] {
			vals := listSep.Split(strings.TrimSpace(c), -1)
			if len(vals) != len(fields) {
				continue
			}
			var got []float64
			for _, v := range vals {
				m := tableValue.FindStringSubmatch(v)
				if m == nil {
					continue cells
				}
				f, _ := strconv.ParseFloat(m[1], 64)
				got = append(got, f)
			}
			for j, f := range fields {
				n++
				if got[j] != want[f] {
					t.Errorf("%s:%d: %s is %s here, %g in the code (budget.Defaults())", name, i+1, f, vals[j], want[f])
				}
			}
			break
		}
	}
	return n
}
