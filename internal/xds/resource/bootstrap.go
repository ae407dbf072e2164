package resource

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gangway-ecs/gangway/internal/spec"
	"github.com/gangway-ecs/gangway/internal/xds"
)

// BootstrapOptions describe the Envoy that EnvoyBootstrap configures.
type BootstrapOptions struct {
	// ControlPlane is Gangway's control plane: host:port (every address of a name is used)
	// or unix:///path. Required.
	ControlPlane string
	// NodeID and NodeCluster identify the Envoy to the control plane. NodeID is required.
	NodeID, NodeCluster string
	// AdminAddress is Envoy's admin interface, a loopback host:port: it can stop Envoy and
	// dump its configuration, so it never listens elsewhere.
	AdminAddress string
	// TLS to the control plane: CAFile verifies it (with ServerName when set), CertFile and
	// KeyFile are Envoy's client certificate (mTLS). All empty: plain text.
	CAFile, ServerName, CertFile, KeyFile string
}

// xdsClusterName is the static cluster that reaches the control plane.
const xdsClusterName = "gangway_control_plane"

// EnvoyBootstrap returns an Envoy bootstrap that takes every listener, route, cluster and
// endpoint over one ADS stream from Gangway's control plane.
func EnvoyBootstrap(o BootstrapOptions) (*bootstrap.Bootstrap, error) {
	if o.NodeID == "" {
		return nil, errors.New("envoy bootstrap: a node ID is required")
	}
	admin, err := loopbackAddress(o.AdminAddress)
	if err != nil {
		return nil, fmt.Errorf("envoy bootstrap: admin address: %w", err)
	}
	xdsCluster, err := controlPlaneCluster(o)
	if err != nil {
		return nil, fmt.Errorf("envoy bootstrap: %w", err)
	}
	ads := adsSource()
	b := &bootstrap.Bootstrap{
		Node:  &core.Node{Id: o.NodeID, Cluster: o.NodeCluster},
		Admin: &bootstrap.Admin{Address: admin},
		DynamicResources: &bootstrap.Bootstrap_DynamicResources{
			AdsConfig: &core.ApiConfigSource{
				ApiType:                   core.ApiConfigSource_GRPC,
				TransportApiVersion:       core.ApiVersion_V3,
				SetNodeOnFirstMessageOnly: true,
				GrpcServices: []*core.GrpcService{{
					TargetSpecifier: &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: xdsClusterName}},
				}},
			},
			LdsConfig: ads,
			CdsConfig: ads,
		},
		StaticResources: &bootstrap.Bootstrap_StaticResources{Clusters: []*cluster.Cluster{xdsCluster}},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoy bootstrap: %w", err)
	}
	return b, nil
}

func loopbackAddress(hostport string) (*core.Address, error) {
	addr, err := socketAddress(hostport)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(addr.GetSocketAddress().GetAddress())
	if err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%q: must be a loopback IP address (127.0.0.1:9901, say)", hostport)
	}
	return addr, nil
}

func controlPlaneCluster(o BootstrapOptions) (*cluster.Cluster, error) {
	c := &cluster.Cluster{
		Name:           xdsClusterName,
		ConnectTimeout: durationpb.New(5 * time.Second),
		// gRPC needs HTTP/2; keepalive pings find a dead control plane on an idle stream.
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			httpProtocolOptionsKey: mustAny(&upstreamhttp.HttpProtocolOptions{
				UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
					ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
							Http2ProtocolOptions: &core.Http2ProtocolOptions{
								ConnectionKeepalive: &core.KeepaliveSettings{
									Interval: durationpb.New(30 * time.Second),
									Timeout:  durationpb.New(10 * time.Second),
								},
							},
						},
					},
				},
			}),
		},
	}
	var ep *core.Address
	if path, ok := strings.CutPrefix(o.ControlPlane, "unix://"); ok {
		ep = &core.Address{Address: &core.Address_Pipe{Pipe: &core.Pipe{Path: path}}}
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}
	} else {
		unix, hostports, err := xds.ParseTargets([]string{o.ControlPlane})
		if err != nil || unix != "" {
			return nil, fmt.Errorf("control plane %q: want host:port or unix:///path", o.ControlPlane)
		}
		host, portStr, _ := net.SplitHostPort(hostports[0])
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("control plane %q: port: %w", o.ControlPlane, err)
		}
		ep = &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
		}}}
		if _, err := netip.ParseAddr(host); err == nil {
			c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}
		} else {
			// Every address of the name is a control-plane replica; Envoy re-resolves it.
			c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
			//lint:ignore SA1019 the DnsCluster extension that replaces it needs Envoy >= 1.33
			c.DnsRefreshRate = durationpb.New(30 * time.Second)
		}
	}
	c.LoadAssignment = loadAssignment(xdsClusterName, []*endpoint.LbEndpoint{{
		HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: ep}},
	}})

	if o.CAFile != "" || o.CertFile != "" {
		if (o.CertFile == "") != (o.KeyFile == "") {
			return nil, errors.New("control plane TLS: set both the client certificate and its key, or neither")
		}
		c.TransportSocket = transportSocket(upstreamTLS(&spec.UpstreamTLS{
			CAFile: o.CAFile, ServerName: o.ServerName, CertFile: o.CertFile, KeyFile: o.KeyFile,
		}, true))
	}
	return c, nil
}
