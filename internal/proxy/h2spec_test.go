package proxy

// HTTP/2 conformance: h2spec (github.com/summerwind/h2spec, pinned by
// scripts/install-h2spec.sh) against a real listener, over h2c and over TLS. By hand, from
// the repository root:
//
//	scripts/install-h2spec.sh
//	GANGWAY_H2SPEC=bin/h2spec go test -race -count=1 -v -run '^TestH2spec$' ./internal/proxy/
//
// `make test-h2spec` does the same. Without GANGWAY_H2SPEC the test skips. Each run logs
// h2spec's summary line, and every unexpected failure with what h2spec expected and got. To
// see one case frame by frame, run h2spec by hand against a listener with its own name for
// the case: `bin/h2spec -v -p PORT http2/6.5.3/1` (add -t -k for TLS).

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// h2specKnownFailures are the cases h2spec fails today, with the listeners ("h2c", "tls") on
// which each fails, and why that is accepted. A listed case that passes fails the test, so
// that the list never outlives the failure. Sections are RFC 7540's, which h2spec v2.2.1
// follows; RFC 9113 keeps every requirement below.
var h2specKnownFailures = map[string][]string{
	// Invalid connection preface on h2c: h2spec wants the connection closed. The listener
	// serves HTTP/1.1 and HTTP/2 on one port and tells them apart by the preface, so bytes
	// that are not HTTP/2's are read as an HTTP/1.1 request: the server answers "HTTP/1.1
	// 400 Bad Request" with Connection: close, then closes (h2spec reads the answer as a
	// frame and reports an error). Nothing is forwarded and the connection ends either
	// way; without TLS the server cannot know that the client meant HTTP/2. (Over TLS, ALPN
	// says so, and the connection is closed as RFC 9113 §3.4 asks.)
	"http2/3.5/2": {"h2c"},
}

// h2specCaseTimeout is h2spec's -o: how long a case waits for each reaction of the server.
// No case passes by waiting; each case that fails for want of a reaction takes this long.
// It has room for the race detector on a busy machine.
const h2specCaseTimeout = 3 * time.Second

// h2specRunTimeout bounds one whole h2spec run (about 15 s when all goes well).
const h2specRunTimeout = 3 * time.Minute

func TestH2spec(t *testing.T) {
	bin := os.Getenv("GANGWAY_H2SPEC")
	if bin == "" {
		t.Skip("GANGWAY_H2SPEC is not set: the HTTP/2 conformance suite needs h2spec (run make test-h2spec, which installs it)")
	}
	if !filepath.IsAbs(bin) {
		// The test runs in internal/proxy; a relative path is taken from the repository root,
		// where the command above is run.
		bin = filepath.Join("..", "..", bin)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("GANGWAY_H2SPEC: %v (scripts/install-h2spec.sh installs bin/h2spec)", err)
	}
	for _, listener := range []string{"h2c", "tls"} {
		t.Run(listener, func(t *testing.T) {
			// h2spec spends most of a run waiting for reactions that do not come.
			t.Parallel()
			a := startBackend(t, "a")
			sp := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}})
			var args []string
			if listener == "tls" {
				sp, _, _, _ = tlsSpec(t, a.addr, spec.NoClientCert, nil)
				args = []string{"-t", "-k"}
			} else {
				sp.Listeners[0].H2C = true
			}
			srv := startServer(t, sp)
			cases := runH2spec(t, bin, srv.Addr("public"), args...)
			// h2spec's cases pass on an error page too: make sure they were proxied.
			if a.hits.Load() == 0 {
				t.Error("no request of h2spec reached the upstream")
			}
			checkH2spec(t, listener, cases)
		})
	}
}

// h2specCase is one case's outcome in an h2spec run.
type h2specCase struct {
	id     string // h2spec's own name for the case, e.g. "http2/6.5.3/1"
	desc   string
	failed bool
	detail string // what h2spec expected and what it got, when failed
}

// runH2spec runs every h2spec case, strict ones included, against addr and returns the
// outcome of each.
func runH2spec(t *testing.T, bin, addr string, args ...string) []h2specCase {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	host, port := addr[:i], addr[i+1:]
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	ctx, cancel := context.WithTimeout(context.Background(), h2specRunTimeout)
	defer cancel()
	args = append([]string{"--strict", "-h", host, "-p", port, "-o", strconv.Itoa(int(h2specCaseTimeout / time.Second)), "-j", report}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("h2spec did not finish within %v; its output:\n%s", h2specRunTimeout, out.String())
	}
	// h2spec exits 1 when a case fails, and also when it cannot run at all; only the
	// report, written once every case has run, tells the two apart.
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running h2spec: %v", err)
	}
	cases, rerr := readH2specReport(report)
	if rerr != nil {
		t.Fatalf("h2spec (%v) left no usable report: %v; its output:\n%s", err, rerr, out.String())
	}
	summary := regexp.MustCompile(`(?m)^\d+ tests, \d+ passed, \d+ skipped, \d+ failed$`).FindString(out.String())
	if summary == "" {
		t.Fatalf("no summary line in h2spec's output:\n%s", out.String())
	}
	t.Logf("h2spec %s: %s (%.1fs)", strings.Join(args, " "), summary, time.Since(start).Seconds())
	return cases
}

// h2specDetail is a failed case's element in h2spec's report: opening tag, text, closing tag.
var h2specDetail = regexp.MustCompile(`(?s)(<(?:failure|error)>)(.*?)(</(?:failure|error)>)`)

// readH2specReport reads h2spec's JUnit report. A case's number is its place in its group,
// as h2spec counts it: the report lists a group's cases in order.
func readH2specReport(file string) ([]h2specCase, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	// h2spec writes what a failed case expected and got into the report unescaped; escaped,
	// a '<' or '&' in it cannot make the report unreadable.
	data = h2specDetail.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := h2specDetail.FindSubmatch(m)
		var b bytes.Buffer
		b.Write(sub[1])
		xml.EscapeText(&b, sub[2])
		b.Write(sub[3])
		return b.Bytes()
	})
	var report struct {
		Suites []struct {
			Package string `xml:"package,attr"`
			Cases   []struct {
				Desc    string  `xml:"classname,attr"`
				Failure *string `xml:"failure"`
				Error   *string `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &report); err != nil {
		return nil, err
	}
	var cases []h2specCase
	for _, s := range report.Suites {
		for i, c := range s.Cases {
			hc := h2specCase{id: fmt.Sprintf("%s/%d", s.Package, i+1), desc: c.Desc}
			for _, d := range []*string{c.Failure, c.Error} {
				if d != nil {
					hc.failed = true
					hc.detail = h2specFailure(*d)
				}
			}
			cases = append(cases, hc)
		}
	}
	if len(cases) == 0 {
		return nil, errors.New("no test cases in the report")
	}
	return cases, nil
}

// h2specFailure words a failed case's text from the report. For a case that saw the wrong
// reaction h2spec writes the reactions it would accept, one a line, then the one it got.
func h2specFailure(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) < 2 {
		return "error: " + lines[0]
	}
	return "expected: " + strings.Join(lines[:len(lines)-1], " | ") + "\ngot: " + lines[len(lines)-1]
}

// checkH2spec fails the test for every failed case not listed for listener in
// h2specKnownFailures, and for every case listed for it that did not fail.
func checkH2spec(t *testing.T, listener string, cases []h2specCase) {
	t.Helper()
	failed := map[string]bool{}
	for _, c := range cases {
		failed[c.id] = c.failed
		if c.failed && !slices.Contains(h2specKnownFailures[c.id], listener) {
			t.Errorf("h2spec %s %q failed on the %s listener:\n%s", c.id, c.desc, listener, c.detail)
		}
	}
	var stale []string
	for id, listeners := range h2specKnownFailures {
		if slices.Contains(listeners, listener) && !failed[id] {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	for _, id := range stale {
		if _, ran := failed[id]; !ran {
			t.Errorf("h2spec %s, listed in h2specKnownFailures, is not in h2spec's report: fix the list", id)
			continue
		}
		t.Errorf("h2spec %s passes on the %s listener now: remove %q from its entry in h2specKnownFailures (and the entry when no listener is left)", id, listener, listener)
	}
}

// TestH2specReport reads a report in the form h2spec v2.2.1 writes, text left unescaped.
func TestH2specReport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "h2spec.xml")
	writeFile(t, "", file, []byte(`<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="3.5. HTTP/2 Connection Preface" package="http2/3.5" id="3.5" tests="2" skipped="0" failures="0" errors="1">
    <testcase package="http2/3.5" classname="Sends client connection preface" time="0.0010"></testcase>
    <testcase package="http2/3.5" classname="Sends invalid connection preface" time="0.0020">
      <error>Connection closed
Error: read <nil> & more</error>
    </testcase>
  </testsuite>
  <testsuite name="6.5.3. Settings Synchronization" package="http2/6.5.3" id="6.5.3" tests="1" skipped="1" failures="0" errors="0">
    <testcase package="http2/6.5.3" classname="Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE" time="0.0000">
      <skipped></skipped>
    </testcase>
    <testcase package="http2/6.5.3" classname="Sends a SETTINGS frame without ACK flag" time="0.0010">
      <error>dial tcp: connection refused</error>
    </testcase>
  </testsuite>
</testsuites>
`))
	got, err := readH2specReport(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []h2specCase{
		{id: "http2/3.5/1", desc: "Sends client connection preface"},
		{id: "http2/3.5/2", desc: "Sends invalid connection preface", failed: true, detail: "expected: Connection closed\ngot: Error: read <nil> & more"},
		{id: "http2/6.5.3/1", desc: "Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE"},
		{id: "http2/6.5.3/2", desc: "Sends a SETTINGS frame without ACK flag", failed: true, detail: "error: dial tcp: connection refused"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
