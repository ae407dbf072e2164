package ecslocaltest

import (
	"os/exec"
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
