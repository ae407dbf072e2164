package config

import (
	"fmt"
	"net/netip"
	"regexp"

	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// ToSpec translates the user's configuration into the data plane's Spec; it is the only
// translation from YAML to the runtime model. cfg must come from Parse, Load or Default
// (complete and valid); the errors here are for what the data plane cannot run.
func ToSpec(cfg *Config) (*spec.Spec, error) {
	s := &spec.Spec{
		Version:           cfg.Version,
		ReadHeaderTimeout: cfg.TimeoutReadHeader,
		IdleTimeout:       cfg.TimeoutIdle,
		WriteTimeout:      cfg.TimeoutWrite,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ListenerGrace:     cfg.Shutdown.ListenerGrace,
	}
	if cfg.DemoUpstream.Enabled {
		s.Demo = &spec.Demo{Address: cfg.DemoUpstream.Address}
	}
	for _, l := range cfg.Listeners {
		out := spec.Listener{
			Name:          l.Name,
			Address:       l.Address,
			H2C:           l.H2C,
			ReadinessPath: l.ReadinessPath,
			Cluster:       l.Cluster,
		}
		if l.Protocol == ProtocolTCP {
			out.Protocol = spec.TCP
		}
		out.Paths = spec.PathNormalization{Normalize: l.NormalizePath, MergeSlashes: l.MergeSlashes}
		switch l.PathWithEscapedSlashesAction {
		case EscapedSlashesRejectRequest:
			out.Paths.EscapedSlashes = spec.RejectEscapedSlashes
		case EscapedSlashesUnescapeAndRedirect:
			out.Paths.EscapedSlashes = spec.UnescapeAndRedirect
		case EscapedSlashesUnescapeAndForward:
			out.Paths.EscapedSlashes = spec.UnescapeAndForward
		}
		for _, p := range l.TrustedProxies {
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("listener %q: trusted_proxies: %w", l.Name, err)
			}
			out.TrustedProxies = append(out.TrustedProxies, pfx.Masked())
		}
		if t := l.TLS; t != nil {
			out.TLS = &spec.ServerTLS{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}
			switch t.ClientAuth {
			case ClientAuthVerifyIfGiven:
				out.TLS.ClientAuth = spec.VerifyClientCertIfGiven
			case ClientAuthRequire:
				out.TLS.ClientAuth = spec.RequireClientCert
			}
		}
		s.Listeners = append(s.Listeners, out)
	}
	for _, r := range cfg.Routes {
		out := spec.Route{
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
		out, err := specCluster(c)
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

func specCluster(c Cluster) (spec.Cluster, error) {
	out := spec.Cluster{
		Name:                    c.Name,
		Endpoints:               c.Endpoints,
		HTTP2:                   c.Protocol == UpstreamHTTP2,
		MaxIdleConnsPerEndpoint: c.MaxIdleConnsPerEndpoint,
	}
	if d := c.DNS; d != nil {
		out.DNS = &spec.DNSDiscovery{Name: d.Name, Port: d.Port, Refresh: d.Refresh}
	}
	if e := c.ECS; e != nil {
		out.ECS = &spec.ECSDiscovery{Cluster: e.Cluster, Service: e.Service, Port: e.Port, Refresh: e.Refresh}
	}
	switch c.LBPolicy {
	case LBLeastRequest:
		out.LBPolicy = spec.LeastRequest
	case LBRandom:
		out.LBPolicy = spec.Random
	}
	if t := c.TLS; t != nil {
		out.TLS = &spec.UpstreamTLS{CAFile: t.CAFile, ServerName: t.ServerName, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
	}
	if h := c.HealthCheck; h != nil {
		hc := &spec.HealthCheck{
			Path:               h.Path,
			Interval:           h.Interval,
			Timeout:            h.Timeout,
			HealthyThreshold:   h.HealthyThreshold,
			UnhealthyThreshold: h.UnhealthyThreshold,
		}
		if h.Type == HealthCheckTCP {
			hc.Type = spec.TCPHealthCheck
		}
		for _, st := range h.ExpectedStatuses {
			lo, hi, err := parseStatusRange(st)
			if err != nil {
				return out, fmt.Errorf("health_check.expected_statuses: %q: %w", st, err)
			}
			hc.Expected = append(hc.Expected, spec.StatusRange{Min: lo, Max: hi})
		}
		if len(hc.Expected) == 0 {
			hc.Expected = []spec.StatusRange{{Min: spec.DefaultExpectedMin, Max: spec.DefaultExpectedMax}}
		}
		if hc.Path == "" {
			hc.Path = spec.DefaultHealthCheckPath
		}
		out.HealthCheck = hc
	}
	if o := c.OutlierDetection; o != nil {
		out.Outlier = &spec.Outlier{
			Consecutive5xx:             o.Consecutive5xx,
			ConsecutiveConnectFailures: o.ConsecutiveConnectFailures,
			BaseEjectionTime:           o.BaseEjectionTime,
			MaxEjectionPercent:         o.MaxEjectionPercent,
		}
	}
	return out, nil
}
