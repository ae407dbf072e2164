package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
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
	reasonHas(t, resp, "probe 2/3", "503", "upstream.cluster.app failed", "attempt 1")
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
	reasonHas(t, resp, "not ready within 10m0s", "503", "attempt 4", "rolling back")
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

// hanging answers no request until the client gives up or the test ends.
func hanging(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func TestHandleProbeTimeout(t *testing.T) {
	c := testConfig(hanging(t).URL + "/gangway/ready")
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

// A probe that would outlast the invocation (the function's timeout, which Lambda gives the
// handler as its context's deadline) is cut short so that the hook still answers: a function
// timed out is a function error, and ECS rolls back on one.
func TestHandleAnswersBeforeTheInvocationDeadline(t *testing.T) {
	c := testConfig(hanging(t).URL + "/gangway/ready")
	c.ProbeTimeout = time.Minute
	h := &Hook{Config: c}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	resp, err := h.Handle(ctx, Event{})
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(deadline); left <= 0 {
		t.Fatalf("answered %s after the invocation's deadline", -left)
	}
	if resp.HookStatus != StatusInProgress || !strings.Contains(resp.Reason, "deadline exceeded") {
		t.Fatalf("got %s (%s), want IN_PROGRESS with the probe cut short", resp.HookStatus, resp.Reason)
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

func TestParseStatuses(t *testing.T) {
	for _, tc := range []struct {
		spec      string
		match     []int
		mismatch  []int
		wantError bool
	}{
		{spec: "200", match: []int{200}, mismatch: []int{201, 500}},
		{spec: "200,204", match: []int{200, 204}, mismatch: []int{203}},
		{spec: "200-499", match: []int{200, 404, 499}, mismatch: []int{199, 500, 503}},
		{spec: " 200-299 , 304", match: []int{250, 304}, mismatch: []int{301}},
		{spec: "", wantError: true},
		{spec: "2xx", wantError: true},
		{spec: "299-200", wantError: true},
		{spec: "600", wantError: true},
		{spec: "200,", wantError: true},
	} {
		st, err := ParseStatuses(tc.spec)
		if (err != nil) != tc.wantError {
			t.Errorf("%q: error %v, want error %v", tc.spec, err, tc.wantError)
			continue
		}
		for _, c := range tc.match {
			if !st.Match(c) {
				t.Errorf("%q does not match %d", tc.spec, c)
			}
		}
		for _, c := range tc.mismatch {
			if st.Match(c) {
				t.Errorf("%q matches %d", tc.spec, c)
			}
		}
	}
}

// app serves readiness and the application's routes, each with a fixed status, and records
// the paths asked in order.
type app struct {
	ready  atomic.Int64
	routes map[string]*atomic.Int64
	mu     sync.Mutex
	asked  []string
	header string
}

func newApp(t *testing.T, ready int, routes map[string]int) (*app, *httptest.Server) {
	t.Helper()
	a := &app{routes: map[string]*atomic.Int64{}}
	a.ready.Store(int64(ready))
	for p, code := range routes {
		a.routes[p] = &atomic.Int64{}
		a.routes[p].Store(int64(code))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.asked = append(a.asked, r.URL.RequestURI())
		a.header = r.Header.Get("X-Gangway-Test")
		a.mu.Unlock()
		if r.URL.Path == "/gangway/ready" {
			w.WriteHeader(int(a.ready.Load()))
			return
		}
		code, ok := a.routes[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(code.Load()))
		_, _ = w.Write([]byte("database connection refused\n"))
	}))
	t.Cleanup(srv.Close)
	return a, srv
}

func (a *app) paths() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.asked...)
}

func smoke(t *testing.T, path, statuses string) SmokeCheck {
	st, err := ParseStatuses(statuses)
	if err != nil {
		t.Fatal(err)
	}
	return SmokeCheck{Path: path, Statuses: st}
}

func TestHandleSmokeChecksCatchReadyButBrokenRevision(t *testing.T) {
	a, srv := newApp(t, 200, map[string]int{"/api/orders": 503, "/": 200})
	c := testConfig(srv.URL + "/gangway/ready")
	c.Smoke = []SmokeCheck{smoke(t, "/", "200-499"), smoke(t, "/api/orders?limit=1", "200")}
	c.Header, c.HeaderValue = "X-Gangway-Test", "green"
	h := &Hook{Config: c}
	resp, err := h.Handle(context.Background(), Event{LifecycleStage: StagePostTestTrafficShift})
	if err != nil {
		t.Fatal(err)
	}
	if resp.HookStatus != StatusInProgress {
		t.Fatalf("ready but answering 503: got %s (%s), want IN_PROGRESS", resp.HookStatus, resp.Reason)
	}
	reasonHas(t, resp, "smoke check /api/orders?limit=1 (want 200)", "503", "database connection refused", "probe 1/3")
	// Readiness first, then the smoke checks in order; the test header on every request.
	if got := strings.Join(a.paths(), " "); got != "/gangway/ready / /api/orders?limit=1" {
		t.Errorf("requests = %s", got)
	}
	if a.header != "green" {
		t.Errorf("smoke check sent test header %q", a.header)
	}

	a.routes["/api/orders"].Store(200)
	resp, _ = h.Handle(context.Background(), Event{LifecycleStage: StagePostTestTrafficShift})
	if resp.HookStatus != StatusSucceeded || !strings.Contains(resp.Reason, "3 rounds of a 200 from readiness and 2 smoke check(s)") {
		t.Fatalf("after the fix: got %s (%s), want SUCCEEDED", resp.HookStatus, resp.Reason)
	}
}

func TestHandleReadinessComesBeforeSmokeChecks(t *testing.T) {
	a, srv := newApp(t, 503, map[string]int{"/": 200})
	c := testConfig(srv.URL + "/gangway/ready")
	c.Smoke = []SmokeCheck{smoke(t, "/", "200")}
	resp, _ := (&Hook{Config: c}).Handle(context.Background(), Event{})
	if resp.HookStatus != StatusInProgress || strings.Contains(resp.Reason, "smoke") {
		t.Fatalf("got %s (%s), want IN_PROGRESS on readiness", resp.HookStatus, resp.Reason)
	}
	if got := a.paths(); len(got) != 1 || got[0] != "/gangway/ready" {
		t.Errorf("requests = %v, want readiness only", got)
	}
}

// fleet is a Fleet with fixed answers that records which target group it was asked about.
type fleet struct {
	weights map[string]int
	targets map[string][]Target
	desired int
	asked   []string
}

func (f *fleet) ProductionWeights(context.Context) (map[string]int, error) { return f.weights, nil }
func (f *fleet) TargetHealth(_ context.Context, tg string) ([]Target, error) {
	f.asked = append(f.asked, tg)
	return f.targets[tg], nil
}
func (f *fleet) DesiredCount(_ context.Context, svc string) (int, error) {
	if svc != "arn:aws:ecs:eu-west-1:123456789012:service/c/web" {
		return 0, errors.New("unknown service " + svc)
	}
	return f.desired, nil
}

func TestCapacityCheckBoundsCrashLoopingRevision(t *testing.T) {
	const blue, green = "arn:tg/blue", "arn:tg/green"
	// Production is on Green (the previous deployment ended there), so the new tasks
	// register in Blue.
	f := &fleet{
		weights: map[string]int{blue: 0, green: 1},
		targets: map[string][]Target{
			blue:  {{ID: "10.0.1.5", State: "healthy"}, {ID: "10.0.2.7", State: "unhealthy", Reason: "Target.FailedHealthChecks"}},
			green: {{ID: "10.0.1.9", State: "healthy"}, {ID: "10.0.2.9", State: "healthy"}},
		},
		desired: 2,
	}
	c := testConfig("http://127.0.0.1:1/gangway/ready")
	c.TargetGroups = []string{blue, green}
	c.ProductionRule = "arn:rule/prod"
	first := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	now := first
	h := &Hook{Config: c, Fleet: f, Now: func() time.Time { return now }}
	ev := Event{ExecutionDetails: &ExecutionDetails{LifecycleStage: StagePostScaleUp, ServiceARN: "arn:aws:ecs:eu-west-1:123456789012:service/c/web"}}

	var details map[string]any
	var statuses []string
	for _, at := range []time.Duration{0, 5 * time.Minute, 10 * time.Minute} {
		now = first.Add(at)
		ev.HookDetails = details
		resp, err := h.Handle(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, resp.HookStatus)
		details = resp.HookDetails
		if !strings.Contains(resp.Reason, "1 of 2 desired tasks healthy; 1 unhealthy (Target.FailedHealthChecks)") || !strings.Contains(resp.Reason, blue) {
			t.Errorf("at +%s: reason %q", at, resp.Reason)
		}
		if at == 10*time.Minute && !strings.Contains(resp.Reason, "not ready within 10m0s") {
			t.Errorf("FAILED reason %q", resp.Reason)
		}
	}
	if got := strings.Join(statuses, " "); got != "IN_PROGRESS IN_PROGRESS FAILED" {
		t.Errorf("statuses = %s, want IN_PROGRESS IN_PROGRESS FAILED", got)
	}
	for _, tg := range f.asked {
		if tg != blue {
			t.Errorf("asked about %s, the group serving production", tg)
		}
	}

	f.targets[blue][1].State = "healthy"
	resp, err := h.Handle(context.Background(), Event{ExecutionDetails: ev.ExecutionDetails})
	if err != nil || resp.HookStatus != StatusSucceeded {
		t.Fatalf("both healthy: %s (%s) %v", resp.HookStatus, resp.Reason, err)
	}

	f.weights = map[string]int{blue: 1, green: 1}
	resp, _ = h.Handle(context.Background(), Event{ExecutionDetails: ev.ExecutionDetails})
	if resp.HookStatus != StatusInProgress || !strings.Contains(resp.Reason, "exactly one") {
		t.Errorf("production on both groups: %s (%s)", resp.HookStatus, resp.Reason)
	}

	h.Fleet = nil
	if _, err := h.Handle(context.Background(), Event{ExecutionDetails: ev.ExecutionDetails}); err == nil {
		t.Errorf("POST_SCALE_UP without a fleet: no error (ECS must roll back a misconfigured hook)")
	}
}

// awsFake answers on 127.0.0.1 as Elastic Load Balancing (query protocol, XML) and ECS
// (JSON 1.1) do, from fixed state: each listener rule's forward weights by target group, each
// target group's targets, each service's desired count. It records the calls it gets.
type awsFake struct {
	rules   map[string]map[string]int // rule ARN → target group ARN → weight
	targets map[string][]Target       // target group ARN → targets
	desired map[string]int            // service ARN → desired count
	srv     *httptest.Server

	mu    sync.Mutex
	calls []string
}

func newAWSFake(t *testing.T, rules map[string]map[string]int, targets map[string][]Target, desired map[string]int) *awsFake {
	t.Helper()
	f := &awsFake{rules: rules, targets: targets, desired: desired}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *awsFake) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

// log is the calls so far: "Action ARN" for Elastic Load Balancing, "X-Amz-Target body" for ECS.
func (f *awsFake) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *awsFake) serve(w http.ResponseWriter, r *http.Request) {
	const ns = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		body, _ := io.ReadAll(r.Body)
		f.record(target + " " + string(body))
		var in struct{ Services []string }
		_ = json.Unmarshal(body, &in)
		out := struct {
			Services []map[string]any `json:"services"`
			Failures []map[string]any `json:"failures"`
		}{Services: []map[string]any{}, Failures: []map[string]any{}}
		for _, arn := range in.Services {
			if n, ok := f.desired[arn]; ok {
				out.Services = append(out.Services, map[string]any{"serviceArn": arn, "desiredCount": n})
			} else {
				out.Failures = append(out.Failures, map[string]any{"arn": arn, "reason": "MISSING"})
			}
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(out)
		return
	}
	_ = r.ParseForm()
	action, rule, group := r.Form.Get("Action"), r.Form.Get("RuleArns.member.1"), r.Form.Get("TargetGroupArn")
	f.record(action + " " + rule + group)
	w.Header().Set("Content-Type", "text/xml")
	notFound := func(code, what string) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>%s not found</Message></Error><RequestId>r0</RequestId></ErrorResponse>`, ns, code, what)
	}
	var b strings.Builder
	switch action {
	case "DescribeRules":
		weights, ok := f.rules[rule]
		if !ok {
			notFound("RuleNotFound", rule)
			return
		}
		groups := slices.Sorted(maps.Keys(weights))
		for _, tg := range groups {
			fmt.Fprintf(&b, `<member><TargetGroupArn>%s</TargetGroupArn><Weight>%d</Weight></member>`, tg, weights[tg])
		}
		fmt.Fprintf(w, `<DescribeRulesResponse xmlns="%s"><DescribeRulesResult><Rules><member><RuleArn>%s</RuleArn><Priority>10</Priority><Actions><member><Type>forward</Type><ForwardConfig><TargetGroups>%s</TargetGroups></ForwardConfig></member></Actions></member></Rules></DescribeRulesResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></DescribeRulesResponse>`, ns, rule, b.String())
	case "DescribeTargetHealth":
		targets, ok := f.targets[group]
		if !ok {
			notFound("TargetGroupNotFound", group)
			return
		}
		for _, tg := range targets {
			reason := ""
			if tg.Reason != "" {
				reason = "<Reason>" + tg.Reason + "</Reason>"
			}
			fmt.Fprintf(&b, `<member><Target><Id>%s</Id><Port>8080</Port></Target><TargetHealth><State>%s</State>%s</TargetHealth></member>`, tg.ID, tg.State, reason)
		}
		fmt.Fprintf(w, `<DescribeTargetHealthResponse xmlns="%s"><DescribeTargetHealthResult><TargetHealthDescriptions>%s</TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></DescribeTargetHealthResponse>`, ns, b.String())
	default:
		http.Error(w, "unexpected action", http.StatusBadRequest)
	}
}

// fleet is an AWSFleet whose real SDK clients call the fake.
func (f *awsFake) fleet(productionRule string) AWSFleet {
	cfg := aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		HTTPClient:  f.srv.Client(),
	}
	return AWSFleet{
		ELB:            elbv2.NewFromConfig(cfg, func(o *elbv2.Options) { o.BaseEndpoint = aws.String(f.srv.URL) }),
		ECS:            ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(f.srv.URL) }),
		ProductionRule: productionRule,
	}
}

// TestAWSFleetWithSDKClients runs AWSFleet's calls through the real SDK clients against a
// server on 127.0.0.1 that answers as Elastic Load Balancing and ECS do.
func TestAWSFleetWithSDKClients(t *testing.T) {
	fake := newAWSFake(t,
		map[string]map[string]int{"arn:rule/prod": {"arn:tg/blue": 0, "arn:tg/green": 1}},
		map[string][]Target{"arn:tg/blue": {{ID: "10.0.1.5", State: "healthy"}, {ID: "10.0.2.7", State: "unhealthy", Reason: "Target.FailedHealthChecks"}}},
		map[string]int{"arn:aws:ecs:eu-west-1:123456789012:service/c/web": 3})
	f := fake.fleet("arn:rule/prod")
	ctx := context.Background()
	w, err := f.ProductionWeights(ctx)
	if err != nil || w["arn:tg/blue"] != 0 || w["arn:tg/green"] != 1 || len(w) != 2 {
		t.Fatalf("weights = %v, %v", w, err)
	}
	ts, err := f.TargetHealth(ctx, "arn:tg/blue")
	if err != nil || len(ts) != 2 || ts[0] != (Target{ID: "10.0.1.5", State: "healthy"}) || ts[1].Reason != "Target.FailedHealthChecks" {
		t.Fatalf("targets = %+v, %v", ts, err)
	}
	n, err := f.DesiredCount(ctx, "arn:aws:ecs:eu-west-1:123456789012:service/c/web")
	if err != nil || n != 3 {
		t.Fatalf("desired = %d, %v", n, err)
	}
	if _, err := f.DesiredCount(ctx, "web"); err == nil {
		t.Errorf("a bare service name was accepted")
	}
	calls := fake.log()
	want := []string{"DescribeRules arn:rule/prod", "DescribeTargetHealth arn:tg/blue", `AmazonEC2ContainerServiceV20141113.DescribeServices {"cluster":"c","services":["arn:aws:ecs:eu-west-1:123456789012:service/c/web"]}`}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls = %q\nwant    %q", calls, want)
	}
}

func TestFromEnvSmokeChecksAndCapacity(t *testing.T) {
	env := map[string]string{
		EnvURL:            "http://lb:9443/gangway/ready",
		EnvSmokeChecks:    `[{"path":"/","statuses":"200-499"},{"path":"/api","statuses":"200"}]`,
		EnvTargetGroups:   "arn:tg/blue,arn:tg/green",
		EnvProductionRule: "arn:rule/prod",
	}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Smoke) != 2 || c.Smoke[1].Path != "/api" || !c.Smoke[0].Statuses.Match(404) || c.Smoke[0].Statuses.Match(500) {
		t.Errorf("smoke = %+v", c.Smoke)
	}
	if len(c.TargetGroups) != 2 || c.ProductionRule != "arn:rule/prod" {
		t.Errorf("capacity config = %v %q", c.TargetGroups, c.ProductionRule)
	}
	for name, bad := range map[string]map[string]string{
		"statuses":    {EnvSmokeChecks: `[{"path":"/","statuses":"5xx"}]`},
		"unknown key": {EnvSmokeChecks: `[{"path":"/","status":"200"}]`},
		"path":        {EnvSmokeChecks: `[{"path":"api","statuses":"200"}]`},
		"one group":   {EnvTargetGroups: "arn:tg/blue", EnvProductionRule: "arn:rule"},
		"no rule":     {EnvTargetGroups: "arn:tg/blue,arn:tg/green"},
	} {
		if _, err := FromEnv(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%s: FromEnv accepted %v", name, bad)
		}
	}
}

// reasonHas asserts that the hook's reason mentions each of wants.
func reasonHas(t *testing.T, resp Response, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(resp.Reason, want) {
			t.Errorf("reason %q lacks %q", resp.Reason, want)
		}
	}
}
