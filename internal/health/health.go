// Package health is Gangway's component health model.
//
// Every subsystem (config, xDS, listeners, TLS, upstreams) registers a named check in a
// Registry and reports its state there. A check says which probes it gates: startup,
// readiness, liveness. One evaluation over a consistent snapshot of the registry answers
// every probe, and every output (HTTP probes, the healthcheck binary through them, systemd,
// metrics) uses that evaluation, so they never disagree.
//
// The rules (see Snapshot.Evaluate):
//   - startup passes once every startup-gating check has been RUNNING at least once;
//   - readiness passes when startup has passed, every readiness-gating check is RUNNING, has
//     no error, is fresh (reported within its TTL), reflects the current config version when
//     it is versioned, and the process is not terminating. A check that gates startup but
//     not readiness (config.build: a rejected reload leaves the last good config serving)
//     may carry an error without failing readiness;
//   - liveness fails only when a liveness-gating check carries an error or is stale. Only
//     process faults (a stuck loop, a fatal internal error) should gate liveness: a dependency
//     error must never restart every replica at once. TERMINATING leaves liveness green;
//   - container, the probe for an orchestrator that replaces a failing container (the ECS
//     container health check), passes once readiness has passed at least once and while
//     liveness passes. After that first readiness nothing but liveness fails it: a dependency
//     outage, a rejected reload or a drain never does. A process that never becomes ready (its
//     config cannot be built, a required upstream never turns healthy) fails it for ever, so
//     the orchestrator still replaces it once its grace period (ECS: startPeriod) is over.
//     The first readiness counts only when at least one check gates it, so a process must
//     register the checks that hold its start before it reports anything else as RUNNING.
//
// There is no package-level state: each process (or test) builds its own Registry.
package health

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status is the lifecycle state of a check. An error is orthogonal to it: a RUNNING check
// may carry an error, which fails readiness without undoing startup.
type Status int

const (
	// Starting: registered, not yet RUNNING.
	Starting Status = iota
	// Running: the component completed its setup and is serving.
	Running
	// Terminating: the component is shutting down gracefully.
	Terminating
)

func (s Status) String() string {
	switch s {
	case Starting:
		return "STARTING"
	case Running:
		return "RUNNING"
	case Terminating:
		return "TERMINATING"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Probe is a set of probes; a check's Gates says which probes it can fail.
type Probe uint8

const (
	Startup Probe = 1 << iota
	Readiness
	Liveness
	// Container is derived from the others (see Snapshot.Evaluate): no check gates it, and
	// a Spec's Gates ignores it.
	Container
)

// ParseProbe parses "startup", "ready"/"readiness", "live"/"liveness" or "container".
func ParseProbe(s string) (Probe, error) {
	switch strings.ToLower(s) {
	case "startup", "start", "startupz":
		return Startup, nil
	case "ready", "readiness", "readyz":
		return Readiness, nil
	case "live", "liveness", "livez":
		return Liveness, nil
	case "container", "containerz":
		return Container, nil
	}
	return 0, fmt.Errorf("unknown probe %q (want container, ready, live or startup)", s)
}

func (p Probe) String() string {
	var names []string
	if p&Startup != 0 {
		names = append(names, "startup")
	}
	if p&Readiness != 0 {
		names = append(names, "readiness")
	}
	if p&Liveness != 0 {
		names = append(names, "liveness")
	}
	if p&Container != 0 {
		names = append(names, "container")
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// Attr is a key/value attribute of a check. Its fields have no JSON tags on purpose: the
// /status output shows them as {"Key":..,"Value":..}, a shape existing tooling parses.
type Attr struct {
	Key, Value string
}

// A is shorthand for Attr{key, value}.
func A(key, value string) Attr { return Attr{Key: key, Value: value} }

// Spec declares a check.
type Spec struct {
	// Name identifies the check, dotted by subsystem: "config.build", "upstream.cluster.app".
	Name string
	// Gates is the set of probes this check can fail.
	Gates Probe
	// TTL, when positive, makes a report stale once it is older than TTL; a stale check
	// fails the probes it gates. Use it for checks that report periodically.
	TTL time.Duration
	// Versioned checks must report the registry's current config version to pass readiness.
	Versioned bool
}

// Record is the state of one check at one instant.
type Record struct {
	Spec
	Status Status
	// Err is the current error, or "" when there is none.
	Err   string
	Attrs []Attr
	// Since is when Status, Err, Attrs or Version last changed.
	Since time.Time
	// Reported is when the check last reported, changed or not; TTLs count from it.
	Reported time.Time
	// Version is the config version this state reflects ("" when not versioned).
	Version string
	// EverRunning is true once the check has been RUNNING.
	EverRunning bool
}

// Report is one state report from a component.
type Report struct {
	Status  Status
	Err     error
	Attrs   []Attr
	Version string
}

// Registry holds every check of a process. It is safe for concurrent use.
type Registry struct {
	now func() time.Time

	// batch makes a Batch atomic for observers: Batch holds it for writing, Snapshot for
	// reading. Reports do not take it, so reporters inside a Batch never block on it.
	batch sync.RWMutex

	mu          sync.Mutex
	checks      map[string]*Record
	version     string // current config version
	terminating bool
	// everReady latches once readiness has passed; the Container probe reads it.
	everReady bool
	subs      map[chan struct{}]struct{}
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock replaces time.Now, for tests of staleness.
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// NewRegistry returns an empty registry.
func NewRegistry(opts ...Option) *Registry {
	r := &Registry{now: time.Now, checks: map[string]*Record{}, subs: map[chan struct{}]struct{}{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Check is a component's handle on its registered check.
type Check struct {
	r    *Registry
	name string
}

// Register declares a check and returns its handle. The check starts in STARTING.
// Registering a name again updates its spec and keeps its state, so a component rebuilt on
// reload keeps reporting into the same record.
func (r *Registry) Register(spec Spec) *Check {
	if spec.Name == "" {
		panic("health: Register with empty name")
	}
	spec.Gates &^= Container
	r.mu.Lock()
	now := r.now()
	if rec, ok := r.checks[spec.Name]; ok {
		rec.Spec = spec
	} else {
		r.checks[spec.Name] = &Record{Spec: spec, Status: Starting, Since: now, Reported: now}
	}
	r.mu.Unlock()
	r.notify()
	return &Check{r: r, name: spec.Name}
}

// Unregister removes a check (a cluster or listener deleted by a reload).
func (r *Registry) Unregister(name string) {
	r.mu.Lock()
	_, ok := r.checks[name]
	delete(r.checks, name)
	r.mu.Unlock()
	if ok {
		r.notify()
	}
}

// Name returns the check's name.
func (c *Check) Name() string { return c.name }

// Report records a full state report.
func (c *Check) Report(rep Report) { c.r.report(c.name, rep, true) }

// Running reports RUNNING with no error, at the given config version.
func (c *Check) Running(version string, attrs ...Attr) {
	c.Report(Report{Status: Running, Version: version, Attrs: attrs})
}

// Fail attaches an error and keeps the current status, so a RUNNING component that hits an
// error stays started (startup still passes) but fails readiness. Attributes replace the
// previous ones when given. The version is left unchanged.
func (c *Check) Fail(err error, attrs ...Attr) {
	if err == nil {
		err = errors.New("unknown error")
	}
	c.r.report(c.name, Report{Err: err, Attrs: attrs}, false)
}

// Terminating reports TERMINATING, keeping attributes and version.
func (c *Check) Terminating() {
	c.r.mu.Lock()
	rec, ok := c.r.checks[c.name]
	var rep Report
	if ok {
		rep = Report{Status: Terminating, Attrs: rec.Attrs, Version: rec.Version}
	}
	c.r.mu.Unlock()
	if ok {
		c.Report(rep)
	}
}

// report applies rep. When full is false only the error (and attributes, if any) change.
func (r *Registry) report(name string, rep Report, full bool) {
	r.mu.Lock()
	rec, ok := r.checks[name]
	if !ok {
		r.mu.Unlock()
		return // unregistered while a reporter still ran; drop the report
	}
	now := r.now()
	next := *rec
	next.Reported = now
	if rep.Err != nil {
		next.Err = rep.Err.Error()
	} else {
		next.Err = ""
	}
	if full {
		next.Status = rep.Status
		next.Version = rep.Version
		next.Attrs = append([]Attr(nil), rep.Attrs...)
	} else if rep.Attrs != nil {
		next.Attrs = append([]Attr(nil), rep.Attrs...)
	}
	if next.Status == Running {
		next.EverRunning = true
	}
	changed := !sameState(rec, &next)
	if changed {
		next.Since = now
	}
	*rec = next
	r.mu.Unlock()
	if changed {
		r.notify()
	} else {
		// A fresh report of the same state can end a staleness, and so make the process
		// ready for the first time.
		r.latchReady()
	}
}

func sameState(a, b *Record) bool {
	if a.Status != b.Status || a.Err != b.Err || a.Version != b.Version || len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for i := range a.Attrs {
		if a.Attrs[i] != b.Attrs[i] {
			return false
		}
	}
	return true
}

// SetConfigVersion records the config version that versioned checks must reflect.
func (r *Registry) SetConfigVersion(v string) {
	r.mu.Lock()
	changed := r.version != v
	r.version = v
	r.mu.Unlock()
	if changed {
		r.notify()
	}
}

// BeginShutdown marks the process as terminating: readiness fails at once for every probe
// consumer, liveness is untouched. It is idempotent.
func (r *Registry) BeginShutdown() {
	r.mu.Lock()
	changed := !r.terminating
	r.terminating = true
	r.mu.Unlock()
	if changed {
		r.notify()
	}
}

// Subscribe returns a channel that receives a value after any change (coalesced: one
// pending notification at most) and a function that ends the subscription. Consumers take a
// Snapshot when notified. Staleness (TTL) changes without a report, so consumers that must
// notice it also re-evaluate on a timer.
func (r *Registry) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		delete(r.subs, ch)
		r.mu.Unlock()
	}
}

func (r *Registry) notify() {
	r.latchReady()
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// latchReady sets everReady when readiness passes now. Readiness can start to pass only
// after a report (a TTL running out only ever fails it), so every report ends here. While a
// Batch runs, the registry may be half-applied: the Batch latches when it ends instead.
func (r *Registry) latchReady() {
	r.mu.Lock()
	done := r.everReady
	r.mu.Unlock()
	if done || !r.batch.TryRLock() {
		return
	}
	defer r.batch.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latchReadyLocked()
}

// latchReadyLocked is latchReady with r.mu held and no Batch running but the caller's.
// Readiness with no check gating it passes vacuously and latches nothing: a process that
// has registered nothing yet has not started.
func (r *Registry) latchReadyLocked() {
	if r.everReady {
		return
	}
	if res := r.snapshotLocked().Evaluate(Readiness); res.OK && len(res.Checks) > 0 {
		r.everReady = true
	}
}

// Snapshot is a consistent copy of the registry at one instant.
type Snapshot struct {
	At            time.Time
	ConfigVersion string
	Terminating   bool
	// EverReady is true once readiness has passed, at this instant or before: the process
	// has completed its startup, as the Container probe sees it.
	EverReady bool
	// Records, sorted by name.
	Records []Record
}

// Batch runs fn, and no Snapshot observes the registry while it runs: a reload that
// reports several checks at a new config version and moves the current version is seen
// whole or not at all, so probes never see a half-applied version. fn must not call
// Snapshot or Evaluate (it would deadlock) and should be quick: probes wait for it.
func (r *Registry) Batch(fn func()) {
	r.batch.Lock()
	defer r.batch.Unlock()
	fn()
	r.mu.Lock()
	r.latchReadyLocked()
	r.mu.Unlock()
}

// Snapshot copies the registry's state.
func (r *Registry) Snapshot() Snapshot {
	r.batch.RLock()
	defer r.batch.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

// snapshotLocked is Snapshot with r.mu held.
func (r *Registry) snapshotLocked() Snapshot {
	s := Snapshot{At: r.now(), ConfigVersion: r.version, Terminating: r.terminating, EverReady: r.everReady}
	s.Records = make([]Record, 0, len(r.checks))
	for _, rec := range r.checks {
		c := *rec
		c.Attrs = append([]Attr(nil), rec.Attrs...)
		s.Records = append(s.Records, c)
	}
	sort.Slice(s.Records, func(i, j int) bool { return s.Records[i].Name < s.Records[j].Name })
	return s
}

// Evaluate is a shorthand for r.Snapshot().Evaluate(p, exclude...).
func (r *Registry) Evaluate(p Probe, exclude ...string) Result {
	return r.Snapshot().Evaluate(p, exclude...)
}

// Result is the verdict of one probe.
type Result struct {
	Probe Probe
	OK    bool
	// Checks lists every check that gates the probe, sorted by name.
	Checks []CheckResult
	// UnknownExcludes are excluded names that match no check.
	UnknownExcludes []string
}

// CheckResult is one check's part in a probe's verdict.
type CheckResult struct {
	Name     string
	OK       bool
	Excluded bool
	// Reason says why the check fails the probe ("" when it passes).
	Reason string
}

// ShutdownCheckName is the pseudo-check that fails readiness while the process terminates.
const ShutdownCheckName = "shutdown"

// Evaluate applies the probe rules to the snapshot. Excluded checks are listed but do not
// count. Terminating is not excludable: a process that is shutting down is never ready.
func (s Snapshot) Evaluate(p Probe, exclude ...string) Result {
	if p == Container {
		return s.evaluateContainer(exclude)
	}
	res := Result{Probe: p, OK: true}
	ex := map[string]bool{}
	for _, e := range exclude {
		ex[e] = true
	}
	seen := map[string]bool{}
	for i := range s.Records {
		rec := &s.Records[i]
		rule := p
		switch {
		case rec.Gates&p != 0:
		case p == Readiness && rec.Gates&Startup != 0:
			// Readiness implies startup: a startup-only check (config.build) holds
			// readiness until it has been RUNNING once, and no longer after that.
			rule = Startup
		default:
			continue
		}
		seen[rec.Name] = true
		cr := CheckResult{Name: rec.Name, OK: true}
		if reason := s.failReason(rec, rule); reason != "" {
			cr.OK, cr.Reason = false, reason
		}
		if ex[rec.Name] {
			cr.Excluded = true
		} else if !cr.OK {
			res.OK = false
		}
		res.Checks = append(res.Checks, cr)
	}
	if p == Readiness && s.Terminating {
		res.OK = false
		res.Checks = append(res.Checks, CheckResult{Name: ShutdownCheckName, Reason: "process is terminating"})
	}
	for _, e := range exclude {
		if !seen[e] {
			res.UnknownExcludes = append(res.UnknownExcludes, e)
		}
	}
	return res
}

// evaluateContainer is liveness, and, until readiness has passed once, readiness too: a
// check that holds the first readiness fails with "never ready: " and its readiness reason.
func (s Snapshot) evaluateContainer(exclude []string) Result {
	live := s.Evaluate(Liveness, exclude...)
	res := Result{Probe: Container, OK: live.OK, Checks: live.Checks, UnknownExcludes: live.UnknownExcludes}
	if s.EverReady {
		return res
	}
	ready := s.Evaluate(Readiness, exclude...)
	res.OK = res.OK && ready.OK
	if len(ready.Checks) == 0 {
		res.OK = false
		res.Checks = append(res.Checks, CheckResult{Name: "readiness", Reason: "never ready: no check gates readiness yet"})
	}
	byName := map[string]int{}
	for i, c := range res.Checks {
		byName[c.Name] = i
	}
	for _, c := range ready.Checks {
		if !c.OK {
			c.Reason = "never ready: " + c.Reason
		}
		i, ok := byName[c.Name]
		if !ok {
			res.Checks = append(res.Checks, c)
			continue
		}
		if have := &res.Checks[i]; have.OK && !c.OK {
			have.OK, have.Reason = false, c.Reason
		}
	}
	sort.Slice(res.Checks, func(i, j int) bool { return res.Checks[i].Name < res.Checks[j].Name })
	// An exclude is unknown only when neither probe knows the name.
	res.UnknownExcludes = nil
	for _, e := range live.UnknownExcludes {
		if slices.Contains(ready.UnknownExcludes, e) {
			res.UnknownExcludes = append(res.UnknownExcludes, e)
		}
	}
	return res
}

// failReason returns why rec fails probe p, or "".
func (s Snapshot) failReason(rec *Record, p Probe) string {
	stale := rec.TTL > 0 && s.At.Sub(rec.Reported) > rec.TTL
	staleReason := func() string {
		return fmt.Sprintf("stale: last report %s ago, ttl %s", s.At.Sub(rec.Reported).Round(time.Millisecond), rec.TTL)
	}
	switch p {
	case Startup:
		if !rec.EverRunning {
			if rec.Err != "" {
				return fmt.Sprintf("%s: %s", rec.Status, rec.Err)
			}
			return "not started: " + rec.Status.String()
		}
	case Readiness:
		switch {
		case rec.Status != Running:
			if rec.Err != "" {
				return fmt.Sprintf("%s: %s", rec.Status, rec.Err)
			}
			return "status " + rec.Status.String()
		case rec.Err != "":
			return rec.Err
		case stale:
			return staleReason()
		case rec.Versioned && rec.Version != s.ConfigVersion:
			return fmt.Sprintf("at config version %q, current is %q", rec.Version, s.ConfigVersion)
		}
	case Liveness:
		switch {
		case rec.Err != "":
			return rec.Err
		case stale:
			return staleReason()
		}
	}
	return ""
}

// FirstFailure returns "name: reason" for the first failing, non-excluded check, or "".
func (r Result) FirstFailure() string {
	for _, c := range r.Checks {
		if !c.OK && !c.Excluded {
			return c.Name + ": " + c.Reason
		}
	}
	return ""
}
