package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/h1server"
)

// parsed is one request as net/http reads it off a stream, body and trailers included.
type parsed struct {
	Method, URI, Proto string
	Header, Trailer    http.Header
	Body               string
}

// readAll reads requests off r as net/http's server does until the first error.
func readAll(r io.Reader) []parsed {
	br := bufio.NewReaderSize(r, 4096)
	var out []parsed
	for len(out) < 64 {
		req, err := http.ReadRequest(br)
		if err != nil {
			return out
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return out
		}
		out = append(out, parsed{req.Method, req.RequestURI, req.Proto, req.Header, req.Trailer, string(body)})
	}
	return out
}

// throughFramed feeds stream to a framedConn over a real pipe, in pieces of chunk bytes, and
// reads requests off it; it returns them and the rejections.
func throughFramed(t testing.TB, stream []byte, chunk int, h2 bool) ([]parsed, []rejection) {
	framed, rejected, _ := throughFramedHeads(t, stream, chunk, h2)
	return framed, rejected
}

// throughFramedHeads is throughFramed that also returns the request lines of the heads the
// checks found.
func throughFramedHeads(t testing.TB, stream []byte, chunk int, h2 bool) ([]parsed, []rejection, []string) {
	client, server := net.Pipe()
	var rejected []rejection
	var heads []string
	fc := newFramedConn(server, nil, h2, 16<<10, 0, func(_ *framedConn, why rejection) { rejected = append(rejected, why) })
	fc.observe = func(line []byte) { heads = append(heads, string(line)) }
	go func() {
		defer client.Close()
		for p := stream; len(p) > 0; {
			n := min(chunk, len(p))
			if _, err := client.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
	}()
	defer fc.Close()
	fc.SetReadDeadline(time.Now().Add(10 * time.Second))
	framed := readAll(fc)
	return framed, rejected, heads
}

// checkFraming is the property: through a framedConn, net/http reads exactly the requests
// it reads off the raw stream, up to the first refused head, which is one the checks name.
func checkFraming(t *testing.T, stream []byte, chunk int) {
	t.Helper()
	direct := readAll(bytes.NewReader(stream))
	framed, rejected, heads := throughFramedHeads(t, stream, chunk, false)
	if len(framed) > len(direct) {
		t.Fatalf("through framedConn %d requests, directly %d", len(framed), len(direct))
	}
	for i := range framed {
		if !reflect.DeepEqual(framed[i], direct[i]) {
			t.Fatalf("request %d differs:\nframed %+v\ndirect %+v", i, framed[i], direct[i])
		}
	}
	// The checks found each head where net/http did: their view of the framing is the
	// server's, so no head slips past them.
	for i := range min(len(heads), len(direct)) {
		if want := direct[i].Method + " " + direct[i].URI + " " + direct[i].Proto; heads[i] != want {
			t.Fatalf("head %d: the checks saw %q, net/http read %q", i, heads[i], want)
		}
	}
	if len(heads) < len(framed) {
		t.Fatalf("the checks saw %d heads, the server read %d requests", len(heads), len(framed))
	}
	if len(framed) < len(direct) && len(rejected) == 0 && !hasBareLF(stream) {
		// The stream ended early: only allowed after a head that a server refuses but
		// ReadRequest alone accepts (a version other than HTTP/1.x).
		refused := false
		for _, p := range direct[:len(framed)+1] {
			refused = refused || !strings.HasPrefix(p.Proto, "HTTP/1.")
		}
		if !refused {
			next := direct[len(framed)]
			t.Fatalf("request %d (%s %s %s) read directly but not through framedConn", len(framed), next.Method, next.URI, next.Proto)
		}
	}
}

// hasBareLF reports whether a line of stream ends with a bare LF, which net/http takes in
// some places (heads; trailers followed by a CRLFCRLF) and the checks refuse in others
// (trailers): for such streams only the safety half of checkFraming holds.
func hasBareLF(stream []byte) bool {
	return bytes.Count(stream, []byte("\n")) != bytes.Count(stream, []byte("\r\n"))
}

var framingSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: b\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \t\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabcGET /smuggled HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"GET / HTTP/1.1\nHost: a\n\nGET /lf HTTP/1.1\n\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
	"GET / HTTP/1.2\r\nHost: a\r\n\r\nGET / HTTP/2.0\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x05hello",
	"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
}

func TestFramedConnAgreesWithServer(t *testing.T) {
	for i, s := range framingSeeds {
		for _, chunk := range []int{1, 7, 64, 1 << 20} {
			t.Run(fmt.Sprintf("%d/%d", i, chunk), func(t *testing.T) { checkFraming(t, []byte(s), chunk) })
		}
	}
}

func FuzzFraming(f *testing.F) {
	for _, s := range framingSeeds {
		f.Add([]byte(s), uint16(64))
	}
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint16) {
		if len(stream) > 64<<10 {
			return
		}
		checkFraming(t, stream, int(chunk%512)+1)
	})
}

// TestFramedConnRejects checks what the server is handed for each refused head: the
// requests before it, then a head it refuses.
func TestFramedConnRejects(t *testing.T) {
	for _, tc := range []struct {
		stream string
		want   rejection
	}{
		{"GET /ok HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", rejectCLTE},
		{"GET /ok HTTP/1.1\r\n\r\nPOST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", rejectTE10},
		{"GET /ok HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nX-A: 1\r\n\tcontinued\r\n\r\n", rejectFolded},
	} {
		framed, rejected := throughFramed(t, []byte(tc.stream), 3, false)
		if len(framed) != 1 || framed[0].URI != "/ok" {
			t.Errorf("%q: the server read %+v, want only /ok", tc.stream, framed)
		}
		if len(rejected) != 1 || rejected[0] != tc.want {
			t.Errorf("%q: rejected %v, want %v", tc.stream, rejected, tc.want)
		}
	}
}

// TestFramedConnPassthrough: after an HTTP/2 preface (on listeners that serve HTTP/2) or an
// upgrade request, bytes pass through unread.
func TestFramedConnPassthrough(t *testing.T) {
	garbage := "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n\x00\x01\x02"
	for _, tc := range []struct {
		name, stream string
		h2           bool
		unchecked    bool
	}{
		{"preface", string(h2Preface) + garbage, true, false},
		{"upgrade", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n" + garbage, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			fc := newFramedConn(server, nil, tc.h2, 16<<10, 0, func(*framedConn, rejection) { t.Error("rejected") })
			go func() {
				for i := 0; i < len(tc.stream); i += 5 {
					client.Write([]byte(tc.stream[i:min(i+5, len(tc.stream))]))
				}
				client.Close()
			}()
			got, err := io.ReadAll(fc)
			if err != nil || string(got) != tc.stream {
				t.Fatalf("read %q (%v), want %q", got, err, tc.stream)
			}
			if fc.unchecked.Load() != tc.unchecked {
				t.Fatalf("unchecked = %v, want %v", fc.unchecked.Load(), tc.unchecked)
			}
		})
	}
	t.Run("OPTIONS * asking to upgrade", func(t *testing.T) {
		// The server answers OPTIONS * itself and never upgrades it: the checks go on.
		stream := "OPTIONS * HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n" +
			"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		_, rejected := throughFramed(t, []byte(stream), 7, false)
		if len(rejected) != 1 || rejected[0] != rejectCLTE {
			t.Fatalf("rejected %v, want %v", rejected, rejectCLTE)
		}
	})
	t.Run("preface without HTTP/2", func(t *testing.T) {
		// A listener without h2c: the preface is an HTTP/2.0 request line the server
		// refuses, and nothing after it is delivered.
		framed, _ := throughFramed(t, append(append([]byte{}, h2Preface...), "GET / HTTP/1.1\r\n\r\n"...), 64, false)
		for _, p := range framed {
			if p.Proto == "HTTP/1.1" {
				t.Fatalf("a request after the preface was delivered: %+v", p)
			}
		}
	})
}

// TestFramedConnEmptyLines: the empty lines the server ignores before a request line (as
// many as h1server.MaxLeadingEmptyLines) are ignored by the checks too, which find the
// head after them; one more is a head the server refuses, after which nothing is delivered.
func TestFramedConnEmptyLines(t *testing.T) {
	// heads reads the whole stream through a framedConn (net/http's ReadRequest would
	// stop at the first empty line) and returns the heads found and the rejections.
	heads := func(stream string, chunk int) (heads []string, rejected []rejection, delivered string) {
		client, server := net.Pipe()
		fc := newFramedConn(server, nil, false, 16<<10, 0, func(_ *framedConn, why rejection) { rejected = append(rejected, why) })
		fc.observe = func(line []byte) { heads = append(heads, string(line)) }
		go func() {
			defer client.Close()
			for p := stream; len(p) > 0; p = p[min(chunk, len(p)):] {
				client.Write([]byte(p[:min(chunk, len(p))]))
			}
		}()
		defer fc.Close()
		fc.SetReadDeadline(time.Now().Add(time.Second))
		b, _ := io.ReadAll(fc)
		return heads, rejected, string(b)
	}
	stream := "\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\r\n" +
		"\n\r\n\nPOST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	for _, chunk := range []int{1, 3, 4096} {
		got, rejected, _ := heads(stream, chunk)
		want := []string{"GET /a HTTP/1.1", "POST /b HTTP/1.1", "POST /c HTTP/1.1"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("chunks of %d: heads %q, want %q", chunk, got, want)
		}
		if len(rejected) != 1 || rejected[0] != rejectCLTE {
			t.Fatalf("chunks of %d: rejected %v, want %v", chunk, rejected, rejectCLTE)
		}
	}
	empty := strings.Repeat("\r\n", h1server.MaxLeadingEmptyLines+1)
	got, rejected, delivered := heads(empty+"GET /d HTTP/1.1\r\nHost: a\r\n\r\n", 5)
	if len(got) != 1 || got[0] != "" || len(rejected) != 0 || delivered != empty {
		t.Fatalf("heads %q, rejected %v, delivered %q; want one empty request line, which the server refuses, and nothing after it", got, rejected, delivered)
	}
}
