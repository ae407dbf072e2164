package proxy

import (
	"context"
	"sync"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// DataPlane runs the versions an xDS client receives on a Server: the first version builds
// and starts the server (a data plane fed over xDS has nothing to serve before it), later
// ones are applied to it. Its Apply is the client's ClientOptions.Apply.
type DataPlane struct {
	ctx  context.Context
	opts Options

	mu  sync.Mutex
	srv *Server
}

// NewDataPlane returns a DataPlane that builds its server with opts and starts it with ctx.
func NewDataPlane(ctx context.Context, opts Options) *DataPlane {
	return &DataPlane{ctx: ctx, opts: opts}
}

// Apply starts the server with spec, or applies spec to it.
func (d *DataPlane) Apply(spec *spec.Spec, _ string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.srv != nil {
		return d.srv.Apply(spec)
	}
	srv, err := New(spec, d.opts)
	if err != nil {
		return err
	}
	if err := srv.Start(d.ctx); err != nil {
		srv.Close() // releases its metrics, so that the next version can build a server
		return err
	}
	d.srv = srv
	return nil
}

// Server returns the running server, or nil before the first version.
func (d *DataPlane) Server() *Server {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.srv
}
