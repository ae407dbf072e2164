package resource

import (
	"sort"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/gangway-ecs/gangway/internal/httpascii"
)

// Gangway and Envoy select routes differently. Gangway takes the first route, in order, whose
// hosts and path match. Envoy first picks one virtual host by the most specific domain that
// matches (exact, then the longest "*.suffix", then "*"), then the first matching route of
// that virtual host. virtualHosts builds Envoy virtual hosts that select exactly what Gangway
// selects: one virtual host per distinct host pattern, holding, in Gangway's order, every
// route that matches any host the virtual host is chosen for; and a "*" virtual host with the
// routes that match any host.

// hostRoute is a compiled route with the host patterns it matches (none: any host).
type hostRoute struct {
	hosts []string
	route *route.Route
}

// anyHost is the Envoy domain that matches every host.
const anyHost = "*"

func virtualHosts(routes []hostRoute) []*route.VirtualHost {
	var patterns []string           // distinct patterns in order of first appearance
	byPattern := map[string][]int{} // pattern -> indexes of the routes that list it
	var anyRoutes []int
	for i, r := range routes {
		if len(r.hosts) == 0 {
			anyRoutes = append(anyRoutes, i)
			continue
		}
		for _, h := range r.hosts {
			h = httpascii.Lower(h)
			if _, seen := byPattern[h]; !seen {
				patterns = append(patterns, h)
			}
			if ix := byPattern[h]; len(ix) == 0 || ix[len(ix)-1] != i {
				byPattern[h] = append(ix, i)
			}
		}
	}
	var out []*route.VirtualHost
	for _, p := range patterns {
		set := map[int]bool{}
		for _, i := range anyRoutes {
			set[i] = true
		}
		for _, q := range coveringPatterns(p) {
			for _, i := range byPattern[q] {
				set[i] = true
			}
		}
		out = append(out, &route.VirtualHost{Name: p, Domains: []string{p}, Routes: pick(routes, set)})
	}
	if len(anyRoutes) > 0 {
		set := map[int]bool{}
		for _, i := range anyRoutes {
			set[i] = true
		}
		out = append(out, &route.VirtualHost{Name: anyHost, Domains: []string{anyHost}, Routes: pick(routes, set)})
	}
	return out
}

func pick(routes []hostRoute, set map[int]bool) []*route.Route {
	ix := make([]int, 0, len(set))
	for i := range set {
		ix = append(ix, i)
	}
	sort.Ints(ix)
	out := make([]*route.Route, len(ix))
	for k, i := range ix {
		out[k] = routes[i].route
	}
	return out
}

// coveringPatterns returns p and every "*.suffix" pattern that matches every host p matches:
// for "a.b.example.com", "*.b.example.com", "*.example.com" and "*.com"; for "*.b.example.com",
// "*.example.com" and "*.com".
func coveringPatterns(p string) []string {
	out := []string{p}
	rest := strings.TrimPrefix(p, "*.")
	for {
		_, suffix, ok := strings.Cut(rest, ".")
		if !ok || suffix == "" {
			return out
		}
		out = append(out, "*."+suffix)
		rest = suffix
	}
}

// covers reports whether pattern q matches every host that pattern p matches.
func covers(q, p string) bool {
	for _, c := range coveringPatterns(p) {
		if c == q {
			return true
		}
	}
	return false
}
