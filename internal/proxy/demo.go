package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// demoServer is the built-in demo application that the embedded default configuration
// routes to: GET / answers a short text naming Gangway, the path and the time; /healthz
// answers 200.
type demoServer struct {
	addr string
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
	// serving is set by serve; done is closed when serving has ended.
	serving bool
	done    chan struct{}
}

// DemoHandler is the demo application's handler.
func DemoHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from the Gangway demo upstream.\npath: %s\ntime: %s\n", r.URL.Path, time.Now().UTC().Format(time.RFC3339))
	})
	return mux
}

func startDemo(ctx context.Context, addr string, log *slog.Logger) (*demoServer, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo upstream: %w", err)
	}
	return &demoServer{
		addr: addr,
		ln:   ln,
		log:  log,
		done: make(chan struct{}),
		srv: &http.Server{
			Handler:           DemoHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       5 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}, nil
}

// serve starts answering on the socket startDemo bound; a change that is rolled back never
// calls it, so its demo answers no request.
func (d *demoServer) serve() {
	d.serving = true
	go func() {
		defer close(d.done)
		if err := d.srv.Serve(d.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("demo upstream stopped", "err", err)
		}
	}()
	d.log.Info("demo upstream listening", "address", d.ln.Addr().String())
}

// stop shuts the demo down, waiting for requests until ctx ends.
func (d *demoServer) stop(ctx context.Context) {
	if !d.serving {
		d.ln.Close()
		return
	}
	if err := d.srv.Shutdown(ctx); err != nil {
		d.srv.Close()
	}
	<-d.done
}
