package sidecar

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Changes within the settle time are released once, settle after the last; a later change
// is released again; after stop nothing is.
func TestPageReleaserCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var releases atomic.Int32
		r := &pageReleaser{settle: 2 * time.Second, release: func() { releases.Add(1) }}
		start := time.Now()
		for range 3 {
			r.changed()
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if n := releases.Load(); n != 0 {
			t.Fatalf("%d releases %v into changes a second apart, want none yet", n, time.Since(start))
		}
		time.Sleep(time.Second + time.Millisecond) // 2 s after the last change
		synctest.Wait()
		if n := releases.Load(); n != 1 {
			t.Fatalf("%d releases 2 s after the last change, want 1", n)
		}
		r.changed()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n := releases.Load(); n != 2 {
			t.Fatalf("%d releases after a later change, want 2", n)
		}
		r.changed()
		r.stop()
		r.changed()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n := releases.Load(); n != 2 {
			t.Fatalf("%d releases after stop, want still 2", n)
		}
	})
}
