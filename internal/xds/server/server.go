package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/xds"
	"github.com/gangway-ecs/gangway/internal/xds/resource"
)

// ServerCheckName is the control plane's health check.
const ServerCheckName = "xds.server"

// ServerOptions are a Server's dependencies.
type ServerOptions struct {
	// Health receives the "xds.server" check. Required.
	Health *health.Registry
	// Logger receives NACKs and stream events. Default: discarded.
	Logger *slog.Logger
	// TLS, when not nil, serves gRPC over TLS. Set ClientAuth and ClientCAs for mTLS.
	TLS *tls.Config
}

// Server is an ADS server (state of the world) that publishes one set of resources to every
// node and tracks, per node, which version it acknowledged or rejected. Its methods are safe
// for concurrent use.
type Server struct {
	log   *slog.Logger
	tls   *tls.Config
	cache *sharedCache
	xds   serverv3.Server
	check *health.Check

	mu             sync.Mutex
	published      *resource.Resources
	serving        int // Serve calls running
	streams        map[int64]*stream
	nodes          map[string]*node
	currentNodes   int // nodes at the published version
	rejectingNodes int // nodes whose last answer for some type was a NACK
	lastNACK       *NACK
}

// stream is the state of one ADS stream.
type stream struct {
	node string
	// attached, current and rejecting are this stream's part in its node's counts.
	attached, current, rejecting bool
	// sent is the last response per type URL; acked the last version the node accepted.
	sent  map[string]sentResponse
	acked map[string]string
	// nack is the type's last NACK, cleared by the next ACK.
	nack map[string]*NACK
}

type sentResponse struct {
	nonce, version string
}

// NACK is a rejected version.
type NACK struct {
	Node    string
	TypeURL string
	Version string
	Reason  string
	At      time.Time
}

// NewServer returns a Server with nothing published.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Health == nil {
		return nil, errors.New("xds: ServerOptions.Health is required")
	}
	s := &Server{
		log:     opts.Logger,
		tls:     opts.TLS,
		streams: map[int64]*stream{},
		nodes:   map[string]*node{},
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.check = opts.Health.Register(health.Spec{Name: ServerCheckName, Gates: health.Startup | health.Readiness})
	s.cache = newSharedCache()
	// The server's context only ends its streams; grpc.Server.Stop in Serve does that too.
	s.xds = serverv3.NewServer(context.Background(), s.cache, serverv3.CallbackFuncs{
		StreamOpenFunc:     s.onStreamOpen,
		StreamClosedFunc:   s.onStreamClosed,
		StreamRequestFunc:  s.onStreamRequest,
		StreamResponseFunc: s.onStreamResponse,
		DeltaStreamOpenFunc: func(context.Context, int64, string) error {
			return errors.New("incremental xDS is not supported: use the state-of-the-world ADS stream")
		},
	})
	return s, nil
}

// Publish compiles cfg and publishes the resources to every node. It returns the version.
// Publishing the version that is already published changes nothing.
func (s *Server) Publish(ctx context.Context, cfg *config.Config) (string, error) {
	res, err := resource.Compile(cfg)
	if err != nil {
		return "", err
	}
	if err := s.PublishResources(ctx, res); err != nil {
		return "", err
	}
	return res.Version, nil
}

// PublishResources publishes compiled resources to every node. res must not be modified
// afterwards.
func (s *Server) PublishResources(ctx context.Context, res *resource.Resources) error {
	s.mu.Lock()
	same := s.published != nil && s.published.Version == res.Version
	s.mu.Unlock()
	if same {
		return nil
	}
	// The snapshot only checks that every reference resolves; sharedCache serves.
	check, err := cache.NewSnapshot(res.Version, map[string][]types.Resource{
		resource.ListenerType: typesOf(res.Listeners),
		resource.RouteType:    typesOf(res.Routes),
		resource.ClusterType:  typesOf(res.Clusters),
		resource.EndpointType: typesOf(res.Endpoints),
	})
	if err != nil {
		return fmt.Errorf("xds: snapshot %s: %w", res.Version, err)
	}
	if err := check.Consistent(); err != nil {
		return fmt.Errorf("xds: snapshot %s: %w", res.Version, err)
	}
	// Answers every open watch at once; it does not wait for the network.
	if err := s.cache.set(res.Version, map[string][]proto.Message{
		resource.ListenerType: resource.Messages(res.Listeners),
		resource.RouteType:    resource.Messages(res.Routes),
		resource.ClusterType:  resource.Messages(res.Clusters),
		resource.EndpointType: resource.Messages(res.Endpoints),
	}); err != nil {
		return fmt.Errorf("xds: publish %s: %w", res.Version, err)
	}
	s.mu.Lock()
	s.published = res
	for _, st := range s.streams {
		s.updateLocked(st, false)
	}
	s.mu.Unlock()
	s.log.Info("xds version published", "version", res.Version,
		"listeners", len(res.Listeners), "clusters", len(res.Clusters), "routes", routeCount(res))
	s.report()
	return nil
}

func routeCount(res *resource.Resources) int {
	n := 0
	for _, rc := range res.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			n += len(vh.GetRoutes())
		}
	}
	return n
}

func typesOf[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

// Version returns the published version ("" before the first Publish).
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.published == nil {
		return ""
	}
	return s.published.Version
}

// Serve serves ADS on ln until ctx ends, then closes every stream (data planes reconnect to
// another replica) and returns nil. It returns an error when ln fails. It may be called for
// several listeners at once (a unix socket and a TCP port, say).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	opts := []grpc.ServerOption{
		// Clients ping every 30 s to find dead streams; allow it without streams too.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		// A RouteConfiguration with many routes is larger than gRPC's default 4 MiB.
		grpc.MaxSendMsgSize(xds.MaxMessageSize),
		grpc.ForceServerCodecV2(newSharingCodec()),
	}
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	gs := grpc.NewServer(opts...)
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, s.xds)

	s.mu.Lock()
	s.serving++
	s.mu.Unlock()
	s.report()
	defer func() {
		s.mu.Lock()
		s.serving--
		s.mu.Unlock()
	}()

	done := make(chan error, 1)
	go func() { done <- gs.Serve(ln) }()
	s.log.Info("xds server listening", "address", ln.Addr().String(), "tls", s.tls != nil)
	select {
	case <-ctx.Done():
		// GracefulStop would wait for the ADS streams, which never end by themselves.
		gs.Stop()
		<-done
		return nil
	case err := <-done:
		err = fmt.Errorf("xds server on %s: %w", ln.Addr(), err)
		s.mu.Lock()
		attrs := s.attrsLocked()
		s.mu.Unlock()
		s.check.Fail(err, attrs...)
		return err
	}
}

// NodeStatus is one connected node's state.
type NodeStatus struct {
	ID string
	// Streams is the number of open ADS streams of the node.
	Streams int
	// Version is the version the node acknowledged for every resource type it was sent, or
	// "" while it has not acknowledged one version for all of them.
	Version string
	// NACK is the node's latest rejection that no ACK has cleared since, or nil.
	NACK *NACK
}

// Nodes returns the connected nodes, sorted by ID.
func (s *Server) Nodes() []NodeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	byID := map[string]*NodeStatus{}
	versions := map[string]map[string]bool{}
	for _, st := range s.streams {
		if st.node == "" {
			continue
		}
		n := byID[st.node]
		if n == nil {
			n = &NodeStatus{ID: st.node}
			byID[st.node] = n
			versions[st.node] = map[string]bool{}
		}
		n.Streams++
		for typeURL := range st.sent {
			versions[st.node][st.acked[typeURL]] = true
		}
		for _, nk := range st.nack {
			if n.NACK == nil || nk.At.After(n.NACK.At) {
				c := *nk
				n.NACK = &c
			}
		}
	}
	out := make([]NodeStatus, 0, len(byID))
	for id, n := range byID {
		if vs := versions[id]; len(vs) == 1 {
			for v := range vs {
				n.Version = v
			}
		}
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LastNACK returns the most recent rejection from any node, or nil.
func (s *Server) LastNACK() *NACK {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastNACK == nil {
		return nil
	}
	n := *s.lastNACK
	return &n
}

// The node counts are kept up to date on every event, in constant time per stream, so that
// thousands of ACKs after a publish cost little. A node is current when all its streams are;
// a stream is current when it acknowledged the published version for every type it was sent.

// node counts a node's streams.
type node struct {
	streams, current, rejecting int
}

func (n *node) isCurrent() bool   { return n.streams > 0 && n.current == n.streams }
func (n *node) isRejecting() bool { return n.rejecting > 0 }

// updateLocked recomputes st's state and the counts that depend on it. remove detaches st
// from its node (the stream closed).
func (s *Server) updateLocked(st *stream, remove bool) {
	if st.node == "" {
		return
	}
	n := s.nodes[st.node]
	if n == nil {
		n = &node{}
		s.nodes[st.node] = n
	}
	wasCurrent, wasRejecting := n.isCurrent(), n.isRejecting()
	if !st.attached && !remove {
		st.attached = true
		n.streams++
	}
	cur, rej := !remove && s.streamCurrentLocked(st), !remove && len(st.nack) > 0
	if cur != st.current {
		st.current = cur
		n.current += map[bool]int{true: 1, false: -1}[cur]
	}
	if rej != st.rejecting {
		st.rejecting = rej
		n.rejecting += map[bool]int{true: 1, false: -1}[rej]
	}
	if remove && st.attached {
		st.attached = false
		n.streams--
	}
	s.currentNodes += delta(wasCurrent, n.isCurrent())
	s.rejectingNodes += delta(wasRejecting, n.isRejecting())
	if n.streams == 0 {
		delete(s.nodes, st.node)
	}
}

func delta(before, after bool) int {
	switch {
	case before && !after:
		return -1
	case !before && after:
		return 1
	}
	return 0
}

func (s *Server) streamCurrentLocked(st *stream) bool {
	if s.published == nil || len(st.sent) == 0 {
		return false
	}
	for typeURL := range st.sent {
		if st.acked[typeURL] != s.published.Version {
			return false
		}
	}
	return true
}

// report updates the xds.server check: RUNNING once a version is published and served.
func (s *Server) report() {
	s.mu.Lock()
	ready := s.published != nil && s.serving > 0
	attrs := s.attrsLocked()
	s.mu.Unlock()
	if ready {
		s.check.Running("", attrs...)
	} else {
		s.check.Report(health.Report{Status: health.Starting, Attrs: attrs})
	}
}

func (s *Server) attrsLocked() []health.Attr {
	version := ""
	if s.published != nil {
		version = s.published.Version
	}
	attrs := []health.Attr{
		health.A("version", version),
		health.A("nodes", fmt.Sprintf("%d/%d", s.currentNodes, len(s.nodes))),
		health.A("nodes_rejecting", strconv.Itoa(s.rejectingNodes)),
	}
	if n := s.lastNACK; n != nil {
		attrs = append(attrs,
			health.A("last_nack_node", n.Node),
			health.A("last_nack_type", resource.TypeLabel(n.TypeURL)),
			health.A("last_nack_version", n.Version),
			health.A("last_nack_reason", n.Reason),
			health.A("last_nack_at", n.At.UTC().Format(time.RFC3339)),
		)
	}
	return attrs
}

// ---- callbacks, called synchronously by the stream's goroutine

func (s *Server) onStreamOpen(_ context.Context, id int64, _ string) error {
	s.mu.Lock()
	s.streams[id] = &stream{sent: map[string]sentResponse{}, acked: map[string]string{}, nack: map[string]*NACK{}}
	s.mu.Unlock()
	return nil
}

func (s *Server) onStreamClosed(id int64, n *core.Node) {
	s.mu.Lock()
	if st := s.streams[id]; st != nil {
		s.updateLocked(st, true)
		delete(s.streams, id)
	}
	s.mu.Unlock()
	s.log.Debug("xds stream closed", "node", n.GetId(), "stream", id)
	s.report()
}

func (s *Server) onStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	s.mu.Lock()
	st := s.streams[id]
	if st == nil {
		s.mu.Unlock()
		return nil
	}
	typeURL := req.GetTypeUrl()
	if st.node == "" {
		st.node = req.GetNode().GetId()
		if st.node == "" {
			s.mu.Unlock()
			return errors.New("xds: the first request of a stream must carry node.id")
		}
		s.updateLocked(st, false)
	}
	sent, ok := st.sent[typeURL]
	if req.GetResponseNonce() == "" || !ok || req.GetResponseNonce() != sent.nonce {
		// A first request, or one about an older response: not an answer to the last one.
		s.mu.Unlock()
		return nil
	}
	var nk *NACK
	if e := req.GetErrorDetail(); e != nil {
		nk = &NACK{Node: st.node, TypeURL: typeURL, Version: sent.version, Reason: e.GetMessage(), At: time.Now()}
		st.nack[typeURL] = nk
		s.lastNACK = nk
		// A NACK carries the last version the node accepted. The cache would answer it at
		// once with the rejected version again, in a loop; marking the request as being at
		// the rejected version makes the cache wait for the next published version.
		req.VersionInfo = sent.version
	} else if req.GetVersionInfo() == sent.version {
		st.acked[typeURL] = sent.version
		delete(st.nack, typeURL)
	}
	s.updateLocked(st, false)
	s.mu.Unlock()
	if nk != nil {
		s.log.Warn("xds version rejected", "node", nk.Node, "type", resource.TypeLabel(typeURL), "version", nk.Version, "reason", nk.Reason)
	}
	s.report()
	return nil
}

func (s *Server) onStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	s.mu.Lock()
	if st := s.streams[id]; st != nil {
		st.sent[resp.GetTypeUrl()] = sentResponse{nonce: resp.GetNonce(), version: resp.GetVersionInfo()}
		s.updateLocked(st, false)
	}
	s.mu.Unlock()
}
