package config

import (
	"os"
	"path/filepath"
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
