package ecs

import (
	"path"
	"strings"
)

// probeServerPort is the port of the proxy's probe server by default (health.DefaultAddr):
// a curl or wget health check that names it asks Gangway.
const probeServerPort = ":28080"

// healthProbe is what a container health check command asks of Gangway.
type healthProbe struct {
	// gangway is true when the command runs bin/healthcheck or asks the probe server.
	gangway bool
	// static is true when the command runs bin/healthcheck (["CMD", "/healthcheck", ...]).
	static bool
	// probe is the probe asked: "container", "ready", "live", "startup", or what the
	// command names when it is none of those.
	probe string
	// timeout is the probe's -timeout as the command writes it; "" when it gives none.
	timeout string
}

// probePathNames maps the probe server's paths to probe names.
var probePathNames = map[string]string{
	"/containerz": "container",
	"/readyz":     "ready",
	"/livez":      "live",
	"/startupz":   "startup",
}

// parseHealthCheck reads a healthCheck.command: ["CMD", "/healthcheck", flags...] (or any
// path whose base name is healthcheck, as in the image, or gangway-healthcheck, as `make
// install` names it; or "proxy health" and "gangway-proxy health"), the same as one CMD-SHELL string,
// or a curl or wget of the probe server's paths.
func parseHealthCheck(cmd []string) healthProbe {
	if len(cmd) < 2 {
		return healthProbe{}
	}
	args := cmd[1:]
	if cmd[0] == "CMD-SHELL" {
		args = strings.Fields(strings.Join(cmd[1:], " "))
	} else if cmd[0] != "CMD" {
		return healthProbe{}
	}
	if len(args) == 0 {
		return healthProbe{}
	}
	switch bin := path.Base(args[0]); {
	case bin == "healthcheck" || bin == "gangway-healthcheck":
		return healthProbe{gangway: true, static: true, probe: probeFlag(args[1:]), timeout: flagValue(args[1:], "timeout")}
	case (bin == "proxy" || bin == "gangway-proxy") && len(args) > 1 && args[1] == "health":
		return healthProbe{gangway: true, probe: probeFlag(args[2:]), timeout: flagValue(args[2:], "timeout")}
	case bin == "curl" || bin == "wget":
		for _, a := range args[1:] {
			i := strings.Index(a, probeServerPort+"/")
			if i < 0 {
				continue
			}
			p := a[i+len(probeServerPort):]
			if j := strings.IndexAny(p, "?#\"'"); j >= 0 {
				p = p[:j]
			}
			name, ok := probePathNames[p]
			if !ok {
				name = p
			}
			return healthProbe{gangway: true, probe: name}
		}
	}
	return healthProbe{}
}

// flagValue returns the last value of the flag name among bin/healthcheck's flags ("-name x",
// "-name=x", with one or two dashes), or "".
func flagValue(args []string, name string) string {
	v := ""
	for i := 0; i < len(args); i++ {
		n, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if n != name || !strings.HasPrefix(args[i], "-") {
			continue
		}
		if !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		v = value
	}
	return v
}

// probeFlag returns the -probe value among bin/healthcheck's flags, normalized, or
// "container", the default.
func probeFlag(args []string) string {
	probe := flagValue(args, "probe")
	if probe == "" {
		return "container"
	}
	switch strings.ToLower(probe) {
	case "ready", "readiness", "readyz":
		return "ready"
	case "live", "liveness", "livez":
		return "live"
	case "startup", "start", "startupz":
		return "startup"
	case "container", "containerz":
		return "container"
	}
	return probe
}
