package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSBOM: the document names the binary with its checksum, every module its build
// information records (as `go version -m` lists them) and the standard library, each tied to
// the binary; the same inputs give the same bytes.
func TestSBOM(t *testing.T) {
	// cmd/proxy, because it links modules from outside the standard library.
	bin := filepath.Join(t.TempDir(), "gangway-proxy")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "../proxy")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Deps) == 0 {
		t.Fatal("the proxy records no modules, so the test would check nothing")
	}
	out := filepath.Join(t.TempDir(), "sbom.json")
	args := []string{"-version", "v0.1.0", "-created", "1767225600", "-o", out, bin}
	var stderr bytes.Buffer
	if code := run(args, os.Stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc document
	if err := json.Unmarshal(first, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.CreationInfo.Created != "2026-01-01T00:00:00Z" || doc.DocumentNamespace == "" {
		t.Errorf("document header: %+v", doc)
	}
	byID := map[string]pkg{}
	for _, p := range doc.Packages {
		if _, dup := byID[p.SPDXID]; dup {
			t.Errorf("SPDXID %s twice", p.SPDXID)
		}
		byID[p.SPDXID] = p
	}
	app := doc.Packages[0]
	if app.Name != filepath.Base(bin) || app.PrimaryPurpose != "APPLICATION" || len(app.Checksums) != 1 || len(app.Checksums[0].Value) != 64 {
		t.Errorf("first package is not the binary with its SHA-256: %+v", app)
	}
	deps := map[string]bool{}
	for _, r := range doc.Relationships {
		if r.Element == app.SPDXID && r.Type == "DEPENDS_ON" {
			deps[byID[r.Related].ExternalRefs[0].Locator] = true
		}
	}
	want := []string{"pkg:golang/stdlib@" + info.GoVersion}
	for _, m := range info.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		want = append(want, "pkg:golang/"+m.Path+"@"+m.Version)
	}
	for _, w := range want {
		if !deps[w] {
			t.Errorf("the binary does not depend on %s in the document", w)
		}
	}
	if len(deps) != len(want) {
		t.Errorf("the binary depends on %d packages in the document, its build information records %d", len(deps), len(want))
	}

	if code := run(args, os.Stdout, &stderr); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, stderr.String())
	}
	second, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("two runs over the same binary differ")
	}
}
