// Package xds is Gangway's control plane and the data plane's side of it.
//
//   - Compile turns a validated configuration into Envoy xDS resources (Listener,
//     RouteConfiguration, Cluster, ClusterLoadAssignment), named by a version that is a hash
//     of their content: two control planes compiling the same configuration publish the same
//     version.
//   - Server publishes those resources over ADS (go-control-plane's snapshot cache) and tracks
//     which nodes acknowledged or rejected each version, as the "xds.server" health check.
//   - Client is the data plane's ADS client: it turns the resources it receives into a
//     proxy.Spec (ToSpec), rejects what the data plane cannot run with a NACK that names the
//     resource and field, applies each new version once, and reports the "xds.*" checks.
//
// Every Gangway-specific setting without an Envoy equivalent travels in the resources'
// metadata under filter_metadata["gangway"]; docs/xds.md lists them.
package xds
