package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/probecmd"
)

func runValidate(t *testing.T, args ...string) (code probecmd.ExitCode, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code = runMain(context.Background(), append([]string{"validate"}, args...), e)
	return code, out.String(), errOut.String()
}

func TestValidateValid(t *testing.T) {
	path := writeConfig(t, `
listeners:
  - name: public
    address: ":8080"
  - name: db
    address: ":5432"
    protocol: tcp
    cluster: pg
routes:
  - name: all
    cluster: app
clusters:
  - name: app
    endpoints: ["127.0.0.1:3000"]
  - name: pg
    endpoints: ["127.0.0.1:5433"]
`)
	code, stdout, stderr := runValidate(t, "-config", path)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want := regexp.MustCompile(`^ok: ` + regexp.QuoteMeta(path) + ` \(version [0-9a-f]{16}, 2 listeners, 1 routes, 2 clusters\)\n$`)
	if !want.MatchString(stdout) {
		t.Errorf("stdout %q does not match %s", stdout, want)
	}
}

func TestValidateDefault(t *testing.T) {
	code, stdout, stderr := runValidate(t)
	if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "ok: embedded:default.yaml (version ") ||
		!strings.HasSuffix(stdout, ", 1 listeners, 1 routes, 1 clusters)\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestValidateInvalid(t *testing.T) {
	path := writeConfig(t, `listeners:
  - name: public
    address: ":8080"
    tls:
      cert_file: missing.crt
      key_file: missing.key
routes:
  - name: all
    cluster: ap
clusters:
  - name: app
    endpoints: ["127.0.0.1:3000"]
`)
	code, stdout, stderr := runValidate(t, "-config", path)
	if code != exitFailure || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	dir := filepath.Dir(path)
	want := []string{
		path + `:5:7: listeners[0].tls.cert_file: open ` + filepath.Join(dir, "missing.crt") + `: no such file or directory`,
		path + `:6:7: listeners[0].tls.key_file: open ` + filepath.Join(dir, "missing.key") + `: no such file or directory`,
		path + `:9:5: routes[0].cluster: no cluster named "ap" (did you mean "app"?); clusters: app`,
		`proxy validate: ` + path + `: 3 errors`,
	}
	if got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(want, "\n"))
	}
}

func TestValidateUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	code, _, stderr := runValidate(t, "-config", missing)
	if code != exitFailure || !strings.Contains(stderr, missing) || !strings.Contains(stderr, "no such file") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestValidateUsage(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-config"}} {
		if code, _, _ := runValidate(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
