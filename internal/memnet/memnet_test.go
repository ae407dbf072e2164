package memnet

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/nettest"
)

// TestConnConformance runs x/net's net.Conn conformance suite (outside a bubble: memnet
// works on the real clock too): reads and writes, deadlines, Close unblocking I/O.
func TestConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l := Listen("127.0.0.1:80")
		c1, err = l.Dial()
		if err != nil {
			return nil, nil, nil, err
		}
		c2, err = l.Accept()
		if err != nil {
			return nil, nil, nil, err
		}
		return c1, c2, func() { c1.Close(); c2.Close(); l.Close() }, nil
	})
}

// connect dials l and accepts the connection.
func connect(t *testing.T, l *Listener) (client, server net.Conn) {
	t.Helper()
	client, err := l.Dial()
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return client, server
}

// A reader blocked on a memnet connection is durably blocked: the bubble's clock advances
// to its deadline, which fails the read at exactly that instant.
func TestReadDeadlineOnFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := connect(t, Listen("127.0.0.1:80"))
		defer c.Close()
		defer s.Close()
		start := time.Now()
		s.SetReadDeadline(start.Add(time.Hour))
		_, err := s.Read(make([]byte, 1))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want os.ErrDeadlineExceeded", err)
		}
		if el := time.Since(start); el != time.Hour {
			t.Fatalf("read failed after %v, want at the 1h deadline", el)
		}
		// A later deadline lets the read wait again, and data ends the wait.
		s.SetReadDeadline(time.Now().Add(time.Hour))
		go func() {
			time.Sleep(time.Minute)
			c.Write([]byte("x"))
		}()
		if n, err := s.Read(make([]byte, 1)); n != 1 || err != nil {
			t.Fatalf("read %d, %v after a write", n, err)
		}
		if el := time.Since(start); el != time.Hour+time.Minute {
			t.Fatalf("read returned after %v, want 1h1m", el)
		}
	})
}

// A write returns before the peer reads, as into a socket buffer; a full buffer blocks it.
func TestWriteIsBuffered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := connect(t, Listen("127.0.0.1:80"))
		defer c.Close()
		defer s.Close()
		if n, err := c.Write(make([]byte, bufferSize)); n != bufferSize || err != nil {
			t.Fatalf("write %d, %v into an empty buffer", n, err)
		}
		wrote := make(chan error, 1)
		go func() {
			_, err := c.Write([]byte("more"))
			wrote <- err
		}()
		synctest.Wait()
		select {
		case err := <-wrote:
			t.Fatalf("write into a full buffer returned %v", err)
		default:
		}
		if _, err := io.ReadFull(s, make([]byte, bufferSize)); err != nil {
			t.Fatal(err)
		}
		if err := <-wrote; err != nil {
			t.Fatalf("write once the peer read: %v", err)
		}
	})
}

// CloseWrite and Close end the peer's reads with io.EOF after what was written; a write to
// a closed peer fails with EPIPE; a dial to a closed listener is refused.
func TestCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Listen("127.0.0.1:80")
		c, s := connect(t, l)
		io.WriteString(c, "head")
		c.(*Conn).CloseWrite()
		if b, err := io.ReadAll(s); string(b) != "head" || err != nil {
			t.Fatalf("read %q, %v after CloseWrite, want head and EOF", b, err)
		}
		if _, err := io.WriteString(s, "answer"); err != nil {
			t.Fatalf("write to a half-closed peer: %v", err)
		}
		if b, _ := io.ReadAll(io.LimitReader(c, 6)); string(b) != "answer" {
			t.Fatalf("read %q after the peer half-closed", b)
		}
		s.Close()
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("read %d, %v after the peer closed, want EOF", n, err)
		}
		if _, err := io.WriteString(c, "late"); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write to a closed peer: %v, want EPIPE", err)
		}
		c.Close()
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v, want net.ErrClosed", err)
		}
		l.Close()
		if _, err := l.Dial(); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial after the listener closed: %v, want ECONNREFUSED", err)
		}
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept after Close: %v, want net.ErrClosed", err)
		}
	})
}
