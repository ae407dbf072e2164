package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// forwardedNames are the headers whose handling the peers must share with Gangway.
var forwardedNames = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port"}

// TestPeersForwardAsGangway runs HAProxy and nginx on the benchmark's own configurations
// (their ports moved to free ones) in front of an upstream that reports the forwarding
// headers it receives, and checks that they do what Gangway does for a client it does not
// trust (internal/proxy's TestHeadersRewritesAndForwarding): X-Forwarded-For, -Proto, -Host and -Port
// replaced by the proxy's own, Forwarded removed, on HTTP/1.1 and HTTP/2.
func TestPeersForwardAsGangway(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range forwardedNames {
			fmt.Fprintf(w, "%s=%s\n", name, strings.Join(r.Header.Values(name), "|"))
		}
	}))
	t.Cleanup(up.Close)
	upAddr := up.Listener.Addr().String()

	t.Run("HAProxy", func(t *testing.T) {
		bin := needPeer(t, "haproxy", "haproxy is in the Makefile's TEST_PACKAGES")
		h1, h2 := freeAddr(t), freeAddr(t)
		conf := moveAddrs(t, fmt.Sprintf(haproxyConf, 1), "127.0.0.1:18600", upAddr, "127.0.0.1:18603", h1, "127.0.0.1:18613", h2)
		dir := t.TempDir()
		file := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		startPeer(t, dir, h1, bin, "-db", "-f", file)
		checkForwarded(t, h1, h2)
	})
	t.Run("nginx", func(t *testing.T) {
		bin := needPeer(t, "nginx", "the Makefile's TEST_PACKAGES has nginx-light")
		h1, h2 := freeAddr(t), freeAddr(t)
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
			t.Fatal(err)
		}
		conf := moveAddrs(t, fmt.Sprintf(nginxProxyConf, dir, 1), "127.0.0.1:18600", upAddr, "127.0.0.1:18602", h1, "127.0.0.1:18612", h2)
		file := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		startPeer(t, dir, h1, bin, "-p", dir, "-c", file)
		checkForwarded(t, h1, h2)
	})
}

// needPeer returns the path of a peer's binary, or skips saying why; with CI=true a
// missing binary fails the test.
func needPeer(t *testing.T, name, why string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err == nil {
		return bin
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (%s): %v", name, why, err)
	}
	t.Skipf("%s is not installed (%s; make test installs it): %v", name, why, err)
	return ""
}

// moveAddrs replaces each old address in conf by its new one (pairs), failing when conf
// does not hold one: the benchmark's configuration moved on without this test.
func moveAddrs(t *testing.T, conf string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(conf, pairs[i]) {
			t.Fatalf("the configuration does not name %s:\n%s", pairs[i], conf)
		}
	}
	return strings.NewReplacer(pairs...).Replace(conf)
}

// startPeer starts bin in dir, its output in dir/peer.log, and waits until addr accepts;
// the process group is killed when the test ends.
func startPeer(t *testing.T, dir, addr, bin string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "peer.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		logf.Close()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s exited before listening on %s: %v\n%s", bin, addr, err, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %v", bin, addr, err)
		}
	}
}

// checkForwarded sends a request claiming forwarding headers of its own to the peer's
// HTTP/1.1 listener h1 and its h2c listener h2, and checks what reaches the upstream.
func checkForwarded(t *testing.T, h1, h2 string) {
	t.Helper()
	claims := http.Header{
		"Forwarded":         {"for=192.0.2.1;proto=https"},
		"X-Forwarded-For":   {"192.0.2.1"},
		"X-Forwarded-Proto": {"https"},
		"X-Forwarded-Host":  {"claimed.example"},
		"X-Forwarded-Port":  {"443"},
	}
	want := func(addr string) string {
		_, port, _ := net.SplitHostPort(addr)
		return "Forwarded=\nX-Forwarded-For=127.0.0.1\nX-Forwarded-Proto=http\nX-Forwarded-Host=app.example\nX-Forwarded-Port=" + port + "\n"
	}

	c, err := net.Dial("tcp", h1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: app.example\r\n"
	for _, name := range forwardedNames {
		req += name + ": " + claims.Get(name) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBody(t, resp); got != want(h1) {
		t.Errorf("HTTP/1.1: the upstream got\n%s\nwant\n%s", got, want(h1))
	}

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	r, err := http.NewRequest("GET", "http://"+h2+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Host = "app.example"
	r.Header = claims
	resp, err = (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("h2c listener answered %s", resp.Proto)
	}
	if got := readBody(t, resp); got != want(h2) {
		t.Errorf("HTTP/2: the upstream got\n%s\nwant\n%s", got, want(h2))
	}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

// freeAddr returns an address on 127.0.0.1 that nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
