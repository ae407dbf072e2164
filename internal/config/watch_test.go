package config

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// changes records what the file held at each onChange call.
type changes struct {
	path string
	mu   sync.Mutex
	seen []string
	ch   chan struct{}
}

func (c *changes) onChange() {
	data, _ := os.ReadFile(c.path)
	c.mu.Lock()
	c.seen = append(c.seen, string(data))
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *changes) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// waitFor waits (generously: the machine is shared) until the last change seen is want.
func (c *changes) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if s := c.list(); len(s) > 0 && s[len(s)-1] == want {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("no change to %q seen; changes: %q", want, c.list())
		}
	}
}

// startWatch watches path until the test ends. It turns polling off, so that only file
// system events can reveal a change.
func startWatch(t *testing.T, path string) *changes {
	t.Helper()
	c := &changes{path: path, ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := watch(ctx, path, c.onChange, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); w.Wait() })
	return c
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatchWriteInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gangway.yaml")
	write(t, path, "v1")
	c := startWatch(t, path)
	write(t, path, "v2")
	c.waitFor(t, "v2")
	write(t, path, "v3")
	c.waitFor(t, "v3")
	if got := c.list(); len(got) != 2 {
		t.Errorf("changes = %q, want [v2 v3]", got)
	}
}

// TestWatchRenameOver is how editors and atomic writers save: write a temporary file, rename
// it over the original.
func TestWatchRenameOver(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gangway.yaml")
	write(t, path, "v1")
	c := startWatch(t, path)
	for _, v := range []string{"v2", "v3"} {
		tmp := filepath.Join(dir, ".gangway.yaml.swp")
		write(t, tmp, v)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		c.waitFor(t, v)
	}
}

// TestWatchSymlinkSwap follows the Kubernetes atomic writer's layout, also used for mounted
// configuration in containers: config.yaml -> ..data/config.yaml, ..data -> ..v1, and an
// update points ..data at a new directory by renaming a new symlink over it.
func TestWatchSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "gangway.yaml"), content)
	}
	swap := func(target string) {
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", "v1")
	swap("..v1")
	path := filepath.Join(dir, "gangway.yaml")
	if err := os.Symlink(filepath.Join("..data", "gangway.yaml"), path); err != nil {
		t.Fatal(err)
	}
	c := startWatch(t, path)

	version("..v2", "v2")
	swap("..v2")
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "v2")

	version("..v3", "v3")
	swap("..v3")
	c.waitFor(t, "v3")
}

// TestWatchSymlinkElsewhere watches a symlink whose target lives in another directory, where
// the target is rewritten in place.
func TestWatchSymlinkElsewhere(t *testing.T) {
	target := filepath.Join(t.TempDir(), "real.yaml")
	write(t, target, "v1")
	path := filepath.Join(t.TempDir(), "gangway.yaml")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	c := startWatch(t, path)
	write(t, target, "v2")
	c.waitFor(t, "v2")
}

func TestWatchIgnoresSameContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gangway.yaml")
	write(t, path, "v1")
	c := startWatch(t, path)
	write(t, path, "v1")
	time.Sleep(5 * watchDebounce) // long enough for a wrong call to have happened
	write(t, path, "v2")
	c.waitFor(t, "v2")
	if got := c.list(); len(got) != 1 {
		t.Errorf("changes = %q, want only [v2]", got)
	}
}

func TestWatchDeleteAndRecreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gangway.yaml")
	write(t, path, "v1")
	c := startWatch(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * watchDebounce)
	write(t, path, "v2")
	c.waitFor(t, "v2")
	if got := c.list(); len(got) != 1 {
		t.Errorf("changes = %q, want only [v2] (a missing file is no change)", got)
	}
}

func TestWatchDebounces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gangway.yaml")
	write(t, path, "v0")
	c := startWatch(t, path)
	const writes = 20
	for i := 1; i <= writes; i++ {
		write(t, path, "v"+string(rune('a'+i)))
	}
	last := "v" + string(rune('a'+writes))
	c.waitFor(t, last)
	time.Sleep(5 * watchDebounce)
	if got := c.list(); len(got) >= writes {
		t.Errorf("%d writes in a burst gave %d calls: not debounced", writes, len(got))
	}
}

// TestWatchPolls sees a change that no event announces (the directory watch is dropped, as
// when events are lost): polling finds it and restores the watch, after which events work again.
func TestWatchPolls(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gangway.yaml")
	write(t, path, "v1")
	c := &changes{path: path, ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := watch(ctx, path, c.onChange, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); w.Wait() })
	if err := w.fw.Remove(dir); err != nil {
		t.Fatal(err)
	}
	write(t, path, "v2")
	c.waitFor(t, "v2")
	write(t, path, "v3")
	c.waitFor(t, "v3")
}

func TestWatchStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gangway.yaml")
	write(t, path, "v1")
	c := &changes{path: path, ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := Watch(ctx, path, c.onChange)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	w.Wait()
	write(t, path, "v2")
	time.Sleep(5 * watchDebounce)
	if got := c.list(); len(got) != 0 {
		t.Errorf("onChange called after Wait returned: %q", got)
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	_, err := Watch(context.Background(), filepath.Join(t.TempDir(), "nope", "gangway.yaml"), func() {})
	if err == nil {
		t.Fatal("Watch on a missing directory succeeded")
	}
}
