package main

// The container image has no CA bundle: these roots, compiled in, verify upstream TLS and
// the AWS APIs the proxy calls (ECS discovery, task metadata is plain HTTP). Go uses them only
// when the system has none, so on a host or an image with /etc/ssl/certs (or SSL_CERT_FILE)
// those win. They are Mozilla's set, updated with the golang.org/x/crypto/x509roots/fallback
// module; docs/image.md says why they are not a file in the image.
import _ "golang.org/x/crypto/x509roots/fallback"
