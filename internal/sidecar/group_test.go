package sidecar

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

// recorder notes actor events in the order they happen.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) note(e string) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

// blocking adds an actor that runs until interrupted, noting its interrupt and its return.
func (r *recorder) blocking(g *group, name string) {
	stop := make(chan struct{})
	g.add(name, func() error {
		<-stop
		r.note(name + " returned")
		return nil
	}, func() {
		r.note(name + " interrupted")
		close(stop)
	})
}

// TestGroupTearsDownInReverseOrder: the first actor to return ends the group; the others
// are interrupted last added first, each returning before the next is interrupted, and run
// returns the first actor's error.
func TestGroupTearsDownInReverseOrder(t *testing.T) {
	var g group
	var r recorder
	r.blocking(&g, "a")
	r.blocking(&g, "b")
	end := make(chan struct{})
	errEnd := errors.New("c ended")
	g.add("c", func() error { <-end; return errEnd }, func() { t.Error("the actor that ended was interrupted") })
	r.blocking(&g, "d")
	close(end)
	if err := g.run(); err != errEnd {
		t.Fatalf("run: %v, want %v", err, errEnd)
	}
	want := []string{"d interrupted", "d returned", "b interrupted", "b returned", "a interrupted", "a returned"}
	if !slices.Equal(r.events, want) {
		t.Errorf("events %q, want %q", r.events, want)
	}
}

// TestGroupStopReleasesActorsThatNeverRan: a start that fails half-way stops the actors
// added so far, last added first, and waits for each.
func TestGroupStopReleasesActorsThatNeverRan(t *testing.T) {
	var g group
	var r recorder
	r.blocking(&g, "a")
	r.blocking(&g, "b")
	g.stop()
	want := []string{"b interrupted", "b returned", "a interrupted", "a returned"}
	if !slices.Equal(r.events, want) {
		t.Errorf("events %q, want %q", r.events, want)
	}
	if err := g.run(); err != nil {
		t.Errorf("run after stop: %v", err)
	}
}
