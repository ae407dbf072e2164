package resource

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// TestToSpecRejects: what the data plane cannot run is rejected with an error that names the
// resource and the field.
func TestToSpecRejects(t *testing.T) {
	base := func(t *testing.T) *Resources {
		res, err := Compile(parseFile(t, "testdata/routing.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	clusterNamed := func(res *Resources, name string) *cluster.Cluster {
		for _, c := range res.Clusters {
			if c.Name == name {
				return c
			}
		}
		panic("no cluster " + name)
	}
	editHCM := func(t *testing.T, res *Resources, edit func(*hcm.HttpConnectionManager)) {
		l := res.Listeners[0]
		m := &hcm.HttpConnectionManager{}
		if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		l.FilterChains[0].Filters[0].ConfigType = networkFilter("x", m).ConfigType
	}
	tests := []struct {
		name     string
		edit     func(*testing.T, *Resources)
		typeURL  string
		resource string
		want     string
	}{
		{
			name: "circuit breakers",
			edit: func(t *testing.T, r *Resources) {
				clusterNamed(r, "app").CircuitBreakers = &cluster.CircuitBreakers{}
			},
			typeURL: ClusterType, resource: "app",
			want: `cluster "app": circuit_breakers: not supported by Gangway's data plane`,
		},
		{
			name: "maglev",
			edit: func(t *testing.T, r *Resources) {
				clusterNamed(r, "app").LbPolicy = cluster.Cluster_MAGLEV
			},
			typeURL: ClusterType, resource: "app",
			want: `cluster "app": lb_policy: MAGLEV is not supported`,
		},
		{
			name: "success-rate ejection",
			edit: func(t *testing.T, r *Resources) {
				clusterNamed(r, "app").OutlierDetection = &cluster.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(100)}
			},
			typeURL: ClusterType, resource: "app",
			want: `cluster "app": outlier_detection.enforcing_success_rate: success-rate ejection is not supported`,
		},
		{
			name: "nested unknown field in outlier detection",
			edit: func(t *testing.T, r *Resources) {
				clusterNamed(r, "app").OutlierDetection = &cluster.OutlierDetection{SuccessRateMinimumHosts: wrapperspb.UInt32(3)}
			},
			typeURL: ClusterType, resource: "app",
			want: `cluster "app": outlier_detection.success_rate_minimum_hosts: not supported by Gangway's data plane`,
		},
		{
			name: "missing endpoints",
			edit: func(t *testing.T, r *Resources) {
				r.Endpoints = nil
			},
			typeURL: EndpointType, resource: "app",
			want: `cluster load assignment "app": missing: cluster "app" uses it`,
		},
		{
			name: "endpoint locality",
			edit: func(t *testing.T, r *Resources) {
				r.Endpoints[0].Endpoints[0].Locality = &core.Locality{Zone: "a"}
			},
			typeURL: EndpointType, resource: "app",
			want: `cluster load assignment "app": endpoints[0].locality: not supported by Gangway's data plane`,
		},
		{
			name: "redirect route",
			edit: func(t *testing.T, r *Resources) {
				r.Routes[0].VirtualHosts[0].Routes[0].Action = &route.Route_Redirect{Redirect: &route.RedirectAction{}}
			},
			typeURL: RouteType, resource: RouteConfigName,
			want: `route configuration "gangway": virtual_hosts[0].routes[0].redirect: not supported by Gangway's data plane`,
		},
		{
			name: "append header",
			edit: func(t *testing.T, r *Resources) {
				for _, vh := range r.Routes[0].VirtualHosts {
					for _, rt := range vh.Routes {
						for _, h := range rt.RequestHeadersToAdd {
							h.AppendAction = core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
						}
					}
				}
			},
			typeURL: RouteType, resource: RouteConfigName,
			want: `route "any": request_headers_to_add[0].append_action: APPEND_IF_EXISTS_OR_ADD: only OVERWRITE_IF_EXISTS_OR_ADD is supported`,
		},
		{
			name: "route differs between virtual hosts",
			edit: func(t *testing.T, r *Resources) {
				vh := r.Routes[0].VirtualHosts[1]
				rt := proto.Clone(vh.Routes[0]).(*route.Route)
				rt.GetRoute().PrefixRewrite = "/x"
				vh.Routes[0] = rt
			},
			typeURL: RouteType, resource: RouteConfigName,
			want: `route "wild" differs from its copy in virtual host "api.example.com"`,
		},
		{
			name: "Envoy-only selection",
			edit: func(t *testing.T, r *Resources) {
				// Drop "fallback" from the exact host only: in Envoy, api.example.com then has
				// no fallback, which Gangway's first-match order cannot express.
				vh := r.Routes[0].VirtualHosts[0]
				vh.Routes = vh.Routes[:len(vh.Routes)-1]
			},
			typeURL: RouteType, resource: RouteConfigName,
			want: `virtual_hosts: domain "api.example.com": routes [api-exact wild deep any] select differently in Gangway`,
		},
		{
			name: "prefix wildcard domain",
			edit: func(t *testing.T, r *Resources) {
				r.Routes[0].VirtualHosts[0].Domains = []string{"api.*"}
			},
			typeURL: RouteType, resource: RouteConfigName,
			want: `virtual_hosts[0].domains[0]: "api.*": only exact names`,
		},
		{
			name: "two filter chains",
			edit: func(t *testing.T, r *Resources) {
				l := r.Listeners[0]
				l.FilterChains = append(l.FilterChains, l.FilterChains[0])
			},
			typeURL: ListenerType, resource: "internal",
			want: `listener "internal": filter_chains: 2 filter chains: exactly one is supported`,
		},
		{
			name: "HTTP/2 only codec",
			edit: func(t *testing.T, r *Resources) {
				editHCM(t, r, func(m *hcm.HttpConnectionManager) { m.CodecType = hcm.HttpConnectionManager_HTTP2 })
			},
			typeURL: ListenerType, resource: "internal",
			want: `listener "internal": filter_chains[0].filters[0].typed_config.codec_type: HTTP2 is not supported`,
		},
		{
			name: "tracing",
			edit: func(t *testing.T, r *Resources) {
				editHCM(t, r, func(m *hcm.HttpConnectionManager) { m.Tracing = &hcm.HttpConnectionManager_Tracing{} })
			},
			typeURL: ListenerType, resource: "internal",
			want: `listener "internal": filter_chains[0].filters[0].typed_config.tracing: not supported by Gangway's data plane`,
		},
		{
			name: "path normalization options",
			edit: func(t *testing.T, r *Resources) {
				editHCM(t, r, func(m *hcm.HttpConnectionManager) {
					m.PathNormalizationOptions = &hcm.HttpConnectionManager_PathNormalizationOptions{}
				})
			},
			typeURL: ListenerType, resource: "internal",
			want: `listener "internal": filter_chains[0].filters[0].typed_config.path_normalization_options: not supported by Gangway's data plane`,
		},
		{
			name: "unknown escaped slashes action",
			edit: func(t *testing.T, r *Resources) {
				editHCM(t, r, func(m *hcm.HttpConnectionManager) { m.PathWithEscapedSlashesAction = 99 })
			},
			typeURL: ListenerType, resource: "internal",
			want: `listener "internal": filter_chains[0].filters[0].typed_config.path_with_escaped_slashes_action: 99 is not supported`,
		},
		{
			name: "listeners disagree on a global setting",
			edit: func(t *testing.T, r *Resources) {
				editHCM(t, r, func(m *hcm.HttpConnectionManager) { m.MaxRequestHeadersKb = wrapperspb.UInt32(1) })
			},
			typeURL: ListenerType, resource: "public",
			want: `differs from listener "internal"`,
		},
		{
			name: "unknown metadata key",
			edit: func(t *testing.T, r *Resources) {
				r.Listeners[0].Metadata.FilterMetadata[MetadataKey].Fields["readiness"] = structpb.NewStringValue("/x")
			},
			typeURL: ListenerType, resource: "internal",
			want: `listener "internal": metadata.filter_metadata.gangway.readiness: unknown key`,
		},
		{
			name: "empty assignment without ECS discovery",
			edit: func(t *testing.T, r *Resources) {
				r.Endpoints[0].Endpoints = nil
			},
			typeURL: EndpointType, resource: "app",
			want: `cluster load assignment "app": endpoints: no endpoints for cluster "app": an empty assignment is only for clusters with ECS discovery`,
		},
		{
			name: "ECS discovery with endpoints",
			edit: func(t *testing.T, r *Resources) {
				setMeta(clusterNamed(r, "app"), metaECSService, structpb.NewStringValue("orders"), metaECSPort, structpb.NewNumberValue(3000))
			},
			typeURL: EndpointType, resource: "app",
			want: `cluster "app" discovers its endpoints from ECS (metadata.filter_metadata.gangway.ecs_service): its assignment must be empty`,
		},
		{
			name: "ECS discovery on a DNS cluster",
			edit: func(t *testing.T, r *Resources) {
				setMeta(clusterNamed(r, "api"), metaECSService, structpb.NewStringValue("orders"), metaECSPort, structpb.NewNumberValue(3000))
			},
			typeURL: ClusterType, resource: "api",
			want: `cluster "api": type: STRICT_DNS: ECS discovery (metadata.filter_metadata.gangway.ecs_service) needs an EDS cluster`,
		},
		{
			name: "ECS discovery without a port",
			edit: func(t *testing.T, r *Resources) {
				r.Endpoints[0].Endpoints = nil
				setMeta(clusterNamed(r, "app"), metaECSService, structpb.NewStringValue("orders"))
			},
			typeURL: ClusterType, resource: "app",
			want: `cluster "app": metadata.filter_metadata.gangway.ecs_port: required with ECS discovery: an integer 1-65535`,
		},
		{
			name: "ECS discovery without a service",
			edit: func(t *testing.T, r *Resources) {
				r.Endpoints[0].Endpoints = nil
				setMeta(clusterNamed(r, "app"), metaECSCluster, structpb.NewStringValue("prod"), metaECSPort, structpb.NewNumberValue(3000))
			},
			typeURL: ClusterType, resource: "app",
			want: `cluster "app": metadata.filter_metadata.gangway.ecs_service: required with ECS discovery`,
		},
		{
			name: "ECS refresh not a duration",
			edit: func(t *testing.T, r *Resources) {
				r.Endpoints[0].Endpoints = nil
				setMeta(clusterNamed(r, "app"), metaECSService, structpb.NewStringValue("orders"), metaECSPort, structpb.NewNumberValue(3000), metaECSRefresh, structpb.NewStringValue("10"))
			},
			typeURL: ClusterType, resource: "app",
			want: `cluster "app": metadata.filter_metadata.gangway.ecs_refresh: "10" is not a duration > 0`,
		},
		{
			name: "connect timeout",
			edit: func(t *testing.T, r *Resources) {
				clusterNamed(r, "api").ConnectTimeout.Seconds = 1
			},
			typeURL: ClusterType, resource: "api",
			want: `cluster "api": connect_timeout: 1s: Gangway's data plane uses a fixed 10s`,
		},
		// Fields a control plane may set that the data plane cannot honour: each is refused by
		// name, not accepted and dropped.
		{
			name: "port in host matching",
			edit: func(t *testing.T, r *Resources) {
				r.Routes[0].IgnorePortInHostMatching = false
			},
			typeURL: RouteType, resource: RouteConfigName,
			want: `route configuration "gangway": ignore_port_in_host_matching: must be true`,
		},
		{
			name: "one DNS family",
			edit: func(t *testing.T, r *Resources) {
				clusterNamed(r, "api").DnsLookupFamily = cluster.Cluster_V4_ONLY
			},
			typeURL: ClusterType, resource: "api",
			want: `cluster "api": dns_lookup_family: V4_ONLY: Gangway uses the addresses of both families; only ALL is supported`,
		},
		{
			name: "DNS family left to Envoy's default",
			edit: func(t *testing.T, r *Resources) {
				clusterNamed(r, "api").DnsLookupFamily = cluster.Cluster_AUTO
			},
			typeURL: ClusterType, resource: "api",
			want: `cluster "api": dns_lookup_family: AUTO:`,
		},
		{
			name: "outlier detection interval",
			edit: func(t *testing.T, r *Resources) {
				clusterNamed(r, "app").OutlierDetection = &cluster.OutlierDetection{Interval: durationpb.New(10 * time.Second)}
			},
			typeURL: ClusterType, resource: "app",
			want: `cluster "app": outlier_detection.interval: Gangway has no analysis interval`,
		},
		{
			name: "client address from X-Forwarded-For",
			edit: func(t *testing.T, r *Resources) {
				editHCM(t, r, func(m *hcm.HttpConnectionManager) { m.UseRemoteAddress = nil })
			},
			typeURL: ListenerType, resource: "internal",
			want: `listener "internal": filter_chains[0].filters[0].typed_config.use_remote_address: must be true without the xff extension`,
		},
		{
			name: "IPv6-only wildcard address",
			edit: func(t *testing.T, r *Resources) {
				for _, l := range r.Listeners {
					if l.Name == "public" { // on ":8080": "::" with ipv4_compat
						l.Address.GetSocketAddress().Ipv4Compat = false
					}
				}
			},
			typeURL: ListenerType, resource: "public",
			want: `listener "public": address.socket_address.ipv4_compat: "::" without ipv4_compat listens on IPv6 only in Envoy`,
		},
		{
			name: "ALPN without h2",
			edit: func(t *testing.T, r *Resources) {
				ctx := downstreamTLS(&spec.ServerTLS{CertFile: "cert.pem", KeyFile: "key.pem"})
				ctx.CommonTlsContext.AlpnProtocols = []string{"http/1.1"}
				r.Listeners[0].FilterChains[0].TransportSocket = transportSocket(ctx)
			},
			typeURL: ListenerType, resource: "internal",
			want: `listener "internal": filter_chains[0].transport_socket.typed_config.common_tls_context.alpn_protocols: ["http/1.1"]: Gangway offers ["h2" "http/1.1"]`,
		},
		{
			name: "health check over another protocol",
			edit: func(t *testing.T, r *Resources) {
				hc := compileHealthCheck(&spec.HealthCheck{Type: spec.HTTPHealthCheck, Path: "/h", Interval: time.Second, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1}, true)
				clusterNamed(r, "app").HealthChecks = []*core.HealthCheck{hc}
			},
			typeURL: ClusterType, resource: "app",
			want: `cluster "app": health_checks[0].http_health_check.codec_client_type: HTTP2: must be the cluster's protocol`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := base(t)
			tc.edit(t, res)
			_, err := ToSpec(res)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			var re *ResourceError
			if !errors.As(err, &re) {
				t.Fatalf("error %T is not a *ResourceError", err)
			}
			if re.TypeURL != tc.typeURL || re.Name != tc.resource {
				t.Errorf("blames %s %q, want %s %q", re.TypeURL, re.Name, tc.typeURL, tc.resource)
			}
		})
	}
}

// setMeta sets keys of a cluster's filter_metadata.gangway: key, value, key, value...
func setMeta(c *cluster.Cluster, kv ...any) {
	if c.Metadata == nil {
		c.Metadata = metadata(map[string]any{metaMaxIdleConns: 64})
	}
	fields := c.Metadata.FilterMetadata[MetadataKey].Fields
	for i := 0; i < len(kv); i += 2 {
		fields[kv[i].(string)] = kv[i+1].(*structpb.Value)
	}
}

// TestVirtualHostsSelectLikeGangway compares, over random route tables, the route that
// Gangway's first-match rule selects with the one Envoy selects from the compiled virtual
// hosts (most specific domain first, then the first matching route of that virtual host).
func TestVirtualHostsSelectLikeGangway(t *testing.T) {
	patterns := []string{"a.example.com", "b.example.com", "x.a.example.com", "*.example.com", "*.a.example.com", "*.com", "other.test"}
	hosts := []string{"a.example.com", "b.example.com", "x.a.example.com", "y.a.example.com", "c.example.com", "z.com", "other.test", "none.test", "deep.x.a.example.com"}
	prefixes := []string{"/", "/api/", "/api/v1/", "/static/"}
	paths := []string{"/", "/api/", "/api/v1/x", "/static/a", "/other"}
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 300; iter++ {
		var routes []hostRoute
		var specs []spec.Route
		for i := 0; i < 1+rng.Intn(7); i++ {
			var hs []string
			for j := 0; j < rng.Intn(3); j++ {
				hs = append(hs, patterns[rng.Intn(len(patterns))])
			}
			name := fmt.Sprintf("r%d", i)
			prefix := prefixes[rng.Intn(len(prefixes))]
			specs = append(specs, spec.Route{Name: name, Hosts: hs, Path: spec.PathMatch{Prefix: prefix}})
			routes = append(routes, hostRoute{hosts: hs, route: &route.Route{
				Name:   name,
				Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: prefix}},
				Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"}}},
			}})
		}
		vhosts := virtualHosts(routes)
		for _, h := range hosts {
			for _, p := range paths {
				want := gangwaySelect(specs, h, p)
				got := envoySelect(vhosts, h, p)
				if got != want {
					t.Fatalf("routes %+v\nhost %s path %s: Envoy selects %q, Gangway %q", specs, h, p, got, want)
				}
			}
		}
		// And the data plane reads the same table back.
		back, err := routesToSpec(&route.RouteConfiguration{Name: RouteConfigName, VirtualHosts: vhosts, IgnorePortInHostMatching: true})
		if err != nil {
			t.Fatalf("routes %+v: %v", specs, err)
		}
		for _, h := range hosts {
			for _, p := range paths {
				if a, b := gangwaySelect(specs, h, p), gangwaySelect(back, h, p); a != b {
					t.Fatalf("routes %+v read back as %+v\nhost %s path %s: %q vs %q", specs, back, h, p, a, b)
				}
			}
		}
	}
}

func hostMatches(pattern, host string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+suffix)
	}
	return pattern == host
}

func gangwaySelect(routes []spec.Route, host, path string) string {
	for _, r := range routes {
		ok := len(r.Hosts) == 0
		for _, h := range r.Hosts {
			ok = ok || hostMatches(h, host)
		}
		if ok && strings.HasPrefix(path, r.Path.Prefix) {
			return r.Name
		}
	}
	return ""
}

func envoySelect(vhosts []*route.VirtualHost, host, path string) string {
	var best *route.VirtualHost
	bestRank := -1
	for _, vh := range vhosts {
		for _, d := range vh.Domains {
			rank := -1
			switch {
			case d == host:
				rank = 1 << 20
			case d == "*":
				rank = 0
			case hostMatches(d, host):
				rank = len(d) // the longest suffix wins
			}
			if rank > bestRank {
				best, bestRank = vh, rank
			}
		}
	}
	if best == nil {
		return ""
	}
	for _, r := range best.Routes {
		if strings.HasPrefix(path, r.GetMatch().GetPrefix()) {
			return r.Name
		}
	}
	return ""
}

// TestToSpecPathNormalization: each listener's path settings travel as the HCM's fields both
// ways, and a resource that leaves them unset runs as Envoy runs it: no normalization,
// escaped slashes kept.
func TestToSpecPathNormalization(t *testing.T) {
	for _, tc := range []struct {
		yaml  string
		paths spec.PathNormalization
		envoy hcm.HttpConnectionManager_PathWithEscapedSlashesAction
	}{
		{"", spec.PathNormalization{Normalize: true, MergeSlashes: true, EscapedSlashes: spec.RejectEscapedSlashes}, hcm.HttpConnectionManager_REJECT_REQUEST},
		{"normalize_path: false\n    path_with_escaped_slashes_action: keep_unchanged", spec.PathNormalization{MergeSlashes: true}, hcm.HttpConnectionManager_KEEP_UNCHANGED},
		{"merge_slashes: false\n    path_with_escaped_slashes_action: unescape_and_redirect", spec.PathNormalization{Normalize: true, EscapedSlashes: spec.UnescapeAndRedirect}, hcm.HttpConnectionManager_UNESCAPE_AND_REDIRECT},
		{"path_with_escaped_slashes_action: unescape_and_forward", spec.PathNormalization{Normalize: true, MergeSlashes: true, EscapedSlashes: spec.UnescapeAndForward}, hcm.HttpConnectionManager_UNESCAPE_AND_FORWARD},
	} {
		t.Run(tc.envoy.String(), func(t *testing.T) {
			doc := "listeners:\n  - name: public\n    address: \":8080\"\n    " + tc.yaml + "\nroutes:\n  - name: r\n    cluster: app\nclusters:\n  - name: app\n    endpoints: [\"127.0.0.1:3000\"]\n"
			cfg, err := config.Parse("paths.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			m := &hcm.HttpConnectionManager{}
			if err := res.Listeners[0].FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(m); err != nil {
				t.Fatal(err)
			}
			if m.GetNormalizePath() == nil || m.GetNormalizePath().GetValue() != tc.paths.Normalize || m.GetMergeSlashes() != tc.paths.MergeSlashes || m.GetPathWithEscapedSlashesAction() != tc.envoy {
				t.Errorf("HCM normalize_path %v, merge_slashes %t, path_with_escaped_slashes_action %s; want %t, %t, %s",
					m.GetNormalizePath(), m.GetMergeSlashes(), m.GetPathWithEscapedSlashesAction(), tc.paths.Normalize, tc.paths.MergeSlashes, tc.envoy)
			}
			got, err := ToSpec(res)
			if err != nil {
				t.Fatal(err)
			}
			if paths := got.Listeners[0].Paths; paths != tc.paths {
				t.Errorf("ToSpec: %+v, want %+v", paths, tc.paths)
			}

			// The same resource without the three fields: Envoy's defaults.
			m.NormalizePath, m.MergeSlashes, m.PathWithEscapedSlashesAction = nil, false, hcm.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT
			res.Listeners[0].FilterChains[0].Filters[0].ConfigType = networkFilter("x", m).ConfigType
			if got, err = ToSpec(res); err != nil {
				t.Fatal(err)
			}
			if paths := got.Listeners[0].Paths; paths != (spec.PathNormalization{}) {
				t.Errorf("ToSpec of an HCM without path settings: %+v, want none (Envoy's defaults)", paths)
			}
		})
	}
}
