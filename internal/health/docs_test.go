package health

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocsNameEveryAttribute keeps the "carries" column of docs/health.md's table of checks
// equal to the attributes the code reports: every name passed to health.A in the repository's
// non-test code is in the table, and every attribute the table names (in backquotes, outside
// parentheses, which hold values and remarks) is one the code reports.
func TestDocsNameEveryAttribute(t *testing.T) {
	const root = "../.."
	code := map[string]string{}
	call := regexp.MustCompile(`health\.A\("([^"]+)"`)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && slices.Contains([]string{".git", "node_modules", "cdk", "bench", "bin"}, d.Name()) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range call.FindAllStringSubmatch(string(data), -1) {
			code[m[1]] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(code) < 15 {
		t.Fatalf("found only %d attributes in the code: %v", len(code), code)
	}

	data, err := os.ReadFile(filepath.Join(root, "docs", "health.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]int{}
	paren := regexp.MustCompile(`\([^()]*\)`)
	name := regexp.MustCompile("`([a-z_.]+)`")
	in := false
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "| check | gates | reported by | carries |"):
			in = true
		case in && !strings.HasPrefix(line, "|"):
			in = false
		case in && !strings.HasPrefix(line, "|---"):
			cells := strings.Split(line, "|")
			carries := paren.ReplaceAllString(cells[len(cells)-2], "")
			for _, m := range name.FindAllStringSubmatch(carries, -1) {
				doc[m[1]] = i + 1
			}
		}
	}
	for a, line := range doc {
		if _, ok := code[a]; !ok {
			t.Errorf("docs/health.md:%d names attribute %q, which no check reports", line, a)
		}
	}
	for a, file := range code {
		if _, ok := doc[a]; !ok {
			t.Errorf("docs/health.md: the table of checks does not name attribute %q (reported in %s)", a, file)
		}
	}
}
