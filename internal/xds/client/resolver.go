package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/resolver"
)

// controlPlaneResolver gives gRPC every address of every control-plane target: host:port
// entries whose names are resolved again every interval (and when gRPC asks, at most once a
// second), so that replicas that come and go behind one DNS name are all used. A name that
// fails to resolve keeps its last addresses; gRPC gets an error only when no target has any.
//
// gRPC's own dns resolver re-resolves only when a connection fails, so a new replica would
// get no data plane until then; this one also polls.
type controlPlaneResolver struct {
	targets  []string // host:port
	interval time.Duration
	lookup   func(ctx context.Context, host string) ([]string, error)
}

// resolverScheme is the target scheme of the client's connection; the resolver is passed
// per connection (grpc.WithResolvers), never registered globally.
const resolverScheme = "gangway-xds"

func (b *controlPlaneResolver) Scheme() string { return resolverScheme }

func (b *controlPlaneResolver) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &resolverRun{b: b, cc: cc, now: make(chan struct{}, 1), cancel: cancel, last: map[string][]string{}}
	r.wg.Add(1)
	go r.run(ctx)
	return r, nil
}

// resolverRun is one running resolver. Its goroutine ends in Close.
type resolverRun struct {
	b      *controlPlaneResolver
	cc     resolver.ClientConn
	now    chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	last   map[string][]string // target -> last good addresses
}

func (r *resolverRun) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.now <- struct{}{}:
	default:
	}
}

func (r *resolverRun) Close() {
	r.cancel()
	r.wg.Wait()
}

func (r *resolverRun) run(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.now:
			// At most one forced resolution a second: gRPC asks after every failed connect.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		r.resolve(ctx)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(r.b.interval)
	}
}

func (r *resolverRun) resolve(ctx context.Context) {
	var errs []error
	seen := map[string]bool{}
	var addrs []resolver.Address
	for _, target := range r.b.targets {
		list, err := r.resolveOne(ctx, target)
		if err != nil {
			errs = append(errs, err)
			list = r.last[target]
		} else {
			r.last[target] = list
		}
		for _, a := range list {
			if !seen[a] {
				seen[a] = true
				addrs = append(addrs, resolver.Address{Addr: a})
			}
		}
	}
	if len(addrs) == 0 {
		r.cc.ReportError(fmt.Errorf("control plane: no address: %w", errors.Join(errs...)))
		return
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Addr < addrs[j].Addr })
	// The error only asks to resolve again; the timer does that anyway.
	_ = r.cc.UpdateState(resolver.State{Addresses: addrs})
}

func (r *resolverRun) resolveOne(ctx context.Context, target string) ([]string, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("control plane %q: %w", target, err)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return []string{target}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := r.b.lookup(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("control plane %q: %w", target, err)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip, port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("control plane %q: no address", target)
	}
	return out, nil
}
