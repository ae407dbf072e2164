package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// envCalls are the functions through which Gangway's code reads its environment: os.Getenv,
// os.LookupEnv, and the getenv functions that tests replace.
var envCalls = map[string]bool{"Getenv": true, "LookupEnv": true, "getenv": true}

var gangwayVar = regexp.MustCompile(`^GANGWAY_[A-Z0-9_]+$`)

// codeEnvVars returns every environment variable the repository's non-test Go code reads:
// the names passed to an envCalls function (as a literal or a string constant), and every
// string constant or literal that is a GANGWAY_* name (some are read in a loop over a table).
func codeEnvVars(t *testing.T, root string) map[string]string {
	t.Helper()
	type file struct {
		path string
		f    *ast.File
	}
	var files []file
	consts := map[string]map[string]string{} // package name → constant → value
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "cdk.out", "bin", "bench":
				return filepath.SkipDir
			}
			// Packages that only tests import (ecstest, ecslocaltest, nstest, testcert) read
			// variables of the test suites, not settings a user gives the binaries.
			if strings.HasSuffix(d.Name(), "test") || strings.HasPrefix(d.Name(), "test") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files = append(files, file{path, f})
		pkg := f.Name.Name
		if consts[pkg] == nil {
			consts[pkg] = map[string]string{}
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i]); ok {
							consts[pkg][name.Name] = s
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, fl := range files {
		rel, _ := filepath.Rel(root, fl.path)
		pkg := fl.f.Name.Name
		ast.Inspect(fl.f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, ok := stringLit(n); ok && gangwayVar.MatchString(s) {
					vars[s] = rel
				}
			case *ast.CallExpr:
				var fn string
				switch f := n.Fun.(type) {
				case *ast.Ident:
					fn = f.Name
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				}
				if !envCalls[fn] || len(n.Args) != 1 {
					return true
				}
				switch a := n.Args[0].(type) {
				case *ast.BasicLit:
					if s, ok := stringLit(a); ok {
						vars[s] = rel
					}
				case *ast.Ident:
					if s, ok := consts[pkg][a.Name]; ok {
						vars[s] = rel
					}
				case *ast.SelectorExpr:
					if x, ok := a.X.(*ast.Ident); ok {
						if s, ok := consts[x.Name][a.Sel.Name]; ok {
							vars[s] = rel
						}
					}
				}
			}
			return true
		})
	}
	return vars
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// TestDocsListEveryEnvVar keeps the table of environment variables in docs/configuration.md
// equal to the variables the code reads: one row per variable, none missing, none extra.
func TestDocsListEveryEnvVar(t *testing.T) {
	code := codeEnvVars(t, "../..")
	for _, must := range []string{EnvUpstream, EnvShutdownDelay, "GANGWAY_HEALTH_ADDR", "ECS_CONTAINER_METADATA_URI_V4", "GANGWAY_READINESS_URL"} {
		if _, ok := code[must]; !ok {
			t.Fatalf("the scan of the code missed %s: found %v", must, code)
		}
	}
	doc := map[string]int{}
	for _, r := range docsTableRows(t, filepath.Join(docsDir, "configuration.md"), "Variable") {
		names := strings.Split(r.cells[0], ", ")
		for _, name := range names {
			name = strings.Trim(name, "`$")
			if line, ok := doc[name]; ok {
				t.Errorf("docs/configuration.md:%d: %s is listed twice (first on line %d)", r.line, name, line)
			}
			doc[name] = r.line
			if _, ok := code[name]; !ok {
				t.Errorf("docs/configuration.md:%d: %s is listed, but no code reads it", r.line, name)
			}
		}
	}
	var missing []string
	for name, file := range code {
		if _, ok := doc[name]; !ok {
			missing = append(missing, name+" (read in "+file+")")
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("docs/configuration.md: the table of environment variables does not list %s", m)
	}
}
