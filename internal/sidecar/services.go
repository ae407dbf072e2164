package sidecar

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/proxy"
	"github.com/gangway-ecs/gangway/internal/spec"
	"github.com/gangway-ecs/gangway/internal/xds"
	"github.com/gangway-ecs/gangway/internal/xds/client"
	"github.com/gangway-ecs/gangway/internal/xds/server"
)

// services are what the `services` setting runs in this process: the control plane (an
// ADS server publishing the configuration file as xDS resources), the data plane (an ADS
// client applying them to a proxy.Server), or both. With services: all both run here,
// connected over a private unix socket (listenPrivateADS: abstract on Linux, so that a
// read-only root file system suffices): the same path as split mode, so readiness means
// "the latest version is applied" in both.
//
// services is the data plane's lifecycle.Drainer: the ADS client stops before the data
// plane stops accepting (no version lands mid-drain), and the control plane stops last.
type services struct {
	log  *slog.Logger
	mode config.Services

	control     *server.Server
	stopControl context.CancelFunc

	client     *client.Client
	dp         *proxy.DataPlane
	stopClient context.CancelFunc

	pages *pageReleaser // gives back the pages each new configuration touched

	wg sync.WaitGroup
}

// defaultControlAddress is where a services: control process serves ADS by default.
const defaultControlAddress = ":18000"

// firstVersionWait bounds how long services: all waits for its own first version.
const firstVersionWait = 30 * time.Second

// startServices starts what cfg.Services selects. nodeID names this data plane to the
// control plane.
func startServices(cfg *config.Config, reg *health.Registry, opts proxy.Options, nodeID string, log *slog.Logger) (*services, error) {
	s := &services{log: log, mode: cfg.Services, pages: newPageReleaser(pagesSettle, log)}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	var controlPlane []string
	if cfg.Services != config.ServicesProxy {
		addr := cfg.XDS.Address
		private := addr == "" && cfg.Services == config.ServicesAll
		if addr == "" && !private {
			addr = defaultControlAddress
		}
		var serverTLS *tls.Config
		if t := cfg.XDS.TLS; t != nil {
			var err error
			if serverTLS, err = xds.ServerTLS(t.CertFile, t.KeyFile, t.CAFile); err != nil {
				return nil, fmt.Errorf("xds.tls: %w", err)
			}
		}
		srv, err := server.NewServer(server.ServerOptions{Health: reg, Logger: log, TLS: serverTLS})
		if err != nil {
			return nil, err
		}
		if _, err := srv.Publish(context.Background(), cfg); err != nil {
			return nil, err
		}
		var ln net.Listener
		if private {
			if ln, addr, err = listenPrivateADS(log); err != nil {
				return nil, fmt.Errorf("xds: private socket: %w", err)
			}
		} else if ln, err = listenADS(addr); err != nil {
			return nil, fmt.Errorf("xds.address %s: %w", addr, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.control, s.stopControl = srv, cancel
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
				log.Error("ADS server stopped", "error", err)
			}
		}()
		controlPlane = []string{addr}
	}

	if cfg.Services != config.ServicesControl {
		var clientTLS *tls.Config
		if cfg.Services == config.ServicesProxy {
			controlPlane = cfg.ControlPlaneURL
			if t := cfg.XDS.TLS; t != nil {
				var err error
				if clientTLS, err = xds.ClientTLS(t.CAFile, t.ServerName, t.CertFile, t.KeyFile); err != nil {
					return nil, fmt.Errorf("xds.tls: %w", err)
				}
			}
		}
		s.dp = proxy.NewDataPlane(context.Background(), opts)
		client, err := client.NewClient(client.ClientOptions{
			ControlPlane: controlPlane,
			Node:         &core.Node{Id: nodeID},
			Apply: func(sp *spec.Spec, version string) error {
				err := s.dp.Apply(sp, version)
				if err == nil {
					s.pages.changed()
				}
				return err
			},
			Health: reg,
			Logger: log,
			TLS:    clientTLS,
		})
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.client, s.stopClient = client, cancel
		s.wg.Add(1)
		go func() { defer s.wg.Done(); client.Run(ctx) }()
	}
	ok = true
	return s, nil
}

// checkListeners binds each traffic listener's address once, before anything starts, so that
// an address that cannot be listened on (in use, or a privileged port) is the first and only
// error, naming the address and the setting it came from. Without it, the first xDS version
// is published, rejected by the data plane on every resource type, and the cause comes last.
// Only services: all has its listeners in its own configuration; a split-mode data plane
// learns them from the control plane.
func checkListeners(cfg *config.Config) error {
	if cfg.Services != config.ServicesAll {
		return nil
	}
	for i, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err == nil {
			ln.Close()
			continue
		}
		setting := fmt.Sprintf("%s: listeners[%d].address", cfg.File, i)
		if cfg.File == "$"+config.EnvUpstream {
			setting = "$" + config.EnvListenAddr
		}
		hint := ""
		if errors.Is(err, syscall.EADDRINUSE) {
			hint = ": another process is listening there; stop it, or set " + setting + " to a free address"
		}
		return fmt.Errorf("listener %q cannot listen on %s (%s): %w%s", l.Name, l.Address, setting, err, hint)
	}
	return nil
}

// listenADS listens on host:port or unix:///path.
func listenADS(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		os.Remove(path) // a socket left by a process that was killed
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

// waitFirstVersion waits until the data plane applied its first version. services: all
// uses it at start so that a configuration its own data plane rejects (a listener address in
// use, say) fails `proxy run` at once instead of leaving a process that is never ready.
func (s *services) waitFirstVersion(ctx context.Context) error {
	if s.client == nil || s.mode != config.ServicesAll {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, firstVersionWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		st := s.client.Status()
		switch {
		case st.Applies > 0:
			return nil
		case st.Rejected != "":
			return fmt.Errorf("the data plane rejected the configuration: %s", st.Reason)
		}
		select {
		case <-ctx.Done():
			return errors.New("the data plane did not apply the configuration within " + firstVersionWait.String())
		case <-tick.C:
		}
	}
}

// publish makes cfg the version the control plane serves (services all and control).
func (s *services) publish(ctx context.Context, cfg *config.Config) (string, error) {
	if s.control == nil {
		return "", nil
	}
	return s.control.Publish(ctx, cfg)
}

func (s *services) server() *proxy.Server {
	if s.dp == nil {
		return nil
	}
	return s.dp.Server()
}

// ActiveConns is the data plane's open downstream connections.
func (s *services) ActiveConns() int {
	if srv := s.server(); srv != nil {
		return srv.ActiveConns()
	}
	return 0
}

// StopAccepting stops the ADS client, so that no version is applied while draining, then
// the data plane's listeners.
func (s *services) StopAccepting() {
	if s.stopClient != nil {
		s.stopClient()
	}
	if srv := s.server(); srv != nil {
		srv.StopAccepting()
	}
}

// Drain waits for the data plane's in-flight requests.
func (s *services) Drain(ctx context.Context) int {
	if srv := s.server(); srv != nil {
		return srv.Drain(ctx)
	}
	return 0
}

// Close closes the data plane, then the control plane, and waits for both.
func (s *services) Close() {
	s.pages.stop()
	if s.stopClient != nil {
		s.stopClient()
	}
	if srv := s.server(); srv != nil {
		srv.Close()
	}
	if s.stopControl != nil {
		s.stopControl()
	}
	s.wg.Wait()
}

// nodeID names this data plane to the control plane: xds.node_id, else the ECS task ID,
// else the host name and process ID.
func nodeID(cfg *config.Config, taskARN string) string {
	if cfg.XDS.NodeID != "" {
		return cfg.XDS.NodeID
	}
	if i := strings.LastIndexByte(taskARN, '/'); i >= 0 && i < len(taskARN)-1 {
		return taskARN[i+1:]
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
