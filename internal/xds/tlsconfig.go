package xds

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ServerTLS returns the control plane's TLS configuration. With clientCAFile set, every data
// plane must present a certificate that chains to it (mTLS). The key pair is read again on
// each handshake, so a rotated certificate is used without a restart; ADS connections are
// long-lived, so handshakes are rare.
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return nil, fmt.Errorf("xds server certificate %s: %w", certFile, err)
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("xds server certificate %s: %w", certFile, err)
			}
			return &c, nil
		},
	}
	if clientCAFile != "" {
		pool, err := loadPool(clientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientTLS returns a data plane's TLS configuration for the control plane: servers verified
// against caFile (the system roots when empty) under serverName (the dialled host when
// empty), and a client certificate when certFile and keyFile are set (mTLS).
func ClientTLS(caFile, serverName, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("xds client certificate: set both the certificate and the key, or neither")
	}
	if certFile != "" {
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, fmt.Errorf("xds client certificate %s: %w", certFile, err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("xds client certificate %s: %w", certFile, err)
			}
			return &c, nil
		}
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("xds CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("xds CA %s: no PEM certificate", file)
	}
	return pool, nil
}

// maxMessageSize bounds one xDS message, both ways.
const MaxMessageSize = 64 << 20
