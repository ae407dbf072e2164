package ecslocaltest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// readyWithin is how long Background waits for a process to show it is ready.
const readyWithin = 30 * time.Second

// Background starts cmd, which serves until it is stopped (ecslocal, say), with its output
// in a log file, and returns once that output contains ready: a process that exits first,
// or does not show ready within 30 s, fails the test. When the test ends it is stopped with
// SIGTERM, and with SIGKILL and a failure if it has not exited within grace; if the test
// failed, the last 8 KiB of its output are logged. name says which process in messages.
func Background(t testing.TB, name string, cmd *exec.Cmd, ready string, grace time.Duration) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "background.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // ends with the process, which the cleanup stops
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s: did not stop within %s of SIGTERM", name, grace)
		}
		logFile.Close()
		if t.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s: its output (last 8 KiB):\n%s", name, lastBytes(out, 8<<10))
			}
		}
	})
	deadline := time.Now().Add(readyWithin)
	for {
		out, _ := os.ReadFile(logPath)
		if bytes.Contains(out, []byte(ready)) {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("%s: exited before it showed %q: %v\n%s", name, ready, err, lastBytes(out, 8<<10))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: does not show %q after %s:\n%s", name, ready, readyWithin, lastBytes(out, 8<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
