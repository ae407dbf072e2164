package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/spec"
)

var (
	normalizeAll = pathNormalizer{Normalize: true, MergeSlashes: true, EscapedSlashes: spec.RejectEscapedSlashes}
	rfcOnly      = pathNormalizer{Normalize: true}
)

// TestNormalizeRFC3986Examples runs the paths of RFC 3986 section 5.4 through
// remove_dot_segments: each reference is merged with the base path "/b/c/d;p" as section
// 5.2.3 does ("/b/c/" + reference), or taken as it is when it starts with '/'. The expected
// paths are the RFC's, except where a ".." climbs above the root: the RFC drops it, the
// listener refuses the request.
func TestNormalizeRFC3986Examples(t *testing.T) {
	tests := []struct{ ref, want string }{
		// 5.4.1 Normal Examples
		{"g", "/b/c/g"},
		{"./g", "/b/c/g"},
		{"g/", "/b/c/g/"},
		{"/g", "/g"},
		{";x", "/b/c/;x"},
		{"g;x", "/b/c/g;x"},
		{".", "/b/c/"},
		{"./", "/b/c/"},
		{"..", "/b/"},
		{"../", "/b/"},
		{"../g", "/b/g"},
		{"../..", "/"},
		{"../../", "/"},
		{"../../g", "/g"},
		// 5.4.2 Abnormal Examples
		{"../../../g", "reject"}, // RFC: /g
		{"../../../../g", "reject"},
		{"/./g", "/g"},
		{"/../g", "reject"}, // RFC: /g
		{"g.", "/b/c/g."},
		{".g", "/b/c/.g"},
		{"g..", "/b/c/g.."},
		{"..g", "/b/c/..g"},
		{"./../g", "/b/g"},
		{"./g/.", "/b/c/g/"},
		{"g/./h", "/b/c/g/h"},
		{"g/../h", "/b/c/h"},
		{"g;x=1/./y", "/b/c/g;x=1/y"},
		{"g;x=1/../y", "/b/c/y"},
	}
	for _, tt := range tests {
		p := tt.ref
		if !strings.HasPrefix(p, "/") {
			p = "/b/c/" + p
		}
		got, redirect, err := rfcOnly.apply(p)
		if tt.want == "reject" {
			if !errors.Is(err, errAboveRoot) {
				t.Errorf("%q (%s): got %q, %v; want errAboveRoot", tt.ref, p, got, err)
			}
			continue
		}
		if err != nil || redirect || got != tt.want {
			t.Errorf("%q (%s): got %q, redirect %t, %v; want %q", tt.ref, p, got, redirect, err, tt.want)
		}
	}
}

// TestNormalizePath covers each option alone and together, as Envoy documents them:
// normalize_path (RFC 3986 section 6.2.2 percent-encoding normalization and dot segments,
// "%2E" being a dot), merge_slashes ("//dir///file" matches a route for "/dir"), and the four
// path_with_escaped_slashes_action values for %2F and %5C in either case.
func TestNormalizePath(t *testing.T) {
	keep := pathNormalizer{Normalize: true, MergeSlashes: true}
	merge := pathNormalizer{MergeSlashes: true}
	redirect := pathNormalizer{Normalize: true, MergeSlashes: true, EscapedSlashes: spec.UnescapeAndRedirect}
	forward := pathNormalizer{Normalize: true, MergeSlashes: true, EscapedSlashes: spec.UnescapeAndForward}
	forwardOnly := pathNormalizer{EscapedSlashes: spec.UnescapeAndForward}
	tests := []struct {
		name     string
		n        pathNormalizer
		in, want string
		redirect bool
		err      error
	}{
		{"already normal", normalizeAll, "/api/v1/users", "/api/v1/users", false, nil},
		{"root", normalizeAll, "/", "/", false, nil},
		{"options star", normalizeAll, "*", "*", false, nil},
		{"dot dot", normalizeAll, "/public/../admin", "/admin", false, nil},
		{"encoded dot dot", normalizeAll, "/public/%2e%2E/admin", "/admin", false, nil},
		{"encoded single dot", normalizeAll, "/a/%2E/b", "/a/b", false, nil},
		{"dots inside a segment are kept", normalizeAll, "/a/..b/c../.d", "/a/..b/c../.d", false, nil},
		{"trailing dot dot", normalizeAll, "/a/b/..", "/a/", false, nil},
		{"above the root", normalizeAll, "/..", "", false, errAboveRoot},
		{"above the root later", normalizeAll, "/a/../../etc/passwd", "", false, errAboveRoot},
		{"unreserved decoded", normalizeAll, "/%7Euser/%41%62%2D%5F%30", "/~user/Ab-_0", false, nil},
		{"hex upper-cased", normalizeAll, "/a%3ab%c3%a9", "/a%3Ab%C3%A9", false, nil},
		{"reserved stays encoded", normalizeAll, "/a%3Fb%23c%25", "/a%3Fb%23c%25", false, nil},
		{"encoded NUL", normalizeAll, "/a%00b", "", false, errEncodedNUL},
		{"bad escape", normalizeAll, "/a%zz", "", false, errPercentEncoded},
		{"truncated escape", normalizeAll, "/a%4", "", false, errPercentEncoded},
		{"merge slashes", normalizeAll, "//dir///file", "/dir/file", false, nil},
		{"merge keeps a trailing slash", normalizeAll, "/dir//", "/dir/", false, nil},
		{"only slashes", normalizeAll, "///", "/", false, nil},
		{"normalize before merge, as Envoy", normalizeAll, "/a//../b", "/a/b", false, nil},
		{"no merge without merge_slashes", rfcOnly, "/a//b", "/a//b", false, nil},
		{"merge alone leaves dots and escapes", merge, "//a/../%7e", "/a/../%7e", false, nil},
		{"reject %2F", normalizeAll, "/a%2Fb", "", false, errEscapedSlash},
		{"reject %2f", normalizeAll, "/a%2fb", "", false, errEscapedSlash},
		{"reject %5C", normalizeAll, "/a%5Cb", "", false, errEscapedSlash},
		{"reject %5c", normalizeAll, "/a%5cb", "", false, errEscapedSlash},
		{"keep %2F, hex upper-cased", keep, "/a%2fb/%5c", "/a%2Fb/%5C", false, nil},
		{"keep: %2F..%2F is one segment", keep, "/public%2F..%2Fadmin", "/public%2F..%2Fadmin", false, nil},
		{"forward unescapes then normalizes", forward, "/public%2F..%2Fadmin", "/admin", false, nil},
		{"forward: backslash is a separator", forward, "/a%5Cb", "/a/b", false, nil},
		{"forward without normalize", forwardOnly, "/a%2F..%2Fb", "/a/../b", false, nil},
		{"redirect", redirect, "/a%2fb", "/a/b", true, nil},
		{"redirect only for escaped slashes", redirect, "/a/../b", "/b", false, nil},
		{"redirect still rejects above the root", redirect, "/a%2F..%2F..%2Fb", "", false, errAboveRoot},
		{"off", pathNormalizer{}, "/a/..//%2F%7e", "/a/..//%2F%7e", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, redirect, err := tt.n.apply(tt.in)
			if got != tt.want || redirect != tt.redirect || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Errorf("apply(%q) = %q, redirect %t, %v; want %q, %t, %v", tt.in, got, redirect, err, tt.want, tt.redirect, tt.err)
			}
			if err != nil {
				return
			}
			// Normalizing is idempotent: the upstream, normalizing again, finds the same path.
			if again, _, err := tt.n.apply(got); again != got || err != nil {
				t.Errorf("apply(apply(%q)) = %q, %v; want %q", tt.in, again, err, got)
			}
		})
	}
}

// TestNormalizePathRequest checks what the handler's step does to a request: the decoded
// path routes match, the escaped path that goes upstream, and the query string, byte for
// byte.
func TestNormalizePathRequest(t *testing.T) {
	tests := []struct {
		target, path, upstream string
	}{
		{"/public/../admin?q=%2F..%2f&x=/../", "/admin", "/admin?q=%2F..%2f&x=/../"},
		{"/a/%7e/%e2%82%ac/b%3a?", "/a/~/€/b:", "/a/~/%E2%82%AC/b%3A?"},
		{"/x//y?a=b", "/x/y", "/x/y?a=b"},
		{"/plain?%zz", "/plain", "/plain?%zz"},
	}
	for _, tt := range tests {
		r, err := http.NewRequest("GET", "http://h"+tt.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if redirect, err := normalizeAll.normalizePath(r); redirect || err != nil {
			t.Fatalf("%s: redirect %t, %v", tt.target, redirect, err)
		}
		if r.URL.Path != tt.path || r.URL.RequestURI() != tt.upstream {
			t.Errorf("%s: path %q, upstream target %q; want %q, %q", tt.target, r.URL.Path, r.URL.RequestURI(), tt.path, tt.upstream)
		}
	}
}

// TestNormalizePathNoAllocs: an already-normal path, the common case, costs no allocation.
func TestNormalizePathNoAllocs(t *testing.T) {
	u, err := url.ParseRequestURI("/api/v1/users/42/orders?page=2&sort=desc")
	if err != nil {
		t.Fatal(err)
	}
	r := &http.Request{URL: u}
	allocs := testing.AllocsPerRun(1000, func() {
		if redirect, err := normalizeAll.normalizePath(r); redirect || err != nil {
			t.Fatal(redirect, err)
		}
	})
	if allocs != 0 {
		t.Errorf("normalizing an already-normal path allocates %.1f times; want 0", allocs)
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, p := range []string{"/api/v1/users/42/orders", "/api/v1/../v2//users/%7e42"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				normalizeAll.apply(p)
			}
		})
	}
}

// FuzzNormalizePath checks the contract for any path: the fast check never skips a path that
// rebuilding would change, the result is normal (no dot segment, no doubled slash, no
// lower-case or unreserved percent-encoding, no escaped slash), and normalizing again
// changes nothing.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x//", "/%2e%2E/", "/a%2fb", "/%7e%3a", "/a/./b/..", "/a%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if p == "" || p[0] != '/' {
			p = "/" + p
		}
		for _, n := range []pathNormalizer{normalizeAll, {Normalize: true, MergeSlashes: true, EscapedSlashes: spec.UnescapeAndForward}, rfcOnly, {MergeSlashes: true}} {
			got, _, err := n.apply(p)
			if err != nil {
				continue
			}
			if n.isNormal(got) {
				if again, err := n.rebuild(got); err != nil || again != got {
					t.Fatalf("%+v: isNormal(%q) but rebuild gives %q, %v", n, got, again, err)
				}
			} else {
				t.Fatalf("%+v: apply(%q) = %q, which is not normal", n, p, got)
			}
			if n.EscapedSlashes != spec.KeepEscapedSlashes && hasEscapedSlash(got) {
				t.Fatalf("%+v: apply(%q) = %q keeps an escaped slash", n, p, got)
			}
		}
	})
}
