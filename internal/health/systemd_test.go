package health

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// notifySocket listens like systemd does: a unixgram socket named by NOTIFY_SOCKET.
type notifySocket struct {
	conn *net.UnixConn
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	s := &notifySocket{conn: conn, msgs: make(chan string, 256)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(s.msgs)
				return
			}
			if n > 0 {
				s.msgs <- string(buf[:n])
			}
		}
	}()
	return s
}

// waitFor returns the first message with the prefix, failing after a timeout.
func (s *notifySocket) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("socket closed waiting for %q", prefix)
			}
			if strings.HasPrefix(m, prefix) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q message", prefix)
		}
	}
}

// drain discards queued messages and returns them.
func (s *notifySocket) drain(wait time.Duration) []string {
	var got []string
	timer := time.After(wait)
	for {
		select {
		case m := <-s.msgs:
			got = append(got, m)
		case <-timer:
			return got
		}
	}
}

func TestSystemdNotify(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", strconv.Itoa(int((200 * time.Millisecond).Microseconds())))
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	r := NewRegistry()
	cfg := r.Register(Spec{Name: "config.build", Gates: Startup | Readiness})
	loop := r.Register(Spec{Name: "process.loop", Gates: Liveness})
	loop.Running("")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Systemd{Registry: r, Recheck: 50 * time.Millisecond}).Run(ctx) }()

	if m := sock.waitFor(t, "STATUS="); !strings.Contains(m, "not ready: config.build") {
		t.Fatalf("first status %q", m)
	}
	// READY=1 must not come before startup passes.
	for _, m := range sock.drain(300 * time.Millisecond) {
		if m == "READY=1" {
			t.Fatal("READY=1 before startup passed")
		}
	}
	cfg.Running("")
	sock.waitFor(t, "READY=1")
	if m := sock.waitFor(t, "STATUS="); m != "STATUS=ready" {
		t.Fatalf("status after ready %q", m)
	}
	sock.waitFor(t, "WATCHDOG=1")

	// A liveness fault stops the watchdog heartbeat.
	loop.Fail(errors.New("event loop stuck"))
	sock.drain(150 * time.Millisecond) // let an in-flight tick pass
	for _, m := range sock.drain(500 * time.Millisecond) {
		if m == "WATCHDOG=1" {
			t.Fatal("WATCHDOG=1 sent while liveness fails")
		}
	}
	loop.Running("")
	sock.waitFor(t, "WATCHDOG=1")

	r.BeginShutdown()
	sock.waitFor(t, "STOPPING=1")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestSystemdWithoutSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	done := make(chan error, 1)
	go func() { done <- (&Systemd{Registry: NewRegistry()}).Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run blocked without NOTIFY_SOCKET")
	}
}
