package proxy

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/httpascii"
)

// FromConfig translates the user's configuration into the data plane's Spec. It is the only
// place in this package that reads config types. cfg must come from config.Parse, Load or
// Default (complete and valid); the errors here are for what the data plane cannot run.
func FromConfig(cfg *config.Config) (*Spec, error) {
	s := &Spec{
		Version:           cfg.Version,
		ReadHeaderTimeout: cfg.TimeoutReadHeader,
		IdleTimeout:       cfg.TimeoutIdle,
		WriteTimeout:      cfg.TimeoutWrite,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ListenerGrace:     cfg.Shutdown.ListenerGrace,
	}
	if cfg.DemoUpstream.Enabled {
		s.Demo = &Demo{Address: cfg.DemoUpstream.Address}
	}
	for _, l := range cfg.Listeners {
		out := Listener{
			Name:          l.Name,
			Address:       l.Address,
			H2C:           l.H2C,
			ReadinessPath: l.ReadinessPath,
			Cluster:       l.Cluster,
		}
		if l.Protocol == config.ProtocolTCP {
			out.Protocol = TCP
		}
		out.Paths = PathNormalization{Normalize: l.NormalizePath, MergeSlashes: l.MergeSlashes}
		switch l.PathWithEscapedSlashesAction {
		case config.EscapedSlashesRejectRequest:
			out.Paths.EscapedSlashes = RejectEscapedSlashes
		case config.EscapedSlashesUnescapeAndRedirect:
			out.Paths.EscapedSlashes = UnescapeAndRedirect
		case config.EscapedSlashesUnescapeAndForward:
			out.Paths.EscapedSlashes = UnescapeAndForward
		}
		for _, p := range l.TrustedProxies {
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("listener %q: trusted_proxies: %w", l.Name, err)
			}
			out.TrustedProxies = append(out.TrustedProxies, pfx.Masked())
		}
		if t := l.TLS; t != nil {
			out.TLS = &ServerTLS{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}
			switch t.ClientAuth {
			case config.ClientAuthVerifyIfGiven:
				out.TLS.ClientAuth = VerifyClientCertIfGiven
			case config.ClientAuthRequire:
				out.TLS.ClientAuth = RequireClientCert
			}
		}
		s.Listeners = append(s.Listeners, out)
	}
	for _, r := range cfg.Routes {
		out := Route{
			Name:                  r.Name,
			Cluster:               r.Cluster,
			Required:              r.Required,
			Timeout:               r.Timeout,
			IdleTimeout:           r.IdleTimeout,
			AllowWebSockets:       r.AllowWebsockets,
			PrefixRewrite:         r.PrefixRewrite,
			HostRewrite:           r.HostRewrite,
			PreserveHost:          r.PreserveHostHeader,
			SetRequestHeaders:     r.SetRequestHeaders,
			RemoveRequestHeaders:  r.RemoveRequestHeaders,
			SetResponseHeaders:    r.SetResponseHeaders,
			RemoveResponseHeaders: r.RemoveResponseHeaders,
		}
		for _, h := range r.Match.Hosts {
			out.Hosts = append(out.Hosts, httpascii.Lower(h))
		}
		switch m := r.Match; {
		case m.PathRegex != "":
			re, err := regexp.Compile(m.PathRegex)
			if err != nil {
				return nil, fmt.Errorf("route %q: path_regex: %w", r.Name, err)
			}
			out.Path.Regex = re
		case m.Path != "":
			out.Path.Exact = m.Path
		case m.PathPrefix != "":
			out.Path.Prefix = m.PathPrefix
		default:
			out.Path.Prefix = "/"
		}
		s.Routes = append(s.Routes, out)
	}
	for _, c := range cfg.Clusters {
		out, err := clusterFromConfig(c)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", c.Name, err)
		}
		s.Clusters = append(s.Clusters, out)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func clusterFromConfig(c config.Cluster) (Cluster, error) {
	out := Cluster{
		Name:                    c.Name,
		Endpoints:               c.Endpoints,
		HTTP2:                   c.Protocol == config.UpstreamHTTP2,
		MaxIdleConnsPerEndpoint: c.MaxIdleConnsPerEndpoint,
	}
	if d := c.DNS; d != nil {
		out.DNS = &DNSDiscovery{Name: d.Name, Port: d.Port, Refresh: d.Refresh}
	}
	if e := c.ECS; e != nil {
		out.ECS = &ECSDiscovery{Cluster: e.Cluster, Service: e.Service, Port: e.Port, Refresh: e.Refresh}
	}
	switch c.LBPolicy {
	case config.LBLeastRequest:
		out.LBPolicy = LeastRequest
	case config.LBRandom:
		out.LBPolicy = Random
	}
	if t := c.TLS; t != nil {
		out.TLS = &UpstreamTLS{CAFile: t.CAFile, ServerName: t.ServerName, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
	}
	if h := c.HealthCheck; h != nil {
		hc := &HealthCheck{
			Path:               h.Path,
			Interval:           h.Interval,
			Timeout:            h.Timeout,
			HealthyThreshold:   h.HealthyThreshold,
			UnhealthyThreshold: h.UnhealthyThreshold,
		}
		if h.Type == config.HealthCheckTCP {
			hc.Type = TCPHealthCheck
		}
		for _, st := range h.ExpectedStatuses {
			r, err := parseStatusRange(st)
			if err != nil {
				return out, fmt.Errorf("health_check.expected_statuses: %w", err)
			}
			hc.Expected = append(hc.Expected, r)
		}
		if len(hc.Expected) == 0 {
			hc.Expected = []StatusRange{{200, 299}}
		}
		if hc.Path == "" {
			hc.Path = "/"
		}
		out.HealthCheck = hc
	}
	if o := c.OutlierDetection; o != nil {
		out.Outlier = &Outlier{
			Consecutive5xx:             o.Consecutive5xx,
			ConsecutiveConnectFailures: o.ConsecutiveConnectFailures,
			BaseEjectionTime:           o.BaseEjectionTime,
			MaxEjectionPercent:         o.MaxEjectionPercent,
		}
	}
	return out, nil
}

// parseStatusRange parses "204" or "200-299".
func parseStatusRange(s string) (StatusRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	min, err := strconv.Atoi(strings.TrimSpace(lo))
	if err != nil {
		return StatusRange{}, fmt.Errorf("status %q: want a code or a range like 200-299", s)
	}
	max := min
	if isRange {
		if max, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
			return StatusRange{}, fmt.Errorf("status %q: want a code or a range like 200-299", s)
		}
	}
	if min < 100 || max > 599 || min > max {
		return StatusRange{}, fmt.Errorf("status %q: codes must be within 100-599, low to high", s)
	}
	return StatusRange{Min: min, Max: max}, nil
}
