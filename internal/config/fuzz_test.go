package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse: it must never panic, and it must either
// return a complete config or Errors whose every entry names the file.
func FuzzParse(f *testing.F) {
	f.Add(defaultYAML)
	examples, _ := filepath.Glob(filepath.Join("..", "..", "docs", "examples", "*.yaml"))
	for _, name := range examples {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("listeners: [{name: a, address: ':1', protocol: tcp, cluster: c}]\nclusters: [{name: c, dns: {name: x, port: 1}}]\n"))
	f.Add([]byte("a: &a [*a, *a]\nlisteners: *a\n"))
	f.Add([]byte("routes:\n  - <<: {name: r}\n    match: {path_regex: '('}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if c == nil || c.Version == "" || c.File != "fuzz.yaml" {
				t.Fatalf("no error but config %+v", c)
			}
			again, err := Parse("fuzz.yaml", data)
			if err != nil || again.Version != c.Version {
				t.Fatalf("second parse differs: %v, version %s vs %s", err, again.Version, c.Version)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not Errors: %T %v", err, err)
		}
		for _, e := range errs {
			if e.File != "fuzz.yaml" || e.Msg == "" {
				t.Fatalf("incomplete error %+v", e)
			}
		}
	})
}
