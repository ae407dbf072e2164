package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/testcert"
)

// writeCerts writes, into dir, a CA (ca.pem), a server certificate signed by it (tls.crt,
// tls.key), a key that matches nothing (other.key) and a file without PEM data
// (garbage.pem).
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	ca := testcert.New(t, "gangway test CA")
	cert, key := ca.Issue(t, "localhost", 2, 24*time.Hour)
	_, other := ca.Issue(t, "other", 3, 24*time.Hour)
	files := map[string][]byte{
		"ca.pem":      ca.PEM,
		"tls.crt":     cert,
		"tls.key":     key,
		"other.key":   other,
		"garbage.pem": []byte("not PEM at all\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
