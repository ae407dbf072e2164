package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const docsDir = "../../docs"

// schemaPaths lists every field path of the schema, lists written as "[]", like
// "listeners[].tls.client_auth".
func schemaPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if name == "" {
			continue
		}
		p := joinPath(prefix, name)
		out = append(out, p)
		ft := t.Field(i).Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			out = append(out, schemaPaths(ft.Elem(), p+"[]")...)
		} else if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]() {
			out = append(out, schemaPaths(ft, p)...)
		}
	}
	return out
}

func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(docsDir, "examples", "*.yaml"))
	if err != nil || len(files) < 6 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%s:\n%v", f, err)
			continue
		}
		t.Logf("%s: version %s, %d listeners, %d routes, %d clusters", f, c.Version, len(c.Listeners), len(c.Routes), len(c.Clusters))
	}
}

// TestFullExampleSetsEveryField keeps docs/examples/full.yaml complete, so that it shows and
// tests every field; the split-mode fields, which services: all rejects, are set by the two
// split-mode examples.
func TestFullExampleSetsEveryField(t *testing.T) {
	set := map[string]bool{}
	index := regexp.MustCompile(`\[\d+\]`)
	for _, name := range []string{"full.yaml", "split-control.yaml", "split-proxy.yaml"} {
		data, err := os.ReadFile(filepath.Join(docsDir, "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		d := newDecoder(name)
		root, err := d.document(data)
		if err != nil {
			t.Fatal(err)
		}
		d.value("", nil, root, reflect.ValueOf(&Config{}).Elem())
		for p := range d.set {
			set[index.ReplaceAllString(p, "[]")] = true
		}
	}
	for _, p := range schemaPaths(reflect.TypeFor[Config](), "") {
		if !set[p] {
			t.Errorf("docs/examples/full.yaml (with split-control.yaml and split-proxy.yaml) does not set %s", p)
		}
	}
}

// TestDocsDescribeEveryField keeps docs/configuration.md in step with the types: every field
// path appears there, in backquotes.
func TestDocsDescribeEveryField(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(docsDir, "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, p := range schemaPaths(reflect.TypeFor[Config](), "") {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("docs/configuration.md does not describe `%s`", p)
		}
	}
	for _, f := range mustGlob(t, filepath.Join(docsDir, "examples", "*.yaml")) {
		if name := "examples/" + filepath.Base(f); !strings.Contains(doc, name) {
			t.Errorf("docs/configuration.md does not mention %s", name)
		}
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// defaultsProbeYAML sets every mapping and list whose fields have defaults, and nothing
// those defaults fill in, so that Parse shows each default. It lives in docs/examples so
// that its certificate paths resolve.
const defaultsProbeYAML = `
listeners:
  - name: public
    address: ":8080"
    tls:
      cert_file: certs/server.crt
      key_file: certs/server.key
routes:
  - name: app
    cluster: app
clusters:
  - name: app
    dns: {name: app.internal, port: 3000}
    tls: {}
    health_check: {}
    outlier_detection: {}
  - name: tasks
    ecs: {service: app, port: 3000}
`

// TestDocsDefaultsMatchCode keeps the Default column of every table in docs/configuration.md
// equal to what Parse fills in: each row whose default cell starts with a value in backquotes
// is compared with the field Parse left in a configuration that does not set it.
func TestDocsDefaultsMatchCode(t *testing.T) {
	c, err := Parse(filepath.Join(docsDir, "examples", "defaults-probe.yaml"), []byte(defaultsProbeYAML))
	if err != nil {
		t.Fatal(err)
	}
	rows := docsTableRows(t, filepath.Join(docsDir, "configuration.md"), "Field")
	checked := 0
	for _, r := range rows {
		path := strings.Trim(r.cells[0], "`")
		def := firstCode.FindStringSubmatch(r.cells[2])
		if def == nil || !strings.HasPrefix(strings.TrimSpace(r.cells[2]), "`") {
			continue // "required", "none", or a sentence
		}
		if _, otherwise, ok := strings.Cut(r.cells[2], ", else "); ok {
			// "`require` with `client_ca_file`, else `none`": the probe sets no condition.
			def = firstCode.FindStringSubmatch(otherwise)
		}
		root := reflect.ValueOf(c).Elem()
		if ref, ok := fieldAt(root, strings.Split(def[1], ".")); ok && fieldName.MatchString(def[1]) {
			// A default named after another field ("`default_upstream_timeout`") is its value.
			def[1] = fmt.Sprint(ref.Interface())
		}
		got, ok := fieldAt(root, strings.Split(path, "."))
		if !ok {
			t.Errorf("docs/configuration.md:%d: %s: no such field in Config, or the probe configuration does not reach it", r.line, path)
			continue
		}
		if msg := sameDefault(got, def[1]); msg != "" {
			t.Errorf("docs/configuration.md:%d: %s: the table says %s, the code %s", r.line, path, def[1], msg)
		}
		checked++
	}
	if checked < 30 {
		t.Errorf("only %d defaults checked in docs/configuration.md: the tables' format changed?", checked)
	}
}

var (
	firstCode = regexp.MustCompile("`([^`]*)`")
	fieldName = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)*$`)
)

// sameDefault compares a field's value with the table's rendering of it, and returns "" or
// what the code has.
func sameDefault(v reflect.Value, doc string) string {
	if v.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(doc)
		if err != nil || d != time.Duration(v.Int()) {
			return time.Duration(v.Int()).String()
		}
		return ""
	}
	got := fmt.Sprint(v.Interface())
	if (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.Len() == 0 && (doc == "[]" || doc == "{}") {
		return ""
	}
	if v.Kind() == reflect.Slice {
		b, _ := json.Marshal(v.Interface())
		got = string(b)
	}
	if doc == `""` {
		doc = ""
	}
	if got != doc {
		return fmt.Sprintf("%q", got)
	}
	return ""
}

// fieldAt walks a field path ("clusters[].health_check.interval") through c, taking the first
// element of a list on which the rest of the path exists.
func fieldAt(v reflect.Value, path []string) (reflect.Value, bool) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}, false
		}
		v = v.Elem()
	}
	if len(path) == 0 {
		return v, true
	}
	name, list := strings.CutSuffix(path[0], "[]")
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	for i := range v.NumField() {
		if yamlName(v.Type().Field(i)) != name {
			continue
		}
		f := v.Field(i)
		if !list {
			return fieldAt(f, path[1:])
		}
		for j := range f.Len() {
			if got, ok := fieldAt(f.Index(j), path[1:]); ok {
				return got, true
			}
		}
	}
	return reflect.Value{}, false
}

type docsRow struct {
	line  int
	cells []string
}

// docsTableRows returns the rows of every Markdown table in file whose first header cell is
// header, cells trimmed, escaped pipes kept as "|".
func docsTableRows(t *testing.T, file, header string) []docsRow {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rows []docsRow
	in := false
	for i, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "|") {
			in = false
			continue
		}
		cells := strings.Split(strings.Trim(strings.ReplaceAll(line, `\|`, "\x00"), "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(strings.ReplaceAll(cells[j], "\x00", "|"))
		}
		switch {
		case cells[0] == header:
			in = true
		case in && !strings.HasPrefix(cells[0], "---"):
			rows = append(rows, docsRow{i + 1, cells})
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no table headed %q", file, header)
	}
	return rows
}

// TestDocsStandAlone keeps the repository's documents self-contained: every relative link in
// a Markdown file names a file or directory inside the repository, and every document named
// by its upper-case file name (README.md, SECURITY.md...) is one the repository holds.
func TestDocsStandAlone(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	docName := regexp.MustCompile(`\b[A-Z][A-Z_-]*\.md\b`)
	docNames := map[string]bool{}
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			docNames[d.Name()] = true
		}
		return nil
	})
	n := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "cdk.out" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		// A document named by its file name (README.md, CHANGELOG.md...) is one the reader
		// has: the repository holds it.
		for _, name := range docName.FindAllString(string(data), -1) {
			if !docNames[name] {
				t.Errorf("%s names %s, which is not in the repository", rel, name)
			}
		}
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			abs := filepath.Join(filepath.Dir(path), target)
			if r, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(r, "..") {
				t.Errorf("%s: link %s leaves the repository", rel, m[1])
			} else if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s: link %s: %v", rel, m[1], err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Errorf("only %d relative links found: is the pattern right?", n)
	}
}
