// Package config owns the user's configuration: the YAML schema, parsing with errors that
// name file, line and field path, defaults, the embedded default configuration, and a file
// watch for reloads; and ToSpec, the one translation of a Config into the runtime model
// (internal/spec) that the data plane runs.
//
// A *Config returned by Parse, Load or Default is complete and valid: every unset field holds
// its default (the Default constants here, and spec's table), every enum holds one of its
// constants, every duration is non-negative, addresses are host:port, CIDRs and regular
// expressions compile, routes name existing clusters, and relative file paths are resolved
// against the config file's directory. Consumers (ToSpec, internal/xds, internal/sidecar) may rely on all of that
// without checking again. The data plane's defaults are internal/spec's table; the file's
// defaults for the process around it are here.
package config

import (
	"time"

	"github.com/gangway-ecs/gangway/internal/budget"
)

// Config is the whole configuration file.
type Config struct {
	// Services selects what this process runs: ServicesAll (proxy and control plane in one
	// process), ServicesProxy or ServicesControl. Default ServicesAll.
	Services Services `yaml:"services"`
	// ControlPlaneURL lists the control plane's ADS addresses for ServicesProxy: each
	// "host:port" (every address of a DNS name is used and resolved again periodically),
	// optionally with a dns:///, grpc:// or grpcs:// prefix, or one "unix:///path".
	// Required with ServicesProxy; not allowed otherwise.
	ControlPlaneURL []string `yaml:"control_plane_url"`
	// XDS configures the ADS server (ServicesAll, ServicesControl) and client (ServicesProxy).
	XDS XDS `yaml:"xds"`
	// Admin is the probe and metrics server.
	Admin Admin `yaml:"admin"`
	// Log configures process and access logging.
	Log Log `yaml:"log"`
	// Shutdown is the graceful shutdown choreography; it must fit the task's stopTimeout.
	Shutdown Shutdown `yaml:"shutdown"`

	// TimeoutReadHeader bounds reading a downstream request's headers on every listener.
	// Default 10s; must be > 0.
	TimeoutReadHeader time.Duration `yaml:"timeout_read_header"`
	// TimeoutIdle is the downstream keep-alive idle timeout. Default 5m; 0 disables.
	TimeoutIdle time.Duration `yaml:"timeout_idle"`
	// TimeoutWrite bounds a whole downstream request (read body, proxy, write response).
	// Default 0 (disabled).
	TimeoutWrite time.Duration `yaml:"timeout_write"`
	// DefaultUpstreamTimeout is the default of Route.Timeout. Default 30s; 0 disables.
	DefaultUpstreamTimeout time.Duration `yaml:"default_upstream_timeout"`
	// MaxHeaderBytes limits the size of downstream request headers. Default 1048576; >= 1.
	MaxHeaderBytes int `yaml:"max_header_bytes"`

	// DemoUpstream is the small built-in demo application.
	DemoUpstream DemoUpstream `yaml:"demo_upstream"`

	// Listeners are the traffic listeners. At least one unless Services is ServicesControl.
	// Names are unique.
	Listeners []Listener `yaml:"listeners"`
	// Routes apply to every http listener, in order: the first match wins. Names are unique.
	Routes []Route `yaml:"routes"`
	// Clusters are the upstream endpoint sets that routes and tcp listeners send to. Names
	// are unique.
	Clusters []Cluster `yaml:"clusters"`

	// Version is a short hex digest (sha256) of the canonical, defaulted configuration: two
	// processes loading the same configuration agree on it, and comments or formatting do
	// not change it. Set by Parse; not part of the file.
	Version string `yaml:"-"`
	// File is the name the configuration was parsed from (DefaultFile for the embedded
	// default). Not part of the file and not part of Version.
	File string `yaml:"-"`
}

// Services is what one process runs.
type Services string

const (
	ServicesAll     Services = "all"     // data plane and control plane in one process
	ServicesProxy   Services = "proxy"   // data plane only, fed over xDS
	ServicesControl Services = "control" // control plane only
)

// XDS configures how configuration travels as xDS resources between the control plane and
// the data plane.
type XDS struct {
	// Address is where the ADS server listens: host:port, or unix:///path. Default "": with
	// ServicesAll a private unix socket, with ServicesControl ":18000". Not used by
	// ServicesProxy.
	Address string `yaml:"address"`
	// NodeID identifies a ServicesProxy data plane to the control plane. Default "": the ECS
	// task ID when running on ECS, else the host name and process ID.
	NodeID string `yaml:"node_id"`
	// TLS secures ADS between processes (ServicesControl serves with it, ServicesProxy
	// connects with it). Default nil: plain text.
	TLS *XDSTLS `yaml:"tls"`
}

// XDSTLS is the TLS of the ADS connection.
type XDSTLS struct {
	// CertFile and KeyFile are this side's certificate and key: the server's
	// (ServicesControl, required), or the client's for mTLS (ServicesProxy, optional).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile verifies the other side: the server (ServicesProxy; default the system roots),
	// or client certificates, which makes them required (ServicesControl; mTLS).
	CAFile string `yaml:"ca_file"`
	// ServerName is the name the server's certificate must carry (ServicesProxy). Default:
	// the host dialled.
	ServerName string `yaml:"server_name"`
}

// Admin is the probe and metrics server (/startupz /readyz /livez /status /metrics).
type Admin struct {
	// Address is host:port to listen on. Default "127.0.0.1:28080". Port 0 picks a free port.
	Address string `yaml:"address"`
}

// Log configures logging.
type Log struct {
	// Level is the minimum level of process logs. Default LogInfo.
	Level LogLevel `yaml:"level"`
	// AccessLog writes one JSON line per request on stdout. Default true.
	AccessLog bool `yaml:"access_log"`
}

// LogLevel is a log/slog level name.
type LogLevel string

const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Shutdown is the shutdown choreography. Parse guarantees
// Delay + DrainTimeout + ShutdownMargin <= Deadline <= FargateMaxStopTimeout.
type Shutdown struct {
	// Delay is how long the proxy keeps accepting and serving after SIGTERM while readiness
	// fails, so that every load balancer notices. Default 12s; >= 0.
	Delay time.Duration `yaml:"delay"`
	// DrainTimeout is how long to wait for in-flight requests after listeners stop
	// accepting. Default 15s; >= 0.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Deadline is the task's stopTimeout: the process exits before it. Default 30s
	// (Fargate's default); > 0 and <= FargateMaxStopTimeout.
	Deadline time.Duration `yaml:"deadline"`
	// ListenerGrace is how long a listener replaced by a reload may drain before its
	// connections are force-closed. Default 10m; 0 closes them at once.
	ListenerGrace time.Duration `yaml:"listener_grace"`
}

const (
	// ShutdownMargin is the time kept free between the end of the drain and Deadline, for
	// closing connections and exiting. It is the timing budget's margin (budget.ShutdownMargin,
	// not a setting), so that what `proxy run` accepts, `proxy lint` and the CDK construct
	// accept too, and nothing else.
	ShutdownMargin = budget.ShutdownMargin
	// FargateMaxStopTimeout is the largest stopTimeout Fargate accepts.
	FargateMaxStopTimeout = budget.MaxStopTimeout
)

// DemoUpstream is the small built-in demo application that the embedded default config routes
// to, so that a new user gets an answer from `curl localhost:8080/` at once.
type DemoUpstream struct {
	// Enabled starts the demo application. Default false (true in the embedded default).
	Enabled bool `yaml:"enabled"`
	// Address is host:port the demo application listens on. Default "127.0.0.1:18080".
	Address string `yaml:"address"`
}

// Listener is one traffic listener.
type Listener struct {
	// Name identifies the listener in health checks and metrics. Required; unique; letters,
	// digits, '.', '_' and '-'.
	Name string `yaml:"name"`
	// Address is host:port to listen on (":8080" listens on every interface). Required.
	// Port 0 picks a free port.
	Address string `yaml:"address"`
	// Protocol is ProtocolHTTP (routes apply) or ProtocolTCP (bytes tunnel to Cluster).
	// Default ProtocolHTTP.
	Protocol ListenerProtocol `yaml:"protocol"`
	// H2C enables HTTP/2 cleartext (prior knowledge and Upgrade) on a listener without TLS.
	// http only. Default false.
	H2C bool `yaml:"h2c"`
	// ReadinessPath, when not empty, serves the readiness probe (200 or 503) on this path of
	// the traffic port, before any route. http only; starts with '/'. Default "" (disabled).
	ReadinessPath string `yaml:"readiness_path"`
	// TrustedProxies are CIDRs (netip.ParsePrefix syntax) of peers whose X-Forwarded-For,
	// -Proto and -Host headers are kept and extended; from any other peer they are replaced.
	// http only. Default none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// NormalizePath normalizes request paths as RFC 3986 section 6 describes before routing,
	// and forwards the normalized path: dot segments are removed, percent-encoded unreserved
	// characters decoded, percent-encoding hex upper-cased; ".." above the root and an
	// encoded NUL are answered 400. http only. Default true.
	NormalizePath bool `yaml:"normalize_path"`
	// MergeSlashes replaces runs of slashes in request paths with one before routing, and
	// forwards the merged path. http only. Default true.
	MergeSlashes bool `yaml:"merge_slashes"`
	// PathWithEscapedSlashesAction is what happens to a request path holding %2F or %5C.
	// http only. Default EscapedSlashesRejectRequest.
	PathWithEscapedSlashesAction EscapedSlashesAction `yaml:"path_with_escaped_slashes_action"`
	// TLS, when set, terminates TLS (>= 1.2; ALPN h2 and http/1.1). http only. Default nil.
	TLS *ListenerTLS `yaml:"tls"`
	// Cluster is the cluster a tcp listener tunnels bytes to. Required for tcp; not allowed
	// for http (http listeners use Routes).
	Cluster string `yaml:"cluster"`
}

// EscapedSlashesAction is what a listener does with a request path holding an escaped slash
// (%2F) or backslash (%5C), in either case. The values are Envoy's
// path_with_escaped_slashes_action.
type EscapedSlashesAction string

const (
	// EscapedSlashesKeepUnchanged forwards them escaped: a %2F stays inside its segment.
	// For applications whose paths carry encoded slashes (identifiers like "group%2Fproject").
	EscapedSlashesKeepUnchanged EscapedSlashesAction = "keep_unchanged"
	// EscapedSlashesRejectRequest answers 400.
	EscapedSlashesRejectRequest EscapedSlashesAction = "reject_request"
	// EscapedSlashesUnescapeAndRedirect answers 307 to the path with them unescaped to '/'
	// (gRPC requests, which cannot follow it, get 400).
	EscapedSlashesUnescapeAndRedirect EscapedSlashesAction = "unescape_and_redirect"
	// EscapedSlashesUnescapeAndForward unescapes them to '/' and forwards the request.
	EscapedSlashesUnescapeAndForward EscapedSlashesAction = "unescape_and_forward"
)

// ListenerProtocol is what a listener speaks.
type ListenerProtocol string

const (
	ProtocolHTTP ListenerProtocol = "http" // HTTP/1.1, plus HTTP/2 over TLS (ALPN) or h2c
	ProtocolTCP  ListenerProtocol = "tcp"  // raw bytes tunnelled to one cluster
)

// ListenerTLS is TLS termination on a listener. File paths are resolved against the config
// file's directory; Parse checks that they exist and hold PEM data.
type ListenerTLS struct {
	// CertFile is the PEM certificate chain. Required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key matching CertFile. Required.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of CAs that client certificates must chain to. Required
	// when ClientAuth is not ClientAuthNone.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is the client certificate policy. Default ClientAuthRequire when
	// ClientCAFile is set, else ClientAuthNone.
	ClientAuth ClientAuth `yaml:"client_auth"`
}

// ClientAuth is a listener's client certificate (mTLS) policy.
type ClientAuth string

const (
	ClientAuthNone          ClientAuth = "none"            // no client certificate requested
	ClientAuthVerifyIfGiven ClientAuth = "verify_if_given" // optional; verified when sent
	ClientAuthRequire       ClientAuth = "require"         // required and verified
)

// Route sends matching requests on http listeners to a cluster.
type Route struct {
	// Name identifies the route in logs and metrics. Required; unique; letters, digits, '.',
	// '_' and '-'.
	Name string `yaml:"name"`
	// Match selects requests. Default: any host, path prefix "/".
	Match RouteMatch `yaml:"match"`
	// Cluster is the name of the cluster requests go to. Required; must exist.
	Cluster string `yaml:"cluster"`
	// Required makes readiness wait until Cluster has a healthy endpoint. Default false.
	Required bool `yaml:"required"`
	// Timeout bounds the upstream response (until the response headers and body are done).
	// Default Config.DefaultUpstreamTimeout; 0 disables.
	Timeout time.Duration `yaml:"timeout"`
	// IdleTimeout closes a stream with no bytes in either direction for this long. Default
	// 5m; 0 disables (needed for long-lived gRPC streams).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AllowWebsockets lets WebSocket upgrades through this route. Default false.
	AllowWebsockets bool `yaml:"allow_websockets"`
	// PrefixRewrite replaces the matched Match.PathPrefix (or the whole Match.Path) before
	// the request goes upstream. Starts with '/'. Not allowed with Match.PathRegex.
	// Default "" (no rewrite).
	PrefixRewrite string `yaml:"prefix_rewrite"`
	// HostRewrite sets the upstream Host header. Not allowed with PreserveHostHeader.
	// Default "" (the endpoint's host:port).
	HostRewrite string `yaml:"host_rewrite"`
	// PreserveHostHeader sends the downstream Host header upstream unchanged. Default false
	// (the endpoint's host:port).
	PreserveHostHeader bool `yaml:"preserve_host_header"`
	// SetRequestHeaders are set (replacing any value) on the upstream request.
	SetRequestHeaders map[string]string `yaml:"set_request_headers"`
	// RemoveRequestHeaders are removed from the upstream request.
	RemoveRequestHeaders []string `yaml:"remove_request_headers"`
	// SetResponseHeaders are set (replacing any value) on the downstream response.
	SetResponseHeaders map[string]string `yaml:"set_response_headers"`
	// RemoveResponseHeaders are removed from the downstream response.
	RemoveResponseHeaders []string `yaml:"remove_response_headers"`
}

// RouteMatch selects requests. At most one of PathPrefix, Path and PathRegex is set; when none
// is set in the file, Parse sets PathPrefix to "/".
type RouteMatch struct {
	// Hosts are exact host names or "*.suffix" wildcards (matching one or more labels before
	// the suffix), compared case-insensitively without the port. Empty matches any host.
	Hosts []string `yaml:"hosts"`
	// PathPrefix matches paths that start with it. Starts with '/'.
	PathPrefix string `yaml:"path_prefix"`
	// Path matches this exact path. Starts with '/'.
	Path string `yaml:"path"`
	// PathRegex is an RE2 expression (regexp package) matched against the path; anchor it
	// with ^ and $ to match the whole path.
	PathRegex string `yaml:"path_regex"`
}

// Cluster is a set of upstream endpoints. Exactly one of Endpoints, DNS and ECS is set.
type Cluster struct {
	// Name identifies the cluster in routes, health checks and metrics. Required; unique;
	// letters, digits, '.', '_' and '-'.
	Name string `yaml:"name"`
	// Endpoints is a static list of host:port.
	Endpoints []string `yaml:"endpoints"`
	// DNS discovers endpoints by resolving a name on an interval.
	DNS *DNSDiscovery `yaml:"dns"`
	// ECS discovers endpoints from an ECS service's running tasks.
	ECS *ECSDiscovery `yaml:"ecs"`
	// LBPolicy picks an endpoint per request. Default LBRoundRobin.
	LBPolicy LBPolicy `yaml:"lb_policy"`
	// Protocol is the upstream HTTP version. Default UpstreamHTTP1.
	Protocol UpstreamProtocol `yaml:"protocol"`
	// TLS, when set, connects to endpoints over TLS. Default nil (plain text).
	TLS *UpstreamTLS `yaml:"tls"`
	// HealthCheck, when set, actively checks every endpoint. Default nil (every endpoint is
	// healthy unless ejected by OutlierDetection).
	HealthCheck *HealthCheck `yaml:"health_check"`
	// OutlierDetection, when set, ejects endpoints after consecutive failures. Default nil.
	OutlierDetection *OutlierDetection `yaml:"outlier_detection"`
	// MaxIdleConnsPerEndpoint caps pooled idle connections per endpoint. Default 64; >= 1.
	MaxIdleConnsPerEndpoint int `yaml:"max_idle_conns_per_endpoint"`
}

// DNSDiscovery resolves Name every Refresh; every A and AAAA record becomes an endpoint.
type DNSDiscovery struct {
	// Name is the host name to resolve. Required.
	Name string `yaml:"name"`
	// Port is the endpoints' port. Required; 1-65535.
	Port int `yaml:"port"`
	// Refresh is the re-resolution interval. Default 5s; > 0.
	Refresh time.Duration `yaml:"refresh"`
}

// ECSDiscovery lists the running tasks of an ECS service; each task's private IP with Port
// becomes an endpoint.
type ECSDiscovery struct {
	// Cluster is the ECS cluster name or ARN. Default "" (the task's own cluster, from task
	// metadata).
	Cluster string `yaml:"cluster"`
	// Service is the ECS service name. Required.
	Service string `yaml:"service"`
	// Port is the endpoints' port. Required; 1-65535.
	Port int `yaml:"port"`
	// Refresh is the polling interval. Default 10s; > 0.
	Refresh time.Duration `yaml:"refresh"`
}

// LBPolicy is a load-balancing policy.
type LBPolicy string

const (
	LBRoundRobin   LBPolicy = "round_robin"
	LBLeastRequest LBPolicy = "least_request" // power of two random choices
	LBRandom       LBPolicy = "random"
)

// UpstreamProtocol is the HTTP version spoken to a cluster's endpoints.
type UpstreamProtocol string

const (
	UpstreamHTTP1 UpstreamProtocol = "http1"
	UpstreamHTTP2 UpstreamProtocol = "http2" // h2 over TLS (ALPN), or h2c without TLS
)

// UpstreamTLS is TLS to a cluster's endpoints. File paths are resolved against the config
// file's directory; Parse checks that they exist and hold PEM data.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of CAs to verify endpoints with. Default "" (system roots).
	CAFile string `yaml:"ca_file"`
	// ServerName is the SNI and verified name. Default "" (the endpoint's host).
	ServerName string `yaml:"server_name"`
	// CertFile is a PEM client certificate chain for mTLS. Set with KeyFile or not at all.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// InsecureSkipVerify disables endpoint certificate verification. Not allowed with
	// CAFile. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// HealthCheck is an active health check run against every endpoint of a cluster.
type HealthCheck struct {
	// Type is HealthCheckHTTP (GET Path, status in ExpectedStatuses) or HealthCheckTCP
	// (connect). Default HealthCheckHTTP.
	Type HealthCheckType `yaml:"type"`
	// Path is the HTTP path to GET. http only; starts with '/'. Default "/".
	Path string `yaml:"path"`
	// ExpectedStatuses are status codes ("204") or inclusive ranges ("200-299") within
	// 100-599 that count as healthy. http only. Default ["200-299"]. See HealthCheck.Accepts.
	ExpectedStatuses []string `yaml:"expected_statuses"`
	// Interval is the time between checks of one endpoint. Default 5s; > 0.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one check. Default 2s, or Interval when that is shorter; > 0 and
	// <= Interval.
	Timeout time.Duration `yaml:"timeout"`
	// HealthyThreshold is how many consecutive passes mark an endpoint healthy. Default 2; >= 1.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold is how many consecutive failures mark it unhealthy. Default 3; >= 1.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
}

// HealthCheckType is how an endpoint is checked.
type HealthCheckType string

const (
	HealthCheckHTTP HealthCheckType = "http"
	HealthCheckTCP  HealthCheckType = "tcp"
)

// OutlierDetection ejects endpoints passively, from the outcome of real requests.
type OutlierDetection struct {
	// Consecutive5xx ejects an endpoint after this many consecutive 5xx responses.
	// Default 5; 0 disables this trigger.
	Consecutive5xx int `yaml:"consecutive_5xx"`
	// ConsecutiveConnectFailures ejects an endpoint after this many consecutive failed
	// connects. Default 3; 0 disables this trigger.
	ConsecutiveConnectFailures int `yaml:"consecutive_connect_failures"`
	// BaseEjectionTime is how long the first ejection lasts. Default 30s; > 0.
	BaseEjectionTime time.Duration `yaml:"base_ejection_time"`
	// MaxEjectionPercent caps the share of a cluster's endpoints ejected at once. Default
	// 50; 0-100.
	MaxEjectionPercent int `yaml:"max_ejection_percent"`
}
