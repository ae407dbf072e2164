package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// TestPathNormalizationThroughListener sends raw request targets through real listeners to
// two recording upstreams, "public" behind a route for /public and "admin" behind a route
// for /admin, and checks that the route chosen and the target the upstream receives agree:
// /public/../admin is never served by the public route's upstream as /admin (which it was
// when paths went upstream as the client wrote them), and the query string arrives byte for
// byte.
func TestPathNormalizationThroughListener(t *testing.T) {
	sp, pub, adm := publicAdminSpec(t)
	sp.Listeners = []spec.Listener{
		{Name: "strict", Address: "127.0.0.1:0", Paths: spec.PathNormalization(normalizeAll)},
		{Name: "redirect", Address: "127.0.0.1:0", Paths: spec.PathNormalization{Normalize: true, MergeSlashes: true, EscapedSlashes: spec.UnescapeAndRedirect}},
		{Name: "forward", Address: "127.0.0.1:0", Paths: spec.PathNormalization{Normalize: true, MergeSlashes: true, EscapedSlashes: spec.UnescapeAndForward}},
		{Name: "keep", Address: "127.0.0.1:0", Paths: spec.PathNormalization{Normalize: true, MergeSlashes: true}},
		{Name: "off", Address: "127.0.0.1:0"},
	}
	srv := startServer(t, sp)

	tests := []struct {
		listener, target, header string
		status                   int
		backend                  *backend // nil: no upstream may see the request
		upstream                 string   // the request target the backend receives
		location                 string
	}{
		{"strict", "/public/../admin?x=%2F..&y=a//b&z=%7e", "", 200, adm, "/admin?x=%2F..&y=a//b&z=%7e", ""},
		{"strict", "/public/%2e%2E/admin", "", 200, adm, "/admin", ""},
		{"strict", "/public/./x/../y", "", 200, pub, "/public/y", ""},
		{"strict", "//admin///users", "", 200, adm, "/admin/users", ""},
		{"strict", "/public/%7Euser/%3a", "", 200, pub, "/public/~user/%3A", ""},
		{"strict", "/../admin", "", 400, nil, "", ""},
		{"strict", "/public/../../admin", "", 400, nil, "", ""},
		{"strict", "/public%2F..%2Fadmin", "", 400, nil, "", ""},
		{"strict", "/public/a%00b", "", 400, nil, "", ""},
		{"redirect", "/public%2F..%2Fadmin?q=1", "", 307, nil, "", "/admin?q=1"},
		{"redirect", "/public%2Fx", "Content-Type: application/grpc\r\n", 400, nil, "", ""},
		{"redirect", "/public/../admin", "", 200, adm, "/admin", ""},
		{"forward", "/public%2F..%2Fadmin", "", 200, adm, "/admin", ""},
		{"forward", "/public%5Cx", "", 200, pub, "/public/x", ""},
		{"keep", "/public%2f..%2Fadmin", "", 200, pub, "/public%2F..%2Fadmin", ""},
		// Without normalization the path goes as it came: the opt-out is Envoy's default.
		{"off", "/public/../admin", "", 200, pub, "/public/../admin", ""},
	}
	for _, tt := range tests {
		t.Run(tt.listener+" "+tt.target, func(t *testing.T) {
			pubHits, admHits := pub.hits.Load(), adm.hits.Load()
			resp, body := rawGet(t, srv.Addr(tt.listener), tt.target, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if loc := resp.Header.Get("Location"); loc != tt.location {
				t.Errorf("Location %q, want %q", loc, tt.location)
			}
			gotPub, gotAdm := pub.hits.Load()-pubHits, adm.hits.Load()-admHits
			switch tt.backend {
			case nil:
				if gotPub+gotAdm != 0 {
					t.Fatalf("an upstream received the request (public %d, admin %d)", gotPub, gotAdm)
				}
				if !strings.HasPrefix(string(body), "gangway: ") {
					t.Errorf("body %q is not the proxy's", body)
				}
			default:
				other := gotAdm
				if tt.backend == adm {
					other = gotPub
				}
				if other != 0 || gotPub+gotAdm != 1 {
					t.Fatalf("public received %d, admin %d; want one request at %s only", gotPub, gotAdm, tt.backend.name)
				}
				if got := tt.backend.lastReq.Load().RequestURI; got != tt.upstream {
					t.Errorf("%s received %q, want %q", tt.backend.name, got, tt.upstream)
				}
			}
		})
	}
}

// TestPathNormalizationChangesOnApply: a listener whose path settings change is replaced, so
// that new connections get the new settings.
func TestPathNormalizationChangesOnApply(t *testing.T) {
	sp, _, _ := publicAdminSpec(t)
	srv := startServer(t, sp)
	send := func() string {
		_, body := rawGet(t, srv.Addr("public"), "/public/../admin", "")
		return string(body)
	}
	if got := send(); got != "public HTTP/1.1 /public/../admin" {
		t.Fatalf("without normalization: %q", got)
	}
	next := *sp
	next.Version = "v2"
	next.Listeners = []spec.Listener{sp.Listeners[0]}
	next.Listeners[0].Paths = spec.PathNormalization(normalizeAll)
	if err := srv.Apply(&next); err != nil {
		t.Fatal(err)
	}
	if got := send(); got != "admin HTTP/1.1 /admin" {
		t.Fatalf("after Apply with normalization: %q", got)
	}
}

// publicAdminSpec starts two recording upstreams and returns a spec that routes /admin to
// "admin" and /public to "public".
func publicAdminSpec(t *testing.T) (sp *spec.Spec, pub, adm *backend) {
	pub, adm = startBackend(t, "public"), startBackend(t, "admin")
	sp = testSpec(
		[]spec.Route{prefixRoute("admin", "/admin", "admin"), prefixRoute("public", "/public", "public")},
		[]spec.Cluster{{Name: "public", Endpoints: []string{pub.addr}}, {Name: "admin", Endpoints: []string{adm.addr}}},
	)
	return sp, pub, adm
}

// rawGet sends GET target as written, with extra header lines, on a new connection.
func rawGet(t *testing.T, addr, target, header string) (*http.Response, []byte) {
	t.Helper()
	c := rawConn(t, addr)
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n"+header+"Connection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// TestPathNormalizationOverHTTP2: an HTTP/2 request's :path is normalized as an HTTP/1
// request target is.
func TestPathNormalizationOverHTTP2(t *testing.T) {
	sp, pub, adm := publicAdminSpec(t)
	sp.Listeners[0].H2C = true
	sp.Listeners[0].Paths = spec.PathNormalization(normalizeAll)
	srv := startServer(t, sp)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for _, tt := range []struct {
		path   string
		status int
		want   string
	}{
		{"/public/../admin?a=%2f", 200, "admin HTTP/1.1 /admin"},
		{"/public//%2e/x", 200, "public HTTP/1.1 /public/x"},
		{"/public/../../admin", 400, ""},
	} {
		resp, err := c.Get(srv.url("public", tt.path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != tt.status || (tt.want != "" && string(body) != tt.want) {
			t.Errorf("%s: %s %d %q; want HTTP/2 %d %q", tt.path, resp.Proto, resp.StatusCode, body, tt.status, tt.want)
		}
	}
	if got := adm.lastReq.Load().RequestURI; got != "/admin?a=%2f" {
		t.Errorf("admin received %q, want %q", got, "/admin?a=%2f")
	}
	if pub.saw("/public/../../admin") || pub.hits.Load() != 1 {
		t.Errorf("public received %d requests", pub.hits.Load())
	}
}
