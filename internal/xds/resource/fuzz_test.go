package resource

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
)

// FuzzToSpec: resources come from the network; whatever they hold, ToSpec returns a Spec
// that passes Validate or an error, and never panics. One resource of a compiled set is
// replaced by the fuzzed bytes, decoded as its type.
func FuzzToSpec(f *testing.F) {
	base, err := Compile(parseFile(f, "testdata/routing.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for i, m := range []proto.Message{base.Listeners[0], base.Routes[0], base.Clusters[0], base.Endpoints[0]} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		res := &Resources{
			Version:   "fuzz",
			Listeners: append([]*listener.Listener(nil), base.Listeners...),
			Routes:    append([]*route.RouteConfiguration(nil), base.Routes...),
			Clusters:  append([]*cluster.Cluster(nil), base.Clusters...),
			Endpoints: append([]*endpoint.ClusterLoadAssignment(nil), base.Endpoints...),
		}
		var err error
		switch kind % 4 {
		case 0:
			m := &listener.Listener{}
			err = proto.Unmarshal(b, m)
			res.Listeners[0] = m
		case 1:
			m := &route.RouteConfiguration{}
			err = proto.Unmarshal(b, m)
			res.Routes[0] = m
		case 2:
			m := &cluster.Cluster{}
			err = proto.Unmarshal(b, m)
			res.Clusters[0] = m
		default:
			m := &endpoint.ClusterLoadAssignment{}
			err = proto.Unmarshal(b, m)
			res.Endpoints[0] = m
		}
		if err != nil {
			return
		}
		spec, err := ToSpec(res)
		if err != nil {
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("ToSpec returned a spec that fails Validate: %v", err)
		}
	})
}
