package resource

import (
	"container/heap"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// ResourceError is a resource that the data plane cannot run. Its message names the resource
// and, when one is at fault, the field: `cluster "app": outlier_detection.interval: ...`.
type ResourceError struct {
	// TypeURL is the resource's type (ListenerType, RouteType, ClusterType, EndpointType).
	TypeURL string
	Name    string
	Err     error
}

func (e *ResourceError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%s response: %v", TypeLabel(e.TypeURL), e.Err)
	}
	return fmt.Sprintf("%s %q: %v", TypeLabel(e.TypeURL), e.Name, e.Err)
}

func (e *ResourceError) Unwrap() error { return e.Err }

func TypeLabel(typeURL string) string {
	switch typeURL {
	case ListenerType:
		return "listener"
	case RouteType:
		return "route configuration"
	case ClusterType:
		return "cluster"
	case EndpointType:
		return "cluster load assignment"
	}
	return typeURL
}

func resErr(typeURL, name string, err error) error {
	return &ResourceError{TypeURL: typeURL, Name: name, Err: err}
}

// downstreamALPN is what a TLS listener offers by ALPN, in this order.
var downstreamALPN = []string{"h2", "http/1.1"}

// Envoy's defaults for fields that a resource may leave unset.
const (
	envoyRouteTimeout     = 15 * time.Second
	envoyStreamIdle       = 5 * time.Minute
	envoyConnIdle         = time.Hour
	envoyMaxHeadersKB     = 60
	envoyDNSRefresh       = 5 * time.Second
	envoyBaseEjection     = 30 * time.Second
	envoyMaxEjectionPct   = 10
	envoyConsecutiveFails = 5
)

// ToSpec translates resources into the data plane's Spec, with res.Version as its version. It
// is the inverse of FromSpec, and rejects with a *ResourceError anything that the data plane
// would not run as Envoy does: unsupported fields, extensions and layouts.
//
// Every HTTP listener must use the same RouteConfiguration (Gangway's routes apply to every
// HTTP listener), and settings that are global in Gangway but per listener in Envoy (header
// timeout, idle timeout, maximum header size, listener grace, demo upstream) must agree
// across listeners.
func ToSpec(res *Resources) (*spec.Spec, error) {
	s := &spec.Spec{
		Version:           res.Version,
		ReadHeaderTimeout: spec.DefaultReadHeaderTimeout,
		IdleTimeout:       spec.DefaultIdleTimeout,
		MaxHeaderBytes:    spec.DefaultMaxHeaderBytes,
		ListenerGrace:     spec.DefaultListenerGrace,
	}
	g := &globals{}
	routeConfig := ""
	for _, l := range res.Listeners {
		out, rc, err := listenerToSpec(l, s, g)
		if err != nil {
			return nil, resErr(ListenerType, l.GetName(), err)
		}
		if rc != "" {
			if routeConfig != "" && rc != routeConfig {
				return nil, resErr(ListenerType, l.GetName(), fmt.Errorf("uses route configuration %q, another listener uses %q: Gangway's routes apply to every HTTP listener, so all must use one", rc, routeConfig))
			}
			routeConfig = rc
		}
		s.Listeners = append(s.Listeners, out)
	}
	if routeConfig != "" {
		var rc *route.RouteConfiguration
		for _, r := range res.Routes {
			if r.GetName() == routeConfig {
				rc = r
			}
		}
		if rc == nil {
			return nil, resErr(RouteType, routeConfig, errors.New("missing: the HTTP listeners use it"))
		}
		routes, err := routesToSpec(rc)
		if err != nil {
			return nil, resErr(RouteType, rc.GetName(), err)
		}
		s.Routes = routes
	}
	clas := map[string]*endpoint.ClusterLoadAssignment{}
	for _, e := range res.Endpoints {
		clas[e.GetClusterName()] = e
	}
	for _, c := range res.Clusters {
		out, err := clusterToSpec(c, clas)
		if err != nil {
			return nil, err
		}
		s.Clusters = append(s.Clusters, out)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("resources at version %s: %w", res.Version, err)
	}
	return s, nil
}

// globals records which listener first set each Gangway-wide setting, so that a listener
// that disagrees is named.
type globals struct {
	http  string // first HTTP listener: header timeout, idle timeout, write timeout, header size
	grace string // first listener with gangway.listener_grace
	demo  string // first listener, with or without gangway.demo_upstream
}

// agree records value v of setting key from listener name, or checks that it equals the
// value an earlier listener set.
func agree[T comparable](first *string, name, key string, dst *T, v T) error {
	if *first == "" {
		*first, *dst = name, v
		return nil
	}
	if *dst != v {
		return fmt.Errorf("%s %v differs from listener %q (%v): Gangway applies one value to every listener", key, v, *first, *dst)
	}
	return nil
}

// ---- listeners

var (
	listenerFields = paths(
		"name", "metadata",
		"address.socket_address.address", "address.socket_address.port_value", "address.socket_address.ipv4_compat",
		"filter_chains.name", "filter_chains.filters.name", "filter_chains.filters.typed_config",
		"filter_chains.transport_socket.name", "filter_chains.transport_socket.typed_config",
	)
	hcmFields = paths(
		"stat_prefix", "codec_type",
		"rds.route_config_name", "rds.config_source.ads.{}", "rds.config_source.resource_api_version", "rds.config_source.initial_fetch_timeout",
		"http_filters.name", "http_filters.typed_config",
		"common_http_protocol_options.idle_timeout", "common_http_protocol_options.max_stream_duration",
		"request_headers_timeout", "max_request_headers_kb", "use_remote_address",
		"original_ip_detection_extensions.name", "original_ip_detection_extensions.typed_config",
		"normalize_path", "merge_slashes", "path_with_escaped_slashes_action",
	)
	routerFields   = paths()
	xffFields      = paths("xff_trusted_cidrs.cidrs.address_prefix", "xff_trusted_cidrs.cidrs.prefix_len")
	tcpProxyFields = paths("stat_prefix", "cluster", "idle_timeout")
	downTLSFields  = paths(
		"require_client_certificate",
		"common_tls_context.tls_params.tls_minimum_protocol_version",
		"common_tls_context.tls_certificates.certificate_chain.filename",
		"common_tls_context.tls_certificates.private_key.filename",
		"common_tls_context.validation_context.trusted_ca.filename",
		"common_tls_context.alpn_protocols",
	)
)

func listenerToSpec(l *listener.Listener, s *spec.Spec, g *globals) (out spec.Listener, routeConfig string, err error) {
	out.Name = l.GetName()
	if err := checkFields(l.ProtoReflect(), listenerFields, ""); err != nil {
		return out, "", err
	}
	if out.Address, err = hostPort(l.GetAddress().GetSocketAddress(), "address"); err != nil {
		return out, "", err
	}
	meta, err := gangwayMetadata(l.GetMetadata(), map[string]structKind{
		metaReadinessPath: stringKind, metaListenerGrace: stringKind, metaDemoUpstream: stringKind,
	})
	if err != nil {
		return out, "", err
	}
	if v, ok := meta[metaListenerGrace]; ok {
		grace, err := time.ParseDuration(v.GetStringValue())
		if err != nil || grace < 0 {
			return out, "", unsupported(metaPath(metaListenerGrace), fmt.Sprintf("%q is not a duration >= 0", v.GetStringValue()))
		}
		if err := agree(&g.grace, out.Name, metaPath(metaListenerGrace), &s.ListenerGrace, grace); err != nil {
			return out, "", err
		}
	}
	demo := meta[metaDemoUpstream].GetStringValue()
	var firstDemo string
	if s.Demo != nil {
		firstDemo = s.Demo.Address
	}
	if err := agree(&g.demo, out.Name, metaPath(metaDemoUpstream), &firstDemo, demo); err != nil {
		return out, "", err
	}
	if demo != "" {
		s.Demo = &spec.Demo{Address: demo}
	}

	if len(l.GetFilterChains()) != 1 {
		return out, "", unsupported("filter_chains", fmt.Sprintf("%d filter chains: exactly one is supported", len(l.GetFilterChains())))
	}
	fc := l.GetFilterChains()[0]
	if len(fc.GetFilters()) != 1 {
		return out, "", unsupported("filter_chains[0].filters", fmt.Sprintf("%d network filters: exactly one (http_connection_manager or tcp_proxy) is supported", len(fc.GetFilters())))
	}
	const fpath = "filter_chains[0].filters[0].typed_config"
	cfg := fc.GetFilters()[0].GetTypedConfig()
	switch {
	case cfg.MessageIs(&tcpproxy.TcpProxy{}):
		out.Protocol = spec.TCP
		tp := &tcpproxy.TcpProxy{}
		if err := unpack(cfg, tp, tcpProxyFields, fpath); err != nil {
			return out, "", err
		}
		out.Cluster = tp.GetCluster()
		if out.Cluster == "" {
			return out, "", unsupported(fpath+".cluster", "required")
		}
		if d := tp.GetIdleTimeout(); d != nil && d.AsDuration() != 0 {
			return out, "", unsupported(fpath+".idle_timeout", "Gangway's tunnels have no idle timeout; set 0s or leave unset")
		}
		if fc.GetTransportSocket() != nil {
			return out, "", unsupported("filter_chains[0].transport_socket", "TLS on a tcp_proxy listener is not supported")
		}
		if meta[metaReadinessPath] != nil {
			return out, "", unsupported(metaPath(metaReadinessPath), "only HTTP listeners serve the readiness path")
		}
	case cfg.MessageIs(&hcm.HttpConnectionManager{}):
		m := &hcm.HttpConnectionManager{}
		if err := unpack(cfg, m, hcmFields, fpath); err != nil {
			return out, "", err
		}
		if ts := fc.GetTransportSocket(); ts != nil {
			if out.TLS, err = serverTLS(ts); err != nil {
				return out, "", err
			}
		}
		if routeConfig, err = hcmToSpec(m, &out, s, g, fpath); err != nil {
			return out, "", err
		}
		out.ReadinessPath = meta[metaReadinessPath].GetStringValue()
	default:
		return out, "", unsupported(fpath, fmt.Sprintf("network filter %s is not supported (only http_connection_manager and tcp_proxy)", cfg.GetTypeUrl()))
	}
	return out, routeConfig, nil
}

func hcmToSpec(m *hcm.HttpConnectionManager, out *spec.Listener, s *spec.Spec, g *globals, path string) (string, error) {
	switch m.GetCodecType() {
	case hcm.HttpConnectionManager_AUTO:
		out.H2C = out.TLS == nil
	case hcm.HttpConnectionManager_HTTP1:
		if out.TLS != nil {
			return "", unsupported(path+".codec_type", "HTTP1 with TLS: Gangway's data plane always offers HTTP/2 over TLS; use AUTO")
		}
	default:
		return "", unsupported(path+".codec_type", m.GetCodecType().String()+" is not supported (AUTO or HTTP1)")
	}
	rds := m.GetRds()
	if rds == nil || rds.GetConfigSource().GetAds() == nil {
		return "", unsupported(path+".rds", "routes must come over ADS (rds.config_source.ads)")
	}
	if rds.GetRouteConfigName() == "" {
		return "", unsupported(path+".rds.route_config_name", "required")
	}
	if len(m.GetHttpFilters()) != 1 || !m.GetHttpFilters()[0].GetTypedConfig().MessageIs(&router.Router{}) {
		return "", unsupported(path+".http_filters", "exactly one HTTP filter, the router (envoy.filters.http.router with a typed_config), is supported")
	}
	if err := unpack(m.GetHttpFilters()[0].GetTypedConfig(), &router.Router{}, routerFields, path+".http_filters[0].typed_config"); err != nil {
		return "", err
	}

	readHeader := spec.DefaultReadHeaderTimeout
	if d := m.GetRequestHeadersTimeout(); d != nil {
		readHeader = d.AsDuration()
	}
	idle := envoyConnIdle
	if d := m.GetCommonHttpProtocolOptions().GetIdleTimeout(); d != nil {
		idle = d.AsDuration()
	}
	var write time.Duration
	if d := m.GetCommonHttpProtocolOptions().GetMaxStreamDuration(); d != nil {
		write = d.AsDuration()
	}
	headerBytes := envoyMaxHeadersKB * 1024
	if v := m.GetMaxRequestHeadersKb(); v != nil {
		headerBytes = int(v.GetValue()) * 1024
	}
	if readHeader <= 0 {
		return "", unsupported(path+".request_headers_timeout", "must be > 0")
	}
	type httpSettings struct {
		readHeader, idle, write time.Duration
		headerBytes             int
	}
	cur := httpSettings{s.ReadHeaderTimeout, s.IdleTimeout, s.WriteTimeout, s.MaxHeaderBytes}
	if err := agree(&g.http, out.Name, "HTTP settings (request_headers_timeout, idle_timeout, max_stream_duration, max_request_headers_kb)", &cur, httpSettings{readHeader, idle, write, headerBytes}); err != nil {
		return "", err
	}
	s.ReadHeaderTimeout, s.IdleTimeout, s.WriteTimeout, s.MaxHeaderBytes = cur.readHeader, cur.idle, cur.write, cur.headerBytes

	// Unset fields mean what they mean to Envoy: no normalization, escaped slashes kept.
	out.Paths = spec.PathNormalization{Normalize: m.GetNormalizePath().GetValue(), MergeSlashes: m.GetMergeSlashes()}
	if a := m.GetPathWithEscapedSlashesAction(); a != hcm.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT {
		found := false
		for k, v := range escapedSlashesAction {
			if v == a {
				out.Paths.EscapedSlashes, found = k, true
			}
		}
		if !found {
			return "", unsupported(path+".path_with_escaped_slashes_action", a.String()+" is not supported")
		}
	}

	ext := m.GetOriginalIpDetectionExtensions()
	if len(ext) == 0 && !m.GetUseRemoteAddress().GetValue() {
		// Without it Envoy takes the client address from X-Forwarded-For; Gangway trusts
		// that header only from the peers the xff extension lists.
		return "", unsupported(path+".use_remote_address", "must be true without the xff extension: Gangway takes the client address from the connection unless original_ip_detection_extensions names trusted proxies")
	}
	if len(ext) > 1 {
		return "", unsupported(path+".original_ip_detection_extensions", "at most one (the xff extension) is supported")
	}
	if len(ext) == 1 {
		p := path + ".original_ip_detection_extensions[0].typed_config"
		x := &xff.XffConfig{}
		if !ext[0].GetTypedConfig().MessageIs(x) {
			return "", unsupported(p, ext[0].GetTypedConfig().GetTypeUrl()+" is not supported (only the xff extension)")
		}
		if err := unpack(ext[0].GetTypedConfig(), x, xffFields, p); err != nil {
			return "", err
		}
		for i, c := range x.GetXffTrustedCidrs().GetCidrs() {
			pfx, err := cidrPrefix(c)
			if err != nil {
				return "", unsupported(fmt.Sprintf("%s.xff_trusted_cidrs.cidrs[%d]", p, i), err.Error())
			}
			out.TrustedProxies = append(out.TrustedProxies, pfx)
		}
	}
	return rds.GetRouteConfigName(), nil
}

func cidrPrefix(c *core.CidrRange) (netip.Prefix, error) {
	addr, err := netip.ParseAddr(c.GetAddressPrefix())
	if err != nil {
		return netip.Prefix{}, err
	}
	bits := addr.BitLen()
	if c.GetPrefixLen() != nil {
		bits = int(c.GetPrefixLen().GetValue())
	}
	pfx, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, err
	}
	return pfx, nil
}

func serverTLS(ts *core.TransportSocket) (*spec.ServerTLS, error) {
	const p = "filter_chains[0].transport_socket.typed_config"
	ctx := &tlsv3.DownstreamTlsContext{}
	if !ts.GetTypedConfig().MessageIs(ctx) {
		return nil, unsupported(p, ts.GetTypedConfig().GetTypeUrl()+" is not supported (only DownstreamTlsContext)")
	}
	if err := unpack(ts.GetTypedConfig(), ctx, downTLSFields, p); err != nil {
		return nil, err
	}
	common := ctx.GetCommonTlsContext()
	if err := minTLS12(common, p); err != nil {
		return nil, err
	}
	if alpn := common.GetAlpnProtocols(); !slices.Equal(alpn, downstreamALPN) {
		// Envoy offers what the list says (none when empty); Gangway always offers both.
		return nil, unsupported(p+".common_tls_context.alpn_protocols", fmt.Sprintf("%q: Gangway offers %q", alpn, downstreamALPN))
	}
	if len(common.GetTlsCertificates()) != 1 {
		return nil, unsupported(p+".common_tls_context.tls_certificates", "exactly one certificate is supported")
	}
	cert := common.GetTlsCertificates()[0]
	out := &spec.ServerTLS{
		CertFile:     cert.GetCertificateChain().GetFilename(),
		KeyFile:      cert.GetPrivateKey().GetFilename(),
		ClientCAFile: common.GetValidationContext().GetTrustedCa().GetFilename(),
	}
	if out.CertFile == "" || out.KeyFile == "" {
		return nil, unsupported(p+".common_tls_context.tls_certificates[0]", "certificate_chain.filename and private_key.filename are required")
	}
	switch {
	case ctx.GetRequireClientCertificate().GetValue():
		if out.ClientCAFile == "" {
			return nil, unsupported(p+".require_client_certificate", "needs validation_context.trusted_ca")
		}
		out.ClientAuth = spec.RequireClientCert
	case out.ClientCAFile != "":
		out.ClientAuth = spec.VerifyClientCertIfGiven
	}
	return out, nil
}

func minTLS12(common *tlsv3.CommonTlsContext, path string) error {
	switch v := common.GetTlsParams().GetTlsMinimumProtocolVersion(); v {
	case tlsv3.TlsParameters_TLS_AUTO, tlsv3.TlsParameters_TLSv1_2:
		return nil
	default:
		return unsupported(path+".common_tls_context.tls_params.tls_minimum_protocol_version", v.String()+": Gangway's minimum is always TLS 1.2")
	}
}

// hostPort formats a socket address as Go's host:port; Envoy's "::" with ipv4_compat is
// Go's empty host (every interface, both families).
func hostPort(sa *core.SocketAddress, path string) (string, error) {
	if sa == nil {
		return "", unsupported(path, "a socket_address is required")
	}
	host := sa.GetAddress()
	if host == "" {
		return "", unsupported(path+".socket_address.address", "required")
	}
	if host == "::" {
		if !sa.GetIpv4Compat() {
			// Go's listener on "::" takes IPv4 connections too; Envoy's takes IPv6 only.
			return "", unsupported(path+".socket_address.ipv4_compat", `"::" without ipv4_compat listens on IPv6 only in Envoy; Gangway listens on both families: set ipv4_compat, or name an IPv6 address`)
		}
		host = ""
	}
	return net.JoinHostPort(host, strconv.FormatUint(uint64(sa.GetPortValue()), 10)), nil
}

// unpack unmarshals a typed_config and checks its fields.
func unpack(a *anypb.Any, m proto.Message, allowed fields, path string) error {
	if err := a.UnmarshalTo(m); err != nil {
		return unsupported(path, fmt.Sprintf("decode %s: %v", a.GetTypeUrl(), err))
	}
	return checkFields(m.ProtoReflect(), allowed, path)
}

// ---- metadata

type structKind int

const (
	stringKind structKind = iota
	boolKind
	numberKind
)

func metaPath(key string) string { return "metadata.filter_metadata." + MetadataKey + "." + key }

// gangwayMetadata returns filter_metadata["gangway"], checking that it holds only the known
// keys with the right kinds. Other filter_metadata keys are left alone: they do not change
// what the data plane does.
func gangwayMetadata(md *core.Metadata, known map[string]structKind) (map[string]*structpb.Value, error) {
	if len(md.GetTypedFilterMetadata()) > 0 {
		return nil, unsupported("metadata.typed_filter_metadata", "not supported by Gangway's data plane")
	}
	s := md.GetFilterMetadata()[MetadataKey]
	out := map[string]*structpb.Value{}
	for k, v := range s.GetFields() {
		kind, ok := known[k]
		if !ok {
			return nil, unsupported(metaPath(k), "unknown key")
		}
		switch {
		case kind == stringKind && isString(v),
			kind == boolKind && isBool(v),
			kind == numberKind && isNumber(v):
		default:
			return nil, unsupported(metaPath(k), "wrong type")
		}
		out[k] = v
	}
	return out, nil
}

func isString(v *structpb.Value) bool { _, ok := v.GetKind().(*structpb.Value_StringValue); return ok }
func isBool(v *structpb.Value) bool   { _, ok := v.GetKind().(*structpb.Value_BoolValue); return ok }
func isNumber(v *structpb.Value) bool { _, ok := v.GetKind().(*structpb.Value_NumberValue); return ok }

// ---- routes

var routeConfigFields = paths(
	"name", "ignore_port_in_host_matching", "validate_clusters",
	"virtual_hosts.name", "virtual_hosts.domains",
	"virtual_hosts.routes.name", "virtual_hosts.routes.metadata",
	"virtual_hosts.routes.match.prefix", "virtual_hosts.routes.match.path", "virtual_hosts.routes.match.safe_regex.regex",
	"virtual_hosts.routes.route.cluster", "virtual_hosts.routes.route.timeout", "virtual_hosts.routes.route.idle_timeout",
	"virtual_hosts.routes.route.prefix_rewrite", "virtual_hosts.routes.route.host_rewrite_literal",
	"virtual_hosts.routes.route.auto_host_rewrite", "virtual_hosts.routes.route.upgrade_configs.upgrade_type",
	"virtual_hosts.routes.request_headers_to_add.header.key", "virtual_hosts.routes.request_headers_to_add.header.value",
	"virtual_hosts.routes.request_headers_to_add.append_action", "virtual_hosts.routes.request_headers_to_remove",
	"virtual_hosts.routes.response_headers_to_add.header.key", "virtual_hosts.routes.response_headers_to_add.header.value",
	"virtual_hosts.routes.response_headers_to_add.append_action", "virtual_hosts.routes.response_headers_to_remove",
)

// routesToSpec reverses virtualHosts: a route's hosts are the domains of the virtual hosts it
// appears in, and its position comes from the order of every virtual host. The result is
// compiled again and must give the same virtual hosts, so that the data plane selects
// exactly the routes that Envoy would.
func routesToSpec(rc *route.RouteConfiguration) ([]spec.Route, error) {
	if err := checkFields(rc.ProtoReflect(), routeConfigFields, ""); err != nil {
		return nil, err
	}
	if !rc.GetIgnorePortInHostMatching() {
		// Unset, Envoy matches a Host with a port against domains with that port, so
		// "a.example:8080" is not "a.example"; Gangway's routes match the host alone.
		return nil, unsupported("ignore_port_in_host_matching", "must be true: Gangway matches routes on the Host without its port, as Envoy does only with this set")
	}
	type entry struct {
		first   int // index of first appearance
		vh      string
		route   *route.Route
		domains []string
	}
	byName := map[string]*entry{}
	var order []string                // route names by first appearance
	received := map[string][]string{} // domain -> route names
	next := map[string][]string{}     // ordering edges
	for i, vh := range rc.GetVirtualHosts() {
		p := fmt.Sprintf("virtual_hosts[%d]", i)
		if len(vh.GetRoutes()) == 0 {
			return nil, unsupported(p+".routes", "a virtual host without routes is not supported")
		}
		seen := map[string]bool{}
		var names []string
		for j, r := range vh.GetRoutes() {
			rp := fmt.Sprintf("%s.routes[%d]", p, j)
			name := r.GetName()
			if name == "" {
				return nil, unsupported(rp+".name", "required: Gangway identifies routes by name")
			}
			if seen[name] {
				return nil, unsupported(rp+".name", fmt.Sprintf("route %q appears twice in virtual host %q", name, vh.GetName()))
			}
			seen[name] = true
			e := byName[name]
			if e == nil {
				e = &entry{first: len(order), vh: vh.GetName(), route: r}
				byName[name] = e
				order = append(order, name)
			} else if !proto.Equal(e.route, r) {
				return nil, unsupported(rp, fmt.Sprintf("route %q differs from its copy in virtual host %q: a route must be the same in every virtual host", name, e.vh))
			}
			if len(names) > 0 {
				prev := names[len(names)-1]
				next[prev] = append(next[prev], name)
			}
			names = append(names, name)
		}
		for k, d := range vh.GetDomains() {
			d = httpascii.Lower(d)
			if err := checkDomain(d); err != nil {
				return nil, unsupported(fmt.Sprintf("%s.domains[%d]", p, k), err.Error())
			}
			if _, dup := received[d]; dup {
				return nil, unsupported(fmt.Sprintf("%s.domains[%d]", p, k), fmt.Sprintf("domain %q is in two virtual hosts", d))
			}
			received[d] = names
			for _, n := range names {
				byName[n].domains = append(byName[n].domains, d)
			}
		}
	}

	sorted, err := topoOrder(order, next)
	if err != nil {
		return nil, unsupported("virtual_hosts", err.Error())
	}
	out := make([]spec.Route, 0, len(sorted))
	check := make([]hostRoute, 0, len(sorted))
	for _, name := range sorted {
		e := byName[name]
		hosts := e.domains
		for _, d := range hosts {
			if d == anyHost {
				hosts = nil
				break
			}
		}
		r, err := routeToSpec(e.route)
		if err != nil {
			return nil, unsupported(fmt.Sprintf("route %q", name), err.Error())
		}
		r.Hosts = minimalHosts(hosts)
		out = append(out, r)
		check = append(check, hostRoute{hosts: hosts, route: e.route})
	}

	// Compile the result again: the virtual hosts must come out the same.
	for _, vh := range virtualHosts(check) {
		names := make([]string, len(vh.GetRoutes()))
		for i, r := range vh.GetRoutes() {
			names[i] = r.GetName()
		}
		got := received[vh.GetDomains()[0]]
		if strings.Join(got, "\x00") != strings.Join(names, "\x00") {
			return nil, unsupported("virtual_hosts", fmt.Sprintf("domain %q: routes %v select differently in Gangway (first match over every route, in order) than in Envoy; Gangway would need %v", vh.GetDomains()[0], got, names))
		}
		delete(received, vh.GetDomains()[0])
	}
	for d := range received {
		return nil, unsupported("virtual_hosts", fmt.Sprintf("domain %q: routes select differently in Gangway than in Envoy", d))
	}
	return out, nil
}

// checkDomain accepts "*", exact host names and "*.suffix" wildcards.
func checkDomain(d string) error {
	rest := strings.TrimPrefix(d, "*.")
	if d == anyHost {
		return nil
	}
	if d == "" || rest == "" || strings.ContainsAny(rest, "*:") {
		return fmt.Errorf("%q: only exact names, \"*.suffix\" and \"*\" are supported", d)
	}
	return nil
}

// minimalHosts drops the patterns that another pattern of the list covers.
func minimalHosts(hosts []string) []string {
	var out []string
	for i, p := range hosts {
		redundant := false
		for j, q := range hosts {
			if i != j && q != p && covers(q, p) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, p)
		}
	}
	return out
}

// topoOrder orders names so that every edge a -> b puts a before b, keeping the order of
// names where the edges leave it free.
func topoOrder(names []string, next map[string][]string) ([]string, error) {
	index := make(map[string]int, len(names))
	for i, n := range names {
		index[n] = i
	}
	indeg := make([]int, len(names))
	for _, succ := range next {
		for _, b := range succ {
			indeg[index[b]]++
		}
	}
	ready := &intHeap{}
	for i := range names {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	out := make([]string, 0, len(names))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, names[i])
		for _, b := range next[names[i]] {
			j := index[b]
			if indeg[j]--; indeg[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	if len(out) != len(names) {
		return nil, errors.New("virtual hosts order the same routes differently; Gangway needs one order")
	}
	return out, nil
}

func routeToSpec(r *route.Route) (spec.Route, error) {
	out := spec.Route{Name: r.GetName()}
	m := r.GetMatch()
	switch {
	case m.GetPrefix() != "":
		out.Path.Prefix = m.GetPrefix()
	case m.GetPath() != "":
		out.Path.Exact = m.GetPath()
	case m.GetSafeRegex() != nil:
		expr := m.GetSafeRegex().GetRegex()
		if inner, ok := strings.CutPrefix(expr, searchPrefix); ok && strings.HasSuffix(inner, searchSuffix) {
			expr = strings.TrimSuffix(inner, searchSuffix)
		} else {
			expr = "^(?:" + expr + ")$" // Envoy matches the whole path
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return out, unsupported("match.safe_regex.regex", err.Error())
		}
		out.Path.Regex = re
	default:
		return out, unsupported("match", "a non-empty prefix, path or safe_regex is required")
	}
	a := r.GetRoute()
	if a == nil {
		return out, unsupported("route", "required: only forwarding routes are supported")
	}
	if out.Cluster = a.GetCluster(); out.Cluster == "" {
		return out, unsupported("route.cluster", "required")
	}
	out.Timeout = durationOr(a.GetTimeout(), envoyRouteTimeout)
	out.IdleTimeout = durationOr(a.GetIdleTimeout(), envoyStreamIdle)
	out.PrefixRewrite = a.GetPrefixRewrite()
	if out.PrefixRewrite != "" && out.Path.Regex != nil {
		return out, unsupported("route.prefix_rewrite", "not supported with safe_regex")
	}
	switch {
	case a.GetHostRewriteLiteral() != "":
		out.HostRewrite = a.GetHostRewriteLiteral()
	case a.GetAutoHostRewrite().GetValue():
	default:
		out.PreserveHost = true // Envoy's default: the downstream Host goes upstream
	}
	for i, u := range a.GetUpgradeConfigs() {
		if !httpascii.EqualFold(u.GetUpgradeType(), "websocket") {
			return out, unsupported(fmt.Sprintf("route.upgrade_configs[%d].upgrade_type", i), fmt.Sprintf("%q: only websocket is supported", u.GetUpgradeType()))
		}
		out.AllowWebSockets = true
	}
	var err error
	if out.SetRequestHeaders, err = headersToSpec(r.GetRequestHeadersToAdd(), "request_headers_to_add"); err != nil {
		return out, err
	}
	if out.SetResponseHeaders, err = headersToSpec(r.GetResponseHeadersToAdd(), "response_headers_to_add"); err != nil {
		return out, err
	}
	out.RemoveRequestHeaders = r.GetRequestHeadersToRemove()
	out.RemoveResponseHeaders = r.GetResponseHeadersToRemove()
	meta, err := gangwayMetadata(r.GetMetadata(), map[string]structKind{metaRequired: boolKind})
	if err != nil {
		return out, err
	}
	out.Required = meta[metaRequired].GetBoolValue()
	return out, nil
}

func headersToSpec(opts []*core.HeaderValueOption, path string) (map[string]string, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(opts))
	for i, o := range opts {
		p := fmt.Sprintf("%s[%d]", path, i)
		if o.GetAppendAction() != core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			return nil, unsupported(p+".append_action", o.GetAppendAction().String()+": only OVERWRITE_IF_EXISTS_OR_ADD is supported")
		}
		k := o.GetHeader().GetKey()
		if _, dup := out[k]; dup {
			return nil, unsupported(p+".header.key", fmt.Sprintf("%q is set twice", k))
		}
		out[k] = o.GetHeader().GetValue()
	}
	return out, nil
}

func durationOr(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.AsDuration()
}

// ---- clusters

var (
	lbEndpointFields = []string{
		"endpoints.lb_endpoints.endpoint.address.socket_address.address",
		"endpoints.lb_endpoints.endpoint.address.socket_address.port_value",
		"endpoints.lb_endpoints.endpoint.hostname",
	}
	claFields     = paths(append([]string{"cluster_name"}, lbEndpointFields...)...)
	clusterFields = paths(append(prefixed("load_assignment.", append([]string{"cluster_name"}, lbEndpointFields...)),
		"name", "type", "connect_timeout", "lb_policy", "dns_refresh_rate", "dns_lookup_family", "metadata",
		"eds_cluster_config.service_name", "eds_cluster_config.eds_config.ads.{}",
		"eds_cluster_config.eds_config.resource_api_version", "eds_cluster_config.eds_config.initial_fetch_timeout",
		"transport_socket.name", "transport_socket.typed_config",
		"typed_extension_protocol_options", "http2_protocol_options.{}",
		"health_checks.timeout", "health_checks.interval", "health_checks.healthy_threshold", "health_checks.unhealthy_threshold",
		"health_checks.http_health_check.path", "health_checks.http_health_check.codec_client_type",
		"health_checks.http_health_check.expected_statuses.start", "health_checks.http_health_check.expected_statuses.end",
		"health_checks.tcp_health_check.{}",
		"outlier_detection.consecutive_5xx", "outlier_detection.enforcing_consecutive_5xx",
		"outlier_detection.split_external_local_origin_errors",
		"outlier_detection.consecutive_local_origin_failure", "outlier_detection.enforcing_consecutive_local_origin_failure",
		"outlier_detection.enforcing_success_rate", "outlier_detection.enforcing_local_origin_success_rate",
		"outlier_detection.base_ejection_time", "outlier_detection.max_ejection_percent", "outlier_detection.interval",
	)...)
	httpOptionsFields = paths("explicit_http_config.http_protocol_options.{}", "explicit_http_config.http2_protocol_options.{}")
	upTLSFields       = paths(
		"sni",
		"common_tls_context.tls_params.tls_minimum_protocol_version",
		"common_tls_context.tls_certificates.certificate_chain.filename",
		"common_tls_context.tls_certificates.private_key.filename",
		"common_tls_context.validation_context.trusted_ca.filename",
		"common_tls_context.validation_context.system_root_certs.{}",
		"common_tls_context.validation_context.match_typed_subject_alt_names.san_type",
		"common_tls_context.validation_context.match_typed_subject_alt_names.matcher.exact",
		"common_tls_context.alpn_protocols",
	)
)

func prefixed(prefix string, ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = prefix + p
	}
	return out
}

func clusterToSpec(c *cluster.Cluster, clas map[string]*endpoint.ClusterLoadAssignment) (spec.Cluster, error) {
	out := spec.Cluster{Name: c.GetName(), MaxIdleConnsPerEndpoint: spec.DefaultMaxIdleConnsPerEndpoint}
	fail := func(err error) (spec.Cluster, error) { return out, resErr(ClusterType, c.GetName(), err) }
	if err := checkFields(c.ProtoReflect(), clusterFields, ""); err != nil {
		return fail(err)
	}
	if d := c.GetConnectTimeout(); d != nil && d.AsDuration() != ConnectTimeout {
		return fail(unsupported("connect_timeout", fmt.Sprintf("%s: Gangway's data plane uses a fixed %s", d.AsDuration(), ConnectTimeout)))
	}
	meta, err := gangwayMetadata(c.GetMetadata(), map[string]structKind{
		metaMaxIdleConns: numberKind, metaStaticEndpoints: boolKind,
		metaECSCluster: stringKind, metaECSService: stringKind, metaECSPort: numberKind, metaECSRefresh: stringKind,
	})
	if err != nil {
		return fail(err)
	}
	if out.ECS, err = ecsToSpec(meta); err != nil {
		return fail(err)
	}
	if v, ok := meta[metaMaxIdleConns]; ok {
		n := v.GetNumberValue()
		if n < 1 || n != float64(int(n)) {
			return fail(unsupported(metaPath(metaMaxIdleConns), "must be an integer >= 1"))
		}
		out.MaxIdleConnsPerEndpoint = int(n)
	}
	switch c.GetLbPolicy() {
	case cluster.Cluster_ROUND_ROBIN:
		out.LBPolicy = spec.RoundRobin
	case cluster.Cluster_LEAST_REQUEST:
		out.LBPolicy = spec.LeastRequest
	case cluster.Cluster_RANDOM:
		out.LBPolicy = spec.Random
	default:
		return fail(unsupported("lb_policy", c.GetLbPolicy().String()+" is not supported (ROUND_ROBIN, LEAST_REQUEST or RANDOM)"))
	}

	switch t := c.GetType(); t {
	case cluster.Cluster_EDS:
		if c.GetEdsClusterConfig().GetEdsConfig().GetAds() == nil {
			return fail(unsupported("eds_cluster_config.eds_config", "endpoints must come over ADS (eds_config.ads)"))
		}
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		cla := clas[name]
		if cla == nil {
			return out, resErr(EndpointType, name, fmt.Errorf("missing: cluster %q uses it", c.GetName()))
		}
		if err := checkFields(cla.ProtoReflect(), claFields, ""); err != nil {
			return out, resErr(EndpointType, name, err)
		}
		if out.Endpoints, err = endpointsToSpec(cla, "endpoints"); err != nil {
			return out, resErr(EndpointType, name, err)
		}
		switch {
		case out.ECS != nil && len(out.Endpoints) > 0:
			return out, resErr(EndpointType, name, unsupported("endpoints", fmt.Sprintf("cluster %q discovers its endpoints from ECS (%s): its assignment must be empty", c.GetName(), metaPath(metaECSService))))
		case out.ECS == nil && len(out.Endpoints) == 0:
			return out, resErr(EndpointType, name, unsupported("endpoints", fmt.Sprintf("no endpoints for cluster %q: an empty assignment is only for clusters with ECS discovery (%s)", c.GetName(), metaPath(metaECSService))))
		}
		if c.GetLoadAssignment() != nil {
			return fail(unsupported("load_assignment", "not used by EDS clusters"))
		}
	case cluster.Cluster_STATIC, cluster.Cluster_STRICT_DNS, cluster.Cluster_LOGICAL_DNS:
		if f := c.GetDnsLookupFamily(); t != cluster.Cluster_STATIC && f != cluster.Cluster_ALL {
			// Gangway resolves A and AAAA records and uses every address; Envoy's AUTO (the
			// default) and V4_PREFERRED use one family when it has addresses, the _ONLY
			// values one family always.
			return fail(unsupported("dns_lookup_family", f.String()+": Gangway uses the addresses of both families; only ALL is supported"))
		}
		if out.ECS != nil {
			return fail(unsupported("type", t.String()+": ECS discovery ("+metaPath(metaECSService)+") needs an EDS cluster with an empty assignment"))
		}
		eps, err := endpointsToSpec(c.GetLoadAssignment(), "load_assignment.endpoints")
		if err != nil {
			return fail(err)
		}
		if len(eps) == 0 {
			return fail(unsupported("load_assignment", "at least one endpoint is required"))
		}
		static := t == cluster.Cluster_STATIC || t == cluster.Cluster_LOGICAL_DNS || meta[metaStaticEndpoints].GetBoolValue() || len(eps) > 1
		if static {
			// A static list is dialled by name; LOGICAL_DNS uses one address of one name at a
			// time, which is what dialling the name does.
			out.Endpoints = eps
		} else {
			host, portStr, _ := net.SplitHostPort(eps[0])
			port, _ := strconv.Atoi(portStr)
			//lint:ignore SA1019 Gangway compiles the field that every Envoy release reads
			out.DNS = &spec.DNSDiscovery{Name: host, Port: port, Refresh: durationOr(c.GetDnsRefreshRate(), envoyDNSRefresh)}
			if out.DNS.Refresh <= 0 {
				return fail(unsupported("dns_refresh_rate", "must be > 0"))
			}
		}
	default:
		return fail(unsupported("type", t.String()+" is not supported (EDS, STATIC, STRICT_DNS or LOGICAL_DNS)"))
	}

	if err := protocolToSpec(c, &out); err != nil {
		return fail(err)
	}
	if ts := c.GetTransportSocket(); ts != nil {
		if out.TLS, err = clientTLS(ts); err != nil {
			return fail(err)
		}
	}
	switch hcs := c.GetHealthChecks(); len(hcs) {
	case 0:
	case 1:
		if out.HealthCheck, err = healthCheckToSpec(hcs[0]); err != nil {
			return fail(err)
		}
		if h := hcs[0].GetHttpHealthCheck(); h != nil && (h.GetCodecClientType() == typev3.CodecClientType_HTTP2) != out.HTTP2 {
			// Gangway checks an endpoint with the protocol it forwards to it with.
			return fail(unsupported("health_checks[0].http_health_check.codec_client_type", fmt.Sprintf("%s: must be the cluster's protocol (HTTP2 exactly when the cluster speaks HTTP/2)", h.GetCodecClientType())))
		}
	default:
		return fail(unsupported("health_checks", "at most one health check is supported"))
	}
	if o := c.GetOutlierDetection(); o != nil {
		if out.Outlier, err = outlierToSpec(o); err != nil {
			return fail(err)
		}
	}
	return out, nil
}

// ecsToSpec reads ECS discovery from a cluster's Gangway metadata: nil when it has none of
// the ecs_* keys.
func ecsToSpec(meta map[string]*structpb.Value) (*spec.ECSDiscovery, error) {
	cl, service, port, refresh := meta[metaECSCluster], meta[metaECSService], meta[metaECSPort], meta[metaECSRefresh]
	if cl == nil && service == nil && port == nil && refresh == nil {
		return nil, nil
	}
	out := &spec.ECSDiscovery{Cluster: cl.GetStringValue(), Service: service.GetStringValue(), Refresh: spec.DefaultECSRefresh}
	if out.Service == "" {
		return nil, unsupported(metaPath(metaECSService), "required with ECS discovery")
	}
	n := port.GetNumberValue()
	if n < 1 || n > 65535 || n != float64(int(n)) {
		return nil, unsupported(metaPath(metaECSPort), "required with ECS discovery: an integer 1-65535")
	}
	out.Port = int(n)
	if refresh != nil {
		d, err := time.ParseDuration(refresh.GetStringValue())
		if err != nil || d <= 0 {
			return nil, unsupported(metaPath(metaECSRefresh), fmt.Sprintf("%q is not a duration > 0", refresh.GetStringValue()))
		}
		out.Refresh = d
	}
	return out, nil
}

func endpointsToSpec(cla *endpoint.ClusterLoadAssignment, path string) ([]string, error) {
	var out []string
	for i, l := range cla.GetEndpoints() {
		for j, e := range l.GetLbEndpoints() {
			hp, err := hostPort(e.GetEndpoint().GetAddress().GetSocketAddress(), fmt.Sprintf("%s[%d].lb_endpoints[%d].endpoint.address", path, i, j))
			if err != nil {
				return nil, err
			}
			out = append(out, hp)
		}
	}
	return out, nil
}

func protocolToSpec(c *cluster.Cluster, out *spec.Cluster) error {
	//lint:ignore SA1019 the deprecated field is still what many control planes send
	out.HTTP2 = c.GetHttp2ProtocolOptions() != nil
	for key, a := range c.GetTypedExtensionProtocolOptions() {
		p := fmt.Sprintf("typed_extension_protocol_options[%q]", key)
		opts := &upstreamhttp.HttpProtocolOptions{}
		if key != httpProtocolOptionsKey || !a.MessageIs(opts) {
			return unsupported(p, "only "+httpProtocolOptionsKey+" is supported")
		}
		if err := unpack(a, opts, httpOptionsFields, p); err != nil {
			return err
		}
		if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
			out.HTTP2 = true
		}
	}
	return nil
}

func clientTLS(ts *core.TransportSocket) (*spec.UpstreamTLS, error) {
	const p = "transport_socket.typed_config"
	ctx := &tlsv3.UpstreamTlsContext{}
	if !ts.GetTypedConfig().MessageIs(ctx) {
		return nil, unsupported(p, ts.GetTypedConfig().GetTypeUrl()+" is not supported (only UpstreamTlsContext)")
	}
	if err := unpack(ts.GetTypedConfig(), ctx, upTLSFields, p); err != nil {
		return nil, err
	}
	common := ctx.GetCommonTlsContext()
	if err := minTLS12(common, p); err != nil {
		return nil, err
	}
	out := &spec.UpstreamTLS{ServerName: ctx.GetSni()}
	switch certs := common.GetTlsCertificates(); len(certs) {
	case 0:
	case 1:
		out.CertFile, out.KeyFile = certs[0].GetCertificateChain().GetFilename(), certs[0].GetPrivateKey().GetFilename()
		if out.CertFile == "" || out.KeyFile == "" {
			return nil, unsupported(p+".common_tls_context.tls_certificates[0]", "certificate_chain.filename and private_key.filename are required")
		}
	default:
		return nil, unsupported(p+".common_tls_context.tls_certificates", "at most one client certificate is supported")
	}
	vc := common.GetValidationContext()
	if vc == nil {
		// Envoy verifies nothing without a validation context.
		out.InsecureSkipVerify = true
		return out, nil
	}
	out.CAFile = vc.GetTrustedCa().GetFilename()
	if (out.CAFile == "") == (vc.GetSystemRootCerts() == nil) {
		return nil, unsupported(p+".common_tls_context.validation_context", "exactly one of trusted_ca.filename and system_root_certs is required")
	}
	for i, san := range vc.GetMatchTypedSubjectAltNames() {
		if san.GetSanType() != tlsv3.SubjectAltNameMatcher_DNS || san.GetMatcher().GetExact() != out.ServerName || out.ServerName == "" {
			return nil, unsupported(fmt.Sprintf("%s.common_tls_context.validation_context.match_typed_subject_alt_names[%d]", p, i), "only a DNS name equal to sni is supported: Gangway verifies the server name it sends")
		}
	}
	return out, nil
}

func healthCheckToSpec(hc *core.HealthCheck) (*spec.HealthCheck, error) {
	out := &spec.HealthCheck{
		Interval:           hc.GetInterval().AsDuration(),
		Timeout:            hc.GetTimeout().AsDuration(),
		HealthyThreshold:   int(hc.GetHealthyThreshold().GetValue()),
		UnhealthyThreshold: int(hc.GetUnhealthyThreshold().GetValue()),
	}
	switch {
	case hc.GetTcpHealthCheck() != nil:
		out.Type = spec.TCPHealthCheck
	case hc.GetHttpHealthCheck() != nil:
		h := hc.GetHttpHealthCheck()
		out.Path = h.GetPath()
		for _, r := range h.GetExpectedStatuses() {
			out.Expected = append(out.Expected, spec.StatusRange{Min: int(r.GetStart()), Max: int(r.GetEnd()) - 1})
		}
		if len(out.Expected) == 0 {
			out.Expected = []spec.StatusRange{{Min: 200, Max: 200}} // Envoy's default: 200 only
		}
		if h.GetCodecClientType() == typev3.CodecClientType_HTTP3 {
			return nil, unsupported("health_checks[0].http_health_check.codec_client_type", "HTTP3 is not supported")
		}
	default:
		return nil, unsupported("health_checks[0]", "an http_health_check or tcp_health_check is required")
	}
	if out.Interval <= 0 || out.Timeout <= 0 || out.HealthyThreshold < 1 || out.UnhealthyThreshold < 1 {
		return nil, unsupported("health_checks[0]", "interval and timeout must be > 0, thresholds >= 1")
	}
	return out, nil
}

func outlierToSpec(o *cluster.OutlierDetection) (*spec.Outlier, error) {
	const p = "outlier_detection."
	if o.GetInterval() != nil {
		// Envoy returns ejected endpoints, and forgets past ejections, at its analysis
		// sweeps; Gangway returns an endpoint when its ejection time ends.
		return nil, unsupported(p+"interval", "Gangway has no analysis interval: an ejected endpoint returns when its ejection time ends; leave unset")
	}
	if v := o.GetEnforcingSuccessRate(); v != nil && v.GetValue() != 0 {
		return nil, unsupported(p+"enforcing_success_rate", "success-rate ejection is not supported; set 0")
	}
	if v := o.GetEnforcingLocalOriginSuccessRate(); v != nil && v.GetValue() != 0 {
		return nil, unsupported(p+"enforcing_local_origin_success_rate", "success-rate ejection is not supported; set 0")
	}
	enforced := func(name string, v interface{ GetValue() uint32 }, set bool) (bool, error) {
		if !set {
			return true, nil // Envoy's default: 100
		}
		switch v.GetValue() {
		case 0:
			return false, nil
		case 100:
			return true, nil
		}
		return false, unsupported(p+name, "only 0 and 100 are supported")
	}
	out := &spec.Outlier{
		BaseEjectionTime:   durationOr(o.GetBaseEjectionTime(), envoyBaseEjection),
		MaxEjectionPercent: envoyMaxEjectionPct,
	}
	if v := o.GetMaxEjectionPercent(); v != nil {
		out.MaxEjectionPercent = int(v.GetValue())
	}
	on, err := enforced("enforcing_consecutive_5xx", o.GetEnforcingConsecutive_5Xx(), o.GetEnforcingConsecutive_5Xx() != nil)
	if err != nil {
		return nil, err
	}
	if on {
		out.Consecutive5xx = envoyConsecutiveFails
		if v := o.GetConsecutive_5Xx(); v != nil {
			out.Consecutive5xx = int(v.GetValue())
		}
	}
	if o.GetSplitExternalLocalOriginErrors() {
		on, err := enforced("enforcing_consecutive_local_origin_failure", o.GetEnforcingConsecutiveLocalOriginFailure(), o.GetEnforcingConsecutiveLocalOriginFailure() != nil)
		if err != nil {
			return nil, err
		}
		if on {
			out.ConsecutiveConnectFailures = envoyConsecutiveFails
			if v := o.GetConsecutiveLocalOriginFailure(); v != nil {
				out.ConsecutiveConnectFailures = int(v.GetValue())
			}
		}
	}
	if out.BaseEjectionTime <= 0 {
		return nil, unsupported(p+"base_ejection_time", "must be > 0")
	}
	return out, nil
}

// intHeap is a min-heap of ints (container/heap).
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
