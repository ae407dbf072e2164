package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunNeedsNoWritableDirectory runs services: all where no temporary directory exists,
// as in a container with a read-only root file system and no /tmp: the private ADS socket
// must not need one.
func TestRunNeedsNoWritableDirectory(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	addr, sigs, code, stderr := startRun(t, writeConfig(t, fmt.Sprintf(testConfig, "0s")))
	waitStatus(t, "http://"+addr+"/startupz", 200)
	if log := stderr.String(); !strings.Contains(log, `"address":"@gangway-xds-`) {
		t.Errorf("the ADS server does not listen on an abstract socket:\n%s", log)
	}
	sigs <- syscall.SIGTERM
	expectExit(t, code, 0, 15*time.Second, stderr)
}
