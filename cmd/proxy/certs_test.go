package main

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/testcert"
)

// testCert is a certificate for localhost and 127.0.0.1 from a CA of its own, written to
// files; cert is the CA that a client trusts to accept it.
type testCert struct {
	cert              *x509.Certificate
	certFile, keyFile string
}

func newTestCert(t *testing.T, dir, name, cn string) *testCert {
	t.Helper()
	ca := testcert.New(t, cn+" CA")
	certPEM, keyPEM := ca.Issue(t, cn, 2, 24*time.Hour)
	return &testCert{
		cert:     ca.Cert,
		certFile: testcert.WriteFile(t, dir, name+".crt", certPEM),
		keyFile:  testcert.WriteFile(t, dir, name+".key", keyPEM),
	}
}
