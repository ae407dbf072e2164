package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/gangway-ecs/gangway/internal/memnet"
	"github.com/gangway-ecs/gangway/internal/probecmd"
	"github.com/gangway-ecs/gangway/internal/version"
)

// testServer is a TCP server on a loopback address. For each connection it reads the
// request head, records it, and hands the connection to respond.
type testServer struct {
	addr string
	done chan struct{} // closed when the test ends: responders that hang return then

	mu       sync.Mutex
	requests []string
}

// serve starts a testServer on 127.0.0.1. It stops, and waits for its goroutines, when the
// test ends.
func serve(t *testing.T, respond func(s *testServer, c net.Conn)) *testServer {
	t.Helper()
	return serveOn(t, "127.0.0.1:0", respond)
}

func serveOn(t *testing.T, addr string, respond func(s *testServer, c net.Conn)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return serveListener(t, ln, respond)
}

// serveListener answers the connections ln accepts with respond until the test ends.
func serveListener(t *testing.T, ln net.Listener, respond func(s *testServer, c net.Conn)) *testServer {
	s := &testServer{addr: ln.Addr().String(), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				head, err := readHead(c)
				if err != nil {
					t.Errorf("server: reading request: %v", err)
					return
				}
				s.mu.Lock()
				s.requests = append(s.requests, head)
				s.mu.Unlock()
				respond(s, c)
			})
		}
	})
	t.Cleanup(func() {
		close(s.done)
		ln.Close()
		wg.Wait()
	})
	return s
}

// readHead reads a request head up to and including its empty line. It reads byte by byte
// so that nothing after the head is consumed.
func readHead(c net.Conn) (string, error) {
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			return string(head), err
		}
		head = append(head, b[0])
	}
	return string(head), nil
}

func (s *testServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// reply answers with raw bytes and closes.
func reply(raw string) func(*testServer, net.Conn) {
	return func(_ *testServer, c net.Conn) { c.Write([]byte(raw)) }
}

// hang writes prefix and then nothing until the test ends.
func hang(prefix string) func(*testServer, net.Conn) {
	return func(s *testServer, c net.Conn) {
		c.Write([]byte(prefix))
		<-s.done
	}
}

// dribble writes prefix and then one header byte every 20ms for up to a minute: a server
// that is never silent for long, which only a deadline on the whole exchange stops.
func dribble(prefix string) func(*testServer, net.Conn) {
	return func(s *testServer, c net.Conn) {
		if _, err := c.Write([]byte(prefix)); err != nil {
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range 3000 {
			select {
			case <-s.done:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}
}

// reset aborts the connection with a TCP RST.
func reset(_ *testServer, c net.Conn) {
	c.(*net.TCPConn).SetLinger(0)
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// httpResponse builds a response with a Content-Length body.
func httpResponse(status, body string) string {
	return fmt.Sprintf("HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
}

// chunked builds a response with a chunked body, one chunk per part.
func chunked(status string, parts ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %s\r\nTransfer-Encoding: chunked\r\n\r\n", status)
	for _, p := range parts {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

const (
	passingBody = "[+]config.build ok\n[+]listener.ingress ok\nreadyz check passed\n"
	failingBody = "[+]config.build ok\n[-]upstream.cluster.app: no healthy endpoint\n" +
		"warn: no check named \"nope\" to exclude\nreadyz check failed\n"
)

// runProbe runs the program in-process with the given environment.
func runProbe(t *testing.T, env map[string]string, args ...string) (code probecmd.ExitCode, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, func(k string) string { return env[k] }, &out, &errOut, new(net.Dialer).DialContext)
	return code, out.String(), errOut.String()
}

// took matches the "(addr, duration)" part of a report.
const took = `\(127\.0\.0\.1:\d+, [0-9.]+[µm]?s\)`

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		respond func(*testServer, net.Conn)
		args    []string
		code    probecmd.ExitCode
		stdout  string // regexp of the whole output
	}{
		{
			name:    "healthy",
			respond: reply(httpResponse("200 OK", passingBody)),
			code:    exitHealthy,
			stdout:  `^container: ok ` + took + `\n$`,
		},
		{
			name:    "healthy quiet body",
			respond: reply(httpResponse("200 OK", "ok\n")),
			code:    exitHealthy,
			stdout:  `^container: ok ` + took + `\n$`,
		},
		{
			name:    "healthy verbose prints the body",
			respond: reply(httpResponse("200 OK", passingBody)),
			args:    []string{"-v"},
			code:    exitHealthy,
			stdout:  `^container: ok ` + took + `\n\[\+\]config.build ok\n\[\+\]listener.ingress ok\nreadyz check passed\n$`,
		},
		{
			name:    "unhealthy lists failing checks and warnings",
			respond: reply(httpResponse("503 Service Unavailable", failingBody)),
			code:    exitUnhealthy,
			stdout: `^container: unhealthy: 503 Service Unavailable ` + took + `\n` +
				`\[-\]upstream.cluster.app: no healthy endpoint\nwarn: no check named "nope" to exclude\n$`,
		},
		{
			name:    "unhealthy verbose prints the whole body",
			respond: reply(httpResponse("503 Service Unavailable", failingBody)),
			args:    []string{"-v"},
			code:    exitUnhealthy,
			stdout:  `^container: unhealthy: 503 Service Unavailable ` + took + `\n` + regexp.QuoteMeta(failingBody) + `$`,
		},
		{
			name:    "unhealthy without check lines prints the body",
			respond: reply(httpResponse("503 Service Unavailable", "draining\n")),
			code:    exitUnhealthy,
			stdout:  `^container: unhealthy: 503 Service Unavailable ` + took + `\ndraining\n$`,
		},
		{
			name:    "other status is unhealthy and named",
			respond: reply(httpResponse("404 Not Found", "404 page not found\n")),
			code:    exitUnhealthy,
			stdout:  `^container: unhealthy: unexpected status 404 Not Found, want 200 or 503 ` + took + `\n404 page not found\n$`,
		},
		{
			name:    "500 is unhealthy",
			respond: reply(httpResponse("500 Internal Server Error", "")),
			code:    exitUnhealthy,
			stdout:  `^container: unhealthy: unexpected status 500 Internal Server Error, want 200 or 503 `,
		},
		{
			name:    "chunked healthy",
			respond: reply(chunked("200 OK", "[+]config.build ok\n", "readyz check passed\n")),
			code:    exitHealthy,
			stdout:  `^container: ok ` + took + `\n$`,
		},
		{
			name:    "chunked unhealthy",
			respond: reply(chunked("503 Service Unavailable", "[+]config.build ok\n[-]upstr", "eam.cluster.app: no healthy endpoint\n", "readyz check failed\n")),
			code:    exitUnhealthy,
			stdout:  `^container: unhealthy: 503 Service Unavailable ` + took + `\n\[-\]upstream.cluster.app: no healthy endpoint\n$`,
		},
		{
			name:    "body to end of stream",
			respond: reply("HTTP/1.0 200 OK\r\n\r\nok\n"),
			code:    exitHealthy,
			stdout:  `^container: ok ` + took + `\n$`,
		},
		{
			name:    "garbage",
			respond: reply("SSH-2.0-OpenSSH_9.6\r\n"),
			code:    exitUnreachable,
			stdout:  `^container: bad response from 127\.0\.0\.1:\d+: not an HTTP/1\.x status line: "SSH-2\.0-OpenSSH_9\.6"\n$`,
		},
		{
			name:    "HTTP/2 preface",
			respond: reply("\x00\x00\x12\x04\x00\x00\x00\x00\x00"),
			code:    exitUnreachable,
			stdout:  `^container: bad response from 127\.0\.0\.1:\d+: `,
		},
		{
			name:    "closed without answering",
			respond: reply(""),
			code:    exitUnreachable,
			stdout:  `^container: bad response from 127\.0\.0\.1:\d+: connection closed before a response\n$`,
		},
		{
			name:    "body shorter than its length",
			respond: reply("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok\n"),
			code:    exitUnreachable,
			stdout:  `^container: bad response from 127\.0\.0\.1:\d+: body ends after 3 of 10 bytes\n$`,
		},
		{
			name:    "reset",
			respond: reset,
			code:    exitUnreachable,
			stdout:  `^container: unreachable: read tcp .*: connection reset by peer\n$`,
		},
		{
			name:    "never answers",
			respond: hang(""),
			args:    []string{"-timeout", "300ms"},
			code:    exitUnreachable,
			stdout:  `^container: timed out after 300ms: read tcp .*: i/o timeout\n$`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := serve(t, tt.respond)
			start := time.Now()
			code, stdout, stderr := runProbe(t, nil, append([]string{"-addr", s.addr}, tt.args...)...)
			elapsed := time.Since(start)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout: %s", code, tt.code, stdout)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(stdout) {
				t.Errorf("stdout:\n%s\nwant match for:\n%s", stdout, tt.stdout)
			}
			if stderr != "" {
				t.Errorf("stderr: %q, want nothing", stderr)
			}
			// The deadline, not the server, ends a stalled probe. The bound is loose so that
			// a loaded machine passes; a probe that waited for the server would take a minute.
			if elapsed > 15*time.Second {
				t.Errorf("took %s", elapsed)
			}
			if n := len(s.Requests()); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

func TestRunNothingListening(t *testing.T) {
	addr := deadAddr(t)
	code, stdout, _ := runProbe(t, nil, "-addr", addr)
	if code != exitUnreachable {
		t.Errorf("exit code %d, want %d", code, exitUnreachable)
	}
	want := "container: unreachable: dial tcp " + addr + ": connect: connection refused\n"
	if stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
}

// TestRunTimeoutBoundsTheWholeProbe stalls the server at every point of the exchange. It
// runs in synctest bubbles over an in-memory network: the probe's deadline passes on the
// fake clock, so the probe must give up at exactly its -timeout, neither before nor after
// (over TCP, TestRunExitCodes checks the message of a server that never answers).
func TestRunTimeoutBoundsTheWholeProbe(t *testing.T) {
	for _, tt := range []struct {
		name    string
		respond func(*testServer, net.Conn)
	}{
		{"never answers", hang("")},
		{"stops in the headers", hang("HTTP/1.1 200 OK\r\nContent-Le")},
		{"stops in the body", hang("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok")},
		// Never silent for long: only a deadline on the whole exchange stops it.
		{"dribbles forever", dribble("HTTP/1.1 200 OK\r\nX-Slow: ")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ln := memnet.Listen("127.0.0.1:8080")
				s := serveListener(t, ln, tt.respond)
				var out, errOut bytes.Buffer
				start := time.Now()
				code := run([]string{"-addr", s.addr, "-timeout", "400ms"}, func(string) string { return "" }, &out, &errOut, ln.DialContext)
				if el := time.Since(start); el != 400*time.Millisecond {
					t.Errorf("gave up after %v, want at the 400ms deadline", el)
				}
				if code != exitUnreachable || !strings.HasPrefix(out.String(), "container: timed out after 400ms: ") {
					t.Errorf("exit code %d, want %d: %s", code, exitUnreachable, &out)
				}
				if n := len(s.Requests()); n != 1 {
					t.Errorf("server saw %d requests, want 1", n)
				}
			})
		})
	}
}

func TestRunRequest(t *testing.T) {
	tests := []struct {
		args []string
		line string
	}{
		{nil, "GET /containerz?verbose HTTP/1.1"},
		{[]string{"-probe", "container"}, "GET /containerz?verbose HTTP/1.1"},
		{[]string{"-probe", "ready"}, "GET /readyz?verbose HTTP/1.1"},
		{[]string{"-probe", "live"}, "GET /livez?verbose HTTP/1.1"},
		{[]string{"-probe", "startup"}, "GET /startupz?verbose HTTP/1.1"},
		{[]string{"-exclude", "a", "-exclude", "b"}, "GET /containerz?verbose&exclude=a&exclude=b HTTP/1.1"},
		{[]string{"-probe", "live", "-exclude", "upstream.cluster.a/b c&d=e"},
			"GET /livez?verbose&exclude=upstream.cluster.a%2Fb+c%26d%3De HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			s := serve(t, reply(httpResponse("200 OK", "ok\n")))
			if code, stdout, _ := runProbe(t, nil, append([]string{"-addr", s.addr}, tt.args...)...); code != exitHealthy {
				t.Fatalf("exit code %d: %s", code, stdout)
			}
			want := tt.line + "\r\n" +
				"Host: " + s.addr + "\r\n" +
				"User-Agent: gangway-healthcheck/dev\r\n" +
				"Connection: close\r\n\r\n"
			if got := s.Requests(); len(got) != 1 || got[0] != want {
				t.Errorf("server saw %q, want %q", got, want)
			}
		})
	}
}

func TestRunIPv6(t *testing.T) {
	// An IPv6 loopback is part of the machines this project runs on; its absence fails.
	s := serveOn(t, "[::1]:0", reply(httpResponse("200 OK", "ok\n")))
	code, stdout, _ := runProbe(t, nil, "-addr", s.addr)
	if code != exitHealthy {
		t.Fatalf("exit code %d: %s", code, stdout)
	}
	if !strings.HasPrefix(stdout, "container: ok ("+s.addr+", ") {
		t.Errorf("stdout %q", stdout)
	}
	if got := s.Requests(); len(got) != 1 || !strings.Contains(got[0], "\r\nHost: "+s.addr+"\r\n") {
		t.Errorf("server saw %q, want Host %s", got, s.addr)
	}
}

func TestHostHeader(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:28080":        "127.0.0.1:28080",
		"localhost:28080":        "localhost:28080",
		"[::1]:28080":            "[::1]:28080",
		"[fe80::1%eth0]:28080":   "[fe80::1]:28080",
		"gangway.internal:28080": "gangway.internal:28080",
	} {
		if got := hostHeader(addr); got != want {
			t.Errorf("hostHeader(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestRunAddrFromEnv(t *testing.T) {
	live := serve(t, reply(httpResponse("200 OK", "ok\n")))
	dead := deadAddr(t)
	tests := []struct {
		name string
		env  string
		args []string
		code probecmd.ExitCode
	}{
		{"env", live.addr, nil, exitHealthy},
		{"flag wins over env", dead, []string{"-addr", live.addr}, exitHealthy},
		{"flag wins over a live env", live.addr, []string{"-addr", dead}, exitUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, _ := runProbe(t, map[string]string{probecmd.AddrEnv: tt.env}, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d: %s", code, tt.code, stdout)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name   string
		env    string
		args   []string
		stderr string
	}{
		{"unknown flag", "", []string{"-bogus"}, "healthcheck: flag provided but not defined: -bogus\n"},
		{"bad probe", "", []string{"-probe", "bogus"}, `healthcheck: -probe "bogus": want container, ready, live or startup` + "\n"},
		{"probe path", "", []string{"-probe", "readyz"}, `healthcheck: -probe "readyz"`},
		{"bad timeout", "", []string{"-timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		{"zero timeout", "", []string{"-timeout", "0s"}, "healthcheck: -timeout 0s: must be positive\n"},
		{"negative timeout", "", []string{"-timeout", "-1s"}, "healthcheck: -timeout -1s: must be positive\n"},
		{"extra argument", "", []string{"-probe", "live", "now"}, `healthcheck: unexpected argument "now"` + "\n"},
		{"missing flag value", "", []string{"-addr"}, "flag needs an argument: -addr\n"},
		{"addr without port", "", []string{"-addr", "127.0.0.1"}, `healthcheck: -addr "127.0.0.1" (or GANGWAY_HEALTH_ADDR): address 127.0.0.1: missing port in address`},
		{"addr without host", "", []string{"-addr", ":28080"}, "want host:port"},
		{"addr with a newline", "", []string{"-addr", "a\r\nX-y:1"}, "control character"},
		{"bad env addr", "localhost", nil, `healthcheck: -addr "localhost" (or GANGWAY_HEALTH_ADDR)`},
		{"empty exclude", "", []string{"-exclude", ""}, `invalid value "" for flag -exclude: empty check name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runProbe(t, map[string]string{probecmd.AddrEnv: tt.env}, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, tt.stderr) || !strings.HasSuffix(stderr, "Run 'healthcheck -h' for usage.\n") {
				t.Errorf("stderr %q, want it to contain %q and the usage hint", stderr, tt.stderr)
			}
		})
	}
}

func TestRunHelpAndVersion(t *testing.T) {
	code, stdout, stderr := runProbe(t, nil, "-h")
	if code != exitHealthy || stderr != "" {
		t.Errorf("-h: exit code %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"Usage: healthcheck [flags]", "-exclude NAME", "GANGWAY_HEALTH_ADDR", "3  no verdict"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("-h output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runProbe(t, nil, "-version", "-addr", deadAddr(t))
	if code != exitHealthy || stdout != version.Line("gangway-healthcheck")+"\n" {
		t.Errorf("-version: exit code %d, stdout %q", code, stdout)
	}
}

func TestRunOutputCapped(t *testing.T) {
	var body strings.Builder
	for i := range 300 {
		fmt.Fprintf(&body, "[-]upstream.cluster.c%03d: connect: connection refused (%s)\n", i, strings.Repeat("é", 8))
		fmt.Fprintf(&body, "[+]listener.l%03d ok\n", i)
	}
	body.WriteString("readyz check failed\n")
	for _, args := range [][]string{nil, {"-v"}} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			s := serve(t, reply(chunked("503 Service Unavailable", body.String())))
			code, stdout, _ := runProbe(t, nil, append([]string{"-addr", s.addr}, args...)...)
			if code != exitUnhealthy {
				t.Errorf("exit code %d, want %d", code, exitUnhealthy)
			}
			if len(stdout) > 4096 || len(stdout) < 4000 {
				t.Errorf("output is %d bytes, want 4000 to 4096", len(stdout))
			}
			lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if !regexp.MustCompile(`^container: unhealthy: 503 Service Unavailable ` + took + `$`).MatchString(lines[0]) {
				t.Errorf("first line %q", lines[0])
			}
			if !regexp.MustCompile(`^\.\.\. \(\d+ more bytes cut\)$`).MatchString(lines[len(lines)-1]) {
				t.Errorf("last line %q, want the truncation marker", lines[len(lines)-1])
			}
			// Every line in between is whole.
			whole := regexp.MustCompile(`^(\[-\]upstream\.cluster\.c\d{3}: connect: connection refused \(é{8}\)|\[\+\]listener\.l\d{3} ok)$`)
			for _, l := range lines[1 : len(lines)-1] {
				if !whole.MatchString(l) {
					t.Errorf("cut line %q", l)
				}
			}
		})
	}
}

func TestCapOutput(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short", "a\nb\n", 10, "a\nb\n"},
		{"exact", "aaaa\nbbbb\n", 10, "aaaa\nbbbb\n"},
		{"cut at a line", "aaaa\nbbbb\n" + strings.Repeat("c", 40) + "\n", 40, "aaaa\nbbbb\n... (41 more bytes cut)\n"},
		{"one long line", strings.Repeat("x", 50), 40, strings.Repeat("x", 15) + "\n... (35 more bytes cut)\n"},
		{"not inside a rune", strings.Repeat("a", 14) + strings.Repeat("é", 20), 40, strings.Repeat("a", 14) + "\n... (40 more bytes cut)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(capOutput([]byte(tt.in), tt.max))
			if got != tt.want {
				t.Errorf("capOutput = %q, want %q", got, tt.want)
			}
			if len(got) > tt.max || !utf8.ValidString(got) {
				t.Errorf("%d bytes (max %d), valid UTF-8: %v", len(got), tt.max, utf8.ValidString(got))
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[-]db: down", "[-]db: down"},
		{"a\x1b[31mred\x00\r", "a?[31mred??"},
		{"tab\tok", "tab\tok"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{strings.Repeat("é", 10), "éééééé..."},
	}
	for _, tt := range tests {
		if got := printable(tt.in, 12); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Each line of the verbose body is written once, in order: the line reader must not skip or
// merge lines that arrive split across chunks.
func TestRunVerboseLinesAcrossChunks(t *testing.T) {
	s := serve(t, reply(chunked("200 OK", "[+]a o", "k\n[+]b ok", "\nreadyz check passed", "\n")))
	_, stdout, _ := runProbe(t, nil, "-addr", s.addr, "-v")
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Scan() // summary
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if want := []string{"[+]a ok", "[+]b ok", "readyz check passed"}; strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("body lines %q, want %q", lines, want)
	}
}
