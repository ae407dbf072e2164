package nstest

import (
	"fmt"
	"net"

	"github.com/gangway-ecs/gangway/internal/config"
)

// AppAddr is the address, in its own task, of the application a Gangway container's
// environment sends traffic to: $GANGWAY_UPSTREAM, or else the first static endpoint of the
// configuration the environment carries ($GANGWAY_CONFIG_YAML), resolved as the proxy
// resolves it. Either must be a loopback address: the application in the same task.
func AppAddr(env map[string]string) (string, error) {
	addr := env[config.EnvUpstream]
	if addr == "" {
		c, err := config.ResolveElsewhere(func(k string) string { return env[k] })
		if err != nil {
			return "", err
		}
		for _, cl := range c.Clusters {
			if len(cl.Endpoints) > 0 {
				addr = cl.Endpoints[0]
				break
			}
		}
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("the application's address %q is not in the task (127.0.0.1:PORT): neither $%s nor a static endpoint of the configuration names one",
			addr, config.EnvUpstream)
	}
	return addr, nil
}
