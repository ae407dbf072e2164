package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/testcert"
)

// statusOf reads /status of a running proxy.
func statusOf(t *testing.T, admin string) map[string]health.StatusJSON {
	t.Helper()
	var st map[string]health.StatusJSON
	_, body := httpGet(t, "http://"+admin+"/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status: %v\n%s", err, body)
	}
	return st
}

// startProcess starts `proxy run -config cfgPath`, kills it when the test ends, and prints its
// logs under name if the test failed.
func startProcess(t *testing.T, proxyBin, name, cfgPath string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(proxyBin, "run", "-config", cfgPath)
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, logs.String())
		}
	})
	return cmd
}

// controlConfig is a control plane's file: the given xds block, one required route to
// upstream, and a short shutdown.
func controlConfig(xds, admin, upstream string) string {
	return fmt.Sprintf(`services: control
%s
admin: {address: %q}
shutdown: {delay: 0s, drain_timeout: 1s, deadline: 5s}
listeners:
  - name: public
    address: 127.0.0.1:0
    readiness_path: /gangway/ready
clusters:
  - name: app
    endpoints: [%q]
routes:
  - name: app
    cluster: app
    required: true
`, xds, admin, strings.TrimPrefix(upstream, "http://"))
}

// TestSplitModeBinaries runs `proxy run` as a control plane and three data planes, as split
// mode runs on ECS: traffic flows through each data plane, a change to the control plane's
// file reaches all three at one version, and losing the control plane leaves traffic and
// readiness untouched.
func TestSplitModeBinaries(t *testing.T) {
	proxyBin, _ := buildBinaries(t)
	up := startUpstream(t)
	ads := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	controlAdmin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	controlCfg := controlConfig(fmt.Sprintf("xds: {address: %q}", ads), controlAdmin, up.URL)
	controlPath := writeConfig(t, controlCfg)

	control := startProcess(t, proxyBin, "control", controlPath)
	waitStatus(t, "http://"+controlAdmin+"/readyz", 200)

	var admins, traffic []string
	for i := 0; i < 3; i++ {
		admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		path := writeConfig(t, fmt.Sprintf(`services: proxy
control_plane_url: [%q]
xds: {node_id: dp-%d}
admin: {address: %q}
shutdown: {delay: 0s, drain_timeout: 1s, deadline: 5s}
`, ads, i, admin))
		startProcess(t, proxyBin, fmt.Sprintf("dp-%d", i), path)
		admins = append(admins, admin)
	}
	for _, admin := range admins {
		waitStatus(t, "http://"+admin+"/readyz", 200)
		addr := statusOf(t, admin)["proxy.listener.public"].Attributes["address"]
		if c, body := httpGet(t, "http://"+addr+"/"); c != 200 || body != "hello" {
			t.Fatalf("traffic through %s: %d %q", addr, c, body)
		}
		traffic = append(traffic, addr)
	}
	first := statusOf(t, admins[0])["xds.listener"].Version
	if c := statusOf(t, controlAdmin)["xds.server"]; c.Attributes["nodes"] != "3/3" {
		t.Fatalf("control plane sees nodes %q, want 3/3: %+v", c.Attributes["nodes"], c)
	}

	// A change on the control plane reaches every data plane at the same new version.
	os.WriteFile(controlPath, []byte(strings.Replace(controlCfg, "    required: true\n",
		"    required: true\n    set_response_headers: {X-Split: v2}\n", 1)), 0o644)
	control.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	var second string
	for i, admin := range admins {
		for {
			v := statusOf(t, admin)["xds.listener"].Version
			if v != first && v != "" {
				if second == "" {
					second = v
				} else if v != second {
					t.Fatalf("data plane %d at %s, another at %s", i, v, second)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("data plane %d never left version %s", i, first)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Losing the control plane leaves traffic flowing and readiness green.
	control.Process.Kill()
	control.Wait()
	time.Sleep(500 * time.Millisecond)
	for i, admin := range admins {
		if c, body := httpGet(t, "http://"+admin+"/readyz?verbose"); c != 200 {
			t.Fatalf("data plane %d not ready without its control plane:\n%s", i, body)
		}
		resp, err := (&httpClient).Get("http://" + traffic[i] + "/")
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Split") != "v2" {
			t.Fatalf("data plane %d traffic without its control plane: %v %v", i, err, resp)
		}
		resp.Body.Close()
		if conn := statusOf(t, admin)["xds.connection"]; conn.Error == "" {
			t.Errorf("data plane %d does not report the lost control plane: %+v", i, conn)
		}
	}
}

var httpClient = http.Client{Timeout: 5 * time.Second}

// TestSplitModeReloadWithTLS reloads a control plane and a data plane whose ADS connection
// has mutual TLS: an unchanged xds block must not count as an xDS change, so both reloads
// are applied, and the data plane serves the control plane's new version.
func TestSplitModeReloadWithTLS(t *testing.T) {
	proxyBin, _ := buildBinaries(t)
	up := startUpstream(t)
	dir := t.TempDir()
	server := newTestCert(t, dir, "server", "localhost")
	client := newTestCert(t, dir, "client", "dp-0")
	writePEM := func(name string, c *x509.Certificate) string {
		return testcert.WriteFile(t, dir, name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	serverCA, clientCA := writePEM("server-ca.pem", server.cert), writePEM("client-ca.pem", client.cert)

	ads := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	controlAdmin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	controlCfg := controlConfig(fmt.Sprintf("xds:\n  address: %q\n  tls: {cert_file: %q, key_file: %q, ca_file: %q}",
		ads, server.certFile, server.keyFile, clientCA), controlAdmin, up.URL)
	controlPath := writeConfig(t, controlCfg)
	dataAdmin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dataCfg := fmt.Sprintf(`services: proxy
control_plane_url: [%q]
xds:
  node_id: dp-0
  tls: {cert_file: %q, key_file: %q, ca_file: %q, server_name: localhost}
admin: {address: %q}
shutdown: {delay: 0s, drain_timeout: 1s, deadline: 5s}
`, ads, client.certFile, client.keyFile, serverCA, dataAdmin)
	dataPath := writeConfig(t, dataCfg)

	control := startProcess(t, proxyBin, "control", controlPath)
	waitStatus(t, "http://"+controlAdmin+"/readyz", 200)
	data := startProcess(t, proxyBin, "dp-0", dataPath)
	waitStatus(t, "http://"+dataAdmin+"/readyz", 200)
	first := statusOf(t, dataAdmin)["xds.listener"].Version

	// reloaded waits until the process behind admin serves a configuration version other
	// than was, and fails on a rejected reload.
	reloaded := func(name, admin, was string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			cb := statusOf(t, admin)["config.build"]
			if cb.Error != "" {
				t.Fatalf("%s rejected the reload: %s", name, cb.Error)
			}
			if cb.Version != was && cb.Version != "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never left configuration version %s", name, was)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	was := statusOf(t, controlAdmin)["config.build"].Version
	os.WriteFile(controlPath, []byte(strings.Replace(controlCfg, "    required: true\n",
		"    required: true\n    set_response_headers: {X-Split: v2}\n", 1)), 0o644)
	control.Process.Signal(syscall.SIGHUP)
	reloaded("control plane", controlAdmin, was)
	deadline := time.Now().Add(15 * time.Second)
	for statusOf(t, dataAdmin)["xds.listener"].Version == first {
		if time.Now().After(deadline) {
			t.Fatalf("the data plane never left version %s", first)
		}
		time.Sleep(50 * time.Millisecond)
	}

	was = statusOf(t, dataAdmin)["config.build"].Version
	os.WriteFile(dataPath, []byte(strings.Replace(dataCfg, "drain_timeout: 1s", "drain_timeout: 2s", 1)), 0o644)
	data.Process.Signal(syscall.SIGHUP)
	reloaded("data plane", dataAdmin, was)
}
