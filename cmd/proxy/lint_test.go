package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/probecmd"
)

func runLint(t *testing.T, args ...string) (code probecmd.ExitCode, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code = runMain(context.Background(), append([]string{"lint"}, args...), e)
	return code, out.String(), errOut.String()
}

func shippedTaskdefs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../taskdefs/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no task definitions: %v", err)
	}
	return files
}

func TestLintShippedTaskDefinitions(t *testing.T) {
	for _, f := range shippedTaskdefs(t) {
		code, stdout, stderr := runLint(t, f)
		want := f + ": ok\n"
		if strings.Contains(f, "split-") {
			// Split mode's configuration is a file in the image: lint says it did not read it.
			want = f + ": ok for what was checked\n" + f + ": not checked: containerDefinitions["
		}
		if code != exitOK || !strings.HasPrefix(stdout, want) || stderr != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want stdout to start with %q", f, code, stdout, stderr, want)
		}
	}
	args := append([]string{
		"-target-group", "../../taskdefs/settings/target-group.json",
		"-service", "../../taskdefs/settings/service.json",
	}, shippedTaskdefs(t)...)
	if code, stdout, stderr := runLint(t, args...); code != exitOK {
		t.Errorf("with target group and service: exit %d\n%s%s", code, stdout, stderr)
	}
}

// brokenFixture writes a copy of the shipped proxy+app task definition with one change.
func brokenFixture(t *testing.T, name string, change func(proxy map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile("../../taskdefs/fargate-proxy-app.json")
	if err != nil {
		t.Fatal(err)
	}
	var td map[string]any
	if err := json.Unmarshal(data, &td); err != nil {
		t.Fatal(err)
	}
	change(td["containerDefinitions"].([]any)[0].(map[string]any))
	out, _ := json.Marshal(td)
	path := filepath.Join(t.TempDir(), name+".json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLintBrokenFixtures(t *testing.T) {
	tests := []struct {
		name   string
		change func(p map[string]any)
		says   []string
	}{
		{"slow-health-check", func(p map[string]any) { p["healthCheck"].(map[string]any)["interval"] = 30 },
			[]string{"containerDefinitions[proxy].healthCheck.interval = 30s", "at most 10 s", "fix: set healthCheck.interval to 10 s or less"}},
		{"short-stop-timeout", func(p map[string]any) { p["stopTimeout"] = 20 },
			[]string{"containerDefinitions[proxy].stopTimeout = 20s", "12s + 15s + 3s = 30s", "fix: raise stopTimeout to 30 s"}},
		{"no-ordering", func(p map[string]any) { delete(p, "dependsOn") },
			[]string{"containerDefinitions[proxy].dependsOn = none on app", `"condition": "HEALTHY"`}},
		{"typo", func(p map[string]any) { p["stopTimout"] = 30 },
			[]string{`unknown field "stopTimout"`}},
		{"readiness-container-check", func(p map[string]any) {
			p["healthCheck"].(map[string]any)["command"] = []any{"CMD", "/healthcheck", "-probe", "ready"}
		}, []string{`containerDefinitions[proxy].healthCheck.command = ["CMD" "/healthcheck" "-probe" "ready"]`, "ECS replaces the whole fleet", `fix: set "healthCheck": {"command": ["CMD", "/healthcheck"], ...}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := brokenFixture(t, tt.name, tt.change)
			code, stdout, stderr := runLint(t, path)
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			for _, s := range tt.says {
				if !strings.Contains(stdout, s) {
					t.Errorf("output does not say %q:\n%s", s, stdout)
				}
			}
			if !strings.HasPrefix(stdout, path+": ") || !strings.Contains(stderr, "problem(s) in 1 file(s)") {
				t.Errorf("stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
}

// TestLintJSONAndProxyConfig: a task definition whose configuration lives in the image
// (GANGWAY_CONFIG) is checked against the file given with -config.
func TestLintJSONAndProxyConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gangway.yaml")
	if err := os.WriteFile(cfg, []byte(`listeners:
  - name: public
    address: ":8080"
routes:
  - name: all
    cluster: app
clusters:
  - name: app
    endpoints: ["127.0.0.1:3000"]
shutdown:
  delay: 5s
  drain_timeout: 15s
  deadline: 30s
`), 0o600); err != nil {
		t.Fatal(err)
	}
	td := brokenFixture(t, "in-image", func(p map[string]any) {
		p["environment"] = []any{map[string]any{"name": "GANGWAY_CONFIG", "value": "/etc/gangway/gangway.yaml"}}
	})
	if code, stdout, _ := runLint(t, td); code != exitOK || strings.Contains(stdout, ": ok\n") ||
		!strings.Contains(stdout, td+": not checked: containerDefinitions[proxy].environment.GANGWAY_CONFIG names /etc/gangway/gangway.yaml") ||
		!strings.Contains(stdout, "give the file with -config") {
		t.Fatalf("without -config (the proxy's defaults): exit %d, want 0 and what was not checked\n%s", code, stdout)
	}
	if _, stdout, _ := runLint(t, "-output", "json", td); !strings.Contains(stdout, `"unchecked": [`) {
		t.Fatalf("-output json lacks unchecked:\n%s", stdout)
	}
	code, stdout, _ := runLint(t, "-output", "json", "-config", cfg, td)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d", code, exitFailure)
	}
	var results []struct {
		File     string
		Findings []struct{ Field, Value, Rule, Fix string }
	}
	if err := json.Unmarshal([]byte(stdout), &results); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	if len(results) != 1 || len(results[0].Findings) != 1 ||
		results[0].Findings[0].Field != "proxyConfig.shutdown.delay" || results[0].Findings[0].Value != "5s" ||
		!strings.Contains(results[0].Findings[0].Fix, "raise shutdown.delay to 12s") {
		t.Fatalf("got %+v", results)
	}
}

// TestLintLoadBalancer: -load-balancer reads describe-load-balancer-attributes output, whose
// idle timeout the proxy's must exceed.
func TestLintLoadBalancer(t *testing.T) {
	lb := filepath.Join(t.TempDir(), "lb.json")
	if err := os.WriteFile(lb, []byte(`{"Attributes": [{"Key": "idle_timeout.timeout_seconds", "Value": "600"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runLint(t, "-load-balancer", lb, "../../taskdefs/fargate-proxy-app.json")
	if code != exitFailure || !strings.Contains(stdout, "proxyConfig.timeout_idle = 5m0s") || !strings.Contains(stdout, "(600s)") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
	if code, _, stderr := runLint(t, "-load-balancer", "/nonexistent.json", "x.json"); code != exitFailure || !strings.Contains(stderr, "-load-balancer") {
		t.Errorf("missing load balancer file: exit %d, stderr %q", code, stderr)
	}
}

func TestLintUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-output", "yaml", "x.json"}, {"-nope"}} {
		if code, _, _ := runLint(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, stderr := runLint(t, "-h"); code != exitOK || !strings.Contains(stderr, "usage: proxy lint") {
		t.Errorf("-h: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runLint(t, "-service", "/nonexistent.json", "x.json"); code != exitFailure || !strings.Contains(stderr, "/nonexistent.json") {
		t.Errorf("missing service file: exit %d, stderr %q", code, stderr)
	}
}
