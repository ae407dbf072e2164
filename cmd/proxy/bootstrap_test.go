package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	"github.com/gangway-ecs/gangway/internal/probecmd"
)

func runBootstrap(t *testing.T, getenv func(string) string, args ...string) (code probecmd.ExitCode, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	e := env{stdout: &out, stderr: &errb, getenv: getenv}
	code = runMain(context.Background(), append([]string{"bootstrap"}, args...), e)
	return code, out.String(), errb.String()
}

// TestBootstrapEnvoy: the YAML and JSON outputs are one valid Envoy bootstrap, readable the
// way Envoy reads it (YAML to JSON, then proto JSON), with ADS to the given control plane.
func TestBootstrapEnvoy(t *testing.T) {
	code, y, stderr := runBootstrap(t, nil, "envoy", "-control-plane", "dns:///control.internal:18000", "-node-id", "task-1")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(y), &doc); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, y)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrap.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("not an Envoy bootstrap: %v\n%s", err, y)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	if b.Node.Id != "task-1" || b.DynamicResources.AdsConfig.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() == "" {
		t.Errorf("node %v, ads %v", b.Node, b.DynamicResources.AdsConfig)
	}
	sa := b.StaticResources.Clusters[0].LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress()
	if sa.GetAddress() != "control.internal" || sa.GetPortValue() != 18000 {
		t.Errorf("control plane endpoint %v", sa)
	}
	if !strings.Contains(y, "set_node_on_first_message_only: true") || strings.Contains(y, "{\"") {
		t.Errorf("want block YAML with proto field names:\n%s", y)
	}

	code, j, stderr := runBootstrap(t, func(k string) string {
		if k == "GANGWAY_CONTROL_PLANE" {
			return "unix:///run/gangway/xds.sock"
		}
		return ""
	}, "envoy", "-format", "json", "-node-id", "n")
	if code != exitOK {
		t.Fatalf("json: exit %d: %s", code, stderr)
	}
	var bj bootstrap.Bootstrap
	if err := protojson.Unmarshal([]byte(j), &bj); err != nil {
		t.Fatal(err)
	}
	if p := bj.StaticResources.Clusters[0].LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetPipe().GetPath(); p != "/run/gangway/xds.sock" {
		t.Errorf("pipe %q from GANGWAY_CONTROL_PLANE", p)
	}
}

func TestBootstrapUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nginx"},
		{"envoy", "-format", "toml"},
		{"envoy", "-admin-address", "0.0.0.0:9901"},
		{"envoy", "-tls-cert", "c.pem"},
		{"envoy", "extra"},
	} {
		if code, _, stderr := runBootstrap(t, nil, args...); code != exitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, stderr, exitUsage)
		}
	}
	if code, _, _ := runBootstrap(t, nil, "envoy", "-h"); code != exitOK {
		t.Errorf("-h: exit %d", code)
	}
}
