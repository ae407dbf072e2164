package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// A source discovers a cluster's endpoints, one kind of source for each way a spec.Cluster
// names them: a static list, DNS or ECS. run reports each endpoint set (each "host:port")
// with update, which may repeat an unchanged set, and each failed discovery with onError,
// after which the last set stays in force and the error shows on the cluster's check. It
// returns when ctx ends, or earlier when it has nothing more to report, and calls neither
// function after returning. The cluster applies every set on its own goroutine (run), so a
// source never touches the cluster's state.
type source interface {
	run(ctx context.Context, update func(addrs []string), onError func(error))
}

// newSource is the source of c's endpoints. log carries the cluster's name.
func newSource(c spec.Cluster, deps Deps, log *slog.Logger) source {
	switch {
	case c.DNS != nil:
		return dnsSource{d: *c.DNS, resolver: deps.Resolver, log: log}
	case c.ECS != nil:
		return ecsSource{d: *c.ECS, discover: deps.ECS, log: log}
	}
	return staticSource(c.Endpoints)
}

// staticSource is a fixed list: the cluster starts with it (New), and run reports it once.
type staticSource []string

func (s staticSource) run(_ context.Context, update func([]string), _ func(error)) { update(s) }

// dnsSource resolves a name every Refresh; each A and AAAA record, with the port, is an
// endpoint. A failed lookup keeps the last set: a DNS blip must not empty the cluster.
type dnsSource struct {
	d        spec.DNSDiscovery
	resolver *net.Resolver
	log      *slog.Logger
}

func (s dnsSource) run(ctx context.Context, update func([]string), onError func(error)) {
	t := time.NewTicker(s.d.Refresh)
	defer t.Stop()
	for {
		if addrs, err := s.resolve(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("dns resolution failed", "name", s.d.Name, "err", err)
			onError(fmt.Errorf("resolve %s: %w", s.d.Name, err))
		} else {
			update(addrs)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s dnsSource) resolve(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, max(s.d.Refresh, 5*time.Second))
	defer cancel()
	ips, err := s.resolver.LookupIPAddr(ctx, s.d.Name)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = net.JoinHostPort(ip.IP.String(), strconv.Itoa(s.d.Port))
	}
	return addrs, nil
}

// ecsSource runs the data plane's ECS discovery (Deps.ECS) for one service. Discovery that
// stops while the cluster runs is an error on the cluster: its endpoints are no longer
// followed.
type ecsSource struct {
	d        spec.ECSDiscovery
	discover func(ctx context.Context, d spec.ECSDiscovery, update func(addrs []string), onError func(error))
	log      *slog.Logger
}

func (s ecsSource) run(ctx context.Context, update func([]string), onError func(error)) {
	failed := func(err error) {
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("ecs discovery failed", "service", s.d.Service, "err", err)
		onError(err)
	}
	s.discover(ctx, s.d, update, failed)
	failed(fmt.Errorf("ecs discovery of service %q stopped", s.d.Service))
}
