package xds

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// parseTargets splits control-plane URLs into what the client dials. Accepted forms:
// "host:port", "dns:///host:port", "grpc://host:port", "grpcs://host:port" (TLS is set by
// ClientOptions.TLS, not by the scheme) and one "unix:///path". It returns the gRPC target
// for a unix socket, or the host:port list for the resolver.
func ParseTargets(urls []string) (unix string, hostports []string, err error) {
	for _, u := range urls {
		switch {
		case strings.HasPrefix(u, "unix:"):
			if len(urls) != 1 {
				return "", nil, fmt.Errorf("control plane %q: a unix socket cannot be listed with other addresses", u)
			}
			return u, nil, nil
		case strings.Contains(u, "://"):
			scheme, rest, _ := strings.Cut(u, "://")
			switch scheme {
			case "dns", "grpc", "grpcs":
			default:
				return "", nil, fmt.Errorf("control plane %q: scheme %q is not supported (host:port, dns:///, grpc://, grpcs:// or unix://)", u, scheme)
			}
			rest = strings.TrimPrefix(rest, "/") // dns:///host:port has an empty authority
			u = strings.TrimSuffix(rest, "/")
		}
		if _, _, err := net.SplitHostPort(u); err != nil {
			return "", nil, fmt.Errorf("control plane %q: want host:port: %w", u, err)
		}
		hostports = append(hostports, u)
	}
	if len(hostports) == 0 {
		return "", nil, errors.New("control plane: no address")
	}
	return "", hostports, nil
}
