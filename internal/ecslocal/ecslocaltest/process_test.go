package ecslocaltest

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Background returns once the process shows ready, and the test's cleanup stops it with
// SIGTERM: a shell that waits on sleep ends at once, well within the grace.
func TestBackgroundWaitsForReadyAndStops(t *testing.T) {
	var cmd *exec.Cmd
	t.Run("serve", func(t *testing.T) {
		cmd = exec.Command("sh", "-c", "sleep 0.2; echo serving; exec sleep 60")
		start := time.Now()
		Background(t, "sleeper", cmd, "serving", 5*time.Second)
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Fatalf("returned after %s, before the process said it serves", d)
		}
	})
	if cmd.ProcessState == nil || cmd.ProcessState.Success() {
		t.Fatalf("after the test ended the process is %v, want ended by SIGTERM", cmd.ProcessState)
	}
}

// FreeLoopbackIP gives an address in its range on which the ports can be listened on.
func TestFreeLoopbackIP(t *testing.T) {
	ip := FreeLoopbackIP(t, 200, 209, []int{int(FreePort(t))})
	if !strings.HasPrefix(ip, "127.0.0.20") {
		t.Fatalf("%s, want 127.0.0.200-209", ip)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("cannot listen on %s: %v", ip, err)
	}
	ln.Close()
}
