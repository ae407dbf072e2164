package upstream

import (
	"bufio"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// writeRequest writes req to bw exactly as req.Write would. A request without a body — nearly
// every request a proxy forwards — takes a path (writeSimpleRequest) that writes the same
// bytes without fmt and without req.Write's allocations (fmt's deep stack also makes each
// new HTTP/2 stream goroutine grow its stack); anything else (bodies, trailers, CONNECT,
// hosts that need cleaning) goes through req.Write.
//
// It is the last line of defence against a head that HTTP/1.1 cannot carry: a byte that
// would end a field, the request line or the head early would let one request become two.
// Whatever the servers let through, nothing is written of a request whose method is not a
// token, whose request target holds a space or a control character, whose header names
// are not tokens or whose values hold CR, LF, NUL or another control character but HTAB:
// it is refused with a *clientError instead (http.Request.Write drops such names and turns
// line breaks into spaces, and writes a method as it is).
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	if ok, err := writeSimpleRequest(bw, req); ok {
		return err
	}
	if err := checkRequestHead(req); err != nil {
		return err
	}
	return req.Write(bw)
}

// checkRequestHead returns a *clientError when req's head holds what HTTP/1.1 forbids (see
// writeRequest). The Host is left to http.Request.Write, which sends an invalid one empty.
func checkRequestHead(req *http.Request) error {
	if err := checkRequestLine(req.Method, requestTarget(req)); err != nil {
		return err
	}
	for k, vv := range req.Header {
		if err := checkField(k, vv); err != nil {
			return err
		}
	}
	return nil
}

// requestTarget is the request target http.Request.Write writes for req.
func requestTarget(req *http.Request) string {
	if req.URL == nil {
		return ""
	}
	if req.Method == http.MethodConnect && req.URL.Path == "" {
		if req.URL.Opaque != "" {
			return req.URL.Opaque
		}
		if req.Host != "" {
			return req.Host
		}
		return req.URL.Host
	}
	return req.URL.RequestURI()
}

// checkRequestLine refuses a method that is not a token and a request target with a space
// or a control character; an empty method is GET.
func checkRequestLine(method, target string) error {
	for i := 0; i < len(method); i++ {
		if !httpguts.IsTokenRune(rune(method[i])) {
			return &clientError{what: "request head", err: fmt.Errorf("invalid method %q", method)}
		}
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b == 0x7f {
			return &clientError{what: "request head", err: fmt.Errorf("invalid request target %q", target)}
		}
	}
	return nil
}

// checkField refuses a header name that is not a token and values with control characters
// but HTAB (CR, LF and NUL among them).
func checkField(k string, vv []string) error {
	if !httpguts.ValidHeaderFieldName(k) {
		return &clientError{what: "request head", err: fmt.Errorf("invalid header field name %q", k)}
	}
	for _, v := range vv {
		if !httpguts.ValidHeaderFieldValue(v) {
			return &clientError{what: "request head", err: fmt.Errorf("invalid value of header field %q", k)}
		}
	}
	return nil
}

// writeSimpleRequest writes req when it has no body and nothing that needs req.Write's
// slower handling; it reports false, having written nothing, otherwise. It reports no
// httptrace events.
func writeSimpleRequest(bw *bufio.Writer, req *http.Request) (bool, error) {
	if (req.Body != nil && req.Body != http.NoBody) || req.ContentLength != 0 || len(req.TransferEncoding) != 0 ||
		req.Close || len(req.Trailer) != 0 || req.Method == http.MethodConnect || req.URL == nil {
		return false, nil
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	// req.Write punycodes non-ASCII hosts, drops an invalid Host and removes IPv6 zones.
	if !isASCII(host) || strings.IndexByte(host, '%') >= 0 || !httpguts.ValidHostHeader(host) {
		return false, nil
	}
	ua, hasUA := req.Header["User-Agent"]
	if !hasUA {
		return false, nil // req.Write sends Go's default User-Agent
	}
	ruri := req.URL.RequestURI()
	if err := checkRequestLine(req.Method, ruri); err != nil {
		return true, err
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if len(ua) > 0 && !httpguts.ValidHeaderFieldValue(ua[0]) {
		return true, checkField("User-Agent", ua[:1])
	}
	// Sorted by name, as req.Write does, and checked before a byte is written.
	var arr [32]string
	keys := arr[:0]
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if err := checkField(k, vv); err != nil {
			return true, err
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(ruri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	if len(ua) > 0 && ua[0] != "" {
		writeHeaderLine(bw, "User-Agent", ua[0])
	}
	// Many servers expect a Content-Length on these methods even without a body.
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		bw.WriteString("Content-Length: 0\r\n")
	}
	for _, k := range keys {
		for _, v := range req.Header[k] {
			writeHeaderLine(bw, k, v)
		}
	}
	_, err := bw.WriteString("\r\n")
	return true, err
}

// writeHeaderLine writes "k: v\r\n" with v trimmed as req.Write trims it; v holds no line
// break (checkField).
func writeHeaderLine(bw *bufio.Writer, k, v string) {
	v = textproto.TrimString(v)
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
