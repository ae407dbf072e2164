package hook

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testConfig probes fast: the tests run real HTTP on 127.0.0.1 and must not wait on sleeps.
func testConfig(url string) Config {
	c := Defaults()
	c.URL = url
	c.Probes = 3
	c.ProbeInterval = 0
	c.ProbeTimeout = 5 * time.Second
	c.Deadline = 10 * time.Minute
	c.CallBackDelay = 20 * time.Second
	return c
}

// readiness serves /gangway/ready with the statuses given, one per request, repeating the last.
func readiness(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/gangway/ready" {
			http.NotFound(w, r)
			return
		}
		n := int(hits.Add(1)) - 1
		if n >= len(statuses) {
			n = len(statuses) - 1
		}
		w.WriteHeader(statuses[n])
		if statuses[n] != http.StatusOK {
			_, _ = w.Write([]byte("[+]config.build ok\n[-]upstream.cluster.app failed: connection refused\nreadyz check failed\n"))
		} else {
			_, _ = w.Write([]byte("ok\n"))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestHandleSucceedsWhenEveryProbeIsReady(t *testing.T) {
	srv, hits := readiness(t, 200)
	h := &Hook{Config: testConfig(srv.URL + "/gangway/ready")}
	resp, err := h.Handle(context.Background(), Event{LifecycleStage: "POST_TEST_TRAFFIC_SHIFT"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.HookStatus != StatusSucceeded {
		t.Fatalf("hookStatus = %s (%s), want SUCCEEDED", resp.HookStatus, resp.Reason)
	}
	if got := hits.Load(); got != 3 {
		t.Errorf("probes sent = %d, want 3", got)
	}
	if resp.HookDetails != nil || resp.CallBackDelay != 0 {
		t.Errorf("SUCCEEDED carries state: %+v", resp)
	}
}

func TestHandleInProgressCarriesStateAndReason(t *testing.T) {
	// The second probe hits a task that is not ready: the round stops there.
	srv, hits := readiness(t, 200, 503, 200)
	first := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	h := &Hook{Config: testConfig(srv.URL + "/gangway/ready"), Now: func() time.Time { return first }}
	resp, err := h.Handle(context.Background(), Event{HookDetails: map[string]any{"team": "payments"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.HookStatus != StatusInProgress {
		t.Fatalf("hookStatus = %s (%s), want IN_PROGRESS", resp.HookStatus, resp.Reason)
	}
	if hits.Load() != 2 {
		t.Errorf("probes sent = %d, want 2 (stop at the first failure)", hits.Load())
	}
	if resp.CallBackDelay != 20 {
		t.Errorf("callBackDelay = %d, want 20", resp.CallBackDelay)
	}
	for _, want := range []string{"probe 2/3", "503", "upstream.cluster.app failed", "attempt 1"} {
		if !strings.Contains(resp.Reason, want) {
			t.Errorf("reason %q lacks %q", resp.Reason, want)
		}
	}
	if resp.HookDetails["team"] != "payments" {
		t.Errorf("caller's hookDetails dropped: %v", resp.HookDetails)
	}
	if resp.HookDetails[detailFirstSeen] != "2026-11-01T10:00:00Z" || resp.HookDetails[detailAttempts] != "1" {
		t.Errorf("state = %v", resp.HookDetails)
	}
}

func TestHandleFailsAfterDeadlineCountedFromFirstInvocation(t *testing.T) {
	srv, _ := readiness(t, 503)
	first := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	now := first
	h := &Hook{Config: testConfig(srv.URL + "/gangway/ready"), Now: func() time.Time { return now }}

	// Round-trip the state through JSON, as ECS does between invocations.
	details := map[string]any(nil)
	var resp Response
	for _, at := range []time.Duration{0, 5 * time.Minute, 9*time.Minute + 59*time.Second, 10 * time.Minute} {
		now = first.Add(at)
		var err error
		resp, err = h.Handle(context.Background(), Event{HookDetails: details})
		if err != nil {
			t.Fatal(err)
		}
		if at < 10*time.Minute && resp.HookStatus != StatusInProgress {
			t.Fatalf("at +%s: hookStatus = %s, want IN_PROGRESS", at, resp.HookStatus)
		}
		raw, _ := json.Marshal(resp.HookDetails)
		details = nil
		if err := json.Unmarshal(raw, &details); err != nil {
			t.Fatal(err)
		}
	}
	if resp.HookStatus != StatusFailed {
		t.Fatalf("at the deadline: hookStatus = %s (%s), want FAILED", resp.HookStatus, resp.Reason)
	}
	for _, want := range []string{"not ready within 10m0s", "503", "attempt 4", "rolling back"} {
		if !strings.Contains(resp.Reason, want) {
			t.Errorf("reason %q lacks %q", resp.Reason, want)
		}
	}
}

func TestHandleRecoversBeforeDeadline(t *testing.T) {
	srv, _ := readiness(t, 503, 503, 200)
	first := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	now := first
	c := testConfig(srv.URL + "/gangway/ready")
	c.Probes = 1
	h := &Hook{Config: c, Now: func() time.Time { return now }}
	var details map[string]any
	var got []string
	for i := 0; i < 3; i++ {
		now = first.Add(time.Duration(i) * 30 * time.Second)
		resp, err := h.Handle(context.Background(), Event{HookDetails: details})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, resp.HookStatus)
		details = resp.HookDetails
	}
	if want := "IN_PROGRESS IN_PROGRESS SUCCEEDED"; strings.Join(got, " ") != want {
		t.Fatalf("statuses = %v, want %s", got, want)
	}
}

func TestHandleUnreachableListener(t *testing.T) {
	// A port that was just closed: connection refused, as when the test listener is missing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &Hook{Config: testConfig("http://" + addr + "/gangway/ready")}
	resp, err := h.Handle(context.Background(), Event{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.HookStatus != StatusInProgress || !strings.Contains(resp.Reason, "GET failed") {
		t.Fatalf("got %s (%s), want IN_PROGRESS with GET failed", resp.HookStatus, resp.Reason)
	}
}

func TestHandleProbeTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer func() { close(release); srv.Close() }()
	c := testConfig(srv.URL + "/gangway/ready")
	c.ProbeTimeout = 200 * time.Millisecond
	h := &Hook{Config: c}
	resp, err := h.Handle(context.Background(), Event{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.HookStatus != StatusInProgress || !strings.Contains(resp.Reason, "deadline exceeded") {
		t.Fatalf("got %s (%s), want IN_PROGRESS with a timeout", resp.HookStatus, resp.Reason)
	}
}

func TestHandleSendsTestHeaderAndDoesNotFollowRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Gangway-Test") != "green" {
			// What the production listener does to plain HTTP.
			http.Redirect(w, r, "https://example.invalid/", http.StatusMovedPermanently)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	c := testConfig(srv.URL + "/gangway/ready")
	h := &Hook{Config: c}
	resp, _ := h.Handle(context.Background(), Event{})
	if resp.HookStatus != StatusInProgress || !strings.Contains(resp.Reason, "301") {
		t.Fatalf("without the header: got %s (%s), want IN_PROGRESS with 301", resp.HookStatus, resp.Reason)
	}
	c.Header, c.HeaderValue = "X-Gangway-Test", "green"
	h = &Hook{Config: c}
	resp, _ = h.Handle(context.Background(), Event{})
	if resp.HookStatus != StatusSucceeded {
		t.Fatalf("with the header: got %s (%s), want SUCCEEDED", resp.HookStatus, resp.Reason)
	}
}

func TestHandleURLFromHookDetails(t *testing.T) {
	srv, hits := readiness(t, 200)
	h := &Hook{Config: testConfig("http://127.0.0.1:1/unused")}
	resp, err := h.Handle(context.Background(), Event{HookDetails: map[string]any{detailURL: srv.URL + "/gangway/ready"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.HookStatus != StatusSucceeded || hits.Load() == 0 {
		t.Fatalf("got %s (%s) with %d hits", resp.HookStatus, resp.Reason, hits.Load())
	}
}

func TestHandleRejectsUnreadableState(t *testing.T) {
	h := &Hook{Config: testConfig("http://127.0.0.1:1/")}
	if _, err := h.Handle(context.Background(), Event{HookDetails: map[string]any{detailFirstSeen: "yesterday"}}); err == nil {
		t.Fatal("want an error for a malformed gangwayFirstSeen")
	}
	h = &Hook{Config: Config{Probes: 1, ProbeTimeout: time.Second, Deadline: time.Minute, CallBackDelay: time.Minute}}
	if _, err := h.Handle(context.Background(), Event{}); err == nil || !strings.Contains(err.Error(), EnvURL) {
		t.Fatalf("want an error naming %s, got %v", EnvURL, err)
	}
}

func TestEventDecodesBothShapes(t *testing.T) {
	for _, raw := range []string{
		`{"executionId":"e1","lifecycleStage":"POST_TEST_TRAFFIC_SHIFT","executionDetails":{"targetServiceRevisionArn":"arn:rev/2"}}`,
		`{"serviceArn":"arn:svc","targetServiceRevisionArn":"arn:rev/2","testTrafficWeights":{"arn:rev/2":100}}`,
	} {
		var ev Event
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Revision() != "arn:rev/2" {
			t.Errorf("%s: revision = %q", raw, ev.Revision())
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		EnvURL: "http://lb:8080/gangway/ready", EnvProbes: "4", EnvDeadline: "15m",
		EnvCallBackDelay: "45s", EnvHeader: "X-T", EnvHeaderValue: "v",
	}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != env[EnvURL] || c.Probes != 4 || c.Deadline != 15*time.Minute || c.CallBackDelay != 45*time.Second || c.Header != "X-T" {
		t.Fatalf("config = %+v", c)
	}
	for name, bad := range map[string]map[string]string{
		"probes":     {EnvProbes: "zero"},
		"no probes":  {EnvProbes: "0"},
		"duration":   {EnvDeadline: "ten minutes"},
		"callback":   {EnvCallBackDelay: "10ms"},
		"lone value": {EnvHeaderValue: "v"},
	} {
		if _, err := FromEnv(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%s: FromEnv accepted %v", name, bad)
		}
	}
}
