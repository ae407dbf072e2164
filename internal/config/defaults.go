package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// Defaults of the process around the data plane: the value Parse gives a field that the file
// leaves unset (or sets to null). A field set explicitly keeps its value, so "0" still
// disables where a field allows it. The data plane's own defaults (timeouts, limits,
// discovery, health checks, outlier detection, path normalization) are spec's table, which
// applyDefaults reads; the enums here are the YAML spellings of spec's enum defaults, and
// TestEnumDefaultsAreSpecDefaults keeps the two in step.
const (
	DefaultServices             = ServicesAll
	DefaultAdminAddress         = "127.0.0.1:28080"
	DefaultLogLevel             = LogInfo
	DefaultAccessLog            = true
	DefaultShutdownDelay        = 12 * time.Second
	DefaultShutdownDrainTimeout = 15 * time.Second
	DefaultShutdownDeadline     = 30 * time.Second // Fargate's default stopTimeout

	DefaultListenerProtocol             = ProtocolHTTP
	DefaultPathWithEscapedSlashesAction = EscapedSlashesRejectRequest
	DefaultLBPolicy                     = LBRoundRobin
	DefaultUpstreamProtocol             = UpstreamHTTP1
	DefaultHealthCheckType              = HealthCheckHTTP
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

// applyDefaults fills every field the file left unset (d.set records what it set).
func applyDefaults(c *Config, d *decoder) {
	has := func(path string) bool { _, ok := d.set[path]; return ok }
	if !has("services") {
		c.Services = DefaultServices
	}
	if !has("admin.address") {
		c.Admin.Address = DefaultAdminAddress
	}
	if !has("log.level") {
		c.Log.Level = DefaultLogLevel
	}
	if !has("log.access_log") {
		c.Log.AccessLog = DefaultAccessLog
	}
	for _, f := range []struct {
		path  string
		field *time.Duration
		def   time.Duration
	}{
		{"shutdown.delay", &c.Shutdown.Delay, DefaultShutdownDelay},
		{"shutdown.drain_timeout", &c.Shutdown.DrainTimeout, DefaultShutdownDrainTimeout},
		{"shutdown.deadline", &c.Shutdown.Deadline, DefaultShutdownDeadline},
		{"shutdown.listener_grace", &c.Shutdown.ListenerGrace, spec.DefaultListenerGrace},
		{"timeout_read_header", &c.TimeoutReadHeader, spec.DefaultReadHeaderTimeout},
		{"timeout_idle", &c.TimeoutIdle, spec.DefaultIdleTimeout},
		{"timeout_write", &c.TimeoutWrite, spec.DefaultWriteTimeout},
		{"default_upstream_timeout", &c.DefaultUpstreamTimeout, spec.DefaultRouteTimeout},
	} {
		if !has(f.path) {
			*f.field = f.def
		}
	}
	if !has("max_header_bytes") {
		c.MaxHeaderBytes = spec.DefaultMaxHeaderBytes
	}
	if !has("demo_upstream.address") {
		c.DemoUpstream.Address = spec.DefaultDemoAddress
	}

	for i := range c.Listeners {
		l, p := &c.Listeners[i], fmt.Sprintf("listeners[%d]", i)
		if !has(p + ".protocol") {
			l.Protocol = DefaultListenerProtocol
		}
		if l.Protocol == ProtocolHTTP {
			if !has(p + ".normalize_path") {
				l.NormalizePath = spec.DefaultNormalizePath
			}
			if !has(p + ".merge_slashes") {
				l.MergeSlashes = spec.DefaultMergeSlashes
			}
			if !has(p + ".path_with_escaped_slashes_action") {
				l.PathWithEscapedSlashesAction = DefaultPathWithEscapedSlashesAction
			}
		}
		if l.TLS != nil && !has(p+".tls.client_auth") {
			l.TLS.ClientAuth = ClientAuthNone
			if l.TLS.ClientCAFile != "" {
				l.TLS.ClientAuth = ClientAuthRequire
			}
		}
	}
	for i := range c.Routes {
		r, p := &c.Routes[i], fmt.Sprintf("routes[%d]", i)
		if !has(p+".match.path_prefix") && !has(p+".match.path") && !has(p+".match.path_regex") {
			r.Match.PathPrefix = spec.DefaultRoutePathPrefix
		}
		if !has(p + ".timeout") {
			r.Timeout = c.DefaultUpstreamTimeout
		}
		if !has(p + ".idle_timeout") {
			r.IdleTimeout = spec.DefaultRouteIdleTimeout
		}
	}
	for i := range c.Clusters {
		cl, p := &c.Clusters[i], fmt.Sprintf("clusters[%d]", i)
		if !has(p + ".lb_policy") {
			cl.LBPolicy = DefaultLBPolicy
		}
		if !has(p + ".protocol") {
			cl.Protocol = DefaultUpstreamProtocol
		}
		if !has(p + ".max_idle_conns_per_endpoint") {
			cl.MaxIdleConnsPerEndpoint = spec.DefaultMaxIdleConnsPerEndpoint
		}
		if cl.DNS != nil && !has(p+".dns.refresh") {
			cl.DNS.Refresh = spec.DefaultDNSRefresh
		}
		if cl.ECS != nil && !has(p+".ecs.refresh") {
			cl.ECS.Refresh = spec.DefaultECSRefresh
		}
		if hc := cl.HealthCheck; hc != nil {
			hp := p + ".health_check"
			if !has(hp + ".type") {
				hc.Type = DefaultHealthCheckType
			}
			if hc.Type == HealthCheckHTTP {
				if !has(hp + ".path") {
					hc.Path = spec.DefaultHealthCheckPath
				}
				if !has(hp + ".expected_statuses") {
					hc.ExpectedStatuses = []string{fmt.Sprintf("%d-%d", spec.DefaultExpectedMin, spec.DefaultExpectedMax)}
				}
			}
			if !has(hp + ".interval") {
				hc.Interval = spec.DefaultHealthCheckInterval
			}
			if !has(hp + ".timeout") {
				hc.Timeout = min(spec.DefaultHealthCheckTimeout, hc.Interval)
			}
			if !has(hp + ".healthy_threshold") {
				hc.HealthyThreshold = spec.DefaultHealthyThreshold
			}
			if !has(hp + ".unhealthy_threshold") {
				hc.UnhealthyThreshold = spec.DefaultUnhealthyThreshold
			}
		}
		if od := cl.OutlierDetection; od != nil {
			op := p + ".outlier_detection"
			if !has(op + ".consecutive_5xx") {
				od.Consecutive5xx = spec.DefaultConsecutive5xx
			}
			if !has(op + ".consecutive_connect_failures") {
				od.ConsecutiveConnectFailures = spec.DefaultConsecutiveConnectFail
			}
			if !has(op + ".base_ejection_time") {
				od.BaseEjectionTime = spec.DefaultBaseEjectionTime
			}
			if !has(op + ".max_ejection_percent") {
				od.MaxEjectionPercent = spec.DefaultMaxEjectionPercent
			}
		}
	}
}
