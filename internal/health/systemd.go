package health

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Systemd reports the registry to systemd through sd_notify (a Type=notify unit):
//
//	READY=1      once startup passes
//	STATUS=...   the first failing readiness check, or "ready"
//	STOPPING=1   when shutdown begins
//	WATCHDOG=1   every WatchdogSec/2, and only while liveness passes
//
// Without NOTIFY_SOCKET it does nothing. It reads NOTIFY_SOCKET, WATCHDOG_USEC and
// WATCHDOG_PID from the environment at Run, as systemd sets them.
type Systemd struct {
	Registry *Registry
	Logger   *slog.Logger
	// Recheck is how often the state is re-evaluated without a change (TTLs expire
	// silently); default 1 s.
	Recheck time.Duration
}

// maxStatusLen keeps STATUS= readable in `systemctl status`.
const maxStatusLen = 120

// Run notifies systemd until ctx is done. It returns at once when NOTIFY_SOCKET is unset.
func (s *Systemd) Run(ctx context.Context) error {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil // not started by systemd as Type=notify
	}
	watchdog, err := daemon.SdWatchdogEnabled(false)
	if err != nil && s.Logger != nil {
		s.Logger.Warn("systemd watchdog settings invalid", "error", err)
	}
	recheck := s.Recheck
	if recheck <= 0 {
		recheck = time.Second
	}
	changes, cancel := s.Registry.Subscribe()
	defer cancel()

	tick := time.NewTicker(recheck)
	defer tick.Stop()
	var wdC <-chan time.Time
	if watchdog > 0 {
		wd := time.NewTicker(watchdog / 2)
		defer wd.Stop()
		wdC = wd.C
	}

	var ready, stopping bool
	lastStatus := ""
	send := func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil && s.Logger != nil {
			s.Logger.Warn("systemd notify failed", "state", state, "error", err)
		}
	}
	update := func() {
		snap := s.Registry.Snapshot()
		if !ready && snap.Evaluate(Startup).OK {
			ready = true
			send(daemon.SdNotifyReady)
		}
		if !stopping && snap.Terminating {
			stopping = true
			send(daemon.SdNotifyStopping)
		}
		status := "ready"
		if res := snap.Evaluate(Readiness); !res.OK {
			status = "not ready: " + res.FirstFailure()
		}
		if len(status) > maxStatusLen {
			status = status[:maxStatusLen-3] + "..."
		}
		if status != lastStatus {
			lastStatus = status
			send("STATUS=" + oneLine(status))
		}
	}
	update()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
			update()
		case <-tick.C:
			update()
		case <-wdC:
			// The watchdog is a liveness signal: withhold it while liveness fails, so
			// systemd restarts a process that is truly stuck or broken.
			if s.Registry.Evaluate(Liveness).OK {
				send(daemon.SdNotifyWatchdog)
			}
		}
	}
}
