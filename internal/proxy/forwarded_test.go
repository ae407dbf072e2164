package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// A client gets an upstream's simple answer written from its field lines as they came (the
// servers' WriteForwarded) on a route that changes no response header, and from a
// header map otherwise. Both must give the client the same answer: the same status, the
// same fields once names are compared in any case and values trimmed (the order and the
// spelling may differ), a Date either way, and the same body, over HTTP/1.1 and to an
// HTTP/1.0 client, and over HTTP/2 (names in lower case there). The second route sets X-Map,
// which is dropped before the comparison.
func TestForwardedFieldsMatchHeaderMap(t *testing.T) {
	answers := []struct{ status, fields, body string }{
		{"200 OK", "Server: nginx\r\nDate: Mon, 07 Dec 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: keep-alive\r\n", "hello\n"},
		{"200 OK", "content-type: text/plain\r\ncontent-length: 2\r\nkeep-alive: timeout=5\r\nx-lower: a\r\n", "ok"},
		{"200 OK", "Content-Length: 2\r\nConnection: X-Secret, close\r\nX-Secret: s\r\nX-Kept: k\r\n", "ok"},
		{"200 OK", "Content-Length: 15\r\n", "<html></html>\r\n"},                               // sniffed
		{"200 OK", "Content-Length: 3\r\nContent-Encoding: gzip\r\n", "abc"},                    // not sniffed
		{"200 OK", "Content-Length: 3\r\nContent-Encoding:\r\nContent-Encoding: br\r\n", "abc"}, // the first is empty: sniffed
		{"200 OK", "Content-Length: 0\r\n", ""},
		{"404 Not Found", "Content-Type: text/plain\r\nContent-Length: 4\r\n", "gone"},
		{"503 Service Unavailable", "Retry-After: 5\r\nContent-Length: 0\r\n", ""},
		{"200 OK", "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Spaces:   padded \t \r\nContent-Length: 1\r\nVary: a\r\nVary: b\r\n", "x"},
		{"200 OK", "Proxy-Authenticate: Basic\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTE: trailers\r\nContent-Length: 1\r\n", "x"},
		{"200 OK", "Content-Type: text/event-stream\r\nContent-Length: 6\r\n", "data:\n"},
		{"299 Custom", "Content-Length: 1\r\n", "x"},
		// Left to http.ReadResponse, so through the map on both routes: the names a
		// Connection that says close lists are not forwarded either.
		{"200 OK", "Transfer-Encoding: chunked\r\nConnection: X-Secret, close\r\nX-Secret: s\r\n", "2\r\nok\r\n0\r\n\r\n"},
		// A head over the upstream reader's 4 KiB buffer: left to http.ReadResponse too.
		{"200 OK", "X-Pad: " + strings.Repeat("p", 6000) + "\r\nContent-Length: 2\r\nConnection: X-Secret, close\r\nX-Secret: s\r\n", "ok"},
	}
	addr, _ := startRawUpstream(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			i, _ := strconv.Atoi(req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:])
			a := answers[i]
			fmt.Fprintf(c, "HTTP/1.1 %s\r\n%s\r\n%s", a.status, a.fields, a.body)
		}
	})
	mapRoute := prefixRoute("map", "/map/", "app")
	mapRoute.SetResponseHeaders = map[string]string{"X-Map": "1"}
	sp := testSpec([]spec.Route{prefixRoute("raw", "/raw/", "app"), mapRoute}, []spec.Cluster{{Name: "app", Endpoints: []string{addr}}})
	sp.Listeners[0].H2C = true
	srv := startServer(t, sp)
	t.Run("HTTP/2", func(t *testing.T) {
		tr := &http.Transport{Protocols: new(http.Protocols), DisableCompression: true} // bodies are not really gzip
		tr.Protocols.SetUnencryptedHTTP2(true)
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		get := func(path string) (int, http.Header, string) {
			resp, err := c.Get(srv.url("public", path))
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.ProtoMajor != 2 {
				t.Fatalf("GET %s: %s, body: %v", path, resp.Proto, err)
			}
			if resp.Header.Get("Date") == "" {
				t.Fatalf("GET %s: no Date", path)
			}
			resp.Header.Set("Date", "*")
			return resp.StatusCode, resp.Header, string(b)
		}
		for i, a := range answers {
			code, h, body := get(fmt.Sprintf("/raw/%d", i))
			mcode, mh, mbody := get(fmt.Sprintf("/map/%d", i))
			if mh.Get("X-Map") != "1" {
				t.Fatalf("answer %d through the header map: no X-Map in %v", i, mh)
			}
			mh.Del("X-Map")
			if code != mcode || body != mbody || !reflect.DeepEqual(h, mh) {
				t.Errorf("answer %d (%q):\nfrom the field lines %d %v %q\nfrom the header map %d %v %q", i, a.fields, code, h, body, mcode, mh, mbody)
			}
			for _, hop := range []string{"Connection", "Keep-Alive", "X-Secret", "Proxy-Authenticate", "Proxy-Connection", "Upgrade", "Te"} {
				if _, ok := h[hop]; ok {
					t.Errorf("answer %d: %s forwarded: %v", i, hop, h)
				}
			}
		}
	})
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		for i, a := range answers {
			raw := exchangeRaw(t, srv.Addr("public"), fmt.Sprintf("GET /raw/%d %s\r\nHost: a\r\n\r\n", i, proto))
			viaMap := exchangeRaw(t, srv.Addr("public"), fmt.Sprintf("GET /map/%d %s\r\nHost: a\r\n\r\n", i, proto))
			if !strings.Contains(viaMap, "\r\nx-map: 1\r\n") {
				t.Fatalf("%s answer %d through the header map: no X-Map in\n%s", proto, i, viaMap)
			}
			viaMap = strings.Replace(viaMap, "\r\nx-map: 1", "", 1)
			if raw != viaMap {
				t.Errorf("%s answer %d (%q):\nfrom the field lines\n%s\nfrom the header map\n%s", proto, i, a.fields, raw, viaMap)
			}
			for _, hop := range []string{"\r\nconnection: keep-alive", "\r\nkeep-alive:", "\r\nx-secret:", "\r\nproxy-", "\r\nupgrade:", "\r\nte:"} {
				if strings.Contains(raw, hop) {
					t.Errorf("%s answer %d: %q forwarded:\n%s", proto, i, hop, raw)
				}
			}
		}
	}
}

// exchangeRaw sends one request on a new connection and returns the answer in a form that
// compares: the status line, then the fields (names in lower case, values trimmed, a Date
// as "date: *") sorted, then the body, read to its Content-Length, its last chunk or the
// connection's end.
func exchangeRaw(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	var fields []string
	n := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%q: %v", request, err)
		}
		if line == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\r\n"), ":")
		k, v = strings.ToLower(k), strings.Trim(v, " \t")
		switch k {
		case "date":
			v = "*"
		case "content-length":
			n, _ = strconv.Atoi(v)
		}
		fields = append(fields, k+": "+v)
	}
	slices.Sort(fields)
	var body []byte
	switch {
	case n >= 0:
		body = make([]byte, n)
		_, err = io.ReadFull(br, body)
	case slices.Contains(fields, "transfer-encoding: chunked"):
		body, err = io.ReadAll(httputil.NewChunkedReader(br))
	default:
		body, err = io.ReadAll(br)
	}
	if err != nil {
		t.Fatalf("%q: body: %v", request, err)
	}
	return strings.TrimSuffix(status, "\r\n") + "\r\n" + strings.Join(fields, "\r\n") + "\r\n\r\n" + string(body)
}
