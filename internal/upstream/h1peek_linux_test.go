package upstream

import (
	"bytes"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// A bodiless exchange reads the socket once: the read that would find nothing right after
// the request is written is spared (socketPeek.flushThenWait). Counted with the calling
// thread's read system calls (/proc/thread-self/io, syscr), the goroutine locked to it;
// the endpoint answers a millisecond late, so that a read tried before waiting would find
// nothing every time.
func TestExchangeReadsTheSocketOnce(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := threadReads(); err != nil {
		t.Skipf("no per-thread I/O accounting here (%v): the read count cannot be taken", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var b [1]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
			if _, err := c.Write(b[:]); err != nil {
				return
			}
		}
	}()
	c := poolConn(t, ln.Addr().String(), nil)
	if c.peek == nil {
		t.Fatal("no socket peek on Linux")
	}
	const n = 50
	var b [1]byte
	before, _ := threadReads()
	for range n {
		c.bw.WriteByte('x')
		if err := c.peek.flushThenWait(c.bw); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := threadReads()
	// Reading the counter costs a read or two of its own.
	if reads := after - before; reads > n+5 {
		t.Fatalf("%d reads for %d exchanges, want one each (a read that finds nothing came back?)", reads, n)
	}
}

// threadReads is the calling thread's count of read system calls.
func threadReads() (int64, error) {
	b, err := os.ReadFile("/proc/thread-self/io")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("syscr: ")); ok {
			return strconv.ParseInt(string(v), 10, 64)
		}
	}
	return 0, io.ErrUnexpectedEOF
}
