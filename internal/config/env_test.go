package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestResolveOrder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gangway.yaml")
	os.WriteFile(file, []byte("listeners: [{name: fromfile, address: \"127.0.0.1:9001\"}]\n"), 0o644)
	inline := "listeners: [{name: inline, address: \"127.0.0.1:9002\"}]\n"

	tests := []struct {
		name     string
		path     string
		env      map[string]string
		listener string
		watched  string
	}{
		{"flag wins", file, map[string]string{EnvConfigYAML: inline, EnvUpstream: "127.0.0.1:3000"}, "fromfile", file},
		{"GANGWAY_CONFIG", "", map[string]string{EnvConfigFile: file, EnvConfigYAML: inline}, "fromfile", file},
		{"inline document", "", map[string]string{EnvConfigYAML: inline, EnvUpstream: "127.0.0.1:3000"}, "inline", ""},
		{"sidecar from upstream", "", map[string]string{EnvUpstream: "127.0.0.1:3000"}, "public", ""},
		{"embedded default", "", nil, "public", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, src, err := Resolve(tt.path, envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Listeners[0].Name != tt.listener || src.Path != tt.watched {
				t.Fatalf("listener %q path %q", c.Listeners[0].Name, src.Path)
			}
		})
	}
}

func TestResolveSidecar(t *testing.T) {
	c, _, err := Resolve("", envOf(map[string]string{EnvUpstream: "127.0.0.1:3000", EnvListenAddr: ":9090", EnvReadyPath: "/ready"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listeners[0].Address != ":9090" || c.Listeners[0].ReadinessPath != "/ready" ||
		c.Clusters[0].Endpoints[0] != "127.0.0.1:3000" || !c.Routes[0].Required || c.DemoUpstream.Enabled {
		t.Fatalf("sidecar config = %+v", c)
	}
	_, _, err = Resolve("", envOf(map[string]string{EnvUpstream: "no-port"}))
	if err == nil || !strings.Contains(err.Error(), "$GANGWAY_UPSTREAM") {
		t.Fatalf("bad upstream error = %v", err)
	}
}

func TestResolveShutdownOverrides(t *testing.T) {
	c, _, err := Resolve("", envOf(map[string]string{EnvShutdownDelay: "20", EnvShutdownDrainTimeout: "30s", EnvShutdownDeadline: "60"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Shutdown.Delay != 20*time.Second || c.Shutdown.DrainTimeout != 30*time.Second || c.Shutdown.Deadline != time.Minute {
		t.Fatalf("shutdown = %+v", c.Shutdown)
	}
	if c.Version == Default().Version {
		t.Fatal("overrides did not change the version")
	}
	for _, bad := range []map[string]string{
		{EnvShutdownDelay: "soon"},
		{EnvShutdownDelay: "-3s"},
		{EnvShutdownDelay: "40s"}, // 40 + 15 + 1 > 30
		{EnvShutdownDeadline: "121s"},
	} {
		if _, _, err := Resolve("", envOf(bad)); err == nil || !strings.Contains(err.Error(), "$GANGWAY_SHUTDOWN") {
			t.Errorf("%v: error %v does not name the variable", bad, err)
		}
	}
}

// TestResolveSidecarTrustsTheVPC: behind an ALB the peer is the load balancer's node, whose
// address is private; its X-Forwarded-* must reach the application, so the sidecar trusts
// the VPC's ranges unless $GANGWAY_TRUSTED_PROXIES narrows them.
func TestResolveSidecarTrustsTheVPC(t *testing.T) {
	trusted := func(env map[string]string) []string {
		t.Helper()
		env[EnvUpstream] = "127.0.0.1:3000"
		c, _, err := Resolve("", envOf(env))
		if err != nil {
			t.Fatal(err)
		}
		return c.Listeners[0].TrustedProxies
	}
	tests := []struct {
		name string
		env  string
		want []string
	}{
		{"default", "", []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"}},
		{"narrowed", "10.0.1.0/24, 10.0.2.0/24", []string{"10.0.1.0/24", "10.0.2.0/24"}},
		{"spaces", "10.0.1.0/24 fd00::/8", []string{"10.0.1.0/24", "fd00::/8"}},
		{"none", "none", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := trusted(map[string]string{EnvTrustedProxies: tt.env})
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || len(got) != len(tt.want) {
				t.Fatalf("trusted_proxies = %q, want %q", got, tt.want)
			}
		})
	}
	// Typical ALB node addresses fall inside the default.
	for _, addr := range []string{"10.0.12.34", "172.31.5.6", "192.168.1.1", "100.64.3.4"} {
		a := netip.MustParseAddr(addr)
		if !slices.ContainsFunc(VPCPrivateRanges(), func(p string) bool { return netip.MustParsePrefix(p).Contains(a) }) {
			t.Errorf("%s is not trusted by default", addr)
		}
	}
	_, _, err := Resolve("", envOf(map[string]string{EnvUpstream: "127.0.0.1:3000", EnvTrustedProxies: "10.0.0.0/8,10.1.2.3"}))
	if err == nil || !strings.Contains(err.Error(), "$GANGWAY_TRUSTED_PROXIES") || !strings.Contains(err.Error(), `"10.1.2.3/32"`) {
		t.Fatalf("bad CIDR error = %v", err)
	}
}

// TestResolveElsewhere: the construct's resolution is the proxy's, less the files that live
// on the proxy's machine.
func TestResolveElsewhere(t *testing.T) {
	tlsDoc := `listeners:
  - name: public
    address: ":8443"
    tls: {cert_file: /nonexistent/gangway/tls.crt, key_file: /nonexistent/gangway/tls.key}
routes: [{name: app, cluster: app}]
clusters: [{name: app, endpoints: ["127.0.0.1:3000"]}]
`
	env := map[string]string{EnvConfigYAML: tlsDoc}
	if _, _, err := Resolve("", envOf(env)); err == nil || !strings.Contains(err.Error(), "cert_file") {
		t.Fatalf("Resolve with missing certificate files: %v, want a cert_file error", err)
	}
	c, err := ResolveElsewhere(envOf(env))
	if err != nil {
		t.Fatalf("ResolveElsewhere: %v", err)
	}
	if c.Listeners[0].Address != ":8443" || c.Listeners[0].TLS == nil {
		t.Fatalf("listener = %+v", c.Listeners[0])
	}

	// Everything else is checked as Resolve checks it: the shutdown budget with the proxy's
	// margin, the sidecar variables, a bad document.
	for name, env := range map[string]map[string]string{
		"margin":        {EnvUpstream: "127.0.0.1:3000", EnvShutdownDelay: "12s", EnvShutdownDrainTimeout: "15s", EnvShutdownDeadline: "28s"},
		"upstream":      {EnvUpstream: "http://127.0.0.1:3000"},
		"document":      {EnvConfigYAML: "listeners: [{name: a}]"},
		"a file":        {EnvConfigFile: "/etc/gangway/gangway.yaml"},
		"file over env": {EnvConfigFile: "/etc/gangway/gangway.yaml", EnvConfigYAML: tlsDoc},
	} {
		_, _, want := Resolve("", envOf(env))
		_, err := ResolveElsewhere(envOf(env))
		if err == nil {
			t.Errorf("%s: ResolveElsewhere accepted what Resolve refuses (%v)", name, want)
		} else if name != "a file" && name != "file over env" && err.Error() != want.Error() {
			t.Errorf("%s: ResolveElsewhere: %v\nResolve: %v", name, err, want)
		}
	}
}

// TestResolveSidecarBlamesTheVariable: an invalid value in the sidecar configuration is
// reported against the environment variable it came from, not a line of the generated
// document.
func TestResolveSidecarBlamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvUpstream: "127.0.0.1:3000", EnvListenAddr: "8080"}, "$GANGWAY_LISTEN_ADDR: "},
		{map[string]string{EnvUpstream: "127.0.0.1:3000", EnvListenAddr: "localhost:http-alt:1"}, "$GANGWAY_LISTEN_ADDR: "},
		{map[string]string{EnvUpstream: "127.0.0.1:3000", EnvReadyPath: "ready"}, "$GANGWAY_READY_PATH: "},
		{map[string]string{EnvUpstream: "app"}, "$GANGWAY_UPSTREAM: "},
	} {
		_, _, err := Resolve("", envOf(tc.env))
		if err == nil {
			t.Errorf("%v: no error", tc.env)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "listeners[0]") || strings.Contains(err.Error(), "clusters[0]") {
			t.Errorf("%v: %v\nwant it to start with %q and not name the generated document's fields", tc.env, err, tc.want)
		}
	}
}
