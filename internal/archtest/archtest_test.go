// Package archtest holds the import rules that make the package graph read as the pipeline
// (docs/architecture.md draws it): YAML → config → spec ← xds/resource, spec → proxy, and
// the process composition on top. The rules are checked on what `go list -deps` reports for
// the code that ships (tests may import more).
package archtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/gangway-ecs/gangway"

// deps returns every package of this module that pkg (a path below the module) depends on,
// itself included.
func deps(t *testing.T, pkgs ...string) map[string][]string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH (%v): go list -deps cannot run", err)
	}
	out := map[string][]string{}
	for _, pkg := range pkgs {
		cmd := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", module+"/"+pkg)
		cmd.Dir = "../.."
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.String())
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), module+"/"); ok {
				out[pkg] = append(out[pkg], p)
			}
		}
	}
	return out
}

// rule: none of the packages in from may depend on any package whose path is, or is below,
// one of forbidden.
func forbid(t *testing.T, from []string, forbidden ...string) {
	t.Helper()
	for pkg, ds := range deps(t, from...) {
		for _, d := range ds {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s: the import rules forbid it", pkg, d)
				}
			}
		}
	}
}

func TestSpecImportsNothingOfOurs(t *testing.T) {
	for pkg, ds := range deps(t, "internal/spec") {
		if len(ds) != 1 {
			t.Errorf("%s depends on %v: the runtime model imports nothing of Gangway's", pkg, ds[1:])
		}
	}
}

func TestDataPlaneDoesNotReadConfig(t *testing.T) {
	forbid(t, []string{"internal/proxy", "internal/upstream"}, "internal/config", "internal/xds", "internal/ecs")
	// Clusters know nothing of the downstream side that owns them.
	forbid(t, []string{"internal/upstream"}, "internal/proxy", "internal/h1server", "internal/h2server")
}

func TestXDSDoesNotImportTheDataPlane(t *testing.T) {
	forbid(t, []string{"internal/xds", "internal/xds/resource", "internal/xds/server", "internal/xds/client"}, "internal/proxy")
	// The two ends of ADS meet only through resource and what internal/xds shares.
	forbid(t, []string{"internal/xds/server"}, "internal/xds/client")
	forbid(t, []string{"internal/xds/client"}, "internal/xds/server")
	forbid(t, []string{"internal/xds/resource"}, "internal/xds/server", "internal/xds/client")
}

// TestOnlyConfigReadsYAMLDefaults: the data plane's defaults are spec's table; outside
// internal/config, code names a config.Default… constant only for the process around the
// data plane (the admin address, the embedded file's name).
func TestOnlyConfigReadsYAMLDefaults(t *testing.T) {
	allowed := map[string]bool{"DefaultAdminAddress": true, "DefaultFile": true}
	use := regexp.MustCompile(`\bconfig\.(Default[A-Z]\w*)`)
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == filepath.Join("internal", "config") || rel != "." && strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range use.FindAllSubmatch(b, -1) {
			if !allowed[string(m[1])] {
				t.Errorf("%s: config.%s: read the data plane's default from internal/spec", rel, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// helpers are the packages docs/architecture.md leaves out of the package table: they sit
// below everything.
var helpers = map[string]bool{
	"internal/health": true, "internal/lifecycle": true, "internal/budget": true, "internal/version": true,
	"internal/httpascii": true, "internal/httpdate": true, "internal/reqctx": true, "internal/probecmd": true,
	"internal/startpages": true,
}

// TestArchitectureTableIsTheGraph: the package table of docs/architecture.md lists, for each
// package, exactly the packages of ours it imports (helpers aside).
func TestArchitectureTableIsTheGraph(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Packages\n")
	if !ok {
		t.Fatal("docs/architecture.md has no Packages section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9/]+)` \\| (.*) \\|$")
	name := regexp.MustCompile("`([a-z0-9/]+)`")
	full := func(short string) string {
		if strings.HasPrefix(short, "internal/") || strings.HasPrefix(short, "cmd/") {
			return short
		}
		return "internal/" + short
	}
	rows := row.FindAllStringSubmatch(section, -1)
	if len(rows) < 5 {
		t.Fatalf("found %d rows in the package table", len(rows))
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH (%v)", err)
	}
	for _, r := range rows {
		pkg := r[1]
		want := map[string]bool{}
		// Words in parentheses explain; they name no import.
		listed := regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(r[2], "")
		for _, m := range name.FindAllStringSubmatch(listed, -1) {
			want[full(m[1])] = true
		}
		cmd := exec.Command(goBin, "list", "-f", `{{join .Imports "\n"}}`, module+"/"+pkg)
		cmd.Dir = "../.."
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		got := map[string]bool{}
		for _, imp := range strings.Fields(string(out)) {
			if p, ok := strings.CutPrefix(imp, module+"/"); ok && !helpers[p] {
				got[p] = true
			}
		}
		for p := range got {
			if !want[p] {
				t.Errorf("%s imports %s; docs/architecture.md does not say so", pkg, p)
			}
		}
		for p := range want {
			if !got[p] {
				t.Errorf("docs/architecture.md says %s imports %s; it does not", pkg, p)
			}
		}
	}
}
