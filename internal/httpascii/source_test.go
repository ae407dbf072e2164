package httpascii

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// unicodeFolds are the calls that fold or lower case with Unicode's tables.
var unicodeFolds = map[string][]string{
	"strings": {"EqualFold", "ToLower", "ToUpper", "ToTitle"},
	"bytes":   {"EqualFold", "ToLower", "ToUpper", "ToTitle"},
	"unicode": {"ToLower", "ToUpper", "SimpleFold"},
}

// notProtocol are the functions, as "path:Func" or "path:Type.Method", whose Unicode case
// folding is about something other than HTTP protocol data, with why.
var notProtocol = map[string]string{
	"internal/config/decode.go:Closest":                     "did-you-mean suggestions for a config key",
	"internal/ecs/rollout.go:taskFailed":                    "an ECS task's StoppedReason text",
	"internal/ecs/taskdef.go:findMember":                    "a task definition's JSON member names, matched as encoding/json matches them",
	"internal/ecslocal/wire/json.go:memberName":             "a Go field name turned into an AWS JSON member name",
	"internal/ecs/init.go:lowerFirst":                       "a Go field name turned into a JSON member name",
	"internal/ecs/diff.go:normalValue":                      "a Go field name turned into a JSON member name",
	"internal/ecs/healthprobe.go:probeFlag":                 "a probe name in a task definition's health-check command",
	"internal/health/health.go:ParseProbe":                  "a probe name on the command line",
	"internal/ecslocal/cfn/stack.go:deployer.generatedName": "a random suffix of a CloudFormation physical ID",
	"internal/ecslocal/cfn/stack.go:deployer.ignore":        "an AWS resource type's service turned into an ARN's service",
}

// TestNoUnicodeFoldingOfProtocolTokens fails on every call that folds case with Unicode's
// tables in a non-test Go file under internal/ and cmd/, unless notProtocol lists its
// function: protocol tokens are compared with EqualFold and lowered with Lower.
func TestNoUnicodeFoldingOfProtocolTokens(t *testing.T) {
	root := filepath.Join("..", "..")
	var found []string
	used := map[string]bool{}
	for _, dir := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			for _, c := range foldingCalls(t, path) {
				key := filepath.ToSlash(rel) + ":" + c.fn
				if _, skip := notProtocol[key]; skip {
					used[key] = true
					continue
				}
				found = append(found, filepath.ToSlash(rel)+":"+strconv.Itoa(c.line)+": "+c.call+" in "+c.fn)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(found) > 0 {
		t.Errorf("Unicode case folding where protocol tokens may be compared; use httpascii.EqualFold or httpascii.Lower (or, for text that is not HTTP protocol data, list the function in notProtocol):\n\t%s", strings.Join(found, "\n\t"))
	}
	for key := range notProtocol {
		if !used[key] {
			t.Errorf("%s no longer folds case: remove it from the list", key)
		}
	}
}

type foldingCall struct {
	call, fn string
	line     int
}

// foldingCalls lists the calls of unicodeFolds in the file at path, with the function
// each is in.
func foldingCalls(t *testing.T, path string) []foldingCall {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{} // the file's name for a package → its import path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := p
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = p
	}
	var out []foldingCall
	for _, decl := range f.Decls {
		fn := "(package)"
		if fd, ok := decl.(*ast.FuncDecl); ok {
			fn = fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				fn = recvType(fd.Recv.List[0].Type) + "." + fn
			}
		}
		ast.Inspect(decl, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			if slices.Contains(unicodeFolds[names[pkg.Name]], sel.Sel.Name) {
				out = append(out, foldingCall{names[pkg.Name] + "." + sel.Sel.Name, fn, fset.Position(sel.Pos()).Line})
			}
			return true
		})
	}
	return out
}

func recvType(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return recvType(e.X)
	case *ast.IndexExpr:
		return recvType(e.X)
	case *ast.IndexListExpr:
		return recvType(e.X)
	case *ast.Ident:
		return e.Name
	}
	return "?"
}
