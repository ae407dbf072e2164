package sidecar

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
)

// listenPrivateADS listens on the private ADS socket of services: all and returns the
// listener and the gRPC target that reaches it.
//
// On Linux the socket is abstract ("@gangway-xds-<pid>-<random>"): it lives in the network
// namespace, not in a directory, so it needs nothing writable. That is what ECS gives the
// proxy: a read-only root file system, no /tmp, user 65532.
//
// An abstract socket has no file permissions: any process in the network namespace could
// connect, and in an awsvpc task that includes the application's containers. The listener
// therefore accepts only connections whose peer is this process (SO_PEERCRED), which is
// stricter than the 0700 directory the socket used to live in.
func listenPrivateADS(log *slog.Logger) (net.Listener, string, error) {
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, "", err
	}
	name := fmt.Sprintf("@gangway-xds-%d-%s", os.Getpid(), hex.EncodeToString(suffix[:]))
	ln, err := net.Listen("unix", name)
	if err != nil {
		return nil, "", fmt.Errorf("abstract unix socket %s: %w (set xds.address to 127.0.0.1:PORT or unix:///a/writable/path instead)", name, err)
	}
	// gRPC's unix resolver dials the opaque part of "unix:@name" as written, and Go maps
	// the leading @ to the abstract namespace.
	return &samePIDListener{Listener: ln, pid: os.Getpid(), log: log}, "unix:" + name, nil
}

// samePIDListener drops connections from any process but pid.
type samePIDListener struct {
	net.Listener
	pid int
	log *slog.Logger
}

// Accept returns the next connection from this process; it closes the others and keeps
// accepting, so that a stranger's connection never stops the ADS server.
func (l *samePIDListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		pid, err := peerPID(c)
		if err == nil && pid == l.pid {
			return c, nil
		}
		c.Close()
		if err == nil {
			err = fmt.Errorf("peer is process %d", pid)
		}
		l.log.Warn("xds: private socket: connection refused: only this process may connect", "error", err)
	}
}

func peerPID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, errors.New("not a unix connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return int(cred.Pid), nil
}
