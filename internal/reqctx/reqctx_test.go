package reqctx

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestContext(t *testing.T) {
	type key struct{}
	c := &Context{Context: context.WithValue(context.Background(), key{}, "v")}
	if c.Value(key{}) != "v" || c.Err() != nil {
		t.Fatalf("value %v err %v", c.Value(key{}), c.Err())
	}
	ran := make(chan string, 4)
	stop1 := c.AfterFunc(func() { ran <- "first" })
	stop2 := c.AfterFunc(func() { ran <- "second" })
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	stopStd := context.AfterFunc(c, func() { ran <- "context.AfterFunc" })
	defer stopStd()
	if !stop1() || stop1() {
		t.Fatal("stop reports true once, for a function not run")
	}
	done := c.Done()
	why := errors.New("why")
	c.Cancel(why)
	c.Cancel(nil)
	<-done
	select {
	case <-child.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("a derived context was not cancelled")
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case s := <-ran:
			got[s] = true
		case <-time.After(3 * time.Second):
			t.Fatalf("ran %v", got)
		}
	}
	if !got["second"] || !got["context.AfterFunc"] || got["first"] {
		t.Fatalf("ran %v: want second and context.AfterFunc, not the stopped first", got)
	}
	if stop2() {
		t.Fatal("stop after the function ran reports true")
	}
	if c.Err() != context.Canceled || Cause(c) != why {
		t.Fatalf("err %v cause %v, want context.Canceled and the first cause", c.Err(), Cause(c))
	}
	// Registered after the cancel: runs at once.
	c.AfterFunc(func() { ran <- "late" })
	select {
	case s := <-ran:
		if s != "late" {
			t.Fatalf("ran %q", s)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a function registered after cancel did not run")
	}
}

// TestQuiet: a context is quiet only while nothing outside the request can reach it, and a
// late stop cannot remove a registration on the context used again.
func TestQuiet(t *testing.T) {
	closer := new(nopCloser)
	for _, tc := range []struct {
		name  string
		reach func(c *Context) (undo func())
	}{
		{"Done handed out", func(c *Context) func() { c.Done(); return nil }},
		{"context.AfterFunc", func(c *Context) func() { stop := context.AfterFunc(c, func() {}); return func() { stop() } }},
		{"a derived context", func(c *Context) func() { _, cancel := context.WithCancel(c); return cancel }},
		{"AfterFunc pending", func(c *Context) func() { stop := c.AfterFunc(func() {}); return func() { stop() } }},
		{"Register pending", func(c *Context) func() { id := c.Register(funcWaker(func() {})); return func() { c.Unregister(id) } }},
		{"Watch pending", func(c *Context) func() { c.Watch(closer); return func() { c.Unwatch(closer) } }},
		{"held", func(c *Context) func() { c.Hold(); return nil }},
	} {
		c := &Context{Context: context.Background()}
		if !c.Quiet() {
			t.Fatalf("%s: a new context is not quiet", tc.name)
		}
		undo := tc.reach(c)
		if c.Quiet() {
			t.Errorf("%s: quiet", tc.name)
		}
		if undo != nil {
			undo()
		}
		// Undone registrations leave it quiet again; a Done channel or a derived context's
		// goroutine may still be out there.
		wantQuiet := !slices.Contains([]string{"Done handed out", "context.AfterFunc", "a derived context", "held"}, tc.name)
		if got := c.Quiet(); got != wantQuiet {
			t.Errorf("%s: after undoing, quiet %v, want %v", tc.name, got, wantQuiet)
		}
	}

	// A stop that comes after a cancellation woke its function, with the context zeroed and
	// used again meanwhile, removes nothing of the new request's.
	c := &Context{Context: context.Background()}
	old := c.Register(funcWaker(func() {}))
	c.Cancel(nil)
	*c = Context{Context: context.Background()}
	woke := make(chan struct{})
	c.Register(funcWaker(func() { close(woke) }))
	if c.Unregister(old) {
		t.Fatal("a stale id unregistered something on the reused context")
	}
	c.Cancel(nil)
	select {
	case <-woke:
	case <-time.After(3 * time.Second):
		t.Fatal("the new registration was not woken")
	}
}

type nopCloser struct{}

func (*nopCloser) Close() error { return nil }
