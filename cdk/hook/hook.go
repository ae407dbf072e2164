// Package hook is the decision logic of the deployment lifecycle hook: a Lambda function that
// ECS invokes at two stages of a blue/green (or linear, canary) deployment.
//
// At POST_SCALE_UP it counts the healthy targets of the new tasks' target group (the one the
// production rule gives no weight yet) against the service's desired count, so that a
// revision whose tasks crash or never turn healthy fails within the deadline.
//
// At POST_TEST_TRAFFIC_SHIFT it sends rounds of requests through the load balancer's test
// listener, which at that stage routes only to the new tasks: the proxy's readiness path
// first, then each smoke check (a real route of the application and the statuses it must
// answer), so that a revision that is ready but answers 5xx never takes production traffic.
//
// At either stage it answers ECS with
//
//	SUCCEEDED    the check passed: the deployment goes on
//	IN_PROGRESS  not yet: ECS invokes the hook again after CallBackDelay
//	FAILED       still not passing when the deadline passed: ECS rolls the deployment back
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
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Lifecycle stages the hook acts at.
const (
	StagePostScaleUp          = "POST_SCALE_UP"
	StagePostTestTrafficShift = "POST_TEST_TRAFFIC_SHIFT"
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
	// http://my-alb-123.eu-west-1.elb.amazonaws.com:8080/gangway/ready. Smoke checks go to
	// the same scheme and host.
	URL string
	// Smoke checks follow the readiness request in every round.
	Smoke []SmokeCheck
	// TargetGroups are the service's two target group ARNs; the capacity check at
	// POST_SCALE_UP looks at the one with no production weight. Empty: the check is off.
	TargetGroups []string
	// ProductionRule is the production listener rule's ARN.
	ProductionRule string
	// Header and HeaderValue, when set, are sent with every probe: the test listener rule
	// forwards only requests that carry them.
	Header, HeaderValue string
	// Probes is how many consecutive 200s one invocation needs to succeed. The load balancer
	// spreads them over the new tasks, so more probes sample more tasks. At least 1.
	Probes int // rounds, in fact: readiness and every smoke check, each round
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
	// EnvSmokeChecks is a JSON array: [{"path": "/", "statuses": "200-499"}, ...].
	EnvSmokeChecks = "GANGWAY_SMOKE_CHECKS"
	// EnvTargetGroups is the two target group ARNs, comma-separated; EnvProductionRule the
	// production listener rule's ARN. Both are for the capacity check.
	EnvTargetGroups   = "GANGWAY_TARGET_GROUPS"
	EnvProductionRule = "GANGWAY_PRODUCTION_RULE"
)

// SmokeCheck is one request of a round: GET Path must answer a status in Statuses.
type SmokeCheck struct {
	Path     string   `json:"path"`
	Statuses Statuses `json:"statuses"`
}

// Statuses is a set of HTTP status codes written as the load balancer's matcher is: codes
// and ranges separated by commas, "200", "200,204", "200-299,304".
type Statuses struct {
	spec   string
	ranges [][2]int
}

// ParseStatuses reads a matcher. Codes are 100–599.
func ParseStatuses(spec string) (Statuses, error) {
	st := Statuses{spec: spec}
	if strings.TrimSpace(spec) == "" {
		return st, errors.New(`statuses: empty; want codes or ranges such as "200" or "200-299,304"`)
	}
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, errA := strconv.Atoi(lo)
		b := a
		var errB error
		if isRange {
			b, errB = strconv.Atoi(hi)
		}
		if errA != nil || errB != nil || a < 100 || b > 599 || a > b {
			return st, fmt.Errorf("statuses %q: %q is not a code (100–599) or a range such as 200-299", spec, part)
		}
		st.ranges = append(st.ranges, [2]int{a, b})
	}
	return st, nil
}

// Match reports whether code is in the set.
func (s Statuses) Match(code int) bool {
	for _, r := range s.ranges {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}

func (s Statuses) String() string { return s.spec }

// UnmarshalJSON reads the matcher from a JSON string.
func (s *Statuses) UnmarshalJSON(b []byte) error {
	var spec string
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("statuses: want a string such as \"200-299\": %w", err)
	}
	parsed, err := ParseStatuses(spec)
	if err != nil {
		return err
	}
	*s = parsed
	return nil
}

// MarshalJSON writes the matcher as it was given.
func (s Statuses) MarshalJSON() ([]byte, error) { return json.Marshal(s.spec) }

// FromEnv builds a Config from Defaults and the environment variables above. Durations use
// Go syntax ("30s", "10m").
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults()
	c.URL = getenv(EnvURL)
	if v := getenv(EnvSmokeChecks); v != "" {
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.Smoke); err != nil {
			return c, fmt.Errorf("%s: %w", EnvSmokeChecks, err)
		}
	}
	if v := getenv(EnvTargetGroups); v != "" {
		c.TargetGroups = strings.Split(v, ",")
	}
	c.ProductionRule = getenv(EnvProductionRule)
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
	for i, sc := range c.Smoke {
		if !strings.HasPrefix(sc.Path, "/") {
			errs = append(errs, fmt.Errorf("smoke check %d: path %q: must start with /", i, sc.Path))
		}
		if len(sc.Statuses.ranges) == 0 {
			errs = append(errs, fmt.Errorf("smoke check %d (%s): no statuses", i, sc.Path))
		}
	}
	if n := len(c.TargetGroups); n != 0 && n != 2 {
		errs = append(errs, fmt.Errorf("target groups: %d given, want the service's two", n))
	}
	if (len(c.TargetGroups) == 0) != (c.ProductionRule == "") {
		errs = append(errs, errors.New("capacity check: the target groups and the production rule must be set together"))
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

// Stage is the lifecycle stage, from whichever form ECS sent; "" when neither carries it.
func (e Event) Stage() string {
	if e.LifecycleStage == "" && e.ExecutionDetails != nil {
		return e.ExecutionDetails.LifecycleStage
	}
	return e.LifecycleStage
}

// Service is the service's ARN, from whichever form ECS sent.
func (e Event) Service() string {
	if e.ServiceARN == "" && e.ExecutionDetails != nil {
		return e.ExecutionDetails.ServiceARN
	}
	return e.ServiceARN
}

// ExecutionDetails is the nested form of the stage fields.
type ExecutionDetails struct {
	LifecycleStage string             `json:"lifecycleStage,omitempty"`
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

// Target is one registered target of a target group and its health, as Elastic Load
// Balancing reports it (State "healthy", "initial", "unhealthy", "draining", ...).
type Target struct {
	ID, State, Reason string
}

// Fleet is what the capacity check asks of Elastic Load Balancing and ECS.
type Fleet interface {
	// ProductionWeights returns each target group's weight in the production listener rule.
	ProductionWeights(ctx context.Context) (map[string]int, error)
	// TargetHealth lists a target group's registered targets.
	TargetHealth(ctx context.Context, targetGroupARN string) ([]Target, error)
	// DesiredCount is the service's desired task count.
	DesiredCount(ctx context.Context, serviceARN string) (int, error)
}

// Hook runs the checks of one deployment stage.
type Hook struct {
	Config Config
	Fleet  Fleet                                            // the capacity check's view of the AWS APIs; nil disables it
	Client *http.Client                                     // nil: a client with no redirects and no connection reuse
	Now    func() time.Time                                 // nil: time.Now
	Sleep  func(ctx context.Context, d time.Duration) error // nil: a context-aware sleep
}

// Handle decides one invocation. It never returns an error for a failed check — that is a
// FAILED or IN_PROGRESS answer — only for an event or a configuration it cannot work with,
// which ECS treats as a failure and rolls back.
func (h *Hook) Handle(ctx context.Context, ev Event) (Response, error) {
	now := h.now()
	ctx, cancel := answerInTime(ctx)
	defer cancel()
	state, err := readState(ev.HookDetails, now)
	if err != nil {
		return Response{}, err
	}
	var (
		check, where string
		verdict      probeVerdict
	)
	switch ev.Stage() {
	case StagePostScaleUp:
		if h.Fleet == nil || len(h.Config.TargetGroups) != 2 {
			return Response{}, fmt.Errorf("hook: %s: capacity check not configured (set %s and the production rule)", StagePostScaleUp, EnvTargetGroups)
		}
		check = "capacity"
		state.attempts++
		verdict, where = h.capacity(ctx, ev.Service())
	default:
		url := h.Config.URL
		if u, ok := ev.HookDetails[detailURL].(string); ok && u != "" {
			url = u
		}
		if url == "" {
			return Response{}, fmt.Errorf("readiness hook: no readiness URL (set %s or hookDetails.%s)", EnvURL, detailURL)
		}
		check, where = "readiness", url
		state.attempts++
		verdict = h.probeAll(ctx, url)
	}

	elapsed := now.Sub(state.firstSeen)
	where = fmt.Sprintf("%s (attempt %d, %s after the first)", where, state.attempts, elapsed.Round(time.Second))
	if rev := ev.Revision(); rev != "" {
		where += " for " + rev
	}
	switch {
	case verdict.ok:
		return Response{HookStatus: StatusSucceeded, Reason: fmt.Sprintf("%s: %s at %s", check, verdict.reason, where)}, nil
	case elapsed >= h.Config.Deadline:
		return Response{
			HookStatus: StatusFailed,
			Reason: fmt.Sprintf("%s: not ready within %s: %s at %s; rolling back",
				check, h.Config.Deadline, verdict.reason, where),
		}, nil
	default:
		return Response{
			HookStatus:    StatusInProgress,
			CallBackDelay: int(h.Config.CallBackDelay / time.Second),
			HookDetails:   state.details(ev.HookDetails),
			Reason: fmt.Sprintf("%s: not ready yet: %s at %s; retrying in %s (gives up %s after the first attempt)",
				check, verdict.reason, where, h.Config.CallBackDelay, h.Config.Deadline),
		}, nil
	}
}

// answerInTime ends the checks before the invocation's own deadline (the function's
// timeout), leaving time to answer: a function that runs out of time is a function error,
// which ECS treats as a failed hook and rolls back, while a check cut short is an
// IN_PROGRESS like any other failed probe. The margin is a quarter of the time left, at
// most answerMargin.
func answerInTime(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	margin := min(time.Until(deadline)/4, answerMargin)
	return context.WithDeadline(ctx, deadline.Add(-margin))
}

// answerMargin is the most time answerInTime keeps for answering.
const answerMargin = 2 * time.Second

type probeVerdict struct {
	ok     bool
	reason string // why not, or what passed
}

// capacity compares the healthy targets of the new tasks' target group with the desired
// count. At POST_SCALE_UP production traffic has not moved, so the new tasks' group is the
// one with no weight in the production rule.
func (h *Hook) capacity(ctx context.Context, service string) (probeVerdict, string) {
	weights, err := h.Fleet.ProductionWeights(ctx)
	if err != nil {
		return probeVerdict{reason: fmt.Sprintf("reading the production rule: %v", err)}, service
	}
	var idle []string
	for _, tg := range h.Config.TargetGroups {
		if weights[tg] == 0 {
			idle = append(idle, tg)
		}
	}
	if len(idle) != 1 {
		return probeVerdict{reason: fmt.Sprintf("the production rule's weights %v do not leave exactly one of %v without traffic", weights, h.Config.TargetGroups)}, service
	}
	group := idle[0]
	where := fmt.Sprintf("%s in %s", service, group)
	if service == "" {
		return probeVerdict{reason: "the event names no service"}, where
	}
	desired, err := h.Fleet.DesiredCount(ctx, service)
	if err != nil {
		return probeVerdict{reason: fmt.Sprintf("reading the desired count: %v", err)}, where
	}
	targets, err := h.Fleet.TargetHealth(ctx, group)
	if err != nil {
		return probeVerdict{reason: fmt.Sprintf("reading target health: %v", err)}, where
	}
	healthy := 0
	others := map[string]int{}
	for _, t := range targets {
		if t.State == "healthy" {
			healthy++
			continue
		}
		key := t.State
		if t.Reason != "" {
			key += " (" + t.Reason + ")"
		}
		others[key]++
	}
	summary := fmt.Sprintf("%d of %d desired tasks healthy", healthy, desired)
	if len(others) > 0 {
		keys := make([]string, 0, len(others))
		for k := range others {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%d %s", others[k], k))
		}
		summary += "; " + strings.Join(parts, ", ")
	}
	return probeVerdict{ok: desired > 0 && healthy >= desired, reason: summary}, where
}

// probeAll sends Config.Probes rounds: readiness, then every smoke check. The first answer
// out of place ends the rounds.
func (h *Hook) probeAll(ctx context.Context, readyURL string) probeVerdict {
	ok200, _ := ParseStatuses("200")
	for i := 0; i < h.Config.Probes; i++ {
		if i > 0 && h.Config.ProbeInterval > 0 {
			if err := h.sleep(ctx, h.Config.ProbeInterval); err != nil {
				return probeVerdict{reason: fmt.Sprintf("probe %d/%d: %v", i+1, h.Config.Probes, err)}
			}
		}
		if reason := h.probe(ctx, readyURL, ok200); reason != "" {
			return probeVerdict{reason: fmt.Sprintf("probe %d/%d: %s", i+1, h.Config.Probes, reason)}
		}
		for _, sc := range h.Config.Smoke {
			u, err := smokeURL(readyURL, sc.Path)
			if err != nil {
				return probeVerdict{reason: fmt.Sprintf("smoke check %s: %v", sc.Path, err)}
			}
			if reason := h.probe(ctx, u, sc.Statuses); reason != "" {
				return probeVerdict{reason: fmt.Sprintf("probe %d/%d: smoke check %s (want %s): %s", i+1, h.Config.Probes, sc.Path, sc.Statuses, reason)}
			}
		}
	}
	msg := fmt.Sprintf("%d consecutive 200s", h.Config.Probes)
	if n := len(h.Config.Smoke); n > 0 {
		msg = fmt.Sprintf("%d rounds of a 200 from readiness and %d smoke check(s) as expected", h.Config.Probes, n)
	}
	return probeVerdict{ok: true, reason: msg}
}

// smokeURL is path (with its query) on the readiness URL's scheme and host.
func smokeURL(readyURL, path string) (string, error) {
	base, err := url.Parse(readyURL)
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(path)
	if err != nil {
		return "", err
	}
	return base.ResolveReference(ref).String(), nil
}

// probe returns "" for a status in want, or why it was not one.
func (h *Hook) probe(ctx context.Context, url string, want Statuses) string {
	ctx, cancel := context.WithTimeout(ctx, h.Config.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Sprintf("bad URL: %v", err)
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
	if !want.Match(resp.StatusCode) {
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
