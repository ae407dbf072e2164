package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/gangway-ecs/gangway/internal/httpascii"
)

// Limits on what the probe reads, so that a broken or hostile server can make it neither
// hold much memory nor read without end; the deadline bounds the time.
const (
	// maxHeaderBytes bounds the status lines and headers of every response read
	// (informational ones included) plus the trailers of a chunked body.
	maxHeaderBytes = 8 << 10
	// maxBodyBytes bounds the body kept. A longer body is cut there and not read further:
	// the status line already holds the verdict.
	maxBodyBytes = 64 << 10
	// maxResponseBytes bounds every byte read from the connection. It leaves room for
	// chunk framing as heavy as the body itself (a chunk per short line); a server that
	// frames more thinly than that is refused.
	maxResponseBytes = maxHeaderBytes + 2*maxBodyBytes
	// maxLineBytes bounds one header line or chunk-size line.
	maxLineBytes = 4 << 10
)

// response is what the probe keeps of an HTTP/1.x response.
type response struct {
	status int    // 200, 503, ...
	reason string // "OK", as the server sent it
	body   []byte
	// truncated is true when the body was longer than maxBodyBytes; body holds its start.
	truncated bool
}

// malformedError is a response the probe cannot parse. It is the server's fault, not the
// network's, and it is reported as such.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }

func malformed(format string, args ...any) error {
	return &malformedError{msg: fmt.Sprintf(format, args...)}
}

// get sends "GET target" to addr over a new connection and reads the response. The whole
// exchange, connect included, ends by ctx's deadline.
func get(ctx context.Context, dial dialFunc, addr, target, userAgent string) (*response, error) {
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return nil, err
		}
	}
	if _, err := io.WriteString(conn, requestText(addr, target, userAgent)); err != nil {
		return nil, err
	}
	return readResponse(conn)
}

// requestText is the whole request: the probe sends no body and reads one response.
func requestText(addr, target, userAgent string) string {
	return "GET " + target + " HTTP/1.1\r\n" +
		"Host: " + hostHeader(addr) + "\r\n" +
		"User-Agent: " + userAgent + "\r\n" +
		"Connection: close\r\n" +
		"\r\n"
}

// hostHeader is addr as a Host header value: an IPv6 literal keeps its brackets and loses
// its zone, which means nothing to the server.
func hostHeader(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	return net.JoinHostPort(host, port)
}

// readResponse parses one HTTP/1.0 or HTTP/1.1 response to a GET from r, skipping
// informational (1xx) responses. The body is framed by chunked transfer-encoding, by
// Content-Length, or by the end of the stream. It reads at most maxResponseBytes from r and
// returns a *malformedError for anything it cannot parse.
func readResponse(r io.Reader) (*response, error) {
	p := &parser{
		br:          bufio.NewReaderSize(&budgetReader{r: r, n: maxResponseBytes}, maxLineBytes),
		headerBytes: maxHeaderBytes,
	}
	for {
		resp, framing, err := p.readHead()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.status == 101:
			return nil, malformed("unexpected 101 Switching Protocols")
		case resp.status < 200:
			continue // 100 Continue, 103 Early Hints: the real response follows
		case resp.status == 204 || resp.status == 304:
			return resp, nil
		case framing.chunked:
			err = p.readChunked(resp)
		case framing.contentLength >= 0:
			err = p.readLength(resp, framing.contentLength)
		default:
			err = p.readToEOF(resp)
		}
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// framing says how a response's body ends.
type framing struct {
	chunked       bool
	contentLength int64 // -1 when absent
}

type parser struct {
	br          *bufio.Reader
	headerBytes int // left of maxHeaderBytes
}

// readHead reads a status line and the headers that follow it.
func (p *parser) readHead() (*response, framing, error) {
	f := framing{contentLength: -1}
	line, err := p.headerLine()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, f, malformed("connection closed before a response")
		}
		return nil, f, eofIsMalformed(err, "connection closed in the status line")
	}
	resp, err := parseStatusLine(line)
	if err != nil {
		return nil, f, err
	}
	var te []string
	for {
		line, err := p.headerLine()
		if err != nil {
			return nil, f, eofIsMalformed(err, "connection closed in the headers")
		}
		if len(line) == 0 {
			break
		}
		name, value, err := parseHeaderLine(line)
		if err != nil {
			return nil, f, err
		}
		switch httpascii.Lower(name) {
		case "transfer-encoding":
			for _, v := range strings.Split(value, ",") {
				if v = strings.TrimSpace(v); v != "" {
					te = append(te, httpascii.Lower(v))
				}
			}
		case "content-length":
			if f.contentLength, err = mergeContentLength(f.contentLength, value); err != nil {
				return nil, f, err
			}
		}
	}
	if len(te) > 0 {
		// The probe asks for no encoding, so chunked is the only one it must understand.
		// Chunked framing overrides Content-Length (RFC 9112, section 6.3).
		if len(te) != 1 || te[0] != "chunked" {
			return nil, f, malformed("unsupported transfer-encoding %q", strings.Join(te, ", "))
		}
		f.chunked = true
	}
	return resp, f, nil
}

// headerLine reads one line of a head or of chunked trailers, without its line ending, and
// charges it to the header budget.
func (p *parser) headerLine() ([]byte, error) {
	line, err := p.line()
	if err != nil {
		return nil, err
	}
	p.headerBytes -= len(line) + 2
	if p.headerBytes < 0 {
		return nil, malformed("headers longer than %d bytes", maxHeaderBytes)
	}
	return line, nil
}

// line reads one line ended by LF or CRLF and returns it without the ending. The slice is
// valid until the next read.
func (p *parser) line() ([]byte, error) {
	line, err := p.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, malformed("line longer than %d bytes", maxLineBytes)
	case err == io.EOF && len(line) > 0:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine parses "HTTP/1.1 503 Service Unavailable". The reason phrase may be
// empty or absent.
func parseStatusLine(line []byte) (*response, error) {
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	if string(proto) != "HTTP/1.1" && string(proto) != "HTTP/1.0" {
		return nil, malformed("not an HTTP/1.x status line: %s", quote(line))
	}
	code, reason, _ := bytes.Cut(rest, []byte(" "))
	if len(code) != 3 || !isDigits(code) || code[0] == '0' {
		return nil, malformed("bad status code in %s", quote(line))
	}
	status, _ := strconv.Atoi(string(code))
	return &response{status: status, reason: string(reason)}, nil
}

// parseHeaderLine splits "Name: value". A line that continues the previous one (obsolete
// line folding) is refused, as RFC 9112 allows.
func parseHeaderLine(line []byte) (name, value string, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", malformed("folded header line %s", quote(line))
	}
	n, v, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(n) == 0 || !isToken(n) {
		return "", "", malformed("bad header line %s", quote(line))
	}
	return string(n), string(bytes.Trim(v, " \t")), nil
}

// mergeContentLength folds one Content-Length value into the length seen so far (-1 for
// none). Repeated values must agree: "5, 5" is 5, "5, 6" is an error.
func mergeContentLength(seen int64, value string) (int64, error) {
	for _, v := range strings.Split(value, ",") {
		v = strings.TrimSpace(v)
		if v == "" || len(v) > 18 || !isDigits([]byte(v)) {
			return 0, malformed("bad Content-Length %s", quote([]byte(value)))
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		if seen >= 0 && n != seen {
			return 0, malformed("conflicting Content-Length %d and %d", seen, n)
		}
		seen = n
	}
	return seen, nil
}

// readLength reads a body of n bytes, keeping at most maxBodyBytes of it.
func (p *parser) readLength(resp *response, n int64) error {
	keep := min(n, maxBodyBytes)
	resp.body = make([]byte, keep)
	if got, err := io.ReadFull(p.br, resp.body); err != nil {
		return eofIsMalformed(err, fmt.Sprintf("body ends after %d of %d bytes", got, n))
	}
	resp.truncated = n > keep
	return nil
}

// readToEOF reads a body that ends with the connection, keeping at most maxBodyBytes.
func (p *parser) readToEOF(resp *response) error {
	body, err := io.ReadAll(io.LimitReader(p.br, maxBodyBytes+1))
	if err != nil {
		return err
	}
	if len(body) > maxBodyBytes {
		body, resp.truncated = body[:maxBodyBytes], true
	}
	resp.body = body
	return nil
}

// readChunked reads a chunked body and its trailers, keeping at most maxBodyBytes. Once the
// body is full it stops reading.
func (p *parser) readChunked(resp *response) error {
	var body []byte
	for {
		line, err := p.line()
		if err != nil {
			return eofIsMalformed(err, "chunked body ends before its last chunk")
		}
		size, err := parseChunkSize(line)
		if err != nil {
			return err
		}
		if size == 0 {
			break
		}
		room := int64(maxBodyBytes - len(body))
		take := min(size, room)
		start := len(body)
		body = append(body, make([]byte, take)...)
		if _, err := io.ReadFull(p.br, body[start:]); err != nil {
			return eofIsMalformed(err, "chunked body ends inside a chunk")
		}
		if take < size {
			resp.body, resp.truncated = body, true
			return nil
		}
		crlf, err := p.line()
		if err != nil {
			return eofIsMalformed(err, "chunked body ends after a chunk")
		}
		if len(crlf) != 0 {
			return malformed("chunk longer than its size %d", size)
		}
	}
	resp.body = body
	for {
		line, err := p.headerLine()
		if err != nil {
			return eofIsMalformed(err, "chunked body ends in its trailers")
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// parseChunkSize parses a chunk-size line, "1a" or "1a;name=value".
func parseChunkSize(line []byte) (int64, error) {
	hex, _, _ := bytes.Cut(line, []byte(";"))
	hex = bytes.TrimRight(hex, " \t")
	if len(hex) == 0 || len(hex) > 15 {
		return 0, malformed("bad chunk size line %s", quote(line))
	}
	n, err := strconv.ParseInt(string(hex), 16, 64)
	if err != nil || hex[0] == '+' || hex[0] == '-' {
		return 0, malformed("bad chunk size line %s", quote(line))
	}
	return n, nil
}

// eofIsMalformed turns an end of stream inside a response into a malformedError that says
// where the response ended; other errors pass unchanged.
func eofIsMalformed(err error, msg string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed("%s", msg)
	}
	return err
}

// budgetReader reads at most n bytes from r, then fails with a malformedError: unlike
// io.LimitReader it does not pass the limit off as the end of the response.
type budgetReader struct {
	r io.Reader
	n int
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, malformed("response longer than %d bytes", maxResponseBytes)
	}
	if len(p) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= n
	return n, err
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isToken reports whether b is an RFC 9110 token, as a header name must be.
func isToken(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// quote renders bytes received from the server for a message: quoted, escaped, short.
func quote(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
