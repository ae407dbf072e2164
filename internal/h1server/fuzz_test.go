package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FuzzServe feeds arbitrary bytes to a connection and checks that the server neither
// panics nor hangs, and that what it writes back is a sequence of well-formed responses
// (possibly ending with an error reply): no request can make it break its own framing.
func FuzzServe(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5;e=1\r\nhello\r\n0\r\nX-T: v\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"HEAD /big HTTP/1.1\r\nHost: a\r\n\r\nGET /trailer HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://b/x?y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	// One server for every input; each input on its own connection, whose served
	// request methods (to parse the responses by) are kept under the client's address.
	var logMu sync.Mutex
	var logged strings.Builder
	var served sync.Map // client address → *methodLog
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ml, ok := served.Load(r.RemoteAddr); ok {
				ml.(*methodLog).add(r.Method)
			}
			switch r.URL.Path {
			case "/echo":
				b, _ := io.ReadAll(r.Body)
				w.Write(b)
			case "/big":
				w.Write(bytes.Repeat([]byte("x"), 3000))
			case "/trailer":
				w.Header().Set("Trailer", "X-T")
				w.Write([]byte("t"))
				w.Header().Set("X-T", "v")
			default:
				io.WriteString(w, r.Method+" "+r.URL.Path)
			}
		}),
		ReadHeaderTimeout: time.Second,
		IdleTimeout:       time.Second,
		MaxHeaderBytes:    1 << 10,
		ErrorLog:          log.New(writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logged.Write(p) }), "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go s.Serve(ln)
	f.Cleanup(func() { s.Close() })

	f.Fuzz(func(t *testing.T, in []byte) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ml := new(methodLog)
		served.Store(conn.LocalAddr().String(), ml)
		defer served.Delete(conn.LocalAddr().String())
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			conn.Write(in)
			conn.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(conn)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading the responses to %q: %v", in, err)
		}
		logMu.Lock()
		if strings.Contains(logged.String(), "panic") {
			t.Fatalf("panic serving %q:\n%s", in, logged.String())
		}
		logMu.Unlock()
		methods := ml.get()
		br := bufio.NewReader(bytes.NewReader(out))
		for i := 0; ; {
			if _, err := br.Peek(1); err != nil {
				break
			}
			method := "GET" // error replies come after the requests served
			if i < len(methods) {
				method = methods[i]
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				t.Fatalf("unparseable output for %q: %v\n%q", in, err, out)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatalf("bad response body for %q: %v\n%q", in, err, out)
			}
			if resp.StatusCode >= 200 {
				i++
			}
		}
	})
}

type methodLog struct {
	mu      sync.Mutex
	methods []string
}

func (m *methodLog) add(method string) {
	m.mu.Lock()
	m.methods = append(m.methods, method)
	m.mu.Unlock()
}

func (m *methodLog) get() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.methods
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
