// Package server is the ADS server of the control plane: it publishes a version of resources
// to every connected data plane from one shared cache, encodes each resource once per
// version for all streams, and tracks which nodes acknowledged or rejected each version as
// the "xds.server" health check.
package server
