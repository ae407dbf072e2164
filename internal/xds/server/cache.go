package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gangway-ecs/gangway/internal/xds/resource"
)

// sharedCache is the state-of-the-world cache behind the ADS server: one version of the
// resources for every node, each resource encoded once per version and the encoding shared
// by every response. go-control-plane's snapshot cache encodes each resource again for each
// response it sends, which for a large RouteConfiguration and a thousand data planes costs a
// thousand encodings and a thousand copies held in memory at once (measured: 2.1 GiB and
// ACKs after 8 s for 1,000 nodes and 10,000 routes; docs/benchmarks.md).
//
// It answers a request at once when the node lacks the current version (its version_info
// differs) or asks for a resource it was not sent yet, and otherwise holds the watch until
// the next version. A request names the resources it wants (RDS, EDS) or none (every
// resource: LDS, CDS).
type sharedCache struct {
	mu      sync.Mutex
	version string
	types   map[string]*typeResources // by type URL
	watches map[int64]*cacheWatch
	nextID  int64
}

// typeResources is one type's resources at the current version.
type typeResources struct {
	names []string              // sorted
	anys  map[string]*anypb.Any // encoded once, shared by every response
}

type cacheWatch struct {
	req *discovery.DiscoveryRequest
	sub cache.Subscription
	ch  chan cache.Response
}

func newSharedCache() *sharedCache {
	return &sharedCache{types: map[string]*typeResources{}, watches: map[int64]*cacheWatch{}}
}

// set replaces the resources with resources (by type URL) at version and answers every
// watch that does not have that version.
func (c *sharedCache) set(version string, resources map[string][]proto.Message) error {
	types := map[string]*typeResources{}
	for typeURL, list := range resources {
		tr := &typeResources{anys: map[string]*anypb.Any{}}
		for _, m := range list {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				return fmt.Errorf("encode %s %s: %w", resource.TypeLabel(typeURL), cache.GetResourceName(m), err)
			}
			name := cache.GetResourceName(m)
			tr.names = append(tr.names, name)
			tr.anys[name] = &anypb.Any{TypeUrl: typeURL, Value: b}
		}
		sort.Strings(tr.names)
		types[typeURL] = tr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version, c.types = version, types
	for id, w := range c.watches {
		if w.req.GetVersionInfo() != version {
			c.respondLocked(w)
			delete(c.watches, id)
		}
	}
	return nil
}

// CreateWatch answers req at once, or holds it until the next version.
func (c *sharedCache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &cacheWatch{req: req, sub: sub, ch: ch}
	if c.version != "" && (req.GetVersionInfo() != c.version || c.unsentLocked(w)) {
		c.respondLocked(w)
		return func() {}, nil
	}
	c.nextID++
	id := c.nextID
	c.watches[id] = w
	return func() {
		c.mu.Lock()
		delete(c.watches, id)
		c.mu.Unlock()
	}, nil
}

// unsentLocked reports whether w asks for a current resource its stream was not sent.
func (c *sharedCache) unsentLocked(w *cacheWatch) bool {
	tr := c.types[w.req.GetTypeUrl()]
	if tr == nil {
		return false
	}
	sent := w.sub.ReturnedResources()
	for _, name := range c.selectedLocked(w, tr) {
		if _, ok := sent[name]; !ok {
			return true
		}
	}
	return false
}

func (c *sharedCache) selectedLocked(w *cacheWatch, tr *typeResources) []string {
	if len(w.req.GetResourceNames()) == 0 {
		return tr.names
	}
	var out []string
	for _, n := range w.req.GetResourceNames() {
		if _, ok := tr.anys[n]; ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// respondLocked sends the current version of what w asks for. The channel holds one
// response per resource type of the stream, so the send does not block.
func (c *sharedCache) respondLocked(w *cacheWatch) {
	tr := c.types[w.req.GetTypeUrl()]
	if tr == nil {
		tr = &typeResources{}
	}
	names := c.selectedLocked(w, tr)
	r := &sharedResponse{req: w.req, version: c.version, returned: make(map[string]string, len(names))}
	r.resources = make([]*anypb.Any, len(names))
	for i, n := range names {
		r.resources[i] = tr.anys[n]
		r.returned[n] = c.version
	}
	w.ch <- r
}

// CreateDeltaWatch: incremental xDS is refused when the stream opens (Server).
func (c *sharedCache) CreateDeltaWatch(*cache.DeltaRequest, cache.Subscription, chan cache.DeltaResponse) (func(), error) {
	return nil, errors.New("incremental xDS is not supported")
}

// Fetch: the REST API is not served.
func (c *sharedCache) Fetch(context.Context, *cache.Request) (cache.Response, error) {
	return nil, errors.New("the REST xDS API is not supported")
}

// sharedResponse is one response; its resources are shared with every other response of
// the version and must not be modified.
type sharedResponse struct {
	req       *discovery.DiscoveryRequest
	version   string
	resources []*anypb.Any
	returned  map[string]string
}

// GetDiscoveryResponse returns a new message each time: the server sets its nonce.
func (r *sharedResponse) GetDiscoveryResponse() (*discovery.DiscoveryResponse, error) {
	return &discovery.DiscoveryResponse{VersionInfo: r.version, Resources: r.resources, TypeUrl: r.req.GetTypeUrl()}, nil
}
func (r *sharedResponse) GetRequest() *discovery.DiscoveryRequest { return r.req }
func (r *sharedResponse) GetVersion() (string, error)             { return r.version, nil }
func (r *sharedResponse) GetResponseVersion() string              { return r.version }
func (r *sharedResponse) GetReturnedResources() map[string]string { return r.returned }
func (r *sharedResponse) GetContext() context.Context             { return context.Background() }
