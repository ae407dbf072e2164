package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
	"github.com/gangway-ecs/gangway/internal/upstream"
)

// certReloadInterval is how often, at most, a listener looks at its certificate files.
const certReloadInterval = time.Second

// certReloader serves a certificate pair from disk and re-reads it when the files change
// (modification time or size), looking at most once per certReloadInterval, on a TLS
// handshake. A file that fails to load keeps the last good pair in service.
type certReloader struct {
	certFile, keyFile string
	onChange          func()

	cur       atomic.Pointer[tls.Certificate]
	lastCheck atomic.Int64 // unix nanos

	mu       sync.Mutex
	certStat fileStamp
	keyStat  fileStamp
	lastErr  error
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// newCertReloader loads the pair once; a failure here is fatal for the listener.
func newCertReloader(certFile, keyFile string, onChange func()) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, onChange: onChange}
	if err := r.reload(); err != nil {
		return nil, err
	}
	r.lastCheck.Store(time.Now().UnixNano())
	return r, nil
}

// reload reads the pair if the files changed since the last successful load, then tells
// onChange (outside the lock) when the certificate or the error changed.
func (r *certReloader) reload() error {
	changed, err := r.load()
	if changed && r.onChange != nil {
		r.onChange()
	}
	return err
}

func (r *certReloader) load() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prevErr := r.lastErr
	fail := func(err error) (bool, error) {
		r.lastErr = fmt.Errorf("certificate %s: %w", r.certFile, err)
		return prevErr == nil || prevErr.Error() != r.lastErr.Error(), r.lastErr
	}
	cs, err1 := stamp(r.certFile)
	ks, err2 := stamp(r.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		return fail(err)
	}
	if r.cur.Load() != nil && cs == r.certStat && ks == r.keyStat {
		return false, r.lastErr
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fail(err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fail(err)
		}
	}
	r.cur.Store(&cert)
	r.certStat, r.keyStat, r.lastErr = cs, ks, nil
	return true, nil
}

// GetCertificate is the tls.Config hook.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now().UnixNano()
	if last := r.lastCheck.Load(); now-last >= int64(certReloadInterval) && r.lastCheck.CompareAndSwap(last, now) {
		r.reload()
	}
	return r.cur.Load(), nil
}

// state returns the served certificate's expiry and the last reload error.
func (r *certReloader) state() (time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var exp time.Time
	if c := r.cur.Load(); c != nil && c.Leaf != nil {
		exp = c.Leaf.NotAfter
	}
	return exp, r.lastErr
}

// serverTLSConfig builds a listener's TLS configuration: TLS 1.2 at least with AEAD suites
// only, certificates from the reloader, and the client certificate policy.
func serverTLSConfig(sp *spec.ServerTLS, certs *certReloader) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: upstream.TLS12CipherSuites, GetCertificate: certs.GetCertificate}
	if sp.ClientAuth != spec.NoClientCert {
		pem, err := os.ReadFile(sp.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate found", sp.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if sp.ClientAuth == spec.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}
