package config

import (
	"strconv"
	"strings"
	"time"
)

// Defaults: the value Parse gives a field that the file leaves unset (or sets to null).
// A field set explicitly keeps its value, so "0" still disables where a field allows it.
const (
	DefaultServices               = ServicesAll
	DefaultAdminAddress           = "127.0.0.1:28080"
	DefaultLogLevel               = LogInfo
	DefaultAccessLog              = true
	DefaultShutdownDelay          = 12 * time.Second
	DefaultShutdownDrainTimeout   = 15 * time.Second
	DefaultShutdownDeadline       = 30 * time.Second // Fargate's default stopTimeout
	DefaultListenerGrace          = 10 * time.Minute
	DefaultTimeoutReadHeader      = 10 * time.Second
	DefaultTimeoutIdle            = 5 * time.Minute
	DefaultTimeoutWrite           = time.Duration(0) // disabled
	DefaultUpstreamTimeout        = 30 * time.Second
	DefaultMaxHeaderBytes         = 1 << 20
	DefaultDemoUpstreamAddress    = "127.0.0.1:18080"
	DefaultListenerProtocol       = ProtocolHTTP
	DefaultRoutePathPrefix        = "/"
	DefaultRouteIdleTimeout       = 5 * time.Minute
	DefaultLBPolicy               = LBRoundRobin
	DefaultUpstreamProtocol       = UpstreamHTTP1
	DefaultMaxIdleConnsPerEnd     = 64
	DefaultDNSRefresh             = 5 * time.Second
	DefaultECSRefresh             = 10 * time.Second
	DefaultHealthCheckType        = HealthCheckHTTP
	DefaultHealthCheckPath        = "/"
	DefaultExpectedStatuses       = "200-299"
	DefaultHealthCheckInterval    = 5 * time.Second
	DefaultHealthCheckTimeout     = 2 * time.Second
	DefaultHealthyThreshold       = 2
	DefaultUnhealthyThreshold     = 3
	DefaultConsecutive5xx         = 5
	DefaultConsecutiveConnectFail = 3
	DefaultBaseEjectionTime       = 30 * time.Second
	DefaultMaxEjectionPercent     = 50
)

// Accepts reports whether an HTTP status counts as healthy under ExpectedStatuses. It relies
// on Parse having validated ExpectedStatuses.
func (h *HealthCheck) Accepts(status int) bool {
	for _, r := range h.ExpectedStatuses {
		lo, hi, err := parseStatusRange(r)
		if err == nil && lo <= status && status <= hi {
			return true
		}
	}
	return false
}

// parseStatusRange parses "200" or "200-299" within 100-599.
func parseStatusRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = parseStatus(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parseStatus(b); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, errStatusRangeOrder
		}
	}
	return lo, hi, nil
}

func parseStatus(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 100 || n > 599 {
		return 0, errStatusValue
	}
	return n, nil
}

// Cluster returns the cluster with the given name, or nil.
func (c *Config) Cluster(name string) *Cluster {
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			return &c.Clusters[i]
		}
	}
	return nil
}
