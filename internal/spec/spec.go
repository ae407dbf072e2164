// Package spec is the data plane's runtime model: listeners, routes, clusters, health checks
// and outlier detection with every value parsed, the invariants Validate checks, and the one
// table of defaults. It imports nothing of Gangway's, so that both sources of a Spec
// (internal/config from YAML, the xDS client from resources) and the data plane that runs it
// meet here and nowhere else.
package spec

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// Spec is everything the data plane runs: listeners, routes and clusters, with every value
// already parsed (durations, CIDRs, regular expressions, status ranges). It does not depend
// on the YAML file: config.ToSpec builds it from a *config.Config, and the xDS client from xDS
// resources. A Spec is immutable once handed to a Server.
type Spec struct {
	// Version is the config version this Spec reflects; every health check the Server
	// reports carries it.
	Version string

	// ReadHeaderTimeout bounds reading a downstream request's headers (> 0).
	ReadHeaderTimeout time.Duration
	// IdleTimeout is the downstream keep-alive idle timeout; 0 disables.
	IdleTimeout time.Duration
	// WriteTimeout bounds a whole downstream request (body read, proxying, response write);
	// 0 disables. WebSocket upgrades are exempt once upgraded.
	WriteTimeout time.Duration
	// MaxHeaderBytes limits downstream request headers.
	MaxHeaderBytes int
	// ListenerGrace is how long a listener replaced by Apply may drain before its remaining
	// connections are closed.
	ListenerGrace time.Duration

	// Demo, when not nil, runs the built-in demo application.
	Demo *Demo

	Listeners []Listener
	// Routes apply to every HTTP listener in order; the first match wins.
	Routes   []Route
	Clusters []Cluster
}

// Demo is the built-in demo application.
type Demo struct {
	// Address is host:port to listen on.
	Address string
}

// Protocol is what a listener speaks.
type Protocol int

const (
	// HTTP listeners serve HTTP/1.1, HTTP/2 over TLS (ALPN) and optionally h2c; routes apply.
	HTTP Protocol = iota
	// TCP listeners tunnel bytes to one cluster.
	TCP
)

func (p Protocol) String() string {
	if p == TCP {
		return "tcp"
	}
	return "http"
}

// Listener is one downstream listener.
type Listener struct {
	Name     string
	Address  string
	Protocol Protocol
	// H2C accepts HTTP/2 cleartext on a listener without TLS.
	H2C bool
	// ReadinessPath, when not empty, answers the readiness probe before any route.
	ReadinessPath string
	// TrustedProxies are the peers whose X-Forwarded-* headers are kept and extended.
	TrustedProxies []netip.Prefix
	// Paths is how request paths are normalized before routing and forwarding.
	Paths PathNormalization
	// TLS, when not nil, terminates TLS.
	TLS *ServerTLS
	// Cluster is the destination of a TCP listener.
	Cluster string
}

// ClientAuth is a listener's client certificate policy.
type ClientAuth int

const (
	NoClientCert ClientAuth = iota
	VerifyClientCertIfGiven
	RequireClientCert
)

// ServerTLS is TLS termination. Certificates are re-read from disk when the files change.
type ServerTLS struct {
	CertFile, KeyFile string
	// ClientCAFile is the CA bundle for client certificates (mTLS); required unless
	// ClientAuth is NoClientCert.
	ClientCAFile string
	ClientAuth   ClientAuth
}

// identity says whether two listeners can share one socket and server: a listener whose
// identity changes is replaced (the old one drains), one whose identity is unchanged is kept.
func (l *Listener) Identity() string {
	id := fmt.Sprintf("%s|%s|%s|h2c=%t|rp=%s|tp=%v|paths=%+v|cluster=%s", l.Name, l.Address, l.Protocol, l.H2C, l.ReadinessPath, l.TrustedProxies, l.Paths, l.Cluster)
	if l.TLS != nil {
		id += fmt.Sprintf("|tls=%s,%s,%s,%d", l.TLS.CertFile, l.TLS.KeyFile, l.TLS.ClientCAFile, l.TLS.ClientAuth)
	}
	return id
}

// PathMatch selects a request path. Exactly one field is set.
type PathMatch struct {
	Prefix string
	Exact  string
	Regex  *regexp.Regexp
}

// Route sends matching requests to a cluster.
type Route struct {
	Name string
	// Hosts are exact names or "*.suffix" wildcards, lower case; empty matches any host.
	Hosts []string
	Path  PathMatch

	Cluster string
	// Required makes readiness wait until Cluster has a healthy endpoint.
	Required bool

	// Timeout bounds the upstream exchange; 0 disables.
	Timeout time.Duration
	// IdleTimeout ends a stream with no bytes in either direction for this long; 0 disables.
	IdleTimeout     time.Duration
	AllowWebSockets bool

	// PrefixRewrite, when not empty, replaces the matched prefix (or exact path).
	PrefixRewrite string
	// HostRewrite, when not empty, is the upstream Host header.
	HostRewrite string
	// PreserveHost sends the downstream Host upstream; otherwise the endpoint's host:port.
	PreserveHost          bool
	SetRequestHeaders     map[string]string
	RemoveRequestHeaders  []string
	SetResponseHeaders    map[string]string
	RemoveResponseHeaders []string
}

// LBPolicy picks an endpoint per request.
type LBPolicy int

const (
	RoundRobin LBPolicy = iota
	// LeastRequest picks the less loaded of two random endpoints.
	LeastRequest
	Random
)

func (p LBPolicy) String() string {
	switch p {
	case LeastRequest:
		return "least_request"
	case Random:
		return "random"
	}
	return "round_robin"
}

// Cluster is a set of upstream endpoints.
type Cluster struct {
	Name string
	// Endpoints is a static list of host:port. Exactly one of Endpoints, DNS and ECS is set.
	Endpoints []string
	// DNS, when not nil, discovers endpoints by resolving a name.
	DNS *DNSDiscovery
	// ECS, when not nil, discovers endpoints from an ECS service's tasks through
	// the data plane's ECS endpoint source.
	ECS *ECSDiscovery

	LBPolicy LBPolicy
	// HTTP2 speaks HTTP/2 to endpoints: h2 over TLS, or h2c without TLS.
	HTTP2 bool
	TLS   *UpstreamTLS
	// HealthCheck, when not nil, checks every endpoint actively; endpoints start unhealthy
	// until their first check passes.
	HealthCheck *HealthCheck
	// Outlier, when not nil, ejects endpoints after consecutive failures.
	Outlier *Outlier
	// MaxIdleConnsPerEndpoint caps pooled idle connections to one endpoint.
	MaxIdleConnsPerEndpoint int
}

// DNSDiscovery resolves Name every Refresh; each A and AAAA record becomes an endpoint.
type DNSDiscovery struct {
	Name    string
	Port    int
	Refresh time.Duration
}

// ECSDiscovery polls an ECS service every Refresh; the private IP of each of its running,
// healthy tasks, with Port, becomes an endpoint. The data plane does not call AWS itself:
// the data plane's ECS endpoint source runs the discovery and hands it the endpoint sets.
type ECSDiscovery struct {
	// Cluster is the ECS cluster's name or ARN; "" is the cluster of the task the process
	// runs in.
	Cluster string
	Service string
	Port    int
	Refresh time.Duration
}

// UpstreamTLS is TLS to a cluster's endpoints.
type UpstreamTLS struct {
	// CAFile verifies endpoints; "" uses the system roots.
	CAFile string
	// ServerName is the SNI and verified name; "" uses the DNS name or the endpoint's host.
	ServerName         string
	CertFile, KeyFile  string
	InsecureSkipVerify bool
}

// HealthCheckType is how an endpoint is checked.
type HealthCheckType int

const (
	HTTPHealthCheck HealthCheckType = iota
	TCPHealthCheck
)

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// HealthCheck is an active check of every endpoint.
type HealthCheck struct {
	Type HealthCheckType
	// Path is requested with GET (HTTP checks).
	Path string
	// Expected are the statuses that pass (HTTP checks).
	Expected           []StatusRange
	Interval, Timeout  time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
}

func (h *HealthCheck) Accepts(status int) bool {
	for _, r := range h.Expected {
		if status >= r.Min && status <= r.Max {
			return true
		}
	}
	return false
}

// Outlier is passive ejection from the outcome of real requests.
type Outlier struct {
	// Consecutive5xx ejects after this many 5xx responses in a row; 0 disables.
	Consecutive5xx int
	// ConsecutiveConnectFailures ejects after this many failed connects in a row; 0 disables.
	ConsecutiveConnectFailures int
	// BaseEjectionTime is the first ejection's length; each further ejection of the same
	// endpoint lasts one more base time.
	BaseEjectionTime time.Duration
	// MaxEjectionPercent caps the share of endpoints ejected at once.
	MaxEjectionPercent int
}

// Validate checks the references and invariants the Server relies on. config.ToSpec's output
// always passes; a Spec built elsewhere (xDS) is checked here.
func (s *Spec) Validate() error {
	clusters := map[string]bool{}
	for _, c := range s.Clusters {
		if c.Name == "" {
			return fmt.Errorf("cluster with empty name")
		}
		if clusters[c.Name] {
			return fmt.Errorf("cluster %q: duplicate name", c.Name)
		}
		clusters[c.Name] = true
		sources := 0
		for _, set := range []bool{len(c.Endpoints) > 0, c.DNS != nil, c.ECS != nil} {
			if set {
				sources++
			}
		}
		if sources != 1 {
			return fmt.Errorf("cluster %q: exactly one of static endpoints, DNS discovery and ECS discovery is needed", c.Name)
		}
		if c.DNS != nil && c.DNS.Refresh <= 0 {
			return fmt.Errorf("cluster %q: dns refresh must be > 0", c.Name)
		}
		if e := c.ECS; e != nil {
			switch {
			case e.Service == "":
				return fmt.Errorf("cluster %q: ecs service is required", c.Name)
			case e.Port < 1 || e.Port > 65535:
				return fmt.Errorf("cluster %q: ecs port %d: must be 1-65535", c.Name, e.Port)
			case e.Refresh <= 0:
				return fmt.Errorf("cluster %q: ecs refresh must be > 0", c.Name)
			}
		}
		if hc := c.HealthCheck; hc != nil && (hc.Interval <= 0 || hc.Timeout <= 0 || hc.HealthyThreshold < 1 || hc.UnhealthyThreshold < 1) {
			return fmt.Errorf("cluster %q: health check needs interval and timeout > 0 and thresholds >= 1", c.Name)
		}
		if o := c.Outlier; o != nil && o.BaseEjectionTime <= 0 {
			return fmt.Errorf("cluster %q: outlier base ejection time must be > 0", c.Name)
		}
	}
	listeners := map[string]bool{}
	for _, l := range s.Listeners {
		if listeners[l.Name] {
			return fmt.Errorf("listener %q: duplicate name", l.Name)
		}
		listeners[l.Name] = true
		if l.Protocol == TCP && !clusters[l.Cluster] {
			return fmt.Errorf("listener %q: unknown cluster %q", l.Name, l.Cluster)
		}
		if l.TLS != nil && l.TLS.ClientAuth != NoClientCert && l.TLS.ClientCAFile == "" {
			return fmt.Errorf("listener %q: client auth needs a client CA file", l.Name)
		}
	}
	routes := map[string]bool{}
	for _, r := range s.Routes {
		if routes[r.Name] {
			return fmt.Errorf("route %q: duplicate name", r.Name)
		}
		routes[r.Name] = true
		if !clusters[r.Cluster] {
			return fmt.Errorf("route %q: unknown cluster %q", r.Name, r.Cluster)
		}
		n := 0
		if r.Path.Prefix != "" {
			n++
		}
		if r.Path.Exact != "" {
			n++
		}
		if r.Path.Regex != nil {
			n++
		}
		if n != 1 {
			return fmt.Errorf("route %q: exactly one of path prefix, exact path and path regex is needed", r.Name)
		}
	}
	return nil
}
