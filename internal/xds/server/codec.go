package server

import (
	"fmt"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// sharingCodec is the ADS server's gRPC codec. It encodes a DiscoveryResponse without
// copying its resources: the encoded message is a list of buffers that point at each
// resource's encoding, which sharedCache made once per version for every stream. gRPC's
// proto codec would copy every resource into a new buffer per stream, and keep them all
// until each data plane has read its response. Everything else goes to gRPC's proto codec.
type sharingCodec struct {
	proto encoding.CodecV2
}

func newSharingCodec() *sharingCodec {
	return &sharingCodec{proto: encoding.GetCodecV2(proto.Name)}
}

func (c *sharingCodec) Name() string { return proto.Name }

func (c *sharingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// DiscoveryResponse field numbers.
const (
	responseResourcesField = 2
	anyTypeURLField        = 1
	anyValueField          = 2
)

func (c *sharingCodec) Marshal(v any) (mem.BufferSlice, error) {
	resp, ok := v.(*discovery.DiscoveryResponse)
	if !ok || len(resp.GetResources()) == 0 {
		return c.proto.Marshal(v)
	}
	// Every field but the resources, encoded as usual (a shallow copy); then the resources,
	// as field 2: fields may come in any order on the wire.
	src := resp.ProtoReflect()
	head := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Number() != responseResourcesField {
			head.Set(fd, v)
		}
		return true
	})
	head.SetUnknown(src.GetUnknown())
	b, err := gproto.Marshal(head.Interface())
	if err != nil {
		return nil, fmt.Errorf("encode discovery response: %w", err)
	}
	out := mem.BufferSlice{mem.SliceBuffer(b)}
	for _, a := range resp.GetResources() {
		anyLen := protowire.SizeTag(anyTypeURLField) + protowire.SizeBytes(len(a.GetTypeUrl())) +
			protowire.SizeTag(anyValueField) + protowire.SizeBytes(len(a.GetValue()))
		var p []byte
		p = protowire.AppendTag(p, responseResourcesField, protowire.BytesType)
		p = protowire.AppendVarint(p, uint64(anyLen))
		p = protowire.AppendTag(p, anyTypeURLField, protowire.BytesType)
		p = protowire.AppendString(p, a.GetTypeUrl())
		p = protowire.AppendTag(p, anyValueField, protowire.BytesType)
		p = protowire.AppendVarint(p, uint64(len(a.GetValue())))
		// SliceBuffer does not copy and its Free does nothing: the bytes stay the cache's.
		out = append(out, mem.SliceBuffer(p), mem.SliceBuffer(a.GetValue()))
	}
	return out, nil
}
