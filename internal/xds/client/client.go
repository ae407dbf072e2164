package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
	"github.com/gangway-ecs/gangway/internal/xds"
	"github.com/gangway-ecs/gangway/internal/xds/resource"
)

// The data plane's xDS checks.
const (
	ListenerCheckName   = "xds.listener"
	RouteCheckName      = "xds.route-configuration"
	ClusterCheckName    = "xds.cluster"
	EndpointCheckName   = "xds.endpoint"
	ConnectionCheckName = "xds.connection"
)

// checkNames maps resource types to their checks, in the order the checks are reported.
var checkNames = []struct{ typeURL, name string }{
	{resource.ListenerType, ListenerCheckName},
	{resource.RouteType, RouteCheckName},
	{resource.ClusterType, ClusterCheckName},
	{resource.EndpointType, EndpointCheckName},
}

// ClientOptions are a Client's dependencies.
type ClientOptions struct {
	// ControlPlane lists the control plane's addresses: host:port (optionally dns:///,
	// grpc:// or grpcs://), where every address of every name is used and names are
	// resolved again every ResolveInterval; or one unix:///path. Required.
	ControlPlane []string
	// Node identifies this data plane to the control plane; Node.Id is required and should
	// be unique per process (the ECS task ID, say).
	Node *core.Node
	// Apply runs a new version on the data plane. It is called from the client's goroutine,
	// once per new version, inside Health.Batch together with the version and check
	// updates: it must not call Batch, Snapshot or Evaluate on that registry. An error
	// rejects the version (NACK); the last applied version keeps serving. Required.
	Apply func(spec *spec.Spec, version string) error
	// Health receives the xds.* checks and, on each applied version, the config version.
	// Required.
	Health *health.Registry
	// Logger receives connection and version events. Default: discarded.
	Logger *slog.Logger
	// TLS, when not nil, connects over TLS (with a client certificate for mTLS when it has
	// one). Default: plain text (a unix socket, or loopback in all-in-one mode).
	TLS *tls.Config
	// ResolveInterval is how often control-plane names are resolved again. Default 30s.
	ResolveInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between two streams. Defaults 250ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// LookupHost resolves control-plane names. Default net.DefaultResolver.LookupHost.
	LookupHost func(ctx context.Context, host string) ([]string, error)
}

// Client is the data plane's ADS client. Run connects to the control plane, keeps one
// state-of-the-world ADS stream open (reconnecting with backoff, failing over between
// control-plane addresses), and applies each complete new version once.
//
// Health: xds.listener, xds.route-configuration, xds.cluster and xds.endpoint report the
// applied version and gate startup, and so readiness until the first version is applied.
// A rejected version sets the error of the check of the resource at fault, with attributes
// serving_version, rejected_version and reason, and does not fail readiness: the last good
// version keeps serving. xds.connection gates nothing; it carries the connection state and
// the last disconnection error.
type Client struct {
	opts   ClientOptions
	log    *slog.Logger
	checks map[string]*health.Check // by type URL
	conn   *health.Check

	// Owned by the Run goroutine.
	applied  *appliedState
	acked    map[string]string // type URL -> last version ACKed (sent as version_info)
	rejected *rejection

	mu     sync.Mutex
	status ClientStatus
}

// appliedState is the version running on the data plane.
type appliedState struct {
	version string
	hash    string // of the resources the version was built from
	names   map[string][]string
}

// rejection is a version that failed on this stream: its other types are NACKed as they
// arrive. A new stream tries the version again (an Apply error may have been transient).
type rejection struct {
	version string
	err     error
}

// ClientStatus is a Client's state, for tests and status pages.
type ClientStatus struct {
	// Version is the applied version ("" before the first).
	Version string
	// Connected is true while an ADS stream is open.
	Connected bool
	// Applies counts the versions applied since the start.
	Applies int
	// Rejected is the last rejected version, and Reason why.
	Rejected, Reason string
	// NACKs counts the rejections sent since the start.
	NACKs int
}

// NewClient checks opts and registers the xds.* checks.
func NewClient(opts ClientOptions) (*Client, error) {
	switch {
	case opts.Health == nil:
		return nil, errors.New("xds: ClientOptions.Health is required")
	case opts.Apply == nil:
		return nil, errors.New("xds: ClientOptions.Apply is required")
	case opts.Node.GetId() == "":
		return nil, errors.New("xds: ClientOptions.Node.Id is required")
	}
	if _, _, err := xds.ParseTargets(opts.ControlPlane); err != nil {
		return nil, fmt.Errorf("xds: %w", err)
	}
	if opts.ResolveInterval <= 0 {
		opts.ResolveInterval = 30 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(10*time.Second, opts.MinBackoff)
	}
	if opts.LookupHost == nil {
		opts.LookupHost = net.DefaultResolver.LookupHost
	}
	c := &Client{opts: opts, log: opts.Logger, checks: map[string]*health.Check{}, acked: map[string]string{}}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, cn := range checkNames {
		c.checks[cn.typeURL] = opts.Health.Register(health.Spec{Name: cn.name, Gates: health.Startup, Versioned: true})
	}
	c.conn = opts.Health.Register(health.Spec{Name: ConnectionCheckName, Gates: 0})
	return c, nil
}

// Status returns the client's state.
func (c *Client) Status() ClientStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Run keeps an ADS stream to the control plane until ctx ends; it returns nil then. It
// returns an error only for a configuration that cannot work (a bad address).
func (c *Client) Run(ctx context.Context) error {
	unix, hostports, err := xds.ParseTargets(c.opts.ControlPlane)
	if err != nil {
		return err
	}
	creds := insecure.NewCredentials()
	if c.opts.TLS != nil {
		creds = credentials.NewTLS(c.opts.TLS)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: c.opts.MinBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: c.opts.MaxBackoff},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(xds.MaxMessageSize)),
		// Spread data planes over every control-plane replica; a stream that breaks
		// starts again on a replica that is up.
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	}
	target := unix
	if unix == "" {
		target = resolverScheme + ":///control-plane"
		dial = append(dial, grpc.WithResolvers(&controlPlaneResolver{targets: hostports, interval: c.opts.ResolveInterval, lookup: c.opts.LookupHost}))
	}
	cc, err := grpc.NewClient(target, dial...)
	if err != nil {
		return fmt.Errorf("xds: control plane %v: %w", c.opts.ControlPlane, err)
	}
	defer cc.Close()

	where := strings.Join(c.opts.ControlPlane, ",")
	c.conn.Report(health.Report{Status: health.Starting, Attrs: []health.Attr{health.A("control_plane", where), health.A("state", "connecting")}})
	ads := discovery.NewAggregatedDiscoveryServiceClient(cc)
	failures := 0
	for {
		c.rejected = nil
		s := &session{c: c, types: map[string]*typeState{}}
		started := time.Now()
		err := s.run(ctx, ads)
		c.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if s.received || time.Since(started) > c.opts.MaxBackoff {
			failures = 0 // the stream worked: reconnect quickly
		}
		failures++
		wait := c.backoff(failures)
		c.log.Warn("xds stream ended; the last applied version keeps serving", "control_plane", where,
			"error", err, "retry_in_ms", wait.Milliseconds(), "serving_version", c.appliedVersion())
		c.conn.Fail(fmt.Errorf("disconnected: %w", err),
			health.A("control_plane", where), health.A("state", "reconnecting"),
			health.A("serving_version", c.appliedVersion()), health.A("since", time.Now().UTC().Format(time.RFC3339)))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// backoff is exponential with full jitter: a random wait up to min(max, min*2^(n-1)).
func (c *Client) backoff(n int) time.Duration {
	d := c.opts.MinBackoff << min(n-1, 20)
	if d <= 0 || d > c.opts.MaxBackoff {
		d = c.opts.MaxBackoff
	}
	return c.opts.MinBackoff/2 + rand.N(d)
}

func (c *Client) appliedVersion() string {
	if c.applied == nil {
		return ""
	}
	return c.applied.version
}

func (c *Client) setConnected(v bool) {
	c.mu.Lock()
	c.status.Connected = v
	c.mu.Unlock()
}

// typeState is one resource type on one stream.
type typeState struct {
	subscribed bool
	names      []string // subscription; nil for the wildcard types (LDS, CDS)
	nonce      string   // of the last response
	latest     *received
	pending    bool // latest is not answered yet
}

// received is one decoded response.
type received struct {
	version   string
	resources map[string]proto.Message
	raw       map[string][]byte // encoded resource, by name: the content hash input
}

// hashOf digests the named resources' encodings; names missing from r count as absent.
func (r *received) hashOf(names []string) string {
	h := sha256.New()
	for _, n := range names {
		resource.WriteHashField(h, []byte(n))
		resource.WriteHashField(h, r.raw[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (r *received) sortedNames() []string {
	out := make([]string, 0, len(r.resources))
	for n := range r.resources {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (r *received) has(names []string) bool {
	for _, n := range names {
		if _, ok := r.resources[n]; !ok {
			return false
		}
	}
	return true
}

// session is one ADS stream.
type session struct {
	c        *Client
	stream   discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	types    map[string]*typeState
	sentNode bool
	received bool // a response arrived on this stream
}

func (s *session) state(typeURL string) *typeState {
	st := s.types[typeURL]
	if st == nil {
		st = &typeState{}
		s.types[typeURL] = st
	}
	return st
}

func (s *session) run(ctx context.Context, ads discovery.AggregatedDiscoveryServiceClient) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	s.stream = stream

	// A reader goroutine, so that a large response is read while a request is being sent.
	type recv struct {
		resp *discovery.DiscoveryResponse
		err  error
	}
	in := make(chan recv, 8)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			resp, err := stream.Recv()
			select {
			case in <- recv{resp, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	// Subscribe: the wildcard types, and the named ones the applied version uses. The
	// version_info of each is the applied one; whatever comes back is compared with what
	// runs before anything is applied again.
	for _, t := range []string{resource.ClusterType, resource.ListenerType} {
		if err := s.subscribe(t, nil); err != nil {
			return err
		}
	}
	if a := s.c.applied; a != nil {
		for _, t := range []string{resource.EndpointType, resource.RouteType} {
			if names := a.names[t]; len(names) > 0 {
				if err := s.subscribe(t, names); err != nil {
					return err
				}
			}
		}
	}
	s.c.setConnected(true)
	where := strings.Join(s.c.opts.ControlPlane, ",")
	s.c.conn.Running("", health.A("control_plane", where), health.A("state", "connected"))
	s.c.log.Info("xds stream open", "control_plane", where, "node", s.c.opts.Node.GetId())

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-in:
			if r.err != nil {
				return r.err
			}
			s.received = true
			if err := s.handle(r.resp); err != nil {
				return err
			}
		}
	}
}

// send sends a request for typeURL at version, answering the type's last response.
func (s *session) send(typeURL, version string, nack error) error {
	st := s.state(typeURL)
	req := &discovery.DiscoveryRequest{
		TypeUrl:       typeURL,
		VersionInfo:   version,
		ResponseNonce: st.nonce,
		ResourceNames: st.names,
	}
	if !s.sentNode {
		req.Node = s.c.opts.Node
		s.sentNode = true
	}
	if nack != nil {
		req.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: nack.Error()}
		s.c.mu.Lock()
		s.c.status.NACKs++
		s.c.mu.Unlock()
	}
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("send %s request: %w", resource.TypeLabel(typeURL), err)
	}
	return nil
}

// subscribe sets the names of typeURL (nil: every resource) and sends the subscription.
func (s *session) subscribe(typeURL string, names []string) error {
	st := s.state(typeURL)
	st.subscribed, st.names = true, names
	return s.send(typeURL, s.c.acked[typeURL], nil)
}

func (s *session) handle(resp *discovery.DiscoveryResponse) error {
	typeURL := resp.GetTypeUrl()
	st := s.types[typeURL]
	if st == nil || !st.subscribed {
		return nil // never asked for
	}
	st.nonce = resp.GetNonce()
	rcv, err := decode(resp)
	if err != nil {
		// The whole version is rejected: its other types cannot run without this one.
		var re *resource.ResourceError
		if !errors.As(err, &re) {
			err = &resource.ResourceError{TypeURL: typeURL, Name: "", Err: err}
		}
		if err := s.send(typeURL, s.c.acked[typeURL], err); err != nil {
			return err
		}
		return s.reject(resp.GetVersionInfo(), typeURL, err)
	}
	st.latest, st.pending = rcv, true

	// A new Listener or Cluster set may name other RouteConfigurations or
	// ClusterLoadAssignments: subscribe to exactly those.
	switch typeURL {
	case resource.ListenerType:
		if err := s.resubscribe(resource.RouteType, routeConfigNames(rcv)); err != nil {
			return err
		}
	case resource.ClusterType:
		if err := s.resubscribe(resource.EndpointType, edsNames(rcv)); err != nil {
			return err
		}
	}
	return s.evaluate(rcv.version)
}

func (s *session) resubscribe(typeURL string, names []string) error {
	st := s.state(typeURL)
	if slices.Equal(st.names, names) && (st.subscribed || len(names) == 0) {
		return nil
	}
	return s.subscribe(typeURL, names)
}

// evaluate applies version v once every type it needs has arrived at v, and answers every
// response at v with an ACK or a NACK.
func (s *session) evaluate(v string) error {
	c := s.c
	if r := c.rejected; r != nil && r.version == v {
		return s.answerAll(v, r.err)
	}
	lds, cds := s.types[resource.ListenerType], s.types[resource.ClusterType]
	if lds == nil || cds == nil || lds.latest == nil || cds.latest == nil || lds.latest.version != v || cds.latest.version != v {
		return nil // wait for the rest of v
	}
	res := &resource.Resources{Version: v}
	names := map[string][]string{
		resource.ListenerType: lds.latest.sortedNames(),
		resource.ClusterType:  cds.latest.sortedNames(),
		resource.RouteType:    routeConfigNames(lds.latest),
		resource.EndpointType: edsNames(cds.latest),
	}
	var hashes []string
	for _, cn := range checkNames {
		t, want := cn.typeURL, names[cn.typeURL]
		if len(want) == 0 {
			continue
		}
		st := s.types[t]
		if st == nil || st.latest == nil || st.latest.version != v || !st.latest.has(want) {
			return nil
		}
		hashes = append(hashes, t, st.latest.hashOf(want))
		for _, n := range want {
			res.Add(st.latest.resources[n])
		}
	}
	hash := strings.Join(hashes, ",")
	if a := c.applied; a != nil && a.version == v && a.hash == hash {
		// What runs already: a restarted or another control plane sent the same version.
		c.log.Debug("xds version already applied", "version", v)
		return s.answerAll(v, nil)
	}

	start := time.Now()
	typeURL := resource.ListenerType // what an Apply error is reported on: mostly listeners that cannot bind
	spec, err := resource.ToSpec(res)
	if err == nil {
		c.opts.Health.Batch(func() {
			if err = c.opts.Apply(spec, v); err == nil {
				c.opts.Health.SetConfigVersion(v)
				c.reportApplied(v, res)
			}
		})
		if err != nil {
			err = fmt.Errorf("the data plane could not apply version %s: %w", v, err)
		}
	} else {
		var re *resource.ResourceError
		if errors.As(err, &re) {
			typeURL = re.TypeURL
		}
	}
	if err != nil {
		return s.reject(v, typeURL, err)
	}
	c.applied = &appliedState{version: v, hash: hash, names: names}
	c.rejected = nil
	c.mu.Lock()
	c.status.Version = v
	c.status.Applies++
	c.status.Rejected, c.status.Reason = "", ""
	c.mu.Unlock()
	c.log.Info("xds version applied", "version", v, "listeners", len(res.Listeners), "clusters", len(res.Clusters),
		"duration_ms", float64(time.Since(start).Microseconds())/1000)
	return s.answerAll(v, nil)
}

// reject records that version v cannot run, reports it, and NACKs every response at v.
func (s *session) reject(v, typeURL string, err error) error {
	c := s.c
	c.rejected = &rejection{version: v, err: err}
	c.log.Error("xds version rejected; the last applied version keeps serving", "version", v,
		"serving_version", c.appliedVersion(), "error", err)
	c.reportRejected(v, typeURL, err)
	return s.answerAll(v, err)
}

// answerAll ACKs (nack == nil) or NACKs every unanswered response at version v.
func (s *session) answerAll(v string, nack error) error {
	for _, cn := range checkNames {
		st := s.types[cn.typeURL]
		if st == nil || !st.pending || st.latest.version != v {
			continue
		}
		st.pending = false
		version := v
		if nack != nil {
			version = s.c.acked[cn.typeURL]
		} else {
			s.c.acked[cn.typeURL] = v
		}
		if err := s.send(cn.typeURL, version, nack); err != nil {
			return err
		}
	}
	return nil
}

// reportApplied sets every xDS check RUNNING at v.
func (c *Client) reportApplied(v string, res *resource.Resources) {
	counts := map[string]int{
		resource.ListenerType: len(res.Listeners), resource.RouteType: len(res.Routes),
		resource.ClusterType: len(res.Clusters), resource.EndpointType: len(res.Endpoints),
	}
	for _, cn := range checkNames {
		c.checks[cn.typeURL].Running(v, health.A("resources", fmt.Sprint(counts[cn.typeURL])))
	}
}

// reportRejected sets the error of the check of the type at fault; the others show the
// applied version without error.
func (c *Client) reportRejected(v, typeURL string, err error) {
	c.mu.Lock()
	c.status.Rejected, c.status.Reason = v, err.Error()
	c.mu.Unlock()
	for _, cn := range checkNames {
		ch := c.checks[cn.typeURL]
		if cn.typeURL == typeURL {
			ch.Fail(fmt.Errorf("version %s rejected: %w", v, err),
				health.A("serving_version", c.appliedVersion()),
				health.A("rejected_version", v),
				health.A("reason", err.Error()))
		}
	}
}

// decode unmarshals a response's resources, by name.
func decode(resp *discovery.DiscoveryResponse) (*received, error) {
	r := &received{version: resp.GetVersionInfo(), resources: map[string]proto.Message{}, raw: map[string][]byte{}}
	for i, a := range resp.GetResources() {
		if a.GetTypeUrl() == resourceWrapperType {
			// A resource with a TTL arrives wrapped.
			w := &discovery.Resource{}
			if err := a.UnmarshalTo(w); err != nil {
				return nil, fmt.Errorf("resources[%d]: %w", i, err)
			}
			if w.GetResource() == nil {
				continue // a heartbeat: nothing changed
			}
			a = w.GetResource()
		}
		if a.GetTypeUrl() != resp.GetTypeUrl() {
			return nil, fmt.Errorf("resources[%d]: type %s in a %s response", i, a.GetTypeUrl(), resp.GetTypeUrl())
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		name := resourceName(m)
		if name == "" {
			return nil, fmt.Errorf("resources[%d]: %s without a name", i, resource.TypeLabel(resp.GetTypeUrl()))
		}
		if _, dup := r.resources[name]; dup {
			return nil, &resource.ResourceError{TypeURL: resp.GetTypeUrl(), Name: name, Err: errors.New("sent twice")}
		}
		r.resources[name] = m
		r.raw[name] = a.GetValue()
	}
	return r, nil
}

const resourceWrapperType = "type.googleapis.com/envoy.service.discovery.v3.Resource"

func resourceName(m proto.Message) string {
	switch m := m.(type) {
	case *listener.Listener:
		return m.GetName()
	case *route.RouteConfiguration:
		return m.GetName()
	case *cluster.Cluster:
		return m.GetName()
	case *endpoint.ClusterLoadAssignment:
		return m.GetClusterName()
	}
	return ""
}

// routeConfigNames lists the RouteConfigurations the listeners use over RDS, sorted. A
// listener that cannot be read names none; ToSpec reports it.
func routeConfigNames(lds *received) []string {
	set := map[string]bool{}
	for _, m := range lds.resources {
		for _, fc := range m.(*listener.Listener).GetFilterChains() {
			for _, f := range fc.GetFilters() {
				h := &hcm.HttpConnectionManager{}
				if f.GetTypedConfig().MessageIs(h) && f.GetTypedConfig().UnmarshalTo(h) == nil {
					if n := h.GetRds().GetRouteConfigName(); n != "" {
						set[n] = true
					}
				}
			}
		}
	}
	return sortedSet(set)
}

// edsNames lists the ClusterLoadAssignments the EDS clusters use, sorted.
func edsNames(cds *received) []string {
	set := map[string]bool{}
	for name, m := range cds.resources {
		c := m.(*cluster.Cluster)
		if c.GetType() != cluster.Cluster_EDS {
			continue
		}
		if sn := c.GetEdsClusterConfig().GetServiceName(); sn != "" {
			name = sn
		}
		set[name] = true
	}
	return sortedSet(set)
}

func sortedSet(set map[string]bool) []string {
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
