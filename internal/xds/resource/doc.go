// Package resource translates between the runtime model and Envoy xDS resources, both ways:
// Compile and FromSpec build the resources a control plane publishes, ToSpec reads them back
// into a spec.Spec or refuses them with the resource and field named, and EnvoyBootstrap
// builds the bootstrap of an Envoy fed by the same control plane. It holds the field
// allow-lists that make a refusal precise, and the Gangway metadata keys.
package resource
