package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
	"github.com/gangway-ecs/gangway/internal/xds"
	"github.com/gangway-ecs/gangway/internal/xds/resource"
	"github.com/gangway-ecs/gangway/internal/xds/server"
)

// These tests run the control plane and data-plane clients in one process, over real gRPC
// streams on 127.0.0.1 and unix sockets. Apply is a recorder here; proxy_test.go drives a
// real data plane.

const waitLimit = 15 * time.Second

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustParse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// configWithTimeout is a small valid configuration; the route timeout tells versions apart.
func configWithTimeout(timeout string) string {
	return fmt.Sprintf(`
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: app, cluster: app, timeout: %s}]
clusters:
  - {name: app, endpoints: ["127.0.0.1:3000"]}
  - {name: backup, dns: {name: backup.test, port: 3000}}
`, timeout)
}

// envoyOnly compiles yaml and adds what only Envoy runs: circuit breakers on the first
// cluster ("app"). The data plane rejects it.
func envoyOnly(t *testing.T, yaml string) *resource.Resources {
	t.Helper()
	res, err := resource.Compile(mustParse(t, yaml))
	if err != nil {
		t.Fatal(err)
	}
	res.Clusters[0] = proto.Clone(res.Clusters[0]).(*cluster.Cluster)
	res.Clusters[0].CircuitBreakers = &cluster.CircuitBreakers{}
	res.Version = res.Hash()
	return res
}

type controlPlane struct {
	srv    *server.Server
	reg    *health.Registry
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startControlPlane(t *testing.T, network, addr string, opts server.ServerOptions) *controlPlane {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Health == nil {
		opts.Health = health.NewRegistry()
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cp := &controlPlane{srv: srv, reg: opts.Health, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { cp.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(cp.stop)
	return cp
}

// stop ends the control plane as a killed process would: every stream breaks.
func (cp *controlPlane) stop() {
	cp.cancel()
	<-cp.done
	cp.done <- nil // idempotent
}

func (cp *controlPlane) publish(t *testing.T, yaml string) string {
	t.Helper()
	v, err := cp.srv.Publish(context.Background(), mustParse(t, yaml))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (cp *controlPlane) attr(key string) string {
	for _, r := range cp.reg.Snapshot().Records {
		if r.Name == server.ServerCheckName {
			for _, a := range r.Attrs {
				if a.Key == key {
					return a.Value
				}
			}
		}
	}
	return ""
}

type dataPlane struct {
	client *Client
	reg    *health.Registry
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	versions []string // every version Apply was called with
	specs    []*spec.Spec
	reject   func(*spec.Spec) error
}

func startDataPlane(t *testing.T, id string, controlPlane []string, tweak func(*ClientOptions)) *dataPlane {
	t.Helper()
	dp := &dataPlane{reg: health.NewRegistry(), done: make(chan struct{})}
	opts := ClientOptions{
		ControlPlane: controlPlane,
		Node:         &core.Node{Id: id},
		Health:       dp.reg,
		MinBackoff:   20 * time.Millisecond,
		MaxBackoff:   200 * time.Millisecond,
		Apply: func(spec *spec.Spec, version string) error {
			dp.mu.Lock()
			defer dp.mu.Unlock()
			if spec.Version != version {
				return fmt.Errorf("spec version %q, want %q", spec.Version, version)
			}
			if dp.reject != nil {
				if err := dp.reject(spec); err != nil {
					return err
				}
			}
			dp.versions = append(dp.versions, version)
			dp.specs = append(dp.specs, spec)
			return nil
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	dp.client = c
	ctx, cancel := context.WithCancel(context.Background())
	dp.cancel = cancel
	go func() {
		defer close(dp.done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("client %s: %v", id, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-dp.done })
	return dp
}

func (dp *dataPlane) applied() []string {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	return append([]string(nil), dp.versions...)
}

func (dp *dataPlane) record(name string) health.Record {
	for _, r := range dp.reg.Snapshot().Records {
		if r.Name == name {
			return r
		}
	}
	return health.Record{}
}

func (dp *dataPlane) ready() bool { return dp.reg.Evaluate(health.Readiness).OK }

// TestSplitMode: one control plane, three data planes. Each applies the published version
// once, reports it, and is counted at that version by the control plane; a change reaches
// all three.
func TestSplitMode(t *testing.T) {
	cp := startControlPlane(t, "tcp", "127.0.0.1:0", server.ServerOptions{})
	var dps []*dataPlane
	for i := range 3 {
		dp := startDataPlane(t, fmt.Sprintf("node-%d", i), []string{cp.addr}, nil)
		if dp.ready() {
			t.Fatal("a data plane is ready before its first version")
		}
		dps = append(dps, dp)
	}
	v1 := cp.publish(t, configWithTimeout("10s"))
	for i, dp := range dps {
		waitFor(t, fmt.Sprintf("node-%d at %s", i, v1), func() bool { return dp.client.Status().Version == v1 })
		for _, name := range []string{ListenerCheckName, RouteCheckName, ClusterCheckName, EndpointCheckName} {
			rec := dp.record(name)
			if rec.Status != health.Running || rec.Version != v1 || rec.Err != "" {
				t.Errorf("node-%d %s: %s at %q err %q, want RUNNING at %s", i, name, rec.Status, rec.Version, rec.Err, v1)
			}
		}
		if !dp.ready() {
			t.Errorf("node-%d not ready at %s: %s", i, v1, dp.reg.Evaluate(health.Readiness).FirstFailure())
		}
		if got := dp.reg.Snapshot().ConfigVersion; got != v1 {
			t.Errorf("node-%d config version %q, want %s", i, got, v1)
		}
	}
	waitFor(t, "3/3 nodes at v1", func() bool { return cp.attr("nodes") == "3/3" })

	v2 := cp.publish(t, configWithTimeout("20s"))
	if v2 == v1 {
		t.Fatal("a changed route kept the version")
	}
	for i, dp := range dps {
		waitFor(t, fmt.Sprintf("node-%d at %s", i, v2), func() bool { return dp.client.Status().Version == v2 })
		if got := dp.applied(); len(got) != 2 || got[0] != v1 || got[1] != v2 {
			t.Errorf("node-%d applied %v, want [%s %s]", i, got, v1, v2)
		}
		dp.mu.Lock()
		if rt := dp.specs[len(dp.specs)-1].Routes[0].Timeout; rt != 20*time.Second {
			t.Errorf("node-%d route timeout %s, want 20s", i, rt)
		}
		dp.mu.Unlock()
	}
	waitFor(t, "3/3 nodes at v2", func() bool { return cp.attr("nodes") == "3/3" && cp.attr("version") == v2 })
	for _, n := range cp.srv.Nodes() {
		if n.Version != v2 || n.NACK != nil {
			t.Errorf("node %s: version %q nack %v", n.ID, n.Version, n.NACK)
		}
	}
}

// TestRejectedVersion: a version the data plane cannot run is NACKed with a message naming
// the resource and field, visible on the control plane; the old version keeps running and
// readiness stays green; the rejection is not resent in a loop; the next good version
// clears it.
func TestRejectedVersion(t *testing.T) {
	cp := startControlPlane(t, "tcp", "127.0.0.1:0", server.ServerOptions{})
	v1 := cp.publish(t, configWithTimeout("10s"))
	dps := []*dataPlane{
		startDataPlane(t, "node-a", []string{cp.addr}, nil),
		startDataPlane(t, "node-b", []string{cp.addr}, nil),
	}
	for _, dp := range dps {
		waitFor(t, "v1 applied", func() bool { return dp.client.Status().Version == v1 })
	}

	bad := envoyOnly(t, configWithTimeout("10s"))
	if err := cp.srv.PublishResources(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	const want = `cluster "app": circuit_breakers: not supported by Gangway's data plane`
	waitFor(t, "both nodes rejecting", func() bool { return cp.attr("nodes_rejecting") == "2" })
	nk := cp.srv.LastNACK()
	if nk == nil || nk.Version != bad.Version || !strings.Contains(nk.Reason, want) || !strings.HasPrefix(nk.Node, "node-") {
		t.Fatalf("last NACK %+v, want version %s and reason %q", nk, bad.Version, want)
	}
	if got := cp.attr("last_nack_reason"); !strings.Contains(got, want) {
		t.Errorf("xds.server last_nack_reason %q", got)
	}
	for _, dp := range dps {
		st := dp.client.Status()
		if st.Version != v1 || st.Rejected != bad.Version {
			t.Errorf("status %+v: want serving %s, rejected %s", st, v1, bad.Version)
		}
		rec := dp.record(ClusterCheckName)
		if !strings.Contains(rec.Err, want) || rec.Version != v1 {
			t.Errorf("xds.cluster: err %q at %q, want the reason at %s", rec.Err, rec.Version, v1)
		}
		if !dp.ready() {
			t.Errorf("a rejected version failed readiness: %s", dp.reg.Evaluate(health.Readiness).FirstFailure())
		}
	}
	// No NACK loop: each node answers each type of the bad version once.
	nacks := dps[0].client.Status().NACKs
	time.Sleep(300 * time.Millisecond)
	if now := dps[0].client.Status().NACKs; now != nacks || nacks > 4 {
		t.Errorf("NACKs: %d, then %d 300ms later: want at most one per resource type, once", nacks, now)
	}

	v3 := cp.publish(t, configWithTimeout("30s"))
	for _, dp := range dps {
		waitFor(t, "v3 applied", func() bool { return dp.client.Status().Version == v3 })
		if rec := dp.record(ClusterCheckName); rec.Err != "" || rec.Version != v3 {
			t.Errorf("after a good version: xds.cluster err %q at %q", rec.Err, rec.Version)
		}
	}
	waitFor(t, "no node rejecting", func() bool { return cp.attr("nodes_rejecting") == "0" && cp.attr("nodes") == "2/2" })
}

// TestApplyError: an Apply failure is a NACK too, reported on xds.listener.
func TestApplyError(t *testing.T) {
	cp := startControlPlane(t, "tcp", "127.0.0.1:0", server.ServerOptions{})
	v1 := cp.publish(t, configWithTimeout("10s"))
	dp := startDataPlane(t, "node-a", []string{cp.addr}, nil)
	waitFor(t, "v1", func() bool { return dp.client.Status().Version == v1 })
	dp.mu.Lock()
	dp.reject = func(s *spec.Spec) error {
		if s.Routes[0].Timeout == 40*time.Second {
			return errors.New("listen tcp 127.0.0.1:8080: address already in use")
		}
		return nil
	}
	dp.mu.Unlock()
	v2 := cp.publish(t, configWithTimeout("40s"))
	waitFor(t, "NACK", func() bool { return cp.attr("last_nack_version") == v2 })
	if rec := dp.record(ListenerCheckName); !strings.Contains(rec.Err, "address already in use") {
		t.Errorf("xds.listener err %q", rec.Err)
	}
	if dp.client.Status().Version != v1 {
		t.Errorf("serving %s, want %s", dp.client.Status().Version, v1)
	}
	if got := dp.reg.Snapshot().ConfigVersion; got != v1 {
		t.Errorf("config version %s after a failed apply, want %s", got, v1)
	}
}

// TestControlPlaneLoss: killing the control plane leaves readiness green; a restarted one
// publishing the same configuration does not make data planes apply again.
func TestControlPlaneLoss(t *testing.T) {
	cp := startControlPlane(t, "tcp", "127.0.0.1:0", server.ServerOptions{})
	addr := cp.addr
	v1 := cp.publish(t, configWithTimeout("10s"))
	dp := startDataPlane(t, "node-a", []string{addr}, nil)
	waitFor(t, "v1", func() bool { return dp.client.Status().Version == v1 })

	cp.stop()
	waitFor(t, "disconnection reported", func() bool {
		rec := dp.record(ConnectionCheckName)
		return rec.Err != "" && !dp.client.Status().Connected
	})
	if !dp.ready() {
		t.Fatalf("a lost control plane failed readiness: %s", dp.reg.Evaluate(health.Readiness).FirstFailure())
	}
	time.Sleep(300 * time.Millisecond) // several reconnect attempts
	if !dp.ready() {
		t.Fatalf("readiness failed while reconnecting: %s", dp.reg.Evaluate(health.Readiness).FirstFailure())
	}

	cp2 := startControlPlane(t, "tcp", addr, server.ServerOptions{})
	if v := cp2.publish(t, configWithTimeout("10s")); v != v1 {
		t.Fatalf("the restarted control plane publishes %s for the same file, want %s", v, v1)
	}
	waitFor(t, "reconnected and acknowledged", func() bool { return cp2.attr("nodes") == "1/1" })
	if rec := dp.record(ConnectionCheckName); rec.Err != "" || rec.Status != health.Running {
		t.Errorf("xds.connection after reconnect: %s %q", rec.Status, rec.Err)
	}
	if got := dp.applied(); len(got) != 1 {
		t.Errorf("applied %v: an unchanged version was applied again", got)
	}
}

// TestFailoverBetweenReplicas: two control planes behind one name (every address used);
// the data plane moves to the survivor without applying again.
func TestFailoverBetweenReplicas(t *testing.T) {
	a := startControlPlane(t, "tcp", "127.0.0.1:0", server.ServerOptions{})
	_, port, _ := net.SplitHostPort(a.addr)
	b := startControlPlane(t, "tcp", net.JoinHostPort("127.0.0.2", port), server.ServerOptions{})
	va := a.publish(t, configWithTimeout("10s"))
	if vb := b.publish(t, configWithTimeout("10s")); vb != va {
		t.Fatalf("replicas publish %s and %s for the same configuration", va, vb)
	}
	// DNS with two A records cannot be served here; LookupHost is the boundary.
	lookup := func(ctx context.Context, host string) ([]string, error) {
		if host != "control.test" {
			return nil, fmt.Errorf("no such host %s", host)
		}
		return []string{"127.0.0.1", "127.0.0.2"}, nil
	}
	dp := startDataPlane(t, "node-a", []string{"dns:///control.test:" + port}, func(o *ClientOptions) { o.LookupHost = lookup })
	waitFor(t, "applied", func() bool { return dp.client.Status().Version == va })
	waitFor(t, "one replica counts the node", func() bool { return a.attr("nodes") == "1/1" || b.attr("nodes") == "1/1" })
	first, other := a, b
	if b.attr("nodes") == "1/1" {
		first, other = b, a
	}
	first.stop()
	waitFor(t, "the other replica has the node", func() bool { return other.attr("nodes") == "1/1" })
	if got := dp.applied(); len(got) != 1 {
		t.Errorf("applied %v after failover: want the version once", got)
	}
	if !dp.ready() {
		t.Error("not ready after failover")
	}
}

// TestUnixSocket: all-in-one mode talks over a unix socket.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "xds.sock")
	cp := startControlPlane(t, "unix", sock, server.ServerOptions{})
	v := cp.publish(t, configWithTimeout("10s"))
	dp := startDataPlane(t, "node-a", []string{"unix://" + sock}, nil)
	waitFor(t, "applied over the socket", func() bool { return dp.client.Status().Version == v })
}

// TestSameFileSameVersion: two control planes compiling the same file publish the same
// version string.
func TestSameFileSameVersion(t *testing.T) {
	var versions []string
	for range 2 {
		cp := startControlPlane(t, "tcp", "127.0.0.1:0", server.ServerOptions{})
		cfg, err := config.Load("../resource/testdata/routing.yaml")
		if err != nil {
			t.Fatal(err)
		}
		v, err := cp.srv.Publish(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
		if cp.attr("version") != v {
			t.Errorf("xds.server version %q, want %s", cp.attr("version"), v)
		}
	}
	if versions[0] != versions[1] {
		t.Errorf("versions %v differ", versions)
	}
}

// TestClientRejectsBadTargets: a control-plane address that cannot work fails at once.
func TestClientRejectsBadTargets(t *testing.T) {
	for _, targets := range [][]string{nil, {"http://x:1"}, {"no-port"}, {"unix:///a.sock", "127.0.0.1:1"}} {
		_, err := NewClient(ClientOptions{ControlPlane: targets, Node: &core.Node{Id: "n"}, Health: health.NewRegistry(),
			Apply: func(*spec.Spec, string) error { return nil }})
		if err == nil {
			t.Errorf("targets %q accepted", targets)
		}
	}
}

// TestMutualTLS: split mode over TLS with client certificates; a data plane without a
// certificate is refused and says so on xds.connection.
func TestMutualTLS(t *testing.T) {
	const certs = "../../../docs/examples/certs/"
	serverTLS, err := xds.ServerTLS(certs+"server.crt", certs+"server.key", certs+"ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	cp := startControlPlane(t, "tcp", "127.0.0.1:0", server.ServerOptions{TLS: serverTLS})
	v := cp.publish(t, configWithTimeout("10s"))
	_, port, _ := net.SplitHostPort(cp.addr)

	withCert, err := xds.ClientTLS(certs+"ca.pem", "localhost", certs+"client.crt", certs+"client.key")
	if err != nil {
		t.Fatal(err)
	}
	good := startDataPlane(t, "with-cert", []string{"grpcs://localhost:" + port}, func(o *ClientOptions) { o.TLS = withCert })
	waitFor(t, "applied over mTLS", func() bool { return good.client.Status().Version == v })

	noCert, err := xds.ClientTLS(certs+"ca.pem", "localhost", "", "")
	if err != nil {
		t.Fatal(err)
	}
	bad := startDataPlane(t, "without-cert", []string{cp.addr}, func(o *ClientOptions) { o.TLS = noCert })
	waitFor(t, "refusal reported", func() bool { return bad.record(ConnectionCheckName).Err != "" })
	t.Logf("without a client certificate: %s", bad.record(ConnectionCheckName).Err)
	if bad.client.Status().Version != "" || bad.ready() {
		t.Errorf("a data plane without a client certificate got version %q", bad.client.Status().Version)
	}
	if _, err := xds.ClientTLS("", "", certs+"client.crt", ""); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}

// TestSharingCodec: the codec's encoding of a response decodes to the same response as
// gRPC's proto codec gives.
