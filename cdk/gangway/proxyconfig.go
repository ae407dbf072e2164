package gangway

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/gangway-ecs/gangway/internal/config"
)

// proxyEnvironment is the proxy container's environment as the template carries it: the
// caller's ProxyEnvironment, then the construct's own variables. The sidecar variables
// (listen address, readiness path, upstream) are set only without ProxyConfig: with it the
// proxy ignores them (config.Resolve takes the document first).
func (r resolved) proxyEnvironment() map[string]string {
	b := r.budget
	env := map[string]string{}
	for k, v := range r.ProxyEnvironment {
		env[k] = v
	}
	env[EnvShutdownDelay] = b.ShutdownDelay.String()
	env[EnvDrainTimeout] = b.DrainTimeout.String()
	env[EnvShutdownDeadline] = b.StopTimeout.String()
	if r.ProxyConfig != "" {
		env[EnvConfigYAML] = r.ProxyConfig
		return env
	}
	env[EnvReadyPath] = ReadyPath
	env[EnvListenAddr] = fmt.Sprintf(":%d", r.ProxyPort)
	// host:port, as the proxy takes it (a URL is refused at start-up).
	env[EnvUpstream] = fmt.Sprintf("127.0.0.1:%d", r.AppPort)
	return env
}

// proxyConfig resolves the proxy's configuration from the environment the template carries,
// with the proxy's own function (config.ResolveElsewhere: config.Resolve without reading the
// image's files), and checks it against what the rest of the stack expects of it: the
// target groups' port and health-check path, and the address /healthcheck dials. A
// configuration the proxy would refuse is refused here. budgetOK false leaves the shutdown
// variables out of the resolution: the budget's own problems already name them.
func (v *validator) proxyConfig(r resolved, budgetOK bool) {
	env := r.proxyEnvironment()
	if !budgetOK {
		delete(env, EnvShutdownDelay)
		delete(env, EnvDrainTimeout)
		delete(env, EnvShutdownDeadline)
	}
	prop, value := "ProxyConfig", "(document)"
	if r.ProxyConfig == "" {
		prop, value = "ProxyEnvironment", "(the proxy's environment)"
	}
	cfg, err := config.ResolveElsewhere(func(k string) string { return env[k] })
	if err != nil {
		v.add(prop, value, "the proxy would refuse to start with it:\n      "+strings.ReplaceAll(err.Error(), "\n", "\n      "))
		return
	}
	if r.ProxyConfig == "" {
		prop = "ProxyPort" // the sidecar configuration is built from the construct's props
	}

	if cfg.Services != config.ServicesAll {
		v.add(prop, fmt.Sprintf("services: %s", cfg.Services), "the construct runs the proxy with its own listeners (services: all): a split-mode data plane gets its listeners from a control plane the construct cannot check against ProxyPort and the health-check path (see cdk/README.md, \"Split mode\")")
		return
	}
	v.trafficListener(r, prop, cfg)
	v.probeAddress(r, cfg)
}

// trafficListener checks that some listener is what the target groups reach: http without
// TLS on ProxyPort, on every interface (the load balancer connects to the task's address),
// serving readiness on ReadyPath (their health check, and the hook's URL).
func (v *validator) trafficListener(r resolved, prop string, cfg *config.Config) {
	var seen []string
	for i, l := range cfg.Listeners {
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil || port != strconv.Itoa(r.ProxyPort) {
			seen = append(seen, fmt.Sprintf("listeners[%d].address %q", i, l.Address))
			continue
		}
		field := func(f string) string { return fmt.Sprintf("listeners[%d].%s", i, f) }
		if !wildcardHost(host) {
			v.add(prop, fmt.Sprintf("%s = %q", field("address"), l.Address),
				fmt.Sprintf("the listener on ProxyPort (%d) must listen on every interface (\":%d\"): the load balancer connects to the task's address, not to %s", r.ProxyPort, r.ProxyPort, host))
		}
		if l.Protocol != config.ProtocolHTTP {
			v.add(prop, fmt.Sprintf("%s = %s", field("protocol"), l.Protocol),
				fmt.Sprintf("the listener on ProxyPort (%d) must be http: the target groups send HTTP requests and health checks to it", r.ProxyPort))
			return
		}
		if l.TLS != nil {
			v.add(prop, field("tls")+" set",
				fmt.Sprintf("the listener on ProxyPort (%d) must not terminate TLS: the target groups speak plain HTTP to it (the load balancer terminates TLS)", r.ProxyPort))
		}
		if l.ReadinessPath != ReadyPath {
			v.add(prop, fmt.Sprintf("%s = %q", field("readiness_path"), l.ReadinessPath),
				fmt.Sprintf("must be %q, the target groups' health-check path and the hook's readiness URL: anything else fails every health check and no task ever turns healthy", ReadyPath))
		}
		return
	}
	v.add("ProxyPort", fmt.Sprint(r.ProxyPort),
		fmt.Sprintf("no listener of ProxyConfig listens on it (%s): the target groups send traffic and health checks to ProxyPort, so every task would fail them; set ProxyPort to the listener's port or move the listener", strings.Join(seen, ", ")))
}

// probeAddress checks that the probe server listens where /healthcheck dials. `proxy run`
// listens on $GANGWAY_HEALTH_ADDR when set, else on admin.address; /healthcheck dials
// $GANGWAY_HEALTH_ADDR, else DefaultProbeAddr. A mismatch makes /healthcheck exit 3 (no
// verdict) on every run, and ECS replaces every task.
func (v *validator) probeAddress(r resolved, cfg *config.Config) {
	if env := r.ProxyEnvironment[EnvHealthAddr]; env != "" {
		// `proxy run` binds it in place of admin.address, past the configuration's own
		// checks: a port the traffic listener or the app uses would fail the bind at start.
		_, port, err := net.SplitHostPort(env)
		switch {
		case err != nil:
			v.add("ProxyEnvironment["+EnvHealthAddr+"]", fmt.Sprintf("%q", env), "must be host:port, where the probe server listens and /healthcheck dials")
			return
		case port == strconv.Itoa(r.ProxyPort) || port == strconv.Itoa(r.AppPort):
			v.add("ProxyEnvironment["+EnvHealthAddr+"]", fmt.Sprintf("%q", env),
				fmt.Sprintf("must not use ProxyPort (%d) or AppPort (%d): the probe server listens there beside them", r.ProxyPort, r.AppPort))
			return
		}
		if r.ProxyConfig != "" && cfg.Admin.Address != config.DefaultAdminAddress && cfg.Admin.Address != env {
			v.add("ProxyConfig", fmt.Sprintf("admin.address = %q", cfg.Admin.Address),
				fmt.Sprintf("is ignored: ProxyEnvironment[%s] = %q moves the probe server (and /healthcheck with it); remove one of the two", EnvHealthAddr, env))
		}
		return
	}
	if reaches(cfg.Admin.Address, DefaultProbeAddr) {
		return
	}
	v.add("ProxyConfig", fmt.Sprintf("admin.address = %q", cfg.Admin.Address),
		fmt.Sprintf("the container health check (/healthcheck) dials %s (ProxyEnvironment[%s] is not set): it would get no answer, exit 3, and ECS would replace every task; keep admin.address at %s, or set %s in ProxyEnvironment to the address (it moves both)",
			DefaultProbeAddr, EnvHealthAddr, DefaultProbeAddr, EnvHealthAddr))
}

// reaches reports whether a server listening on listen answers a client dialling dial
// (an IPv4 loopback address): same port, and a host that is that address or every interface.
func reaches(listen, dial string) bool {
	lh, lp, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	dh, dp, err := net.SplitHostPort(dial)
	if err != nil || lp != dp {
		return false
	}
	return lh == dh || wildcardHost(lh) // Go listens on [::] dual-stack
}

// wildcardHost reports whether a listen address's host binds every interface.
func wildcardHost(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}
