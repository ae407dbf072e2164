// Package xds is what both ends of Gangway's ADS connection share: the syntax of the
// control-plane address list (ParseTargets), the TLS settings of either end and the message
// size limit. The work is in three packages below it:
//
//   - resource: the Spec ⇄ Envoy resources translation in both directions. Compile turns a
//     validated configuration into Listener, RouteConfiguration, Cluster and
//     ClusterLoadAssignment resources named by a version that is a hash of their content (two
//     control planes compiling the same configuration publish the same version); ToSpec
//     turns resources back into a spec.Spec, refusing with a field path whatever the data
//     plane cannot run (the field allow-lists); EnvoyBootstrap builds an Envoy's bootstrap.
//   - server: the ADS server (the control plane), its shared snapshot cache and codec, and
//     the "xds.server" health check that tracks which nodes acknowledged or rejected each
//     version.
//   - client: the data plane's ADS client and resolver: it applies each new version once,
//     as a *spec.Spec, answers a NACK that names the resource and field for what it cannot
//     run, and reports the "xds.*" checks.
//
// Every Gangway-specific setting without an Envoy equivalent travels in the resources'
// metadata under filter_metadata["gangway"]; docs/xds.md lists them. None of these packages
// imports the data plane (internal/proxy): the client hands each Spec to an Apply function.
package xds
