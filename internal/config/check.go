package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"gopkg.in/yaml.v3"

	"github.com/gangway-ecs/gangway/internal/budget"
	"github.com/gangway-ecs/gangway/internal/httpascii"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// checker runs the checks that need more than one field or the file system, on a decoded
// and defaulted Config. It reports through the decoder, which knows where each field is.
type checker struct {
	d   *decoder
	c   *Config
	dir string // the base of relative file names
	// files says whether the named files are on this file system: when not (see
	// ResolveElsewhere), keyPair and caFile do not read them.
	files bool

	clusterNames map[string]bool // built on first use
}

// check validates c and resolves its relative file names against dir.
func check(c *Config, d *decoder, dir string, files bool) {
	k := &checker{d: d, c: c, dir: dir, files: files}
	k.top()
	k.shutdown()
	k.listeners()
	k.routes()
	k.clusters()
	k.addressConflicts()
}

// errorf reports an error on the field at path, positioned at that field or, when the file
// does not set it, at its nearest enclosing field that it sets. It stays silent about a field
// that failed to decode, or lies within one: the decoder has already said what is wrong.
func (k *checker) errorf(path, format string, args ...any) {
	if k.failed(path) {
		return
	}
	k.d.errorf(k.node(path), path, format, args...)
}

// failed reports whether the field at path, or one that contains it, failed to decode.
func (k *checker) failed(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if k.d.bad[p] {
			return true
		}
	}
	return k.d.bad[""]
}

func (k *checker) node(path string) *yaml.Node {
	for p := path; p != ""; p = parentPath(p) {
		if n, ok := k.d.set[p]; ok {
			return n
		}
	}
	return k.d.set[""]
}

func (k *checker) has(path string) bool {
	_, ok := k.d.set[path]
	return ok
}

// parentPath trims the last ".field" or "[i]" from a field path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func (k *checker) top() {
	c := k.c
	k.listenAddress("admin.address", c.Admin.Address)
	if c.TimeoutReadHeader == 0 {
		k.errorf("timeout_read_header", "must be greater than 0: without it a client can hold a connection open by sending headers slowly")
	}
	if c.MaxHeaderBytes < 1 {
		k.errorf("max_header_bytes", "%d: must be at least 1 (the default is %d)", c.MaxHeaderBytes, spec.DefaultMaxHeaderBytes)
	}
	if c.DemoUpstream.Enabled || k.has("demo_upstream.address") {
		k.listenAddress("demo_upstream.address", c.DemoUpstream.Address)
	}
	if c.Services == ServicesProxy {
		// The data plane's listeners, routes and clusters come from the control plane.
		for _, f := range []struct {
			path string
			n    int
		}{{"listeners", len(c.Listeners)}, {"routes", len(c.Routes)}, {"clusters", len(c.Clusters)}} {
			if f.n > 0 {
				k.errorf(f.path, "not used with services: proxy, which gets %s from the control plane: remove it, or run services: all", f.path)
			}
		}
		if len(c.ControlPlaneURL) == 0 {
			k.errorf("control_plane_url", "required with services: proxy: the control plane's address, e.g. [\"gangway-control.internal:18000\"]")
		}
	} else {
		if len(c.Listeners) == 0 {
			k.errorf("listeners", "at least one listener is required (unless services is proxy, which gets them from the control plane)")
		}
		if len(c.ControlPlaneURL) > 0 {
			k.errorf("control_plane_url", "only used with services: proxy (this process runs the control plane itself)")
		}
	}
	k.xds()
}

// xds checks the ADS settings.
func (k *checker) xds() {
	c := k.c
	for i, u := range c.ControlPlaneURL {
		p := fmt.Sprintf("control_plane_url[%d]", i)
		if path, ok := strings.CutPrefix(u, "unix://"); ok {
			if path == "" || len(c.ControlPlaneURL) > 1 {
				k.errorf(p, "%q: a unix socket is unix:///absolute/path, and the only entry", u)
			}
			continue
		}
		hostport := u
		for _, prefix := range []string{"dns:///", "grpc://", "grpcs://"} {
			hostport = strings.TrimPrefix(hostport, prefix)
		}
		k.endpoint(p, hostport)
	}
	if a := c.XDS.Address; a != "" {
		if c.Services == ServicesProxy {
			k.errorf("xds.address", "not used with services: proxy (set control_plane_url)")
		} else if path, ok := strings.CutPrefix(a, "unix://"); ok {
			if !filepath.IsAbs(path) {
				k.errorf("xds.address", "%q: a unix socket is unix:///absolute/path", a)
			}
		} else {
			k.listenAddress("xds.address", a)
		}
	}
	t := c.XDS.TLS
	if t == nil {
		return
	}
	if c.Services == ServicesAll {
		k.errorf("xds.tls", "not used with services: all (ADS stays inside the process)")
		return
	}
	if t.CertFile != "" || t.KeyFile != "" || c.Services == ServicesControl {
		if t.CertFile == "" || t.KeyFile == "" {
			k.errorf("xds.tls", "cert_file and key_file go together (and the control plane needs both)")
		} else {
			t.CertFile, t.KeyFile = k.resolve(t.CertFile), k.resolve(t.KeyFile)
			k.keyPair("xds.tls", t.CertFile, t.KeyFile)
		}
	}
	if t.CAFile != "" {
		t.CAFile = k.resolve(t.CAFile)
		k.caFile("xds.tls.ca_file", t.CAFile)
	}
}

func (k *checker) shutdown() {
	s := k.c.Shutdown
	if s.Deadline == 0 {
		k.errorf("shutdown.deadline", "must be greater than 0: set it to the task's stopTimeout (Fargate's default is 30s)")
		return
	}
	if s.Deadline > FargateMaxStopTimeout {
		k.errorf("shutdown.deadline", "%s is more than Fargate's maximum stopTimeout (%gs): ECS would kill the task before the shutdown ends",
			s.Deadline, FargateMaxStopTimeout.Seconds())
		return
	}
	// The timing budget's formula (one for the proxy, the linter, the task definitions and
	// the CDK construct), in this file's field names.
	b := budget.Settings{ShutdownDelay: s.Delay, DrainTimeout: s.DrainTimeout, StopTimeout: s.Deadline}
	if need := b.ShutdownWindow(); need > b.EffectiveStopTimeout() {
		k.errorf("shutdown", "delay (%s) + drain_timeout (%s) + %s margin = %s does not fit deadline (%s): shorten delay or drain_timeout, or raise deadline together with the task's stopTimeout (Fargate allows up to %gs)",
			s.Delay, s.DrainTimeout, ShutdownMargin, need, s.Deadline, FargateMaxStopTimeout.Seconds())
	}
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// names checks that each name is valid and unique within its list.
func (k *checker) names(list string, names []string) {
	first := map[string]int{}
	for i, name := range names {
		p := fmt.Sprintf("%s[%d].name", list, i)
		switch {
		case name == "":
			k.errorf(p, "required")
			continue
		case len(name) > 64 || !namePattern.MatchString(name):
			k.errorf(p, "%q: use at most 64 letters, digits, '.', '_' and '-', starting with a letter or digit", name)
			continue
		}
		if j, dup := first[name]; dup {
			where := fmt.Sprintf("%s[%d]", list, j)
			if n := k.node(where); n != nil {
				where += fmt.Sprintf(" (line %d)", n.Line)
			}
			k.errorf(p, "%q is already the name of %s; names must be unique", name, where)
			continue
		}
		first[name] = i
	}
}

func (k *checker) listeners() {
	names := make([]string, len(k.c.Listeners))
	for i, l := range k.c.Listeners {
		names[i] = l.Name
	}
	k.names("listeners", names)

	for i := range k.c.Listeners {
		l, p := &k.c.Listeners[i], fmt.Sprintf("listeners[%d]", i)
		if l.Address == "" {
			k.errorf(p+".address", "required: host:port to listen on, like \":8080\"")
		} else {
			k.listenAddress(p+".address", l.Address)
		}
		switch l.Protocol {
		case ProtocolTCP:
			if l.Cluster == "" {
				k.errorf(p+".cluster", "required for a tcp listener: the cluster it tunnels bytes to")
			} else {
				k.clusterRef(p+".cluster", l.Cluster)
			}
			for _, f := range []string{"h2c", "readiness_path", "trusted_proxies", "normalize_path", "merge_slashes", "path_with_escaped_slashes_action", "tls"} {
				if k.has(p + "." + f) {
					k.errorf(p+"."+f, "only for http listeners; a tcp listener tunnels bytes without looking at them")
				}
			}
		case ProtocolHTTP:
			if k.has(p + ".cluster") {
				k.errorf(p+".cluster", "only for tcp listeners; http listeners send requests to clusters through routes")
			}
			if l.ReadinessPath != "" && !strings.HasPrefix(l.ReadinessPath, "/") {
				k.errorf(p+".readiness_path", "%q must start with '/'", l.ReadinessPath)
			}
			if l.H2C && l.TLS != nil {
				k.errorf(p+".h2c", "h2c is HTTP/2 without TLS; with tls, HTTP/2 is negotiated by ALPN: remove h2c")
			}
			for j, cidr := range l.TrustedProxies {
				k.cidr(fmt.Sprintf("%s.trusted_proxies[%d]", p, j), cidr)
			}
			if l.TLS != nil {
				k.listenerTLS(p+".tls", l.TLS)
			}
		}
	}
}

func (k *checker) listenerTLS(p string, t *ListenerTLS) {
	if t.CertFile == "" {
		k.errorf(p+".cert_file", "required with tls: the PEM certificate chain")
	}
	if t.KeyFile == "" {
		k.errorf(p+".key_file", "required with tls: the PEM private key")
	}
	if t.CertFile != "" && t.KeyFile != "" {
		t.CertFile = k.resolve(t.CertFile)
		t.KeyFile = k.resolve(t.KeyFile)
		k.keyPair(p, t.CertFile, t.KeyFile)
	}
	switch {
	case t.ClientAuth != ClientAuthNone && t.ClientCAFile == "":
		k.errorf(p+".client_auth", "%s needs client_ca_file: the CAs that client certificates must chain to", t.ClientAuth)
	case t.ClientAuth == ClientAuthNone && t.ClientCAFile != "":
		k.errorf(p+".client_ca_file", "unused when client_auth is none: set client_auth to verify_if_given or require, or remove client_ca_file")
	}
	if t.ClientCAFile != "" {
		t.ClientCAFile = k.resolve(t.ClientCAFile)
		k.caFile(p+".client_ca_file", t.ClientCAFile)
	}
}

func (k *checker) routes() {
	names := make([]string, len(k.c.Routes))
	for i, r := range k.c.Routes {
		names[i] = r.Name
	}
	k.names("routes", names)

	for i := range k.c.Routes {
		r, p := &k.c.Routes[i], fmt.Sprintf("routes[%d]", i)
		if r.Cluster == "" {
			k.errorf(p+".cluster", "required: the cluster requests go to")
		} else {
			k.clusterRef(p+".cluster", r.Cluster)
		}
		k.match(p+".match", &r.Match)
		if r.PrefixRewrite != "" {
			switch {
			case r.Match.PathRegex != "":
				k.errorf(p+".prefix_rewrite", "not allowed with match.path_regex: there is no fixed prefix to replace")
			case !strings.HasPrefix(r.PrefixRewrite, "/"):
				k.errorf(p+".prefix_rewrite", "%q must start with '/'", r.PrefixRewrite)
			}
		}
		if r.HostRewrite != "" && r.PreserveHostHeader {
			k.errorf(p+".host_rewrite", "not allowed with preserve_host_header: choose one")
		}
		if r.HostRewrite != "" && !validHost(r.HostRewrite) {
			k.errorf(p+".host_rewrite", "%q is not a host name or host:port", r.HostRewrite)
		}
		k.headerMap(p+".set_request_headers", r.SetRequestHeaders, true)
		k.headerList(p+".remove_request_headers", r.RemoveRequestHeaders)
		k.headerMap(p+".set_response_headers", r.SetResponseHeaders, false)
		k.headerList(p+".remove_response_headers", r.RemoveResponseHeaders)
	}
}

func (k *checker) match(p string, m *RouteMatch) {
	var set []string
	for _, f := range []string{"path_prefix", "path", "path_regex"} {
		if k.has(p + "." + f) {
			set = append(set, f)
		}
	}
	if len(set) > 1 {
		// Blame the one that comes later in the file.
		sort.SliceStable(set, func(i, j int) bool {
			a, b := k.d.set[p+"."+set[i]], k.d.set[p+"."+set[j]]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		k.errorf(p+"."+set[1], "only one of path_prefix, path and path_regex may be set; this match also sets %s", set[0])
	}
	if m.PathPrefix != "" || k.has(p+".path_prefix") {
		if !strings.HasPrefix(m.PathPrefix, "/") {
			k.errorf(p+".path_prefix", "%q must start with '/'", m.PathPrefix)
		}
	}
	if k.has(p+".path") && !strings.HasPrefix(m.Path, "/") {
		k.errorf(p+".path", "%q must start with '/'", m.Path)
	}
	if k.has(p + ".path_regex") {
		if m.PathRegex == "" {
			k.errorf(p+".path_regex", "must not be empty")
		} else if _, err := regexp.Compile(m.PathRegex); err != nil {
			k.errorf(p+".path_regex", "%q is not a valid regular expression (RE2 syntax): %v", m.PathRegex, err)
		}
	}
	for i, h := range m.Hosts {
		hp := fmt.Sprintf("%s.hosts[%d]", p, i)
		switch {
		case h == "*":
			k.errorf(hp, `"*": leave hosts empty to match any host`)
		case strings.Contains(h, ":"):
			k.errorf(hp, "%q: hosts match without the port; remove it", h)
		case !validHostPattern(h):
			k.errorf(hp, `%q is not a host name or a "*.domain" wildcard`, h)
		}
	}
}

func (k *checker) clusters() {
	names := make([]string, len(k.c.Clusters))
	for i, cl := range k.c.Clusters {
		names[i] = cl.Name
	}
	k.names("clusters", names)

	for i := range k.c.Clusters {
		cl, p := &k.c.Clusters[i], fmt.Sprintf("clusters[%d]", i)
		var sources []string
		for _, f := range []string{"endpoints", "dns", "ecs"} {
			// An empty endpoints list counts as no source.
			if k.has(p+"."+f) && (f != "endpoints" || len(cl.Endpoints) > 0 || k.d.bad[p+"."+f]) {
				sources = append(sources, f)
			}
		}
		switch len(sources) {
		case 0:
			k.errorf(p, "no endpoints: set one of endpoints (a list of host:port), dns or ecs")
		case 1:
		default:
			k.errorf(p+"."+sources[1], "a cluster takes its endpoints from one of endpoints, dns and ecs; this one also sets %s", sources[0])
		}
		for j, ep := range cl.Endpoints {
			k.endpoint(fmt.Sprintf("%s.endpoints[%d]", p, j), ep)
		}
		if d := cl.DNS; d != nil {
			if d.Name == "" {
				k.errorf(p+".dns.name", "required: the host name to resolve")
			} else if !validHostname(d.Name) {
				k.errorf(p+".dns.name", "%q is not a host name", d.Name)
			}
			k.port(p+".dns.port", d.Port)
			if d.Refresh == 0 {
				k.errorf(p+".dns.refresh", "must be greater than 0")
			}
		}
		if e := cl.ECS; e != nil {
			if e.Service == "" {
				k.errorf(p+".ecs.service", "required: the ECS service whose tasks are the endpoints")
			}
			k.port(p+".ecs.port", e.Port)
			if e.Refresh == 0 {
				k.errorf(p+".ecs.refresh", "must be greater than 0")
			}
		}
		if cl.MaxIdleConnsPerEndpoint < 1 {
			k.errorf(p+".max_idle_conns_per_endpoint", "%d: must be at least 1", cl.MaxIdleConnsPerEndpoint)
		}
		if cl.TLS != nil {
			k.upstreamTLS(p+".tls", cl.TLS)
		}
		if cl.HealthCheck != nil {
			k.healthCheck(p+".health_check", cl.HealthCheck)
		}
		if cl.OutlierDetection != nil {
			k.outlierDetection(p+".outlier_detection", cl.OutlierDetection)
		}
	}
}

func (k *checker) upstreamTLS(p string, t *UpstreamTLS) {
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		t.CertFile = k.resolve(t.CertFile)
		t.KeyFile = k.resolve(t.KeyFile)
		k.keyPair(p, t.CertFile, t.KeyFile)
	case t.CertFile != "":
		k.errorf(p+".key_file", "required with cert_file: the client certificate's PEM private key")
	case t.KeyFile != "":
		k.errorf(p+".cert_file", "required with key_file: the PEM client certificate chain")
	}
	if t.CAFile != "" {
		if t.InsecureSkipVerify {
			k.errorf(p+".insecure_skip_verify", "not allowed with ca_file: ca_file is for verifying; remove one")
		}
		t.CAFile = k.resolve(t.CAFile)
		k.caFile(p+".ca_file", t.CAFile)
	}
	if t.ServerName != "" && !validHostname(t.ServerName) && net.ParseIP(t.ServerName) == nil {
		k.errorf(p+".server_name", "%q is not a host name", t.ServerName)
	}
}

func (k *checker) healthCheck(p string, h *HealthCheck) {
	switch h.Type {
	case HealthCheckTCP:
		for _, f := range []string{"path", "expected_statuses"} {
			if k.has(p + "." + f) {
				k.errorf(p+"."+f, "only for http health checks; a tcp health check only connects")
			}
		}
	case HealthCheckHTTP:
		if !strings.HasPrefix(h.Path, "/") {
			k.errorf(p+".path", "%q must start with '/'", h.Path)
		}
		if k.has(p+".expected_statuses") && len(h.ExpectedStatuses) == 0 {
			k.errorf(p+".expected_statuses", `must not be empty: list statuses or ranges, like ["200-299"]`)
		}
		for i, s := range h.ExpectedStatuses {
			if _, _, err := parseStatusRange(s); err != nil {
				k.errorf(fmt.Sprintf("%s.expected_statuses[%d]", p, i), `%q: %v; write a status ("204") or a range ("200-299") within 100-599`, s, err)
			}
		}
	}
	if h.Interval == 0 {
		k.errorf(p+".interval", "must be greater than 0")
	}
	if h.Timeout == 0 {
		k.errorf(p+".timeout", "must be greater than 0")
	} else if h.Interval > 0 && h.Timeout > h.Interval {
		k.errorf(p+".timeout", "%s is longer than interval (%s): a check must end before the next one starts", h.Timeout, h.Interval)
	}
	if h.HealthyThreshold < 1 {
		k.errorf(p+".healthy_threshold", "%d: must be at least 1", h.HealthyThreshold)
	}
	if h.UnhealthyThreshold < 1 {
		k.errorf(p+".unhealthy_threshold", "%d: must be at least 1", h.UnhealthyThreshold)
	}
}

func (k *checker) outlierDetection(p string, o *OutlierDetection) {
	if o.Consecutive5xx < 0 {
		k.errorf(p+".consecutive_5xx", "%d: must not be negative (0 disables this trigger)", o.Consecutive5xx)
	}
	if o.ConsecutiveConnectFailures < 0 {
		k.errorf(p+".consecutive_connect_failures", "%d: must not be negative (0 disables this trigger)", o.ConsecutiveConnectFailures)
	}
	if o.Consecutive5xx == 0 && o.ConsecutiveConnectFailures == 0 {
		k.errorf(p, "both consecutive_5xx and consecutive_connect_failures are 0, so nothing is ever ejected: remove outlier_detection instead")
	}
	if o.BaseEjectionTime == 0 {
		k.errorf(p+".base_ejection_time", "must be greater than 0")
	}
	if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
		k.errorf(p+".max_ejection_percent", "%d: must be from 0 to 100", o.MaxEjectionPercent)
	}
}

// clusterRef checks that a cluster named by a route or a listener exists.
func (k *checker) clusterRef(p, name string) {
	if k.clusterNames == nil {
		k.clusterNames = map[string]bool{}
		for _, cl := range k.c.Clusters {
			k.clusterNames[cl.Name] = true
		}
	}
	if k.clusterNames[name] || k.failed("clusters") {
		return
	}
	if len(k.c.Clusters) == 0 {
		k.errorf(p, "no cluster named %q: no clusters are defined", name)
		return
	}
	const listed = 20 // beyond that, a list of names no longer helps
	var names []string
	for _, cl := range k.c.Clusters[:min(len(k.c.Clusters), listed)] {
		names = append(names, cl.Name)
	}
	msg := fmt.Sprintf("no cluster named %q", name)
	if s := Closest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	msg += "; clusters: " + strings.Join(names, ", ")
	if len(k.c.Clusters) > listed {
		msg += fmt.Sprintf(", ... (%d in all)", len(k.c.Clusters))
	}
	k.errorf(p, "%s", msg)
}

// listenAddress checks a host:port to listen on: the host may be empty (every interface), an
// IP or a name; the port is a number, 0 for any free port.
func (k *checker) listenAddress(p, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		hint := ""
		if _, perr := strconv.Atoi(addr); perr == nil {
			hint = fmt.Sprintf(`; write ":%s" to listen on every interface`, addr)
		}
		k.errorf(p, "%q is not host:port (%s)%s", addr, addrError(err), hint)
		return
	}
	if host != "" && !validHostname(host) && net.ParseIP(host) == nil {
		k.errorf(p, "%q: %q is not an IP address or host name", addr, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		k.errorf(p, "%q: port %q must be a number from 0 to 65535", addr, port)
	}
}

// endpoint checks an upstream host:port: a host is required and the port is 1-65535.
func (k *checker) endpoint(p, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		k.errorf(p, "%q is not host:port (%s)", addr, addrError(err))
		return
	}
	if host == "" || (!validHostname(host) && net.ParseIP(host) == nil) {
		k.errorf(p, "%q: %q is not an IP address or host name", addr, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		k.errorf(p, "%q: port %q must be a number from 1 to 65535", addr, port)
	}
}

func addrError(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}

func (k *checker) port(p string, n int) {
	if !k.has(p) {
		k.errorf(p, "required: the endpoints' port")
	} else if n < 1 || n > 65535 {
		k.errorf(p, "%d: must be from 1 to 65535", n)
	}
}

func (k *checker) cidr(p, s string) {
	if err := checkCIDR(s); err != nil {
		k.errorf(p, "%v", err)
	}
}

// checkCIDR says why s is not a CIDR, with the fix for a bare address.
func checkCIDR(s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	hint := ""
	if a, aerr := netip.ParseAddr(s); aerr == nil {
		hint = fmt.Sprintf(`; for one address write "%s/%d"`, s, a.BitLen())
	}
	return fmt.Errorf("%q is not a CIDR like \"10.0.0.0/8\"%s", s, hint)
}

func (k *checker) headerMap(p string, m map[string]string, request bool) {
	keys := make([]string, 0, len(m))
	for name := range m {
		keys = append(keys, name)
	}
	sort.Strings(keys)
	seen := map[string]string{}
	for _, name := range keys {
		hp := p + "." + name
		switch canon := httpascii.Lower(name); {
		case !httpguts.ValidHeaderFieldName(name):
			k.errorf(hp, "%q is not a valid header name", name)
		case request && canon == "host":
			k.errorf(hp, "set the upstream Host with host_rewrite or preserve_host_header")
		case seen[canon] != "":
			k.errorf(hp, "%q is set twice (also as %q); header names are case-insensitive", name, seen[canon])
		default:
			seen[canon] = name
			if !httpguts.ValidHeaderFieldValue(m[name]) {
				k.errorf(hp, "%q is not a valid header value (control characters are not allowed)", m[name])
			}
		}
	}
}

func (k *checker) headerList(p string, names []string) {
	for i, name := range names {
		if !httpguts.ValidHeaderFieldName(name) {
			k.errorf(fmt.Sprintf("%s[%d]", p, i), "%q is not a valid header name", name)
		}
	}
}

// resolve makes a file name from the configuration relative to the configuration's directory.
func (k *checker) resolve(name string) string {
	if filepath.IsAbs(name) || k.dir == "" {
		return name
	}
	return filepath.Join(k.dir, name)
}

// keyPair checks that a certificate and key exist, hold PEM data, and match. p is the path
// of the enclosing tls section.
func (k *checker) keyPair(p, certFile, keyFile string) {
	if !k.files {
		return
	}
	certPEM, certErr := readPEMFile(certFile)
	if certErr != nil {
		k.errorf(p+".cert_file", "%v", certErr)
	}
	keyPEM, keyErr := readPEMFile(keyFile)
	if keyErr != nil {
		k.errorf(p+".key_file", "%v", keyErr)
	}
	if certErr != nil || keyErr != nil {
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		// Point at the file the error is about.
		msg := err.Error()
		if strings.Contains(msg, "certificate input") || strings.HasPrefix(msg, "x509:") {
			k.errorf(p+".cert_file", "%s: %v", certFile, err)
		} else {
			k.errorf(p+".key_file", "%s: %v (cert_file %s)", keyFile, err, certFile)
		}
	}
}

// caFile checks that a CA bundle exists and holds at least one PEM certificate.
func (k *checker) caFile(p, name string) {
	if !k.files {
		return
	}
	data, err := readPEMFile(name)
	if err != nil {
		k.errorf(p, "%v", err)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		k.errorf(p, "%s: no PEM certificate found", name)
	}
}

// maxPEMFile bounds what readPEMFile reads: certificate bundles are kilobytes, and a
// configuration naming a device or a huge file must not hang or exhaust validation.
const maxPEMFile = 4 << 20

func readPEMFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxPEMFile)
	}
	return data, nil
}

// addressConflicts reports two listeners (or a listener and the admin or demo server) bound to
// the same port on overlapping hosts: the same host, or either one every interface.
func (k *checker) addressConflicts() {
	type port struct {
		hosts    map[string]string // host -> the path that binds it first
		wildcard string            // the first path that binds every interface
		any      string            // the first path that binds the port at all
	}
	ports := map[string]*port{}
	bind := func(path, addr string) {
		host, p, err := net.SplitHostPort(addr)
		if err != nil || p == "0" {
			return // reported elsewhere, or a free port picked at run time
		}
		pt := ports[p]
		if pt == nil {
			pt = &port{hosts: map[string]string{}}
			ports[p] = pt
		}
		wildcard := host == "" || host == "0.0.0.0" || host == "::"
		conflict := pt.wildcard
		if conflict == "" && wildcard {
			conflict = pt.any
		}
		if conflict == "" {
			conflict = pt.hosts[host]
		}
		if conflict != "" {
			k.errorf(path, "port %s is already used by %s", p, conflict)
			return
		}
		if pt.any == "" {
			pt.any = path
		}
		if wildcard && pt.wildcard == "" {
			pt.wildcard = path
		}
		pt.hosts[host] = path
	}
	bind("admin.address", k.c.Admin.Address)
	if k.c.DemoUpstream.Enabled {
		bind("demo_upstream.address", k.c.DemoUpstream.Address)
	}
	for i, l := range k.c.Listeners {
		bind(fmt.Sprintf("listeners[%d].address", i), l.Address)
	}
}

// validHostname reports whether s is a DNS host name (letters, digits, '-' and '_' in dot
// separated labels; a trailing dot is allowed).
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// validHostPattern accepts a host name or "*." followed by one.
func validHostPattern(s string) bool {
	return validHostname(strings.TrimPrefix(s, "*."))
}

// validHost accepts a host name or IP, optionally with a port.
func validHost(s string) bool {
	if host, port, err := net.SplitHostPort(s); err == nil {
		n, perr := strconv.Atoi(port)
		return perr == nil && n > 0 && n <= 65535 && (validHostname(host) || net.ParseIP(host) != nil)
	}
	return validHostname(s) || net.ParseIP(s) != nil
}
