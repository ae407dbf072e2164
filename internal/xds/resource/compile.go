package resource

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	xff "github.com/envoyproxy/go-control-plane/envoy/extensions/http/original_ip_detection/xff/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// Resources is one compiled configuration: every xDS resource, and the version that names
// them all. Each list is sorted by resource name.
type Resources struct {
	// Version is a hex digest of the resources' deterministic encoding (see Hash).
	Version   string
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
}

const (
	// RouteConfigName names the one RouteConfiguration that every HTTP listener uses: Gangway's
	// routes apply to every HTTP listener.
	RouteConfigName = "gangway"
	// MetadataKey is the filter_metadata key of Gangway-specific settings.
	MetadataKey = "gangway"
	// ConnectTimeout is the data plane's fixed upstream connect timeout (TLS included).
	ConnectTimeout = 10 * time.Second

	httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	xffExtensionName       = "envoy.extensions.http.original_ip_detection.xff"
	maxRequestHeadersKB    = 8192 // Envoy's upper bound for max_request_headers_kb
)

// Gangway metadata keys (filter_metadata["gangway"]). docs/xds.md describes each.
const (
	metaReadinessPath   = "readiness_path"   // listener: string
	metaListenerGrace   = "listener_grace"   // listener: Go duration string
	metaDemoUpstream    = "demo_upstream"    // listener: host:port of the built-in demo app
	metaRequired        = "required"         // route: bool
	metaMaxIdleConns    = "max_idle_conns"   // cluster: number
	metaStaticEndpoints = "static_endpoints" // cluster: bool, a static list of host names
	metaECSCluster      = "ecs_cluster"      // cluster: string, ECS discovery's cluster ("" or absent: the task's own)
	metaECSService      = "ecs_service"      // cluster: string, ECS discovery's service
	metaECSPort         = "ecs_port"         // cluster: number, the endpoints' port
	metaECSRefresh      = "ecs_refresh"      // cluster: Go duration string, the polling interval
)

// Compile turns a configuration into xDS resources. cfg must come from config.Parse, Load or
// Default. Every resource passes its generated ValidateAll. The data plane's own translation
// (config.ToSpec) fixes the meaning of every field, so Compile and config.ToSpec can
// never disagree; ToSpec is the inverse of Compile.
func Compile(cfg *config.Config) (*Resources, error) {
	spec, err := config.ToSpec(cfg)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", cfg.File, err)
	}
	return FromSpec(spec)
}

// FromSpec compiles a data plane Spec into xDS resources and computes their version.
// sp.Version is not used: the version is a hash of the resources.
func FromSpec(sp *spec.Spec) (*Resources, error) {
	res := &Resources{}
	hasHTTP := false
	for i := range sp.Listeners {
		l := &sp.Listeners[i]
		out, err := compileListener(sp, l)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		res.Listeners = append(res.Listeners, out)
		hasHTTP = hasHTTP || l.Protocol == spec.HTTP
	}
	if hasHTTP {
		rc, err := compileRoutes(sp.Routes)
		if err != nil {
			return nil, err
		}
		res.Routes = append(res.Routes, rc)
	}
	for i := range sp.Clusters {
		c := &sp.Clusters[i]
		out, cla, err := compileCluster(c)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", c.Name, err)
		}
		res.Clusters = append(res.Clusters, out)
		if cla != nil {
			res.Endpoints = append(res.Endpoints, cla)
		}
	}
	res.sort()
	if err := res.Validate(); err != nil {
		return nil, err
	}
	res.Version = res.Hash()
	return res, nil
}

func (r *Resources) sort() {
	sort.Slice(r.Listeners, func(i, j int) bool { return r.Listeners[i].GetName() < r.Listeners[j].GetName() })
	sort.Slice(r.Routes, func(i, j int) bool { return r.Routes[i].GetName() < r.Routes[j].GetName() })
	sort.Slice(r.Clusters, func(i, j int) bool { return r.Clusters[i].GetName() < r.Clusters[j].GetName() })
	sort.Slice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].GetClusterName() < r.Endpoints[j].GetClusterName() })
}

// Validate runs every resource's generated ValidateAll.
func (r *Resources) Validate() error {
	for _, l := range r.Listeners {
		if err := l.ValidateAll(); err != nil {
			return fmt.Errorf("listener %q: %w", l.GetName(), err)
		}
	}
	for _, rc := range r.Routes {
		if err := rc.ValidateAll(); err != nil {
			return fmt.Errorf("route configuration %q: %w", rc.GetName(), err)
		}
	}
	for _, c := range r.Clusters {
		if err := c.ValidateAll(); err != nil {
			return fmt.Errorf("cluster %q: %w", c.GetName(), err)
		}
	}
	for _, e := range r.Endpoints {
		if err := e.ValidateAll(); err != nil {
			return fmt.Errorf("cluster load assignment %q: %w", e.GetClusterName(), err)
		}
	}
	return nil
}

// Hash is a short hex digest of the resources' deterministic protobuf encoding, in type and
// name order. The same resources always hash the same within one build of the protobuf
// library, so replicas running the same release agree on it.
func (r *Resources) Hash() string {
	h := sha256.New()
	add := func(typeURL string, msgs []proto.Message) {
		for _, m := range msgs {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				// Marshalling a resource that passed ValidateAll cannot fail.
				panic(fmt.Sprintf("xds: marshal %s: %v", typeURL, err))
			}
			WriteHashField(h, []byte(typeURL))
			WriteHashField(h, b)
		}
	}
	add(ListenerType, Messages(r.Listeners))
	add(RouteType, Messages(r.Routes))
	add(ClusterType, Messages(r.Clusters))
	add(EndpointType, Messages(r.Endpoints))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// writeField writes b with its length, so that two different sequences never encode alike.
func WriteHashField(h interface{ Write([]byte) (int, error) }, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

func Messages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// ---- listeners

func compileListener(sp *spec.Spec, l *spec.Listener) (*listener.Listener, error) {
	addr, err := socketAddress(l.Address)
	if err != nil {
		return nil, err
	}
	meta := map[string]any{metaListenerGrace: sp.ListenerGrace.String()}
	if sp.Demo != nil {
		meta[metaDemoUpstream] = sp.Demo.Address
	}
	chain := &listener.FilterChain{}
	switch l.Protocol {
	case spec.TCP:
		chain.Filters = []*listener.Filter{networkFilter(wellknown.TCPProxy, &tcpproxy.TcpProxy{
			StatPrefix:       l.Name,
			ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: l.Cluster},
			// Gangway's tunnels have no idle timeout; Envoy's default is 1 h.
			IdleTimeout: durationpb.New(0),
		})}
	default:
		if l.ReadinessPath != "" {
			meta[metaReadinessPath] = l.ReadinessPath
		}
		chain.Filters = []*listener.Filter{networkFilter(wellknown.HTTPConnectionManager, compileHCM(sp, l))}
		if l.TLS != nil {
			chain.TransportSocket = transportSocket(downstreamTLS(l.TLS))
		}
	}
	return &listener.Listener{
		Name:         l.Name,
		Address:      addr,
		FilterChains: []*listener.FilterChain{chain},
		Metadata:     metadata(meta),
	}, nil
}

func compileHCM(sp *spec.Spec, l *spec.Listener) *hcm.HttpConnectionManager {
	codec := hcm.HttpConnectionManager_HTTP1
	if l.TLS != nil || l.H2C {
		// AUTO picks HTTP/2 from ALPN over TLS, or from the HTTP/2 preface in clear text.
		codec = hcm.HttpConnectionManager_AUTO
	}
	common := &core.HttpProtocolOptions{IdleTimeout: durationpb.New(sp.IdleTimeout)}
	if sp.WriteTimeout > 0 {
		common.MaxStreamDuration = durationpb.New(sp.WriteTimeout)
	}
	m := &hcm.HttpConnectionManager{
		StatPrefix: l.Name,
		CodecType:  codec,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			RouteConfigName: RouteConfigName,
			ConfigSource:    adsSource(),
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})},
		}},
		CommonHttpProtocolOptions: common,
		RequestHeadersTimeout:     durationpb.New(sp.ReadHeaderTimeout),
		MaxRequestHeadersKb:       wrapperspb.UInt32(headerKB(sp.MaxHeaderBytes)),
		// Always explicit: Envoy's defaults (no normalization) are not Gangway's.
		NormalizePath:                wrapperspb.Bool(l.Paths.Normalize),
		MergeSlashes:                 l.Paths.MergeSlashes,
		PathWithEscapedSlashesAction: escapedSlashesAction[l.Paths.EscapedSlashes],
	}
	if len(l.TrustedProxies) == 0 {
		// No peer is trusted: the client address is the connection's peer.
		m.UseRemoteAddress = wrapperspb.Bool(true)
	} else {
		cidrs := make([]*core.CidrRange, len(l.TrustedProxies))
		for i, p := range l.TrustedProxies {
			cidrs[i] = &core.CidrRange{AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits()))}
		}
		m.OriginalIpDetectionExtensions = []*core.TypedExtensionConfig{{
			Name:        xffExtensionName,
			TypedConfig: mustAny(&xff.XffConfig{XffTrustedCidrs: &xff.XffTrustedCidrs{Cidrs: cidrs}}),
		}}
	}
	return m
}

// escapedSlashesAction maps the data plane's actions to Envoy's; ToSpec inverts it.
var escapedSlashesAction = map[spec.EscapedSlashesAction]hcm.HttpConnectionManager_PathWithEscapedSlashesAction{
	spec.KeepEscapedSlashes:   hcm.HttpConnectionManager_KEEP_UNCHANGED,
	spec.RejectEscapedSlashes: hcm.HttpConnectionManager_REJECT_REQUEST,
	spec.UnescapeAndRedirect:  hcm.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
	spec.UnescapeAndForward:   hcm.HttpConnectionManager_UNESCAPE_AND_FORWARD,
}

// headerKB converts a byte limit to Envoy's KiB limit, rounding up within Envoy's bounds.
func headerKB(bytes int) uint32 {
	kb := (bytes + 1023) / 1024
	return uint32(min(max(kb, 1), maxRequestHeadersKB))
}

func downstreamTLS(t *spec.ServerTLS) *tlsv3.DownstreamTlsContext {
	ctx := &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams: &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
			TlsCertificates: []*tlsv3.TlsCertificate{{
				CertificateChain: fileSource(t.CertFile),
				PrivateKey:       fileSource(t.KeyFile),
			}},
			AlpnProtocols: slices.Clone(downstreamALPN),
		},
	}
	if t.ClientAuth != spec.NoClientCert {
		ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{
			ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: fileSource(t.ClientCAFile)},
		}
		ctx.RequireClientCertificate = wrapperspb.Bool(t.ClientAuth == spec.RequireClientCert)
	}
	return ctx
}

// socketAddress converts host:port. An empty host listens on every interface, IPv4 and
// IPv6, as Go does: Envoy's "::" with ipv4_compat.
func socketAddress(hostport string) (*core.Address, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("address %q: port %q: %w", hostport, portStr, err)
	}
	sa := &core.SocketAddress{Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)}}
	if host == "" {
		sa.Address, sa.Ipv4Compat = "::", true
	}
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: sa}}, nil
}

func networkFilter(name string, cfg proto.Message) *listener.Filter {
	return &listener.Filter{Name: name, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(cfg)}}
}

func transportSocket(cfg proto.Message) *core.TransportSocket {
	return &core.TransportSocket{
		Name:       wellknown.TransportSocketTLS,
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(cfg)},
	}
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

func fileSource(name string) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_Filename{Filename: name}}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(fmt.Sprintf("xds: wrap %T: %v", m, err)) // only fails for messages that cannot marshal
	}
	return a
}

// metadata builds filter_metadata["gangway"] from plain values (string, bool, float64, int).
func metadata(fields map[string]any) *core.Metadata {
	if len(fields) == 0 {
		return nil
	}
	for k, v := range fields {
		if n, ok := v.(int); ok {
			fields[k] = float64(n)
		}
	}
	s, err := structpb.NewStruct(fields)
	if err != nil {
		panic(fmt.Sprintf("xds: metadata: %v", err)) // only plain values are passed in
	}
	return &core.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataKey: s}}
}

// ---- routes

func compileRoutes(routes []spec.Route) (*route.RouteConfiguration, error) {
	compiled := make([]hostRoute, len(routes))
	for i := range routes {
		r, err := compileRoute(&routes[i])
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", routes[i].Name, err)
		}
		compiled[i] = hostRoute{hosts: routes[i].Hosts, route: r}
	}
	return &route.RouteConfiguration{
		Name:                     RouteConfigName,
		VirtualHosts:             virtualHosts(compiled),
		IgnorePortInHostMatching: true,
	}, nil
}

func compileRoute(r *spec.Route) (*route.Route, error) {
	m := &route.RouteMatch{}
	switch {
	case r.Path.Regex != nil:
		m.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: searchRegex(r.Path.Regex.String())}}
	case r.Path.Exact != "":
		m.PathSpecifier = &route.RouteMatch_Path{Path: r.Path.Exact}
	default:
		m.PathSpecifier = &route.RouteMatch_Prefix{Prefix: r.Path.Prefix}
	}
	a := &route.RouteAction{
		ClusterSpecifier: &route.RouteAction_Cluster{Cluster: r.Cluster},
		Timeout:          durationpb.New(r.Timeout),
		IdleTimeout:      durationpb.New(r.IdleTimeout),
		PrefixRewrite:    r.PrefixRewrite,
	}
	switch {
	case r.HostRewrite != "":
		a.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: r.HostRewrite}
	case !r.PreserveHost:
		// The upstream Host is the endpoint's: its hostname field, set to host:port.
		a.HostRewriteSpecifier = &route.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)}
	}
	if r.AllowWebSockets {
		a.UpgradeConfigs = []*route.RouteAction_UpgradeConfig{{UpgradeType: "websocket"}}
	}
	out := &route.Route{
		Name:                    r.Name,
		Match:                   m,
		Action:                  &route.Route_Route{Route: a},
		RequestHeadersToAdd:     setHeaders(r.SetRequestHeaders),
		RequestHeadersToRemove:  r.RemoveRequestHeaders,
		ResponseHeadersToAdd:    setHeaders(r.SetResponseHeaders),
		ResponseHeadersToRemove: r.RemoveResponseHeaders,
	}
	if r.Required {
		out.Metadata = metadata(map[string]any{metaRequired: true})
	}
	return out, nil
}

// searchRegex turns a Go expression that may match anywhere in the path into an RE2
// expression that Envoy matches against the whole path. ToSpec undoes it.
func searchRegex(expr string) string { return searchPrefix + expr + searchSuffix }

const (
	searchPrefix = "(?s:.*)(?:"
	searchSuffix = ")(?s:.*)"
)

// setHeaders turns a map into header options that replace any existing value, sorted by name
// so that the encoding (and the version) does not depend on map order.
func setHeaders(h map[string]string) []*core.HeaderValueOption {
	if len(h) == 0 {
		return nil
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*core.HeaderValueOption, len(keys))
	for i, k := range keys {
		out[i] = &core.HeaderValueOption{
			Header:       &core.HeaderValue{Key: k, Value: h[k]},
			AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}
	}
	return out
}

// ---- clusters

func compileCluster(c *spec.Cluster) (*cluster.Cluster, *endpoint.ClusterLoadAssignment, error) {
	out := &cluster.Cluster{
		Name:           c.Name,
		ConnectTimeout: durationpb.New(ConnectTimeout),
	}
	meta := map[string]any{metaMaxIdleConns: c.MaxIdleConnsPerEndpoint}
	switch c.LBPolicy {
	case spec.LeastRequest:
		out.LbPolicy = cluster.Cluster_LEAST_REQUEST
	case spec.Random:
		out.LbPolicy = cluster.Cluster_RANDOM
	default:
		out.LbPolicy = cluster.Cluster_ROUND_ROBIN
	}

	var cla *endpoint.ClusterLoadAssignment
	switch {
	case c.ECS != nil:
		// Gangway's data plane discovers the endpoints itself (ECS ListTasks/DescribeTasks);
		// the assignment stays empty, so a stock Envoy sees a cluster without endpoints.
		out.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_EDS}
		out.EdsClusterConfig = &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
		cla = &endpoint.ClusterLoadAssignment{ClusterName: c.Name}
		meta[metaECSService] = c.ECS.Service
		meta[metaECSPort] = c.ECS.Port
		meta[metaECSRefresh] = c.ECS.Refresh.String()
		if c.ECS.Cluster != "" {
			meta[metaECSCluster] = c.ECS.Cluster
		}
	case c.DNS != nil:
		out.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
		//lint:ignore SA1019 the DnsCluster extension that replaces it needs Envoy >= 1.33; this works on all
		out.DnsRefreshRate = durationpb.New(c.DNS.Refresh)
		out.DnsLookupFamily = cluster.Cluster_ALL
		ep, err := lbEndpoint(net.JoinHostPort(c.DNS.Name, strconv.Itoa(c.DNS.Port)))
		if err != nil {
			return nil, nil, err
		}
		out.LoadAssignment = loadAssignment(c.Name, []*endpoint.LbEndpoint{ep})
	default:
		eps := make([]*endpoint.LbEndpoint, len(c.Endpoints))
		allIPs := true
		for i, e := range c.Endpoints {
			ep, err := lbEndpoint(e)
			if err != nil {
				return nil, nil, err
			}
			eps[i] = ep
			if _, err := netip.ParseAddr(ep.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()); err != nil {
				allIPs = false
			}
		}
		if allIPs {
			// Endpoints travel as a ClusterLoadAssignment (EDS), so that an endpoint change
			// touches no Cluster.
			out.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_EDS}
			out.EdsClusterConfig = &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
			cla = loadAssignment(c.Name, eps)
		} else {
			// EDS endpoints must be IP addresses; a list with host names is resolved by Envoy
			// (STRICT_DNS), and dialled by name by Gangway's data plane.
			out.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
			out.DnsLookupFamily = cluster.Cluster_ALL
			out.LoadAssignment = loadAssignment(c.Name, eps)
			meta[metaStaticEndpoints] = true
		}
	}

	if c.HTTP2 {
		out.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			httpProtocolOptionsKey: mustAny(&upstreamhttp.HttpProtocolOptions{
				UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
					ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
							Http2ProtocolOptions: &core.Http2ProtocolOptions{},
						},
					},
				},
			}),
		}
	}
	if c.TLS != nil {
		out.TransportSocket = transportSocket(upstreamTLS(c.TLS, c.HTTP2))
	}
	if hc := c.HealthCheck; hc != nil {
		out.HealthChecks = []*core.HealthCheck{compileHealthCheck(hc, c.HTTP2)}
	}
	if o := c.Outlier; o != nil {
		out.OutlierDetection = compileOutlier(o)
	}
	out.Metadata = metadata(meta)
	return out, cla, nil
}

func lbEndpoint(hostport string) (*endpoint.LbEndpoint, error) {
	addr, err := socketAddress(hostport)
	if err != nil {
		return nil, err
	}
	return &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
		Address: addr,
		// The Host header that auto_host_rewrite sends: Gangway's default is host:port.
		Hostname: hostport,
	}}}, nil
}

func loadAssignment(name string, eps []*endpoint.LbEndpoint) *endpoint.ClusterLoadAssignment {
	return &endpoint.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints:   []*endpoint.LocalityLbEndpoints{{LbEndpoints: eps}},
	}
}

func upstreamTLS(t *spec.UpstreamTLS, http2 bool) *tlsv3.UpstreamTlsContext {
	common := &tlsv3.CommonTlsContext{
		TlsParams: &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
	}
	if t.CertFile != "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: fileSource(t.CertFile),
			PrivateKey:       fileSource(t.KeyFile),
		}}
	}
	if http2 {
		common.AlpnProtocols = []string{"h2"}
	}
	if !t.InsecureSkipVerify {
		vc := &tlsv3.CertificateValidationContext{}
		if t.CAFile != "" {
			vc.TrustedCa = fileSource(t.CAFile)
		} else {
			vc.SystemRootCerts = &tlsv3.CertificateValidationContext_SystemRootCerts{}
		}
		if t.ServerName != "" {
			vc.MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: t.ServerName}},
			}}
		}
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	return &tlsv3.UpstreamTlsContext{CommonTlsContext: common, Sni: t.ServerName}
}

func compileHealthCheck(hc *spec.HealthCheck, http2 bool) *core.HealthCheck {
	out := &core.HealthCheck{
		Timeout:            durationpb.New(hc.Timeout),
		Interval:           durationpb.New(hc.Interval),
		HealthyThreshold:   wrapperspb.UInt32(uint32(hc.HealthyThreshold)),
		UnhealthyThreshold: wrapperspb.UInt32(uint32(hc.UnhealthyThreshold)),
	}
	if hc.Type == spec.TCPHealthCheck {
		out.HealthChecker = &core.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &core.HealthCheck_TcpHealthCheck{}}
		return out
	}
	h := &core.HealthCheck_HttpHealthCheck{Path: hc.Path}
	for _, r := range hc.Expected {
		// Envoy's ranges are half-open: [start, end).
		h.ExpectedStatuses = append(h.ExpectedStatuses, &typev3.Int64Range{Start: int64(r.Min), End: int64(r.Max) + 1})
	}
	if http2 {
		h.CodecClientType = typev3.CodecClientType_HTTP2
	}
	out.HealthChecker = &core.HealthCheck_HttpHealthCheck_{HttpHealthCheck: h}
	return out
}

// compileOutlier maps Gangway's two triggers onto Envoy's consecutive-5xx (upstream
// responses) and consecutive local-origin failures (connect failures), and turns off Envoy's
// detectors that Gangway does not have.
func compileOutlier(o *spec.Outlier) *cluster.OutlierDetection {
	enforce := func(n int) *wrapperspb.UInt32Value {
		if n > 0 {
			return wrapperspb.UInt32(100)
		}
		return wrapperspb.UInt32(0)
	}
	out := &cluster.OutlierDetection{
		BaseEjectionTime:                       durationpb.New(o.BaseEjectionTime),
		MaxEjectionPercent:                     wrapperspb.UInt32(uint32(o.MaxEjectionPercent)),
		SplitExternalLocalOriginErrors:         true,
		EnforcingConsecutive_5Xx:               enforce(o.Consecutive5xx),
		EnforcingConsecutiveLocalOriginFailure: enforce(o.ConsecutiveConnectFailures),
		EnforcingSuccessRate:                   wrapperspb.UInt32(0),
		EnforcingLocalOriginSuccessRate:        wrapperspb.UInt32(0),
	}
	if o.Consecutive5xx > 0 {
		out.Consecutive_5Xx = wrapperspb.UInt32(uint32(o.Consecutive5xx))
	}
	if o.ConsecutiveConnectFailures > 0 {
		out.ConsecutiveLocalOriginFailure = wrapperspb.UInt32(uint32(o.ConsecutiveConnectFailures))
	}
	return out
}

func (r *Resources) Add(m proto.Message) {
	switch m := m.(type) {
	case *listener.Listener:
		r.Listeners = append(r.Listeners, m)
	case *route.RouteConfiguration:
		r.Routes = append(r.Routes, m)
	case *cluster.Cluster:
		r.Clusters = append(r.Clusters, m)
	case *endpoint.ClusterLoadAssignment:
		r.Endpoints = append(r.Endpoints, m)
	}
}
