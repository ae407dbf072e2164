package upstream

import "crypto/tls"

// TLS12CipherSuites are the TLS 1.2 cipher suites Gangway offers and accepts, on listeners
// and to upstreams: ECDHE with an AEAD only. Go's defaults add ECDHE with AES-CBC and
// HMAC-SHA1, open to padding-oracle timing (Lucky Thirteen); every client of this decade
// speaks one of these. TLS 1.3's suites are all AEAD and not configurable.
var TLS12CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}
