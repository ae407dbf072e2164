package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricDoc is one row of docs/metrics.md's table, or what the code or a scrape says of one
// metric.
type metricDoc struct {
	typ    string   // counter, gauge, histogram; "" when the source cannot tell
	labels []string // sorted
}

// docMetrics reads the rows of docs/metrics.md's table.
func docMetrics(t *testing.T) map[string]metricDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs/metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `(gangway_[a-z0-9_]+)` \\| ([a-z]+) \\|[^|]+\\|([^|]*)\\|")
	out := map[string]metricDoc{}
	for _, line := range strings.Split(string(data), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		labels := []string{}
		for _, l := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[3], -1) {
			labels = append(labels, l[1])
		}
		sort.Strings(labels)
		if _, dup := out[m[1]]; dup {
			t.Errorf("docs/metrics.md lists %s twice", m[1])
		}
		out[m[1]] = metricDoc{typ: m[2], labels: labels}
	}
	if len(out) == 0 {
		t.Fatal("docs/metrics.md has no metric rows")
	}
	return out
}

// registeredMetrics finds every metric the code constructs: prometheus.NewCounter, NewGauge,
// NewHistogram and their Vec forms (name, type, variable and constant labels), and
// prometheus.NewDesc (name and labels; the type is the collector's, so the scrape tells it).
func registeredMetrics(t *testing.T) map[string]metricDoc {
	t.Helper()
	types := map[string]string{
		"NewCounter": "counter", "NewCounterVec": "counter", "NewGauge": "gauge", "NewGaugeVec": "gauge",
		"NewHistogram": "histogram", "NewHistogramVec": "histogram", "NewSummary": "summary", "NewSummaryVec": "summary",
	}
	out := map[string]metricDoc{}
	fset := token.NewFileSet()
	for _, dir := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "prometheus" {
					return true
				}
				var name string
				var labels []string
				typ, isOpts := types[sel.Sel.Name]
				switch {
				case isOpts:
					opts, ok := call.Args[0].(*ast.CompositeLit)
					if !ok {
						t.Errorf("%s: prometheus.%s without an options literal", fset.Position(call.Pos()), sel.Sel.Name)
						return true
					}
					for _, el := range opts.Elts {
						kv := el.(*ast.KeyValueExpr)
						switch kv.Key.(*ast.Ident).Name {
						case "Name":
							name = stringLit(t, fset, kv.Value)
						case "ConstLabels":
							for _, l := range kv.Value.(*ast.CompositeLit).Elts {
								labels = append(labels, stringLit(t, fset, l.(*ast.KeyValueExpr).Key))
							}
						}
					}
					if len(call.Args) > 1 {
						labels = append(labels, stringList(t, fset, call.Args[1])...)
					}
				case sel.Sel.Name == "NewDesc":
					name = stringLit(t, fset, call.Args[0])
					labels = stringList(t, fset, call.Args[2])
				default:
					return true
				}
				sort.Strings(labels)
				if labels == nil {
					labels = []string{}
				}
				out[name] = metricDoc{typ: typ, labels: labels}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func stringLit(t *testing.T, fset *token.FileSet, e ast.Expr) string {
	t.Helper()
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		t.Errorf("%s: a metric's name or label is not a string literal, so docs/metrics.md cannot be checked against it", fset.Position(e.Pos()))
		return ""
	}
	s, _ := strconv.Unquote(lit.Value)
	return s
}

func stringList(t *testing.T, fset *token.FileSet, e ast.Expr) []string {
	t.Helper()
	if id, ok := e.(*ast.Ident); ok && id.Name == "nil" {
		return nil
	}
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		t.Errorf("%s: a metric's labels are not a []string literal", fset.Position(e.Pos()))
		return nil
	}
	var out []string
	for _, el := range lit.Elts {
		out = append(out, stringLit(t, fset, el))
	}
	return out
}

// scrapeMetrics parses a text exposition: each gangway_* family's type and label names.
func scrapeMetrics(body string) map[string]metricDoc {
	out := map[string]metricDoc{}
	labelName := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "gangway_") {
			out[f[2]] = metricDoc{typ: f[3], labels: []string{}}
			continue
		}
		if !strings.HasPrefix(line, "gangway_") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		name = strings.Fields(name)[0]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && out[base].typ == "histogram" {
				name = base
			}
		}
		m := out[name]
		for _, l := range labelName.FindAllStringSubmatch(rest, -1) {
			if l[1] != "le" && !slices.Contains(m.labels, l[1]) {
				m.labels = append(m.labels, l[1])
			}
		}
		sort.Strings(m.labels)
		out[name] = m
	}
	return out
}

// TestMetricsDoc: docs/metrics.md lists exactly the metrics the code registers, each with
// its type and labels, and a running proxy's /metrics agrees with both.
func TestMetricsDoc(t *testing.T) {
	doc := docMetrics(t)
	code := registeredMetrics(t)
	for name, c := range code {
		d, ok := doc[name]
		switch {
		case !ok:
			t.Errorf("%s is registered in the code but not listed in docs/metrics.md", name)
		case c.typ != "" && d.typ != c.typ:
			t.Errorf("%s: docs/metrics.md says %s, the code registers a %s", name, d.typ, c.typ)
		case !slices.Equal(d.labels, c.labels):
			t.Errorf("%s: docs/metrics.md lists labels %v, the code %v", name, d.labels, c.labels)
		}
	}
	for name := range doc {
		if _, ok := code[name]; !ok {
			t.Errorf("docs/metrics.md lists %s, which the code does not register", name)
		}
	}

	// A running proxy, after a routed request and a request head refused for its framing,
	// so that the labelled families those create are in the scrape.
	p, _ := startLC(t, lcOptions{delay: "0s", drain: "1s"})
	if c, body := httpGet(t, "http://"+p.traffic+"/"); c != 200 || body != "hello" {
		t.Fatalf("routed request: %d %q", c, body)
	}
	conn, err := net.DialTimeout("tcp", p.traffic, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	conn.Close()
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 400") {
		t.Fatalf("a head with Content-Length and Transfer-Encoding: %q", buf[:n])
	}
	_, body := httpGet(t, "http://"+p.admin+"/metrics")
	scraped := scrapeMetrics(body)
	for _, want := range []string{"gangway_http_requests_total", "gangway_upstream_request_duration_seconds", "gangway_http_rejected_requests_total", "gangway_build_info", "gangway_health_check_ok"} {
		if _, ok := scraped[want]; !ok {
			t.Errorf("the scrape lacks %s, so the test would not check it:\n%s", want, body)
		}
	}
	for name, s := range scraped {
		d, ok := doc[name]
		switch {
		case !ok:
			t.Errorf("/metrics has %s, which docs/metrics.md does not list", name)
		case d.typ != s.typ:
			t.Errorf("%s: docs/metrics.md says %s, /metrics says %s", name, d.typ, s.typ)
		case !slices.Equal(d.labels, s.labels):
			t.Errorf("%s: docs/metrics.md lists labels %v, /metrics has %v", name, d.labels, s.labels)
		}
	}
}

// TestAlertRules: the example rule file passes promtool's check and its unit tests, and uses
// only documented metrics.
// promtool comes with Debian's prometheus package (make test-metrics installs it); without
// it the test says so and skips, except in CI, where it fails.
func TestAlertRules(t *testing.T) {
	rules := filepath.Join(repoRoot, "docs/prometheus/gangway-rules.yml")
	data, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	doc := docMetrics(t)
	used := regexp.MustCompile(`gangway_[a-z0-9_]+`).FindAllString(string(data), -1)
	if len(used) == 0 {
		t.Fatal("the rule file uses no gangway_ metric")
	}
	for _, name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && doc[b].typ == "histogram" {
				base = b
			}
		}
		if _, ok := doc[base]; !ok {
			t.Errorf("the rule file uses %s, which docs/metrics.md does not list", name)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (make test-metrics installs Debian's prometheus package)")
		}
		t.Skip("promtool is not installed: make test-metrics installs it (Debian package prometheus)")
	}
	out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	// Each alert fires on the series that should fire it (gangway-rules.test.yml).
	out, err = exec.Command(promtool, "test", "rules", strings.TrimSuffix(rules, ".yml")+".test.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
