// Package hook is the decision logic of the readiness lifecycle hook: a Lambda function that
// ECS invokes at POST_TEST_TRAFFIC_SHIFT of a blue/green (or linear, canary) deployment. It
// probes the proxy's readiness path through the load balancer's test listener, which at that
// stage routes only to the new (green) tasks, and answers ECS with
//
//	SUCCEEDED    every probe of this invocation returned 200: shift production traffic
//	IN_PROGRESS  not ready yet: ECS invokes the hook again after CallBackDelay
//	FAILED       still not ready when the deadline passed: ECS rolls the deployment back
//
// with a reason a person can act on. The state that must survive between invocations (when the
// first one happened, how many there were) travels in hookDetails, which ECS hands back on the
// next invocation; the hook keeps nothing in memory.
package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Hook statuses ECS understands. Anything else, or a function error, makes ECS roll back.
const (
	StatusSucceeded  = "SUCCEEDED"
	StatusInProgress = "IN_PROGRESS"
	StatusFailed     = "FAILED"
)

// Keys of the state the hook returns in hookDetails and reads back on the next invocation.
// Keys set by the service's hook configuration are passed through untouched.
const (
	detailFirstSeen = "gangwayFirstSeen" // RFC 3339 time of the first invocation of this deployment stage
	detailAttempts  = "gangwayAttempts"  // invocations so far, as a decimal string
	detailURL       = "readinessUrl"     // optional: overrides Config.URL for this service
)

// Config is what the hook needs; the Lambda reads it from its environment (see FromEnv).
type Config struct {
	// URL is the readiness path behind the test listener, e.g.
	// http://my-alb-123.eu-west-1.elb.amazonaws.com:8080/gangway/ready.
	URL string
	// Header and HeaderValue, when set, are sent with every probe: the test listener rule
	// forwards only requests that carry them.
	Header, HeaderValue string
	// Probes is how many consecutive 200s one invocation needs to succeed. The load balancer
	// spreads them over the new tasks, so more probes sample more tasks. At least 1.
	Probes int
	// ProbeInterval separates the probes of one invocation.
	ProbeInterval time.Duration
	// ProbeTimeout bounds each request (connect, headers and body).
	ProbeTimeout time.Duration
	// Deadline is how long after the first invocation the hook keeps answering IN_PROGRESS
	// before it gives up with FAILED.
	Deadline time.Duration
	// CallBackDelay is how long ECS waits before invoking the hook again after IN_PROGRESS.
	CallBackDelay time.Duration
}

// Defaults returns the hook's defaults; URL must still be set.
func Defaults() Config {
	return Config{
		Probes:        5,
		ProbeInterval: time.Second,
		ProbeTimeout:  5 * time.Second,
		Deadline:      10 * time.Minute,
		CallBackDelay: 30 * time.Second,
	}
}

// Environment variables FromEnv reads (the construct sets them on the function).
const (
	EnvURL           = "GANGWAY_READINESS_URL"
	EnvHeader        = "GANGWAY_TEST_HEADER"
	EnvHeaderValue   = "GANGWAY_TEST_HEADER_VALUE"
	EnvProbes        = "GANGWAY_PROBES"
	EnvProbeInterval = "GANGWAY_PROBE_INTERVAL"
	EnvProbeTimeout  = "GANGWAY_PROBE_TIMEOUT"
	EnvDeadline      = "GANGWAY_DEADLINE"
	EnvCallBackDelay = "GANGWAY_CALLBACK_DELAY"
)

// FromEnv builds a Config from Defaults and the environment variables above. Durations use
// Go syntax ("30s", "10m").
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults()
	c.URL = getenv(EnvURL)
	c.Header = getenv(EnvHeader)
	c.HeaderValue = getenv(EnvHeaderValue)
	if v := getenv(EnvProbes); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("%s=%q: %w", EnvProbes, v, err)
		}
		c.Probes = n
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{EnvProbeInterval, &c.ProbeInterval},
		{EnvProbeTimeout, &c.ProbeTimeout},
		{EnvDeadline, &c.Deadline},
		{EnvCallBackDelay, &c.CallBackDelay},
	} {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		parsed, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("%s=%q: %w", d.name, v, err)
		}
		*d.dst = parsed
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.Probes < 1 {
		errs = append(errs, fmt.Errorf("probes = %d: must be at least 1", c.Probes))
	}
	if c.ProbeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("probe timeout = %s: must be positive", c.ProbeTimeout))
	}
	if c.ProbeInterval < 0 {
		errs = append(errs, fmt.Errorf("probe interval = %s: must not be negative", c.ProbeInterval))
	}
	if c.Deadline <= 0 {
		errs = append(errs, fmt.Errorf("deadline = %s: must be positive", c.Deadline))
	}
	if c.CallBackDelay < time.Second {
		errs = append(errs, fmt.Errorf("callback delay = %s: must be at least 1s", c.CallBackDelay))
	}
	if (c.Header == "") != (c.HeaderValue == "") {
		errs = append(errs, errors.New("test header: name and value must be set together"))
	}
	return errors.Join(errs...)
}

// Event is the payload ECS sends to a lifecycle hook. ECS documents the stage fields both at
// the top level and under executionDetails; both are read.
type Event struct {
	ExecutionID      string             `json:"executionId,omitempty"`
	LifecycleStage   string             `json:"lifecycleStage,omitempty"`
	ResourceARN      string             `json:"resourceArn,omitempty"`
	ExecutionDetails *ExecutionDetails  `json:"executionDetails,omitempty"`
	HookDetails      map[string]any     `json:"hookDetails,omitempty"`
	ServiceARN       string             `json:"serviceArn,omitempty"`
	TargetRevision   string             `json:"targetServiceRevisionArn,omitempty"`
	TestWeights      map[string]float64 `json:"testTrafficWeights,omitempty"`
	ProdWeights      map[string]float64 `json:"productionTrafficWeights,omitempty"`
}

// Revision is the service revision being deployed, from whichever form ECS sent.
func (e Event) Revision() string {
	if e.TargetRevision == "" && e.ExecutionDetails != nil {
		return e.ExecutionDetails.TargetRevision
	}
	return e.TargetRevision
}

// ExecutionDetails is the nested form of the stage fields.
type ExecutionDetails struct {
	ServiceARN     string             `json:"serviceArn,omitempty"`
	TargetRevision string             `json:"targetServiceRevisionArn,omitempty"`
	TestWeights    map[string]float64 `json:"testTrafficWeights,omitempty"`
	ProdWeights    map[string]float64 `json:"productionTrafficWeights,omitempty"`
}

// Response is what the hook returns to ECS.
type Response struct {
	HookStatus string `json:"hookStatus"`
	// CallBackDelay is in seconds; only meaningful with IN_PROGRESS.
	CallBackDelay int            `json:"callBackDelay,omitempty"`
	HookDetails   map[string]any `json:"hookDetails,omitempty"`
	// Reason is not read by ECS; it lands in the function's log and output for whoever
	// investigates a rollback.
	Reason string `json:"reason"`
}

// Hook probes readiness for one deployment stage.
type Hook struct {
	Config Config
	Client *http.Client                                     // nil: a client with no redirects and no connection reuse
	Now    func() time.Time                                 // nil: time.Now
	Sleep  func(ctx context.Context, d time.Duration) error // nil: a context-aware sleep
}

// Handle decides one invocation. It never returns an error for a failed probe — that is a
// FAILED or IN_PROGRESS answer — only for an event it cannot read, which ECS treats as a
// failure and rolls back.
func (h *Hook) Handle(ctx context.Context, ev Event) (Response, error) {
	now := h.now()
	state, err := readState(ev.HookDetails, now)
	if err != nil {
		return Response{}, err
	}
	url := h.Config.URL
	if u, ok := ev.HookDetails[detailURL].(string); ok && u != "" {
		url = u
	}
	if url == "" {
		return Response{}, fmt.Errorf("readiness hook: no readiness URL (set %s or hookDetails.%s)", EnvURL, detailURL)
	}
	state.attempts++

	verdict := h.probeAll(ctx, url)
	elapsed := now.Sub(state.firstSeen)
	where := fmt.Sprintf("%s (attempt %d, %s after the first)", url, state.attempts, elapsed.Round(time.Second))
	if rev := ev.Revision(); rev != "" {
		where += " for " + rev
	}
	switch {
	case verdict.ok:
		return Response{
			HookStatus: StatusSucceeded,
			Reason:     fmt.Sprintf("readiness: %d consecutive 200s from %s", h.Config.Probes, where),
		}, nil
	case elapsed >= h.Config.Deadline:
		return Response{
			HookStatus: StatusFailed,
			Reason: fmt.Sprintf("readiness: not ready within %s: %s at %s; rolling back",
				h.Config.Deadline, verdict.reason, where),
		}, nil
	default:
		return Response{
			HookStatus:    StatusInProgress,
			CallBackDelay: int(h.Config.CallBackDelay / time.Second),
			HookDetails:   state.details(ev.HookDetails),
			Reason: fmt.Sprintf("readiness: not ready yet: %s at %s; retrying in %s (gives up %s after the first attempt)",
				verdict.reason, where, h.Config.CallBackDelay, h.Config.Deadline),
		}, nil
	}
}

type probeVerdict struct {
	ok     bool
	reason string
}

// probeAll sends Config.Probes requests; the first that is not a 200 ends the round.
func (h *Hook) probeAll(ctx context.Context, url string) probeVerdict {
	for i := 0; i < h.Config.Probes; i++ {
		if i > 0 && h.Config.ProbeInterval > 0 {
			if err := h.sleep(ctx, h.Config.ProbeInterval); err != nil {
				return probeVerdict{reason: fmt.Sprintf("probe %d/%d: %v", i+1, h.Config.Probes, err)}
			}
		}
		if reason := h.probe(ctx, url); reason != "" {
			return probeVerdict{reason: fmt.Sprintf("probe %d/%d: %s", i+1, h.Config.Probes, reason)}
		}
	}
	return probeVerdict{ok: true}
}

// probe returns "" for a 200, or why it was not one.
func (h *Hook) probe(ctx context.Context, url string) string {
	ctx, cancel := context.WithTimeout(ctx, h.Config.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Sprintf("bad readiness URL: %v", err)
	}
	if h.Config.Header != "" {
		req.Header.Set(h.Config.Header, h.Config.HeaderValue)
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return fmt.Sprintf("GET failed: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	if err != nil {
		return fmt.Sprintf("GET %d: reading body: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("GET returned %d: %s", resp.StatusCode, summarize(body))
	}
	return ""
}

// summarize keeps the first lines of a readiness body: the proxy lists failing checks there
// ("[-]upstream.cluster.app failed: ...").
func summarize(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return "(empty body)"
	}
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

type state struct {
	firstSeen time.Time
	attempts  int
}

func readState(details map[string]any, now time.Time) (state, error) {
	st := state{firstSeen: now}
	if v, ok := details[detailFirstSeen]; ok {
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return st, fmt.Errorf("readiness hook: hookDetails.%s = %v: %w", detailFirstSeen, v, err)
		}
		if t.Before(now) {
			st.firstSeen = t
		}
	}
	if v, ok := details[detailAttempts]; ok {
		switch n := v.(type) {
		case string:
			a, err := strconv.Atoi(n)
			if err != nil {
				return st, fmt.Errorf("readiness hook: hookDetails.%s = %q: %w", detailAttempts, n, err)
			}
			st.attempts = a
		case float64:
			st.attempts = int(n)
		case json.Number:
			a, err := n.Int64()
			if err != nil {
				return st, fmt.Errorf("readiness hook: hookDetails.%s = %q: %w", detailAttempts, n, err)
			}
			st.attempts = int(a)
		}
	}
	return st, nil
}

// details returns the hookDetails to hand back: the caller's keys plus the hook's state.
func (s state) details(in map[string]any) map[string]any {
	out := make(map[string]any, len(in)+2)
	for k, v := range in {
		out[k] = v
	}
	out[detailFirstSeen] = s.firstSeen.UTC().Format(time.RFC3339Nano)
	out[detailAttempts] = strconv.Itoa(s.attempts)
	return out
}

func (h *Hook) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Hook) sleep(ctx context.Context, d time.Duration) error {
	if h.Sleep != nil {
		return h.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (h *Hook) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return &http.Client{
		// A redirect from the test listener means a misrouted probe (the production listener
		// redirects HTTP to HTTPS): report it rather than follow it to the old tasks.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// No keep-alive: each probe opens a new connection, so the load balancer may pick
		// another target for each.
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
}
