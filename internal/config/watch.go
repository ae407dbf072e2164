package config

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// watchDebounce is how long the directory must stay quiet before the file is read:
	// editors and atomic writers produce bursts of events for one change.
	watchDebounce = 100 * time.Millisecond
	// watchPoll re-reads the file even without events, for file systems that deliver none
	// (some network and bind mounts).
	watchPoll = 10 * time.Second
)

// Watcher reports changes to a configuration file's content. Create it with Watch.
type Watcher struct {
	path     string // absolute
	onChange func()
	poll     time.Duration
	fw       *fsnotify.Watcher
	last     [sha256.Size]byte
	present  bool // whether the file existed when last read
	done     chan struct{}
}

// Watch watches the file at path and calls onChange, from a single goroutine and never
// concurrently, each time the file's content differs from what it was when last read (first
// when Watch is called). It watches the file's directory rather than the file, so it follows
// editors that write a new file and rename it over the old one, and symlink swaps such as
// Kubernetes' and ECS volume updates (config.yaml -> ..data/config.yaml, ..data replaced);
// when path is a symlink, the target's directory is watched too. Bursts of events are
// debounced (100 ms), and the file is also re-read every 10 s in case events are lost.
// A missing file is not an error: it is read again when it reappears.
//
// The watch is in place when Watch returns, so a caller that loads the file after Watch
// returns misses no change. The goroutine stops when ctx is done; Wait waits for it.
func Watch(ctx context.Context, path string, onChange func()) (*Watcher, error) {
	return watch(ctx, path, onChange, watchPoll)
}

// watch is Watch with the polling interval as a parameter.
func watch(ctx context.Context, path string, onChange func(), poll time.Duration) (*Watcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watch config %s: %w", path, err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config %s: %w", path, err)
	}
	w := &Watcher{path: abs, onChange: onChange, poll: poll, fw: fw, done: make(chan struct{})}
	if err := fw.Add(filepath.Dir(abs)); err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch config %s: %w", path, err)
	}
	w.followSymlink()
	w.last, w.present = w.read()
	go w.run(ctx)
	return w, nil
}

// Wait blocks until the watch has stopped (after its context is done). Once Wait returns,
// onChange is not called again.
func (w *Watcher) Wait() { <-w.done }

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	defer w.fw.Close()
	debounce := time.NewTimer(watchDebounce)
	debounce.Stop()
	defer debounce.Stop()
	poll := time.NewTicker(w.poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if ev.Op != fsnotify.Chmod {
				debounce.Reset(watchDebounce)
			}
		case _, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			// An error (an event queue overflow) may hide a change: look.
			debounce.Reset(watchDebounce)
		case <-debounce.C:
			w.check(ctx)
		case <-poll.C:
			w.check(ctx)
		}
	}
}

// check re-reads the file and calls onChange when its content changed.
func (w *Watcher) check(ctx context.Context) {
	w.followSymlink()
	sum, present := w.read()
	if !present || (w.present && sum == w.last) || ctx.Err() != nil {
		return
	}
	w.last, w.present = sum, true
	w.onChange()
}

// read returns a digest of the file's content and whether it could be read.
func (w *Watcher) read() ([sha256.Size]byte, bool) {
	data, err := os.ReadFile(w.path)
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256(data), true
}

// followSymlink keeps the right directories watched: the file's own, and the one it resolves
// to when that differs. It runs before each read, so it also restores a watch that the
// removal of a directory dropped, and drops the watch of an old symlink target.
func (w *Watcher) followSymlink() {
	want := map[string]bool{filepath.Dir(w.path): true}
	if real, err := filepath.EvalSymlinks(w.path); err == nil {
		want[filepath.Dir(real)] = true
	}
	watched := map[string]bool{}
	for _, dir := range w.fw.WatchList() {
		watched[dir] = true
		if !want[dir] {
			_ = w.fw.Remove(dir) // it may be gone already, which removes the watch too
		}
	}
	for dir := range want {
		if !watched[dir] {
			_ = w.fw.Add(dir) // a directory that does not exist yet is retried at the next read
		}
	}
}
