package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
	"github.com/gangway-ecs/gangway/internal/upstream"
)

// tlsSpec is testSpec with TLS on the public listener; it returns the CA that issued the
// listener's certificate and the files.
func tlsSpec(t *testing.T, backendAddr string, auth spec.ClientAuth, clientCA *testCA) (*spec.Spec, *testCA, string, string) {
	t.Helper()
	dir := t.TempDir()
	ca := newCA(t, "server-ca")
	c, k := ca.Issue(t, "proxy.test", 100, time.Hour)
	certFile, keyFile := writeFile(t, dir, "tls.crt", c), writeFile(t, dir, "tls.key", k)
	sp := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{backendAddr}}})
	sp.Listeners[0].TLS = &spec.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientAuth: auth}
	if clientCA != nil {
		sp.Listeners[0].TLS.ClientCAFile = writeFile(t, dir, "client-ca.pem", clientCA.PEM)
	}
	return sp, ca, certFile, keyFile
}

// tlsClient trusts ca and, when given a certificate, always sends it (even when the server
// does not list its issuer as acceptable).
func tlsClient(ca *testCA, certs ...tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: ca.Pool()}
	if len(certs) > 0 {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
}

func TestTLSHTTP2Downstream(t *testing.T) {
	a := startBackend(t, "a")
	spec, ca, _, _ := tlsSpec(t, a.addr, spec.NoClientCert, nil)
	srv := startServer(t, spec)
	url := "https://" + srv.Addr("public") + "/x"

	resp, err := tlsClient(ca).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "a HTTP/1.1 /x" {
		t.Fatalf("proto %s body %q", resp.Proto, body)
	}
	if got := a.lastReq.Load().Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Fatalf("X-Forwarded-Proto %q", got)
	}

	// HTTP/1.1 over TLS still works (ALPN http/1.1).
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}}}}
	resp, err = h1.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Fatalf("proto %s", resp.Proto)
	}

	// TLS 1.1 is refused.
	_, err = tls.Dial("tcp", srv.Addr("public"), &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}

	rec, _ := record(srv.reg, "tls.certificates")
	exp, err := time.Parse(time.RFC3339, attr(rec, "expires"))
	if err != nil || rec.Status != health.Running || time.Until(exp) > time.Hour || time.Until(exp) < 50*time.Minute {
		t.Fatalf("tls.certificates %+v (%v)", rec, err)
	}
}

func TestH2CDownstream(t *testing.T) {
	a := startBackend(t, "a")
	sp := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}})
	sp.Listeners[0].H2C = true
	srv := startServer(t, sp)

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(srv.url("public", "/h2c"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "a HTTP/1.1 /h2c" {
		t.Fatalf("proto %s body %q", resp.Proto, body)
	}

	// Without h2c, the HTTP/2 preface gets 505.
	plain := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}))
	c := rawConn(t, plain.Addr("public"))
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	if line, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 505") {
		t.Fatalf("h2c preface on a plain listener: %q", line)
	}

	// An HTTP/1.1 request asking to upgrade to h2c is served over HTTP/1.1, and the upgrade
	// is not forwarded.
	req, _ := http.NewRequest("GET", srv.url("public", "/up"), nil)
	req.Header.Set("Connection", "Upgrade, HTTP2-Settings")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
	resp, err = newClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || a.lastReq.Load().Header.Get("Upgrade") != "" {
		t.Fatalf("status %d upstream headers %v", resp.StatusCode, a.lastReq.Load().Header)
	}
}

func TestMTLS(t *testing.T) {
	a := startBackend(t, "a")
	clientCA := newCA(t, "client-ca")
	good := clientCA.TLSCert(t, "client")
	stranger := newCA(t, "other-ca").TLSCert(t, "intruder")

	t.Run("require", func(t *testing.T) {
		spec, ca, _, _ := tlsSpec(t, a.addr, spec.RequireClientCert, clientCA)
		srv := startServer(t, spec)
		url := "https://" + srv.Addr("public") + "/"
		if code, _ := get(t, tlsClient(ca, good), url); code != 200 {
			t.Fatalf("with a client certificate: %d", code)
		}
		for name, c := range map[string]*http.Client{"no certificate": tlsClient(ca), "unknown CA": tlsClient(ca, stranger)} {
			resp, err := c.Get(url)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s: got %d, want a handshake failure", name, resp.StatusCode)
			}
		}
	})
	t.Run("verify_if_given", func(t *testing.T) {
		spec, ca, _, _ := tlsSpec(t, a.addr, spec.VerifyClientCertIfGiven, clientCA)
		srv := startServer(t, spec)
		url := "https://" + srv.Addr("public") + "/"
		if code, _ := get(t, tlsClient(ca), url); code != 200 {
			t.Fatalf("without a certificate: %d", code)
		}
		if code, _ := get(t, tlsClient(ca, good), url); code != 200 {
			t.Fatalf("with a good certificate: %d", code)
		}
		if resp, err := tlsClient(ca, stranger).Get(url); err == nil {
			resp.Body.Close()
			t.Fatalf("certificate from an unknown CA accepted: %d", resp.StatusCode)
		}
	})
}

func TestCertificateReload(t *testing.T) {
	a := startBackend(t, "a")
	spec, ca, certFile, keyFile := tlsSpec(t, a.addr, spec.NoClientCert, nil)
	srv := startServer(t, spec)
	addr := srv.Addr("public")
	serial := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 100 {
		t.Fatalf("serial %d", s)
	}
	before, _ := record(srv.reg, "tls.certificates")

	c, k := ca.Issue(t, "proxy.test", 200, 2*time.Hour)
	writeFile(t, "", keyFile, k)
	writeFile(t, "", certFile, c)
	eventually(t, "the new certificate served", func() bool { return serial() == 200 })
	after, _ := record(srv.reg, "tls.certificates")
	if attr(after, "expires") == attr(before, "expires") {
		t.Fatalf("expiry attribute unchanged: %s", attr(after, "expires"))
	}

	// A broken replacement keeps the last good certificate and says so.
	writeFile(t, "", certFile, []byte("not a certificate"))
	time.Sleep(1100 * time.Millisecond)
	if s := serial(); s != 200 {
		t.Fatalf("serial after a broken file %d", s)
	}
	eventually(t, "reload error reported", func() bool {
		rec, _ := record(srv.reg, "tls.certificates")
		return strings.Contains(attr(rec, "reload_error"), certFile) && rec.Err == ""
	})
}

func TestUpstreamTLSAndHTTP2(t *testing.T) {
	ca := newCA(t, "upstream-ca")
	clientCA := newCA(t, "proxy-client-ca")
	dir := t.TempDir()
	cc, ck := clientCA.Issue(t, "gangway", 5, time.Hour)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		io.WriteString(w, r.Proto+" "+cn)
	})
	tlsUp := httptest.NewUnstartedServer(handler)
	tlsUp.EnableHTTP2 = true
	tlsUp.TLS = &tls.Config{Certificates: []tls.Certificate{ca.TLSCert(t, "upstream.internal")}, ClientCAs: clientCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	tlsUp.StartTLS()
	t.Cleanup(tlsUp.Close)

	h2cLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2cUp := &http.Server{Handler: handler, Protocols: new(http.Protocols), ReadHeaderTimeout: 10 * time.Second}
	h2cUp.Protocols.SetUnencryptedHTTP2(true)
	go h2cUp.Serve(h2cLn)
	t.Cleanup(func() { h2cUp.Close() })

	upTLS := &spec.UpstreamTLS{
		CAFile:     writeFile(t, dir, "ca.pem", ca.PEM),
		ServerName: "upstream.internal",
		CertFile:   writeFile(t, dir, "client.crt", cc),
		KeyFile:    writeFile(t, dir, "client.key", ck),
	}
	spec := testSpec(
		[]spec.Route{prefixRoute("tls", "/tls", "tls"), prefixRoute("h2c", "/h2c", "h2c"), prefixRoute("tls1", "/h1tls", "tls1")},
		[]spec.Cluster{
			{Name: "tls", Endpoints: []string{tlsUp.Listener.Addr().String()}, HTTP2: true, TLS: upTLS},
			{Name: "tls1", Endpoints: []string{tlsUp.Listener.Addr().String()}, TLS: upTLS},
			{Name: "h2c", Endpoints: []string{h2cLn.Addr().String()}, HTTP2: true},
		})
	srv := startServer(t, spec)
	c := newClient()
	for path, want := range map[string]string{"/tls": "HTTP/2.0 gangway", "/h1tls": "HTTP/1.1 gangway", "/h2c": "HTTP/2.0 "} {
		code, body := get(t, c, srv.url("public", path))
		if code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}
}

// TestTLSFraming: over TLS the same framing checks apply (h1server terminates TLS and reads the
// decrypted stream), and a client speaking plain HTTP to the TLS listener gets a
// plain 400 that says so.
func TestTLSFraming(t *testing.T) {
	a := startBackend(t, "a")
	spec, ca, _, _ := tlsSpec(t, a.addr, spec.NoClientCert, nil)
	srv := startServer(t, spec)

	c, err := tls.Dial("tcp", srv.Addr("public"), &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+
		"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	expectResponses(t, c, 200, 400)
	if got := a.lastReq.Load().URL.Path; got != "/ok" {
		t.Fatalf("upstream last saw %s, want /ok", got)
	}

	plain, err := net.Dial("tcp", srv.Addr("public"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	got, _ := io.ReadAll(plain)
	if !strings.HasPrefix(string(got), "HTTP/1.0 400 Bad Request") || !strings.Contains(string(got), "HTTPS server") {
		t.Fatalf("plain HTTP to the TLS listener got %q", got)
	}
}

// Under TLS 1.2 a listener accepts AEAD cipher suites only: a client that offers nothing but
// CBC suites (Lucky Thirteen's target) fails the handshake; one offering GCM succeeds.
func TestTLS12CipherSuitesAreAEADOnly(t *testing.T) {
	a := startBackend(t, "a")
	spec, ca, _, _ := tlsSpec(t, a.addr, spec.NoClientCert, nil)
	srv := startServer(t, spec)
	dial := func(suites ...uint16) error {
		c, err := tls.Dial("tcp", srv.Addr("public"), &tls.Config{RootCAs: ca.Pool(), ServerName: "proxy.test",
			MaxVersion: tls.VersionTLS12, CipherSuites: suites})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA); err == nil {
		t.Fatal("a TLS 1.2 handshake with CBC suites only succeeded")
	}
	if err := dial(tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err != nil {
		t.Fatalf("a TLS 1.2 handshake with GCM failed: %v", err)
	}
	for _, id := range upstream.TLS12CipherSuites {
		for _, cs := range tls.InsecureCipherSuites() {
			if cs.ID == id {
				t.Fatalf("%s is in the defaults", cs.Name)
			}
		}
	}
}
