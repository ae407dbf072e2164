package config

import (
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
