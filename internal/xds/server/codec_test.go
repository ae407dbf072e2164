package server

import (
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/xds/resource"
)

func TestSharingCodec(t *testing.T) {
	cfg, err := config.Parse("codec.yaml", []byte(`
listeners: [{name: l, address: "127.0.0.1:0"}]
routes: [{name: r, cluster: a}]
clusters:
  - {name: a, endpoints: ["127.0.0.1:1"]}
  - {name: b, endpoints: ["127.0.0.1:2", "127.0.0.1:3"]}
  - {name: c, dns: {name: c.internal, port: 80}}
`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := resource.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newSharedCache()
	if err := c.set(res.Version, map[string][]proto.Message{resource.ClusterType: resource.Messages(res.Clusters)}); err != nil {
		t.Fatal(err)
	}
	var anys []*anypb.Any
	for _, n := range c.types[resource.ClusterType].names {
		anys = append(anys, c.types[resource.ClusterType].anys[n])
	}
	resp := &discovery.DiscoveryResponse{VersionInfo: res.Version, TypeUrl: resource.ClusterType, Nonce: "7", Resources: anys,
		ControlPlane: &core.ControlPlane{Identifier: "cp-1"}}
	codec := newSharingCodec()
	enc, err := codec.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) < 1+2*len(anys) {
		t.Errorf("%d buffers: the resources were copied, not shared", len(enc))
	}
	got := &discovery.DiscoveryResponse{}
	if err := proto.Unmarshal(enc.Materialize(), got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, resp) {
		t.Errorf("decoded %v\nwant %v", got, resp)
	}
	for i, a := range got.Resources {
		m, err := a.UnmarshalNew()
		if err != nil || !proto.Equal(m, res.Clusters[i]) {
			t.Errorf("resource %d: %v", i, err)
		}
	}
}
