package h2server

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headers writes one header block of exactly the given fields, as a HEADERS frame.
func (c *rawConn) headers(id uint32, end bool, fields ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hb.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		c.he.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hb.Bytes(), EndStream: end, EndHeaders: true})
}

// send is headers, failing the test on a write error.
func (c *rawConn) send(id uint32, end bool, fields ...string) {
	c.t.Helper()
	if err := c.headers(id, end, fields...); err != nil {
		c.t.Fatal(err)
	}
}

// TestMalformedRequestFields sends, on one connection, requests whose header fields
// RFC 9113 §8.2 and §8.3 call malformed, each of which must reset its stream with
// PROTOCOL_ERROR without reaching the handler, and requests that are well formed,
// which must reach it. A malformed :method or :path would otherwise be written into
// an upstream HTTP/1.1 request line as it is.
func TestMalformedRequestFields(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.RequestURI+" "+r.Host)
		mu.Unlock()
	})})
	base := func(over ...string) []string {
		f := []string{":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", "/"}
		for i := 0; i+1 < len(over); i += 2 {
			replaced := false
			for j := 0; j < len(f); j += 2 {
				if f[j] == over[i] {
					f[j+1], replaced = over[i+1], true
				}
			}
			if !replaced {
				f = append(f, over[i], over[i+1])
			}
		}
		return f
	}
	without := func(name string) []string {
		var f []string
		b := base()
		for i := 0; i < len(b); i += 2 {
			if b[i] != name {
				f = append(f, b[i], b[i+1])
			}
		}
		return f
	}
	malformed := []struct {
		name   string
		fields []string
	}{
		{"method with a request line", base(":method", "GET /admin HTTP/1.1")},
		{"method with a tab", base(":method", "GET\t/admin")},
		{"method with separators", base(":method", "G(E)T")},
		{"empty method", base(":method", "")},
		{"method with non-ASCII", base(":method", "G\xc3\x89T")},
		{"no method", without(":method")},
		{"empty path", base(":path", "")},
		{"path without slash", base(":path", "admin")},
		{"path with a space", base(":path", "/a HTTP/1.1\r\nX: y")},
		{"path with a tab", base(":path", "/a\tb")},
		{"path with DEL", base(":path", "/a\x7f")},
		{"path with non-ASCII", base(":path", "/caf\xc3\xa9")},
		{"path with a fragment", base(":path", "/a#b")},
		{"asterisk for GET", base(":path", "*")},
		{"absolute-form path", base(":path", "http://other/")},
		{"no path", without(":path")},
		{"empty scheme", base(":scheme", "")},
		{"scheme with a digit first", base(":scheme", "1http")},
		{"scheme with a colon", base(":scheme", "http:")},
		{"scheme with a space", base(":scheme", "ht tp")},
		{"no scheme", without(":scheme")},
		{"authority with userinfo", base(":authority", "user@example.com")},
		{"authority with a space", base(":authority", "a b")},
		{"authority with a path", base(":authority", "example.com/x")},
		{"authority with a control", base(":authority", "a\x01b")},
		{"Host with userinfo", append(without(":authority"), "host", "user@example.com")},
		{"two Host fields", append(without(":authority"), "host", "a", "host", "b")},
		{"method twice", append(base(), ":method", "GET")},
		{"pseudo after regular", append(base("x-a", "1"), ":authority", "b")},
		{"status in a request", base(":status", "200")},
		{"unknown pseudo", base(":foo", "bar")},
		{"protocol without extended CONNECT", base(":protocol", "websocket")},
		{"CONNECT with a path", []string{":method", "CONNECT", ":authority", "example.com:443", ":path", "/"}},
		{"CONNECT without a port", []string{":method", "CONNECT", ":authority", "example.com"}},
		{"CONNECT without authority", []string{":method", "CONNECT"}},
		{"uppercase name", base("X-Upper", "1")},
		{"name with a space", base("x y", "1")},
		{"name with a colon", base("x:y", "1")},
		{"empty name", base("", "1")},
		{"value with CR", base("x-a", "a\rb")},
		{"value with LF", base("x-a", "a\nb")},
		{"value with NUL", base("x-a", "a\x00b")},
		{"value with leading space", base("x-a", " a")},
		{"value with trailing tab", base("x-a", "a\t")},
		{"connection-specific field", base("connection", "close")},
		{"TE other than trailers", base("te", "gzip")},
	}
	wellFormed := []struct {
		name   string
		fields []string
		want   string
	}{
		{"plain GET", base(), "GET / example.com"},
		{"extension method", base(":method", "PROPFIND"), "PROPFIND / example.com"},
		{"OPTIONS asterisk", base(":method", "OPTIONS", ":path", "*"), ""}, // the server answers it
		{"path with query", base(":path", "/a/b?c=d&e=%20"), "GET /a/b?c=d&e=%20 example.com"},
		{"IPv6 authority with port", base(":authority", "[::1]:8080"), "GET / [::1]:8080"},
		{"Host for authority", append(without(":authority"), "host", "h.example:81"), "GET / h.example:81"},
		{"value with inner space and obs-text", base("x-a", "a b\x80"), "GET / example.com"},
		{"empty value", base("x-a", ""), "GET / example.com"},
		{"CONNECT", []string{":method", "CONNECT", ":authority", "example.com:443"}, "CONNECT example.com:443 example.com:443"},
	}

	c := dialRaw(t, addr)
	id := uint32(1)
	for _, tc := range malformed {
		c.send(id, true, tc.fields...)
		f, err := c.next()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); !ok || rst.StreamID != id || rst.ErrCode != http2.ErrCodeProtocol {
			t.Errorf("%s: got %v, want RST_STREAM %d PROTOCOL_ERROR", tc.name, f, id)
		}
		id += 2
	}
	var want []string
	for _, tc := range wellFormed {
		c.send(id, true, tc.fields...)
		f, err := c.next()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if h, ok := f.(*http2.MetaHeadersFrame); !ok || h.PseudoValue("status") != "200" {
			t.Errorf("%s: got %v, want a 200 response", tc.name, f)
		}
		if tc.want != "" {
			want = append(want, tc.want)
		}
		id += 2
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("the handler saw\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}
