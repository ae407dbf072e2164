package spec

import "time"

// Defaults: the value a setting takes when its source leaves it unset, whether the source is
// the YAML file (internal/config fills these in while parsing) or an xDS resource that omits
// the field (the xDS client reads them here). This is the one table of the data plane's
// defaults; internal/config keeps only those of the process around it (services, admin
// server, logging, shutdown timing) and the YAML spellings of the enums below.
const (
	DefaultReadHeaderTimeout       = 10 * time.Second
	DefaultIdleTimeout             = 5 * time.Minute
	DefaultWriteTimeout            = time.Duration(0) // disabled
	DefaultMaxHeaderBytes          = 1 << 20
	DefaultListenerGrace           = 10 * time.Minute
	DefaultDemoAddress             = "127.0.0.1:18080"
	DefaultProtocol                = HTTP
	DefaultRouteTimeout            = 30 * time.Second
	DefaultRouteIdleTimeout        = 5 * time.Minute
	DefaultRoutePathPrefix         = "/"
	DefaultLBPolicy                = RoundRobin
	DefaultHTTP2                   = false
	DefaultMaxIdleConnsPerEndpoint = 64
	DefaultDNSRefresh              = 5 * time.Second
	DefaultECSRefresh              = 10 * time.Second
	DefaultHealthCheckType         = HTTPHealthCheck
	DefaultHealthCheckPath         = "/"
	DefaultExpectedMin             = 200 // DefaultExpectedMin-DefaultExpectedMax pass an HTTP check
	DefaultExpectedMax             = 299
	DefaultHealthCheckInterval     = 5 * time.Second
	DefaultHealthCheckTimeout      = 2 * time.Second // at most the interval
	DefaultHealthyThreshold        = 2
	DefaultUnhealthyThreshold      = 3
	DefaultConsecutive5xx          = 5
	DefaultConsecutiveConnectFail  = 3
	DefaultBaseEjectionTime        = 30 * time.Second
	DefaultMaxEjectionPercent      = 50
)

// Request paths are normalized by default, unlike in Envoy (off there for compatibility), as
// Envoy's own advice for edge proxies asks: the load balancer in front (an ALB) forwards a
// path as the client wrote it, without normalizing it, so an HTTP listener is the last place
// where routing and the application can be made to agree on a path. Escaped slashes are
// refused, the advice for clients that send normalized paths (API and gRPC clients); an
// application whose paths carry encoded slashes keeps them unchanged.
const (
	DefaultNormalizePath  = true
	DefaultMergeSlashes   = true
	DefaultEscapedSlashes = RejectEscapedSlashes
)
