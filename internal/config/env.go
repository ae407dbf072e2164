package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gangway-ecs/gangway/internal/budget"
)

// Environment variables that configure the proxy without a file: a sidecar in a task
// definition, or the CDK construct, sets them.
const (
	// EnvConfigFile names the configuration file when -config is not given.
	EnvConfigFile = "GANGWAY_CONFIG"
	// EnvConfigYAML holds the configuration document itself.
	EnvConfigYAML = "GANGWAY_CONFIG_YAML"
	// EnvUpstream (host:port), with no configuration file or document, makes a one-route
	// sidecar configuration: every request on EnvListenAddr goes to this upstream.
	EnvUpstream = "GANGWAY_UPSTREAM"
	// EnvListenAddr is the sidecar configuration's traffic address (default ":8080").
	EnvListenAddr = "GANGWAY_LISTEN_ADDR"
	// EnvReadyPath is the sidecar configuration's readiness path (default "/gangway/ready").
	EnvReadyPath = "GANGWAY_READY_PATH"
	// EnvTrustedProxies is the sidecar configuration's trusted_proxies: CIDRs separated by
	// commas or spaces, or "none". Default VPCPrivateRanges().
	EnvTrustedProxies = "GANGWAY_TRUSTED_PROXIES"
	// EnvShutdownDelay, EnvShutdownDrainTimeout and EnvShutdownDeadline override
	// shutdown.delay, shutdown.drain_timeout and shutdown.deadline of any configuration: the
	// task definition owns stopTimeout, so it may set them next to it.
	EnvShutdownDelay        = "GANGWAY_SHUTDOWN_DELAY"
	EnvShutdownDrainTimeout = "GANGWAY_SHUTDOWN_DRAIN_TIMEOUT"
	EnvShutdownDeadline     = "GANGWAY_SHUTDOWN_DEADLINE"
)

// VPCPrivateRanges are the sidecar configuration's default trusted proxies: every range a
// VPC's CIDR blocks may come from for IPv4, RFC 1918's and RFC 6598's shared 100.64.0.0/10
// (which AWS accepts as a VPC's secondary CIDR). Behind a load balancer, the peer of a task's
// traffic port is the load balancer's node, whose address is in the VPC, and its
// X-Forwarded-For/-Proto/-Host are what the application needs: the client's address and
// the scheme the client used (an application that redirects to HTTPS when the proto is http
// would otherwise loop). Trusting the whole private space assumes that only the load
// balancer reaches the traffic port (the task's security group); narrow it to the load
// balancer's subnets with EnvTrustedProxies (or trusted_proxies in a file) when other
// peers in the VPC can reach it too. IPv6 VPC ranges are globally unique addresses that no
// default can name: list them.
func VPCPrivateRanges() []string {
	return []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"}
}

// Source says where Resolve found the configuration.
type Source struct {
	// Path is the configuration file, "" when the configuration did not come from a file
	// (and so cannot be watched or reloaded from disk).
	Path string
}

// Resolve finds and loads the configuration the way `proxy run` does, in this order:
//
//  1. the file at path (the -config flag), else the file named by $GANGWAY_CONFIG;
//  2. else the document in $GANGWAY_CONFIG_YAML;
//  3. else, when $GANGWAY_UPSTREAM is set, a sidecar configuration: one listener on
//     $GANGWAY_LISTEN_ADDR (default :8080) with readiness on $GANGWAY_READY_PATH (default
//     /gangway/ready) that trusts the forwarding headers of $GANGWAY_TRUSTED_PROXIES
//     (default VPCPrivateRanges()), and every request to the upstream, which must pass a TCP
//     check;
//  4. else the embedded default.
//
// Then $GANGWAY_SHUTDOWN_DELAY, _DRAIN_TIMEOUT and _DEADLINE override the shutdown
// settings, and the result must still fit the timing budget. Errors name the file or the
// variable at fault.
func Resolve(path string, getenv func(string) string) (*Config, Source, error) {
	return resolve(path, getenv, true)
}

// ResolveElsewhere resolves the configuration a proxy will resolve from the environment
// getenv on another machine (the CDK construct's synthesized task definition, say): every
// step and check of Resolve with no -config flag, except that the files the configuration
// names (certificates, keys, CAs) are the proxy's and are not read. A configuration file
// ($GANGWAY_CONFIG) is the proxy's too: it is an error here, since what it holds cannot be
// known.
func ResolveElsewhere(getenv func(string) string) (*Config, error) {
	if path := getenv(EnvConfigFile); path != "" {
		return nil, fmt.Errorf("$%s: %q is a file on the proxy's file system; its configuration cannot be checked here (pass the document in $%s instead)",
			EnvConfigFile, path, EnvConfigYAML)
	}
	c, _, err := resolve("", getenv, false)
	return c, err
}

// resolve is Resolve; files says whether the configuration's files are on this machine.
func resolve(path string, getenv func(string) string, files bool) (*Config, Source, error) {
	if path == "" {
		path = getenv(EnvConfigFile)
	}
	var (
		c   *Config
		err error
		src Source
	)
	switch {
	case path != "":
		c, err = Load(path)
		src.Path = path
	case getenv(EnvConfigYAML) != "":
		c, err = parseEnv("$"+EnvConfigYAML, getenv(EnvConfigYAML), files)
	case getenv(EnvUpstream) != "":
		var trusted []string
		if trusted, err = trustedProxiesEnv(getenv); err == nil {
			c, err = parseEnv("$"+EnvUpstream, sidecarYAML(getenv, trusted), files)
			blameSidecarVariables(err)
		}
	default:
		c = Default()
	}
	if err != nil {
		return nil, src, err
	}
	if err := applyShutdownEnv(c, getenv); err != nil {
		return nil, src, err
	}
	return c, src, nil
}

// trustedProxiesEnv reads EnvTrustedProxies: unset is VPCPrivateRanges(), "none" is no proxy.
func trustedProxiesEnv(getenv func(string) string) ([]string, error) {
	v := strings.TrimSpace(getenv(EnvTrustedProxies))
	switch v {
	case "":
		return VPCPrivateRanges(), nil
	case "none":
		return []string{}, nil
	}
	cidrs := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	for _, c := range cidrs {
		if err := checkCIDR(c); err != nil {
			return nil, fmt.Errorf("$%s: %w (or write none to trust no proxy)", EnvTrustedProxies, err)
		}
	}
	return cidrs, nil
}

// parseEnv parses a document from the environment: relative file names in it are relative
// to the working directory, as Parse makes them for a name without a directory.
func parseEnv(name, doc string, files bool) (*Config, error) {
	return parse(name, ".", []byte(doc), files)
}

// sidecarYAML renders the one-route configuration of EnvUpstream. Values are quoted, so
// that the parser, not this template, judges them.
func sidecarYAML(getenv func(string) string, trusted []string) string {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	return fmt.Sprintf(`# generated from the GANGWAY_* environment variables
listeners:
  - name: public
    address: %q
    readiness_path: %q
    trusted_proxies: %s
routes:
  - name: app
    cluster: app
    required: true
clusters:
  - name: app
    endpoints: [%q]
    health_check: {type: tcp, interval: 2s, timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 2}
`, or(getenv(EnvListenAddr), ":8080"), or(getenv(EnvReadyPath), "/gangway/ready"), flowList(trusted), getenv(EnvUpstream))
}

// sidecarFields maps the fields of sidecarYAML's document to the variables they come from.
var sidecarFields = []struct{ path, env string }{
	{"listeners[0].address", EnvListenAddr},
	{"listeners[0].readiness_path", EnvReadyPath},
	{"listeners[0].trusted_proxies", EnvTrustedProxies},
	{"clusters[0].endpoints", EnvUpstream},
}

// blameSidecarVariables rewrites the errors of sidecarYAML's document that one variable
// caused to name that variable: the user never saw the document, so its line numbers and
// field paths would point at nothing they wrote.
func blameSidecarVariables(err error) {
	var es Errors
	if !errors.As(err, &es) {
		return
	}
	for _, e := range es {
		for _, f := range sidecarFields {
			if e.Path == f.path || strings.HasPrefix(e.Path, f.path+"[") || strings.HasPrefix(e.Path, f.path+".") {
				e.File, e.Line, e.Column, e.Path = "$"+f.env, 0, 0, ""
				break
			}
		}
	}
}

// flowList renders strings as a quoted YAML flow sequence.
func flowList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// applyShutdownEnv applies the shutdown overrides and checks that they fit.
func applyShutdownEnv(c *Config, getenv func(string) string) error {
	var errs []string
	changed := false
	for _, o := range []struct {
		name string
		dst  *time.Duration
	}{
		{EnvShutdownDelay, &c.Shutdown.Delay},
		{EnvShutdownDrainTimeout, &c.Shutdown.DrainTimeout},
		{EnvShutdownDeadline, &c.Shutdown.Deadline},
	} {
		v := getenv(o.name)
		if v == "" {
			continue
		}
		d, err := parseEnvDuration(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("$%s: %q: %v", o.name, v, err))
			continue
		}
		*o.dst = d
		changed = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	if !changed {
		return nil
	}
	s := c.Shutdown
	if s.Deadline <= 0 || s.Deadline > FargateMaxStopTimeout {
		return fmt.Errorf("$%s: shutdown.deadline %s must be greater than 0 and at most Fargate's maximum stopTimeout (%s)",
			EnvShutdownDeadline, s.Deadline, FargateMaxStopTimeout)
	}
	b := budget.Settings{ShutdownDelay: s.Delay, DrainTimeout: s.DrainTimeout, StopTimeout: s.Deadline}
	if need := b.ShutdownWindow(); need > b.EffectiveStopTimeout() {
		return fmt.Errorf("$%s/$%s/$%s: delay (%s) + drain_timeout (%s) + %s margin = %s does not fit deadline (%s)",
			EnvShutdownDelay, EnvShutdownDrainTimeout, EnvShutdownDeadline, s.Delay, s.DrainTimeout, ShutdownMargin, need, s.Deadline)
	}
	c.Version = version(c)
	return nil
}

// parseEnvDuration accepts a Go duration ("12s") or a plain number of seconds ("12"), the
// unit task definitions use.
func parseEnvDuration(v string) (time.Duration, error) {
	var secs int
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && fmt.Sprint(secs) == v {
		if secs < 0 {
			return 0, fmt.Errorf("must not be negative")
		}
		return time.Duration(secs) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("not a duration (write 12s, 1m30s, or a number of seconds)")
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative")
	}
	return d, nil
}
