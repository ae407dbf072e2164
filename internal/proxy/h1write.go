package proxy

import (
	"bufio"
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
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	if ok, err := writeSimpleRequest(bw, req); ok {
		return err
	}
	return req.Write(bw)
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
	if hasCTL(ruri) {
		return false, nil // req.Write refuses it
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
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
	// Sorted by name, as req.Write does.
	var arr [32]string
	keys := arr[:0]
	for k := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue // req.Write drops these too
		}
		for _, v := range req.Header[k] {
			writeHeaderLine(bw, k, v)
		}
	}
	_, err := bw.WriteString("\r\n")
	return true, err
}

// writeHeaderLine writes "k: v\r\n" with v cleaned as req.Write cleans it: line breaks
// become spaces, surrounding white space goes.
func writeHeaderLine(bw *bufio.Writer, k, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = headerNewlines.Replace(v)
	}
	v = textproto.TrimString(v)
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

var headerNewlines = strings.NewReplacer("\n", " ", "\r", " ")

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// hasCTL reports whether s holds an ASCII control character.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}
