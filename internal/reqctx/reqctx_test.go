package reqctx

import (
	"context"
	"errors"
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
