package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gangway-ecs/gangway/internal/image"
)

func runCmd(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: gangway-image build|push"},
		{[]string{"tag"}, `unknown command "tag"`},
		{[]string{"build", "-out", "x"}, "-version, -revision and -created"},
		{[]string{"push"}, "make image-push IMAGE=..."},
		// A flag's value name is the first backquoted word of its usage: a placeholder,
		// never a phrase.
		{[]string{"push", "-h"}, "  -layout DIR\n"},
	} {
		t.Setenv("SOURCE_DATE_EPOCH", "")
		code, _, stderr := runCmd(tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
	code, _, stderr := runCmd("build", "-version", "v1", "-revision", "abc", "-created", "yesterday")
	if code != exitError || !strings.Contains(stderr, `-created "yesterday": want Unix seconds`) {
		t.Errorf("bad -created: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCmd("push", "-layout", filepath.Join(t.TempDir(), "none"), "-image", "127.0.0.1:1/x:y")
	if code != exitError || !strings.Contains(stderr, "run `make image` first") {
		t.Errorf("push without a layout: exit %d, %q", code, stderr)
	}
}

// TestPushPrintsDigest pushes a layout to a registry on 127.0.0.1 and expects the line to
// pin: repository@sha256:..., which resolves to the index pushed.
func TestPushPrintsDigest(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := image.WriteLayout(dir, idx, "v1"); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	code, stdout, stderr := runCmd("push", "-layout", dir, "-image", host+"/gangway/proxy:v1")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d, _ := idx.Digest()
	want := host + "/gangway/proxy@" + d.String()
	if strings.TrimSpace(stdout) != want {
		t.Fatalf("printed %q, want %q", stdout, want)
	}
	ref, err := name.NewDigest(want)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Index(ref); err != nil {
		t.Fatalf("the printed reference does not resolve: %v", err)
	}
}
