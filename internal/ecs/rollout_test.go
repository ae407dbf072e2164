package ecs

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecs/ecstest"
)

// TestWatchPolling follows the watch's polls on a synctest bubble's clock: throttling
// doubles the interval up to MaxInterval, another transient error keeps it, a good poll
// restores it, and the timeout ends the watch at its instant. Minutes of polling take no
// real time, and each poll's instant is exact.
func TestWatchPolling(t *testing.T) {
	s := ecstest.NewServer(t) // outside the bubble: its listener waits on a real socket
	s.On("ListServiceDeployments", ecstest.Throttled, ecstest.Throttled, ecstest.Throttled,
		ecstest.Error(http.StatusInternalServerError, "ServerException", "internal error"),
		ecstest.OK(`{"serviceDeployments": []}`))
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		type notice struct {
			at   time.Duration
			says string
		}
		var notices []notice
		w := &Watcher{Client: s.InProcessClient(), Service: "app", Timeout: 165 * time.Second,
			Interval: 10 * time.Second, MaxInterval: 40 * time.Second,
			OnNotice: func(n string) { notices = append(notices, notice{time.Since(start), n}) }}
		res := w.Watch(context.Background())

		if el := time.Since(start); el != 165*time.Second {
			t.Errorf("the watch ended after %v, want at its 2m45s timeout", el)
		}
		if want := "timed out after 2m45s: no deployment of service app appeared"; res.Outcome != TimedOut || res.Cause != want {
			t.Errorf("result %s: %q, want %s: %q", res.Outcome, res.Cause, TimedOut, want)
		}
		want := []notice{
			{0, "throttled by the ECS API (ListServiceDeployments app: "},
			{20 * time.Second, "; next poll in 40s"},
			{60 * time.Second, "; next poll in 40s"}, // MaxInterval
			{100 * time.Second, "ECS API error, retrying in 40s: ListServiceDeployments app"},
			{140 * time.Second, "no deployment of service app yet; waiting"},
		}
		if len(notices) != len(want) {
			t.Fatalf("%d notices, want %d: %+v", len(notices), len(want), notices)
		}
		for i, w := range want {
			if n := notices[i]; n.at != w.at || !strings.Contains(n.says, w.says) {
				t.Errorf("notice %d at %v: %q; want at %v, saying %q", i, n.at, n.says, w.at, w.says)
			}
		}
		if !strings.HasSuffix(notices[0].says, "; next poll in 20s") {
			t.Errorf("first notice %q, want the next poll in 20s", notices[0].says)
		}
		// Polls at 0s, 20s, 1m, 1m40s, 2m20s, then every 10s: 2m30s and 2m40s.
		if n := len(s.Requests("ListServiceDeployments")); n != 7 {
			t.Errorf("%d polls, want 7", n)
		}
	})
}
