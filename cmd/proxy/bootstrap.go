package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	"github.com/gangway-ecs/gangway/internal/xds/resource"
)

// BootstrapCommand is `proxy bootstrap envoy`: it prints an Envoy bootstrap that takes every
// listener, route, cluster and endpoint over ADS from Gangway's control plane, so that a
// stock Envoy sidecar runs the configuration Gangway's own data plane runs.
//
//	proxy bootstrap envoy -control-plane dns:///gangway-control.internal:18000 > envoy.yaml
//	envoy -c envoy.yaml
//
// Exit codes: 0 printed, 4 bad usage.
type BootstrapCommand struct {
	env env
}

// defaultControlPlane is the control plane's default ADS address.
const defaultControlPlane = "127.0.0.1:18000"

// Run executes the command.
func (c *BootstrapCommand) Run(_ context.Context, args []string) error {
	if len(args) == 0 || args[0] != "envoy" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(c.env.stderr, "usage: proxy bootstrap envoy [flags]  (proxy bootstrap envoy -h lists them)")
			return nil
		}
		return usageError("usage: proxy bootstrap envoy [flags]: envoy is the only bootstrap format")
	}
	fs := newFlagSet("bootstrap envoy", c.env)
	defCP := defaultControlPlane
	if v := c.env.getenv("GANGWAY_CONTROL_PLANE"); v != "" {
		defCP = v
	}
	host, _ := os.Hostname()
	controlPlane := fs.String("control-plane", defCP, "Gangway's control plane: host:port, dns:///host:port (every address is used) or unix:///path (env GANGWAY_CONTROL_PLANE)")
	nodeID := fs.String("node-id", host, "node.id: unique per Envoy (the ECS task ID, say)")
	nodeCluster := fs.String("node-cluster", "gangway", "node.cluster")
	admin := fs.String("admin-address", "127.0.0.1:9901", "Envoy's admin interface, on a loopback address")
	format := fs.String("format", "yaml", "output format: yaml or json")
	ca := fs.String("tls-ca", "", "CA file that verifies the control plane (enables TLS)")
	serverName := fs.String("tls-server-name", "", "name the control plane's certificate must carry (SNI)")
	cert := fs.String("tls-cert", "", "Envoy's client certificate for mTLS (with -tls-key)")
	key := fs.String("tls-key", "", "the client certificate's key")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *format != "yaml" && *format != "json" {
		return usageError("-format %q: want yaml or json", *format)
	}
	b, err := resource.EnvoyBootstrap(resource.BootstrapOptions{
		ControlPlane: *controlPlane,
		NodeID:       *nodeID,
		NodeCluster:  *nodeCluster,
		AdminAddress: *admin,
		CAFile:       *ca,
		ServerName:   *serverName,
		CertFile:     *cert,
		KeyFile:      *key,
	})
	if err != nil {
		return usageError("%v", err)
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode the bootstrap: %w", err)
	}
	out, err := render(js, *format)
	if err != nil {
		return err
	}
	_, err = c.env.stdout.Write(out)
	return err
}

// render re-indents protojson output (whose spacing varies on purpose) as JSON or block YAML,
// keeping the field order.
func render(js []byte, format string) ([]byte, error) {
	if format == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, js, "", "  "); err != nil {
			return nil, fmt.Errorf("indent the bootstrap: %w", err)
		}
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("convert the bootstrap to YAML: %w", err)
	}
	blockStyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("convert the bootstrap to YAML: %w", err)
	}
	return buf.Bytes(), enc.Close()
}

// blockStyle drops the JSON flow style and quoting that parsing JSON leaves on the nodes.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
