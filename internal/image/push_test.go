package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// authRegistry serves go-containerregistry's in-process registry on 127.0.0.1 behind basic
// authentication, as a private registry would be.
func authRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// dockerConfig points the default keychain at a config.json with credentials for host.
func dockerConfig(t *testing.T, host, user, pass string) {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

// TestPushPullByDigest pushes the built index with the Docker configuration's credentials,
// pulls it back by the digest Push printed, and compares every manifest, config and layer.
func TestPushPullByDigest(t *testing.T) {
	b := built(t)
	host := authRegistry(t, "ci", "s3cret")
	dockerConfig(t, host, "ci", "s3cret")
	ctx := context.Background()
	ref := host + "/gangway/proxy:v0.1.0-test"

	if _, err := Push(ctx, b.Index, ref, authn.NewMultiKeychain(), nil); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") {
		t.Fatalf("push without credentials: %v, want 401", err)
	}
	d, err := Push(ctx, b.Index, ref, Keychain(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := digestOf(t, b.Index)
	if d.String() != host+"/gangway/proxy@"+want.String() {
		t.Fatalf("Push returned %s, want %s/gangway/proxy@%s", d, host, want)
	}

	auth := remote.WithAuthFromKeychain(Keychain())
	pulled, err := remote.Index(d, auth)
	if err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, pulled); got != want {
		t.Fatalf("pulled index %s, pushed %s", got, want)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := remote.Head(tag, auth)
	if err != nil {
		t.Fatal(err)
	}
	if tagged.Digest != want {
		t.Errorf("the tag points at %s, want %s", tagged.Digest, want)
	}
	for i, img := range b.Images {
		got, err := pulled.Image(digestOf(t, img))
		if err != nil {
			t.Fatalf("%s: %v", b.Platforms[i], err)
		}
		rawGot, _ := got.RawConfigFile()
		rawWant, _ := img.RawConfigFile()
		if string(rawGot) != string(rawWant) {
			t.Errorf("%s: the pulled config differs", b.Platforms[i])
		}
		gl, _ := got.Layers()
		wl, _ := img.Layers()
		if len(gl) != len(wl) {
			t.Fatalf("%s: %d layers pulled, %d pushed", b.Platforms[i], len(gl), len(wl))
		}
		for j := range wl {
			rc, err := gl[j].Compressed()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if "sha256:"+sha256Hex(data) != digestOf(t, wl[j]).String() {
				t.Errorf("%s: layer %d: the pulled bytes differ from the pushed layer", b.Platforms[i], j)
			}
		}
	}
}

func TestPushRejectsReferenceWithoutTag(t *testing.T) {
	b := built(t)
	for _, ref := range []string{"127.0.0.1:1/gangway/proxy", "UPPER/case:tag"} {
		if _, err := Push(context.Background(), b.Index, ref, authn.NewMultiKeychain(), nil); err == nil || !strings.Contains(err.Error(), "IMAGE="+ref) {
			t.Errorf("Push(%q): %v, want an error naming IMAGE", ref, err)
		}
	}
}

func TestECRRegion(t *testing.T) {
	for host, want := range map[string]string{
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com":          "eu-west-1",
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com": "us-gov-west-1",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":      "cn-north-1",
		"public.ecr.aws": "",
		"ghcr.io":        "",
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.com": "",
	} {
		got, ok := ECRRegion(host)
		if got != want || ok != (want != "") {
			t.Errorf("ECRRegion(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
}

// TestECRKeychain resolves an ECR registry through the default AWS credential chain against
// an ECR endpoint on 127.0.0.1 (AWS_ENDPOINT_URL_ECR), and leaves other registries to the
// Docker configuration.
func TestECRKeychain(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if got := r.Header.Get("X-Amz-Target"); got != "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" {
			t.Errorf("X-Amz-Target %q", got)
		}
		if got := r.Header.Get("Authorization"); !strings.Contains(got, "Credential=AKIDGANGWAYTEST/") || !strings.Contains(got, "/eu-west-1/ecr/aws4_request") {
			t.Errorf("request not signed for ecr in eu-west-1 with the environment's key: %q", got)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"authorizationData":[{"authorizationToken":"`+base64.StdEncoding.EncodeToString([]byte("AWS:ecr-password"))+`","expiresAt":1.8e9,"proxyEndpoint":"https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"}]}`)
	}))
	defer srv.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_ECR":        srv.URL,
		"AWS_ACCESS_KEY_ID":           "AKIDGANGWAYTEST",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "us-east-1", // the registry's region wins
		"AWS_CONFIG_FILE":             filepath.Join(t.TempDir(), "none"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"DOCKER_CONFIG":               t.TempDir(),
	} {
		t.Setenv(k, v)
	}
	kc := Keychain()
	for range 2 {
		a, err := kc.Resolve(name.MustParseReference("123456789012.dkr.ecr.eu-west-1.amazonaws.com/gangway-proxy:v1").Context())
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != "AWS" || cfg.Password != "ecr-password" {
			t.Fatalf("ECR credentials %q/%q", cfg.Username, cfg.Password)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("GetAuthorizationToken called %d times, want once per registry", n)
	}
	a, err := kc.Resolve(name.MustParseReference("ghcr.io/gangway-ecs/gangway-proxy:v1").Context())
	if err != nil || a != authn.Anonymous {
		t.Errorf("ghcr.io resolved to %v, %v; want anonymous", a, err)
	}
}
