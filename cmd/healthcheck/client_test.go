package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	big := strings.Repeat("x", maxBodyBytes+10)
	tests := []struct {
		name      string
		in        string
		status    int
		reason    string
		body      string
		truncated bool
		err       string // substring of the error; "" for none
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\nextra", status: 200, reason: "OK", body: "ok\n"},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 3\n\nok\n", status: 200, reason: "OK", body: "ok\n"},
		{name: "no reason", in: "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", status: 503},
		{name: "empty reason", in: "HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n", status: 503},
		{name: "reason with spaces", in: "HTTP/1.1 503 Service  Unavailable\r\n\r\n", status: 503, reason: "Service  Unavailable"},
		{name: "HTTP/1.0 to EOF", in: "HTTP/1.0 200 OK\r\n\r\nok\n", status: 200, reason: "OK", body: "ok\n"},
		{name: "header names any case", in: "HTTP/1.1 200 OK\r\ncontent-LENGTH:2\r\n\r\nokno", status: 200, reason: "OK", body: "ok"},
		{name: "repeated equal lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok", status: 200, reason: "OK", body: "ok"},
		{name: "chunked", in: "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[-]a\r\n6;ext=1\r\n: down\r\nA\r\n\nreadyz ch\r\n0\r\nX-Trailer: 1\r\n\r\n",
			status: 503, reason: "Service Unavailable", body: "[-]a: down\nreadyz ch"},
		{name: "chunked overrides length", in: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 200, reason: "OK", body: "ok"},
		{name: "chunked with bare LF", in: "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n", status: 200, reason: "OK", body: "ok"},
		{name: "informational skipped", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, reason: "OK", body: "ok"},
		{name: "204 has no body", in: "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n", status: 204, reason: "No Content"},
		{name: "long body cut", in: "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big, status: 200, reason: "OK", body: big[:maxBodyBytes], truncated: true},
		{name: "long body to EOF cut", in: "HTTP/1.1 200 OK\r\n\r\n" + big, status: 200, reason: "OK", body: big[:maxBodyBytes], truncated: true},
		{name: "long chunked body cut", in: chunked("200 OK", big[:40000], big[40000:]), status: 200, reason: "OK", body: big[:maxBodyBytes], truncated: true},
		{name: "body of exactly the cap", in: chunked("200 OK", big[:40000], big[40000:maxBodyBytes]), status: 200, reason: "OK", body: big[:maxBodyBytes]},

		{name: "empty", in: "", err: "connection closed before a response"},
		{name: "status line cut", in: "HTTP/1.1 200", err: "connection closed in the status line"},
		{name: "headers cut", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", err: "connection closed in the headers"},
		// The Kelvin sign folds to "k" under Unicode rules: the coding is not chunked.
		{name: "Kelvin sign in chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\u212Aed\r\n\r\n2\r\nok\r\n0\r\n\r\n", err: "unsupported transfer-encoding"},
		{name: "garbage", in: "hello\r\n\r\n", err: `not an HTTP/1.x status line: "hello"`},
		{name: "HTTP/2", in: "HTTP/2 200\r\n\r\n", err: "not an HTTP/1.x status line"},
		{name: "lower case proto", in: "http/1.1 200 OK\r\n\r\n", err: "not an HTTP/1.x status line"},
		{name: "two digit status", in: "HTTP/1.1 20 OK\r\n\r\n", err: `bad status code in "HTTP/1.1 20 OK"`},
		{name: "letters in status", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: "bad status code"},
		{name: "leading zero status", in: "HTTP/1.1 099 OK\r\n\r\n", err: "bad status code"},
		{name: "switching protocols", in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", err: "unexpected 101"},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbogus\r\n\r\n", err: `bad header line "bogus"`},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", err: "bad header line"},
		{name: "folded header", in: "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n", err: "folded header line"},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: `bad Content-Length "-1"`},
		{name: "huge length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", err: "bad Content-Length"},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", err: "conflicting Content-Length 2 and 3"},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", err: "body ends after 2 of 5 bytes"},
		{name: "gzip", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: `unsupported transfer-encoding "gzip, chunked"`},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: `bad chunk size line "zz"`},
		{name: "signed chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", err: "bad chunk size line"},
		{name: "overflowing chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", err: "bad chunk size line"},
		{name: "chunk longer than its size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokk\r\n0\r\n\r\n", err: "chunk longer than its size 2"},
		{name: "chunked cut in a chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok", err: "chunked body ends inside a chunk"},
		{name: "chunked without last chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", err: "chunked body ends before its last chunk"},
		{name: "chunked without end of trailers", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", err: "chunked body ends in its trailers"},
		{name: "long header line", in: "HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("a", maxLineBytes) + "\r\n\r\n", err: "line longer than 4096 bytes"},
		{name: "too many headers", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: "+strings.Repeat("a", 100)+"\r\n", 100) + "\r\n", err: "headers longer than 8192 bytes"},
		{name: "too many informational responses", in: strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 1000), err: "headers longer than 8192 bytes"},
		{name: "tiny chunks", in: chunked("200 OK", strings.Split(big[:30000], "")...), err: "response longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := readResponse(strings.NewReader(tt.in))
			if tt.err != "" {
				var bad *malformedError
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.As(err, &bad) {
					t.Fatalf("err = %v, want a malformedError containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != tt.status || resp.reason != tt.reason || string(resp.body) != tt.body || resp.truncated != tt.truncated {
				t.Errorf("got %d %q truncated=%v body %d bytes %.40q, want %d %q truncated=%v body %d bytes %.40q",
					resp.status, resp.reason, resp.truncated, len(resp.body), resp.body,
					tt.status, tt.reason, tt.truncated, len(tt.body), tt.body)
			}
		})
	}
}

// A server that never stops sending must not keep the probe reading: each of these streams
// has no end, and the parser must give up, or keep a cut body, after a bounded read.
func TestReadResponseEndlessStreams(t *testing.T) {
	tests := []struct {
		name      string
		prefix    string
		unit      string
		err       string
		truncated bool
	}{
		{name: "headers", prefix: "HTTP/1.1 200 OK\r\n", unit: "X-A: b\r\n", err: "headers longer than"},
		{name: "one header line", prefix: "HTTP/1.1 200 OK\r\nX-A: ", unit: "b", err: "line longer than"},
		{name: "status line", unit: "H", err: "line longer than"},
		{name: "informational responses", unit: "HTTP/1.1 100 Continue\r\n\r\n", err: "headers longer than"},
		{name: "body to EOF", prefix: "HTTP/1.1 200 OK\r\n\r\n", unit: "ok\n", truncated: true},
		{name: "chunks", prefix: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", unit: "c\r\n[+]check ok\n\r\n", truncated: true},
		{name: "one-byte chunks", prefix: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", unit: "1\r\nx\r\n", err: "response longer than"},
		{name: "empty chunk extensions", prefix: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", unit: "1;a=b\r\nx\r\n", err: "response longer than"},
		{name: "trailers", prefix: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", unit: "X-T: 1\r\n", err: "headers longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &countingReader{r: io.MultiReader(strings.NewReader(tt.prefix), repeat(tt.unit))}
			resp, err := readResponse(src)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v, want %q", err, tt.err)
				}
			} else if err != nil || !resp.truncated || len(resp.body) != maxBodyBytes {
				t.Errorf("err = %v, want a body cut at %d bytes", err, maxBodyBytes)
			}
			if src.n > maxResponseBytes {
				t.Errorf("read %d bytes, more than %d", src.n, maxResponseBytes)
			}
		})
	}
}

// repeat returns a reader that yields unit forever.
func repeat(unit string) io.Reader {
	return &repeater{unit: []byte(unit)}
}

type repeater struct {
	unit []byte
	off  int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.unit[r.off:])
		n += c
		r.off = (r.off + c) % len(r.unit)
	}
	return n, nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzParseResponse feeds arbitrary server output to the parser. It must return, without
// panicking, after reading a bounded amount, and what it returns must hold together.
// Hand-written seeds (normal, chunked, truncated, garbage) are in
// testdata/fuzz/FuzzParseResponse; those added here are built or too large to keep there.
func FuzzParseResponse(f *testing.F) {
	huge := strings.Repeat("[+]upstream.cluster.app ok\n", maxBodyBytes/27+1)
	for _, seed := range []string{
		httpResponse("503 Service Unavailable", failingBody),
		chunked("503 Service Unavailable", failingBody[:10], failingBody[10:]),
		httpResponse("200 OK", huge),
		chunked("200 OK", huge[:30000], huge[30000:]),
		"HTTP/1.1 200 OK\r\n\r\n" + huge,
		"HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("a", maxLineBytes+1) + "\r\n\r\n",
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", maxHeaderBytes/8) + "\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &countingReader{r: bytes.NewReader(data)}
		resp, err := readResponse(src)
		if src.n > maxResponseBytes {
			t.Fatalf("read %d bytes, more than %d", src.n, maxResponseBytes)
		}
		if err != nil {
			var bad *malformedError
			if !errors.As(err, &bad) {
				// From an in-memory reader, every failure is the response's fault.
				t.Fatalf("err = %v (%T), want a malformedError", err, err)
			}
			if resp != nil {
				t.Fatalf("both a response and an error: %v", err)
			}
			return
		}
		if resp.status < 200 || resp.status > 999 {
			t.Fatalf("status %d", resp.status)
		}
		if len(resp.body) > maxBodyBytes {
			t.Fatalf("body of %d bytes, more than %d", len(resp.body), maxBodyBytes)
		}
		if resp.truncated && len(resp.body) != maxBodyBytes {
			t.Fatalf("truncated body of %d bytes", len(resp.body))
		}
	})
}

// The hand-written seeds are what their names say: the good ones parse, the others are
// refused. A seed that drifted would no longer steer the fuzzer where it was meant to.
func TestFuzzSeeds(t *testing.T) {
	dir := "testdata/fuzz/FuzzParseResponse"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 10 {
		t.Fatalf("%d seeds in %s", len(entries), dir)
	}
	bad := []string{"truncated-", "garbage-", "huge-", "conflicting-", "folded-"}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			header, arg, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
			quoted, ok := strings.CutPrefix(arg, "[]byte(")
			quoted, ok2 := strings.CutSuffix(quoted, ")")
			data, err := strconv.Unquote(quoted)
			if header != "go test fuzz v1" || !ok || !ok2 || err != nil {
				t.Fatalf("not a fuzz corpus file: %q", raw)
			}
			_, err = readResponse(strings.NewReader(data))
			wantErr := slices.ContainsFunc(bad, func(p string) bool { return strings.HasPrefix(e.Name(), p) })
			if wantErr != (err != nil) {
				t.Errorf("err = %v, want an error: %v", err, wantErr)
			}
		})
	}
}
