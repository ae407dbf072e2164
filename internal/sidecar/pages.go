package sidecar

import (
	"log/slog"
	"sync"
	"time"

	"github.com/gangway-ecs/gangway/internal/startpages"
)

// pagesSettle is how long after the last configuration change the executable's pages are
// given back again.
const pagesSettle = 2 * time.Second

// pageReleaser gives back the executable's pages that building a configuration touched,
// as `proxy run` does once its first configuration is built (internal/startpages), after
// every later one too: a reload or an xDS version runs the same code again (the
// configuration's trip through xDS and back), which left 7 MiB more of the binary
// resident after the first reload. Changes that follow one another within pagesSettle are
// released once, pagesSettle after the last.
type pageReleaser struct {
	mu      sync.Mutex
	t       *time.Timer
	settle  time.Duration
	release func()
	stopped bool
}

func newPageReleaser(settle time.Duration, log *slog.Logger) *pageReleaser {
	return &pageReleaser{settle: settle, release: func() { releasePages(log, "configuration change") }}
}

// releasePages gives back the executable's pages that were touched, logging what it did.
func releasePages(log *slog.Logger, after string) {
	if res, err := startpages.Release(); err != nil {
		log.Debug("executable pages not released", "after", after, "error", err)
	} else {
		log.Debug("executable pages released", "after", after, "bytes", res.Released, "mappings", res.Mappings, "kept", res.Kept)
	}
}

// changed notes a configuration change: the release runs settle after the last one.
func (r *pageReleaser) changed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.stopped:
	case r.t == nil:
		r.t = time.AfterFunc(r.settle, r.release)
	default:
		r.t.Reset(r.settle)
	}
}

// stop cancels a release not yet run; later changes release nothing.
func (r *pageReleaser) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.t != nil {
		r.t.Stop()
	}
}
