package httpascii

import (
	"math/rand/v2"
	"net/url"
	"reflect"
	"testing"
)

// ParseRequestURI gives what url.ParseRequestURI gives, the URL and the error, whether it
// takes its shortcut or not: for a table of targets, and for 20,000 random ones made of the
// bytes that matter (escapes, the query, the fragment, bytes a path escapes, controls).
func TestParseRequestURIMatchesNetURL(t *testing.T) {
	targets := []string{
		"/", "/a/b", "/a/b?", "/a/b?x=1&y=2", "/?", "/??", "/a?b?c", "/a%2Fb", "/a%zz", "/a b",
		"/a#frag", "/a?b#c", "/caf\xc3\xa9", "/~user/$&+,;=:@-_.", "/a!b", "/(x)", "/a*b", "/a'b",
		"//double", "/a/../b", "/a?q=%20", "/a?q= x", "*", "", "a/b", "http://h/p", "/\x00", "/a\x7f",
		"/a?\x7f", "/a?#", "/%", "/%2", "/a?%zz",
	}
	alphabet := []byte("/a?#%2Fz! ~$&+,;=:@-_.()*'\"<>[]\\^`{|}\x00\x7f\xc3")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, 1+rng.IntN(12))
		b[0] = '/'
		for i := 1; i < len(b); i++ {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		targets = append(targets, string(b))
	}
	shortcuts := 0
	for _, raw := range targets {
		want, wantErr := url.ParseRequestURI(raw)
		var u url.URL
		got, err := ParseRequestURI(raw, &u)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, url.ParseRequestURI's %v", raw, err, wantErr)
		}
		if err != nil {
			continue
		}
		if got == &u {
			shortcuts++
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %#v, url.ParseRequestURI's %#v", raw, got, want)
		}
	}
	if shortcuts < 10 {
		t.Fatalf("the shortcut parsed %d targets: the test no longer exercises it", shortcuts)
	}
}
