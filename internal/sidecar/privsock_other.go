//go:build !linux

package sidecar

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
)

// listenPrivateADS listens on the private ADS socket of services: all and returns the
// listener and the gRPC target that reaches it. Without Linux's abstract sockets it is a
// file in a new 0700 directory under the temporary directory ($TMPDIR), removed when the
// listener closes. Where nothing is writable, the error names the settings that fix it.
func listenPrivateADS(*slog.Logger) (net.Listener, string, error) {
	dir, err := os.MkdirTemp("", "gangway-ads-")
	if err != nil {
		return nil, "", fmt.Errorf("%w: services: all needs a writable directory for its private socket: set TMPDIR to one, or xds.address to unix:///a/writable/path or 127.0.0.1:PORT", err)
	}
	path := filepath.Join(dir, "ads.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return &dirListener{Listener: ln, dir: dir}, "unix://" + path, nil
}

// dirListener removes the socket's directory when it closes.
type dirListener struct {
	net.Listener
	dir string
}

func (l *dirListener) Close() error {
	err := l.Listener.Close()
	os.RemoveAll(l.dir)
	return err
}
