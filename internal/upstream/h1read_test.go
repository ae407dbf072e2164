package upstream

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/net/http/httpguts"
)

// readResponse reads what http.ReadResponse reads — the same response, the same body and the
// same bytes left for the next response — on its own path and on the responses it hands on;
// simple Content-Length answers take its own path.
func TestReadResponseMatchesReadResponse(t *testing.T) {
	next := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
	cases := []struct {
		name, method, in string
		own              bool
	}{
		{"nginx", "GET", "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 02:00:00 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: 34\r\nConnection: keep-alive\r\n\r\nhello from the benchmark upstream\n", true},
		{"no reason", "GET", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", true},
		{"empty reason", "GET", "HTTP/1.1 404 \r\nContent-Length: 2\r\n\r\nno", true},
		{"long reason", "POST", "HTTP/1.1 503 Service Unavailable Now\r\nContent-Length: 0\r\n\r\n", true},
		{"zero length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
		{"close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", true},
		{"close among tokens", "GET", "HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 1\r\n\r\nx", true},
		{"keep-alive", "GET", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 1\r\n\r\nx", true},
		{"lower-case names", "GET", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nx-custom-thing: a\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nx", true},
		{"white space", "GET", "HTTP/1.1 200 OK\r\nContent-Length:\t 3 \t\r\nX-A:   spaced  value \r\nX-Empty:\r\nX-Blank:   \r\n\r\nabc", true},
		{"repeated", "GET", "HTTP/1.1 201 Created\r\nVary: A\r\nVary: B\r\nLocation: /x\r\nContent-Length: 1\r\n\r\nx", true},
		{"more fields than inline", "GET", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Many: v\r\nX-Other: w\r\n", 8) + "Content-Length: 1\r\n\r\nx", true},
		{"odd names", "GET", "HTTP/1.1 200 OK\r\nX-Weird_Name!#$: v\r\nContent-Length: 1\r\n\r\nx", true},
		{"pipelined", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc" + next, true},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 34\r\n\r\n" + next, false},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: v\r\n\r\n" + next, false},
		{"no length", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", false},
		{"two lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", false},
		{"bad length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nabc", false},
		{"empty length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nabc", false},
		{"pragma", "GET", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 1\r\n\r\nx", false},
		{"chunked, close naming a field", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: X-Secret, close\r\nconnection: X-Other\r\nX-Secret: s\r\n\r\n2\r\nok\r\n0\r\n\r\n", false},
		{"chunked, any case, last", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ntRANSFER-eNCODING: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + next, false},
		{"trailer, lower case", "GET", "HTTP/1.1 200 OK\r\ntrailer: X-T\r\nContent-Length: 1\r\n\r\nx", false},
		{"names that only start so", "GET", "HTTP/1.1 200 OK\r\nTrailer-Info: a\r\nPragmatic: b\r\nTransfer-Encodings: c\r\nContent-Length: 1\r\n\r\nx", true},
		{"http/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false},
		{"continue", "GET", "HTTP/1.1 100 Continue\r\n\r\n" + next, false},
		{"no content", "GET", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n" + next, false},
		{"not modified", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n" + next, false},
		{"switching", "GET", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false},
		{"folded", "GET", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 1\r\n\r\nx", false},
		{"bare LF", "GET", "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", false},
		{"space before colon", "GET", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx", false},
		{"no colon", "GET", "HTTP/1.1 200 OK\r\nBroken\r\nContent-Length: 1\r\n\r\nx", false},
		{"control byte", "GET", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 1\r\n\r\nx", false},
		{"non-ASCII value", "GET", "HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9\r\nContent-Length: 1\r\n\r\nx", false},
		{"bad status", "GET", "HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\nx", false},
		{"short status", "GET", "HTTP/1.1 20 OK\r\nContent-Length: 1\r\n\r\nx", false},
		{"truncated head", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", false},
		{"truncated body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := &http.Request{Method: c.method}
			if own := compareReadResponse(t, c.in, req); own != c.own {
				t.Fatalf("readSimpleResponse took it: %v, want %v", own, c.own)
			}
		})
	}
}

// A response left to http.ReadResponse (chunked, with trailers, with Pragma) costs no
// allocation before readSimpleResponse hands it on.
func TestLeftResponsesAllocateNothingFirst(t *testing.T) {
	req := &http.Request{Method: "GET"}
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nServer: app\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\ntrailer: X-T\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nPRAGMA: no-cache\r\nContent-Length: 1\r\n\r\nx",
	} {
		br := bufio.NewReader(strings.NewReader(in))
		br.Peek(len(in))
		if n := testing.AllocsPerRun(100, func() {
			if readSimpleResponse(br, req, nil) != nil {
				t.Fatalf("readSimpleResponse took %q", in)
			}
		}); n != 0 {
			t.Errorf("%.0f allocations before handing %q on, want 0", n, in)
		}
	}
}

// FuzzReadResponse holds readResponse to http.ReadResponse on any input: the same
// response, body and bytes left, or an error from both; and readSimpleResponse consumes
// nothing of what it leaves to http.ReadResponse.
func FuzzReadResponse(f *testing.F) {
	f.Add("GET", "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabcHTTP/1.1 200 OK\r\n")
	f.Add("GET", "HTTP/1.1 200 OK\r\nConnection: x, close\r\nVary: a\r\nvary: b\r\nContent-Length: 1\r\n\r\nx")
	f.Add("GET", "HTTP/1.1 404 \r\nContent-Length: 0\r\nX-A:\t v \r\n\r\n")
	f.Add("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n")
	f.Add("GET", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 1\r\n\r\nx")
	f.Fuzz(func(t *testing.T, method, in string) {
		if method != "GET" && method != "HEAD" && method != "POST" {
			return
		}
		compareReadResponse(t, in, &http.Request{Method: method})
		compareConnectionKept(t, in, &http.Request{Method: method})
	})
}

// compareConnectionKept fails t unless the Connection values of a response, and whether it
// closes, come out the same with its head all buffered as when the reader's 16-byte buffer
// makes every head longer than that go to http.ReadResponse, read through the source that
// keeps a copy of what it reads (headBudget).
func compareConnectionKept(t *testing.T, in string, req *http.Request) {
	t.Helper()
	read := func(size int) (conn []string, closes bool, err error) {
		budget := &headBudget{src: strings.NewReader(in), left: maxResponseHeadBytes}
		br := bufio.NewReaderSize(budget, size)
		br.Peek(1) // as h1Pool.exchange does
		resp, err := readResponse(br, budget, req, nil)
		if budget.capture != nil {
			t.Fatal("the reader's source still copies what it reads")
		}
		if err != nil {
			return nil, false, err
		}
		resp.Body.Close()
		return resp.Header["Connection"], resp.Close, nil
	}
	wholeConn, wholeClose, wholeErr := read(4096)
	pieceConn, pieceClose, pieceErr := read(16)
	if (wholeErr == nil) != (pieceErr == nil) {
		t.Fatalf("%q: error %v with the head buffered, %v read in pieces", in, wholeErr, pieceErr)
	}
	if !reflect.DeepEqual(wholeConn, pieceConn) || wholeClose != pieceClose {
		t.Fatalf("%q: Connection %q (close %v) with the head buffered, %q (close %v) read in pieces", in, wholeConn, wholeClose, pieceConn, pieceClose)
	}
}

// compareReadResponse fails t unless readResponse reads in as http.ReadResponse does, with
// a header map and with the field lines left as they came (whose map, made here, must be
// ReadResponse's); it reports whether readSimpleResponse took the response, which it must
// in both forms or in neither.
func compareReadResponse(t *testing.T, in string, req *http.Request) bool {
	t.Helper()
	own := compareReadResponseAs(t, in, req, nil)
	if ownRaw := compareReadResponseAs(t, in, req, new(Answer)); ownRaw != own {
		t.Fatalf("readSimpleResponse took the response with a header map: %v, with its field lines: %v", own, ownRaw)
	}
	return own
}

// fieldsHeader is the header map of CRLF-ended field lines, as a parser makes it: names
// canonical, values trimmed.
func fieldsHeader(fields string) http.Header {
	h := http.Header{}
	for r := fields; r != ""; {
		line, rest, _ := strings.Cut(r, "\r\n")
		r = rest
		k, v, _ := strings.Cut(line, ":")
		h.Add(k, strings.Trim(v, " \t"))
	}
	return h
}

func compareReadResponseAs(t *testing.T, in string, req *http.Request, ans *Answer) bool {
	t.Helper()
	want, wantBody, wantRest, wantErr := readOneResponse(t, http.ReadResponse, in, req)
	got, gotBody, gotRest, gotErr := readOneResponse(t, func(br *bufio.Reader, req *http.Request) (*http.Response, error) {
		resp, err := readResponse(br, nil, req, ans)
		if resp != nil && resp.Header == nil {
			if ans == nil {
				t.Fatal("no header map, and no field lines asked for")
			}
			if !strings.Contains(in, "\r\n"+ans.Fields+"\r\n") {
				t.Fatalf("field lines %q are not the response's", ans.Fields)
			}
			resp.Header = fieldsHeader(ans.Fields)
		}
		if resp != nil && resp.ProtoAtLeast(1, 1) && httpguts.HeaderValuesContainsToken(resp.Header["Connection"], "close") {
			// ReadResponse deletes an HTTP/1.1 Connection that says close, and with it the
			// names of the other fields to remove: the fast parser keeps it.
			resp.Header.Del("Connection")
		}
		return resp, err
	}, in, req)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("error %v, http.ReadResponse's %v", gotErr, wantErr)
	}
	if want != nil {
		wb, gb := want.Body, got.Body
		want.Body, got.Body = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("response\n%+v\nhttp.ReadResponse's\n%+v", got, want)
		}
		if (wb == http.NoBody) != (gb == http.NoBody) {
			t.Fatalf("body %T, http.ReadResponse's %T", gb, wb)
		}
	}
	if gotBody != wantBody || gotRest != wantRest {
		t.Fatalf("body %q then %q, http.ReadResponse's %q then %q", gotBody, gotRest, wantBody, wantRest)
	}
	br := bufio.NewReader(strings.NewReader(in))
	br.Peek(1)
	own := readSimpleResponse(br, req, ans) != nil
	if buffered := min(len(in), br.Size()); !own && br.Buffered() != buffered {
		t.Fatalf("readSimpleResponse consumed %d bytes of a response it left", buffered-br.Buffered())
	}
	return own
}

// readOneResponse reads one response from in with read and its body to the end (or an error), and
// returns the body (with its error, if any) and what is left after it.
func readOneResponse(t *testing.T, read func(*bufio.Reader, *http.Request) (*http.Response, error), in string, req *http.Request) (*http.Response, string, string, error) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(in))
	br.Peek(1) // as h1Pool.exchange does: the head is buffered
	resp, err := read(br, req)
	if err != nil {
		return nil, "", "", err
	}
	b, err := io.ReadAll(resp.Body)
	body := string(b)
	if err != nil {
		body += " error: " + err.Error()
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	rest, _ := io.ReadAll(br)
	return resp, body, string(rest), nil
}

// An answer left to http.ReadResponse keeps the Connection fields ReadResponse drops when
// one says close: the names they list must still be removed before the answer goes on. So
// does one whose head is not all in the reader's buffer when its parse begins (a head over
// its 4 KiB, or one that comes in pieces).
func TestLeftResponseKeepsConnectionNames(t *testing.T) {
	pad := "X-Pad: " + strings.Repeat("p", 6000)
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: X-Secret, close\r\nconnection:  X-Other \r\nX-Secret: s\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nConnection: X-Secret, close\nconnection:  X-Other \nX-Secret: s\n\n0\n\n",
		"HTTP/1.1 200 OK\r\n" + pad + "\r\nTransfer-Encoding: chunked\r\nConnection: X-Secret, close\r\nconnection:  X-Other \r\nX-Secret: s\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: X-Secret, close\r\n" + pad + "\r\nconnection:  X-Other \r\nX-Secret: s\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 0\nConnection: X-Secret, close\n" + pad + "\nconnection:  X-Other \nX-Secret: s\n\n",
	} {
		for _, src := range []struct {
			name string
			r    func(string) io.Reader
		}{
			{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
			{"in pieces", func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) }},
		} {
			budget := &headBudget{src: src.r(in), left: maxResponseHeadBytes}
			br := bufio.NewReaderSize(budget, 4096)
			br.Peek(1)
			resp, err := readResponse(br, budget, &http.Request{Method: "GET"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header["Connection"]; !resp.Close || !reflect.DeepEqual(got, []string{"X-Secret, close", "X-Other"}) {
				t.Fatalf("%s, %.60q: Close %v, Connection %q", src.name, in, resp.Close, got)
			}
			if budget.capture != nil {
				t.Fatalf("%s, %.60q: the reader still copies what it reads", src.name, in)
			}
			resp.Body.Close()
		}
	}
}
