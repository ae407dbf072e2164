package health

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// notifySocket listens like systemd does: a unixgram socket named by NOTIFY_SOCKET.
type notifySocket struct {
	conn *net.UnixConn
}

// listenNotify opens the socket and names it in NOTIFY_SOCKET. It is called outside the
// test's synctest bubble: the socket is no part of the bubble, and SdNotify's datagrams
// are queued on it by the time the sending goroutine blocks again.
func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return &notifySocket{conn: conn}
}

// messages returns the datagrams queued on the socket, in order, without waiting for more.
func (s *notifySocket) messages(t *testing.T) []string {
	t.Helper()
	raw, err := s.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	buf := make([]byte, 4096)
	err = raw.Read(func(fd uintptr) bool {
		for {
			n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
			if err != nil {
				return true // EAGAIN: nothing more is queued
			}
			got = append(got, string(buf[:n]))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestSystemdNotify runs the notifier in a synctest bubble: the tickers run on the fake
// clock, and synctest.Wait returns once the notifier has sent all it will send for now, so
// that what was not sent is known not to come, with no waiting in real time.
func TestSystemdNotify(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", strconv.Itoa(int((200 * time.Millisecond).Microseconds())))
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry()
		cfg := r.Register(Spec{Name: "config.build", Gates: Startup | Readiness})
		loop := r.Register(Spec{Name: "process.loop", Gates: Liveness})
		loop.Running("")

		ctx, cancel := context.WithCancel(context.Background())
		var runErr error
		done := make(chan struct{})
		go func() { runErr = (&Systemd{Registry: r, Recheck: 50 * time.Millisecond}).Run(ctx); close(done) }()
		defer func() { cancel(); <-done }() // a failed check ends the notifier too

		synctest.Wait()
		if got := sock.messages(t); len(got) != 1 || !strings.HasPrefix(got[0], "STATUS=not ready: config.build") {
			t.Fatalf("first messages %q, want one STATUS naming config.build", got)
		}
		// READY=1 must not come before startup passes; the watchdog (every 100ms, half
		// of WATCHDOG_USEC) beats meanwhile, as liveness passes.
		time.Sleep(350 * time.Millisecond)
		synctest.Wait()
		if got := sock.messages(t); !slices.Equal(got, []string{"WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"}) {
			t.Fatalf("before startup passed: %q, want three watchdog beats in 350ms", got)
		}
		cfg.Running("")
		synctest.Wait()
		if got := sock.messages(t); !slices.Equal(got, []string{"READY=1", "STATUS=ready"}) {
			t.Fatalf("once startup passed: %q", got)
		}

		// A liveness fault stops the watchdog heartbeat.
		loop.Fail(errors.New("event loop stuck"))
		time.Sleep(time.Second)
		synctest.Wait()
		if got := sock.messages(t); len(got) != 0 {
			t.Fatalf("while liveness fails: %q, want nothing (no WATCHDOG=1)", got)
		}
		loop.Running("")
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if got := sock.messages(t); !slices.Equal(got, []string{"WATCHDOG=1"}) {
			t.Fatalf("once liveness passes again: %q, want the watchdog beat", got)
		}

		r.BeginShutdown()
		synctest.Wait()
		if got := sock.messages(t); !slices.Contains(got, "STOPPING=1") {
			t.Fatalf("after shutdown began: %q, want STOPPING=1", got)
		}

		cancel()
		synctest.Wait()
		select {
		case <-done:
			if runErr != nil {
				t.Fatal(runErr)
			}
		default:
			t.Fatal("Run did not return after cancel")
		}
	})
}

func TestSystemdWithoutSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	synctest.Test(t, func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- (&Systemd{Registry: NewRegistry()}).Run(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("Run blocked without NOTIFY_SOCKET")
		}
	})
}
