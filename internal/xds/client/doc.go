// Package client is the data plane's ADS client: it dials the control plane (every address
// of a DNS name, re-resolved), subscribes to listeners, routes, clusters and endpoints,
// turns each complete version into a *spec.Spec, hands it to ClientOptions.Apply once, and
// answers a NACK naming the resource and field it cannot run. It reports the "xds.*" checks.
package client
