package resource

import "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

// The xDS type URLs of the resources Gangway publishes.
const (
	ListenerType = resource.ListenerType
	RouteType    = resource.RouteType
	ClusterType  = resource.ClusterType
	EndpointType = resource.EndpointType
)
