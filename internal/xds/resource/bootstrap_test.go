package resource

import (
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestEnvoyBootstrap(t *testing.T) {
	tests := []struct {
		name string
		opts BootstrapOptions
		want []string // substrings of the JSON
		typ  cluster.Cluster_DiscoveryType
	}{
		{
			name: "DNS name: every replica",
			opts: BootstrapOptions{ControlPlane: "dns:///control.internal:18000", NodeID: "task-1", NodeCluster: "orders", AdminAddress: "127.0.0.1:9901"},
			want: []string{`"address":"control.internal"`, `"portValue":18000`, `"setNodeOnFirstMessageOnly":true`, `"clusterName":"gangway_control_plane"`, `"http2ProtocolOptions"`},
			typ:  cluster.Cluster_STRICT_DNS,
		},
		{
			name: "IP with mTLS",
			opts: BootstrapOptions{ControlPlane: "10.0.0.5:18000", NodeID: "n", AdminAddress: "[::1]:9901",
				CAFile: "/etc/gangway/ca.pem", ServerName: "control.internal", CertFile: "/etc/gangway/envoy.crt", KeyFile: "/etc/gangway/envoy.key"},
			want: []string{`"sni":"control.internal"`, `"/etc/gangway/ca.pem"`, `"/etc/gangway/envoy.crt"`, `"alpnProtocols":["h2"]`},
			typ:  cluster.Cluster_STATIC,
		},
		{
			name: "unix socket",
			opts: BootstrapOptions{ControlPlane: "unix:///run/gangway/xds.sock", NodeID: "n", AdminAddress: "127.0.0.1:9901"},
			want: []string{`"pipe":{"path":"/run/gangway/xds.sock"}`},
			typ:  cluster.Cluster_STATIC,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EnvoyBootstrap(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := protojson.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			js := strings.ReplaceAll(string(raw), " ", "")
			for _, w := range tc.want {
				if !strings.Contains(js, w) {
					t.Errorf("missing %s in\n%s", w, js)
				}
			}
			if got := b.StaticResources.Clusters[0].GetType(); got != tc.typ {
				t.Errorf("control plane cluster type %s, want %s", got, tc.typ)
			}
			if b.DynamicResources.LdsConfig.GetAds() == nil || b.DynamicResources.CdsConfig.GetAds() == nil {
				t.Error("listeners and clusters do not come over ADS")
			}
		})
	}
	for _, bad := range []BootstrapOptions{
		{ControlPlane: "x:1", NodeID: "n", AdminAddress: "0.0.0.0:9901"},
		{ControlPlane: "x:1", NodeID: "n", AdminAddress: "localhost:9901"},
		{ControlPlane: "x:1", AdminAddress: "127.0.0.1:9901"},
		{ControlPlane: "x", NodeID: "n", AdminAddress: "127.0.0.1:9901"},
		{ControlPlane: "x:1", NodeID: "n", AdminAddress: "127.0.0.1:9901", CertFile: "c"},
	} {
		if _, err := EnvoyBootstrap(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
