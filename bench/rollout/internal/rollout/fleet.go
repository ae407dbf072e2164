package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/haproxy"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/replica"
)

// fleet is the set of replicas behind the load balancer, and what ECS does to them.
type fleet struct {
	o   Options
	v   Variant
	dir string
	lb  *haproxy.HAProxy
	log func(format string, args ...any)

	mu       sync.Mutex
	lbEvents []lbEvent // status changes of the load balancer's servers, for the timeline
	seq      int
	slots    []bool     // in use, by slot number - 1
	live     []*member  // in service, oldest first
	history  []*member  // every member ever, for attributing load-balancer log lines
	stops    []stopInfo // stops finished since the last takeStops
	stopping sync.WaitGroup
}

// member is a replica with its load-balancer slot and its timeline.
type member struct {
	r    *replica.Replica
	slot int

	mu     sync.Mutex
	events []event
}

type event struct {
	at    time.Time
	phase string
}

// lbEvent is a change of a load-balancer server's status, as "show stat" reports it.
type lbEvent struct {
	at     time.Time
	server string // "replicas/slot3"
	status string
}

// watchLB records every status change of the servers until ctx ends, polling every
// 100 ms, so that the timeline shows when the load balancer noticed what.
func (f *fleet) watchLB(ctx context.Context) {
	last := map[string]string{}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if stats, err := f.lb.Stats(ctx); err == nil {
			now := time.Now()
			for _, st := range stats {
				if st.Proxy != haproxy.Backend || st.Name == "BACKEND" {
					continue
				}
				server := st.Proxy + "/" + st.Name
				if last[server] != st.Status {
					last[server] = st.Status
					f.mu.Lock()
					f.lbEvents = append(f.lbEvents, lbEvent{now, server, st.Status})
					f.mu.Unlock()
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *member) mark(phase string) {
	m.mu.Lock()
	m.events = append(m.events, event{time.Now(), phase})
	m.mu.Unlock()
}

// phaseAt returns the phase the member was in at t, "" when it had not started or had
// already left its slot.
func (m *member) phaseAt(t time.Time) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	phase := ""
	for _, e := range m.events {
		if e.at.After(t) {
			break
		}
		phase = e.phase
	}
	if phase == "slot freed" {
		return ""
	}
	return phase
}

// stopInfo is how one stopped replica ended.
type stopInfo struct {
	name      string
	res       replica.StopResult
	unhealthy int
}

func newFleet(o Options, v Variant, dir string, lb *haproxy.HAProxy, log func(string, ...any)) *fleet {
	return &fleet{o: o, v: v, dir: dir, lb: lb, log: log, slots: make([]bool, o.slots())}
}

func (f *fleet) takeSlot() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, used := range f.slots {
		if !used {
			f.slots[i] = true
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("all %d load-balancer slots are in use", len(f.slots))
}

func (f *fleet) freeSlot(m *member) {
	m.mark("slot freed")
	f.mu.Lock()
	f.slots[m.slot-1] = false
	f.mu.Unlock()
}

// add starts a replica, registers it with the load balancer at once (ECS registers a task's
// target while the task activates), and returns when it is in service: its container
// health check passed and, when the variant waits for it, the load balancer reports it UP.
func (f *fleet) add(ctx context.Context) (*member, error) {
	slot, err := f.takeSlot()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.seq++
	name := "r" + strconv.Itoa(f.seq)
	f.mu.Unlock()

	hc := f.o.ContainerCheck
	hc.Command = []string{f.o.HealthcheckBin, "-probe", f.v.Probe, "-timeout", f.o.ContainerCheck.Timeout.String()}
	r, err := replica.Start(ctx, replica.Options{
		Name:     name,
		ProxyBin: f.o.ProxyBin,
		Dir:      f.dir,
		Config: replica.Config{
			Upstream:      f.o.upstream,
			ReadinessPath: f.v.ReadinessPath,
			Delay:         f.v.Delay,
			DrainTimeout:  f.v.Drain,
			Deadline:      f.o.StopTimeout,
		},
		HealthCheck: hc,
	})
	if err != nil {
		f.mu.Lock()
		f.slots[slot-1] = false
		f.mu.Unlock()
		return nil, err
	}
	m := &member{r: r, slot: slot}
	m.mark("starting")
	f.mu.Lock()
	f.history = append(f.history, m)
	f.mu.Unlock()

	fail := func(err error) (*member, error) {
		f.lb.Disable(context.WithoutCancel(ctx), slot)
		r.Close()
		f.freeSlot(m)
		return nil, err
	}
	checkPort := 0
	if f.v.CheckAdminPort {
		if checkPort, err = splitPort(r.AdminAddr); err != nil {
			return fail(err)
		}
	}
	if err := f.lb.Register(ctx, slot, r.TrafficAddr, checkPort); err != nil {
		return fail(fmt.Errorf("register %s: %w", name, err))
	}
	waitCtx, cancel := context.WithTimeout(ctx, f.o.StartTimeout)
	defer cancel()
	if err := r.WaitHealthy(waitCtx); err != nil {
		return fail(err)
	}
	m.mark("container healthy")
	if f.v.WaitLB {
		if err := f.waitUp(waitCtx, m); err != nil {
			return fail(err)
		}
	}
	m.mark("in service")
	f.mu.Lock()
	f.live = append(f.live, m)
	f.mu.Unlock()
	return m, nil
}

func (f *fleet) waitUp(ctx context.Context, m *member) error {
	for {
		st, err := f.lb.Server(ctx, m.slot)
		if err != nil {
			return err
		}
		if st.Up() {
			m.mark("lb up")
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica %s: load balancer still reports %q for %s: %w", m.r.Name, st.Status, haproxy.SlotName(m.slot), ctx.Err())
		case <-m.r.Exited():
			return fmt.Errorf("replica %s exited while waiting for the load balancer; see %s", m.r.Name, m.r.LogPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// oldest removes and returns the oldest replica in service.
func (f *fleet) oldest() (*member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.live) == 0 {
		return nil, errors.New("no replica in service")
	}
	m := f.live[0]
	f.live = f.live[1:]
	return m, nil
}

func (f *fleet) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live)
}

// deregister drains m in the load balancer until it has no request in flight or the
// deregistration delay is over, then removes it, like an ALB target group.
func (f *fleet) deregister(ctx context.Context, m *member) error {
	if err := f.lb.Drain(ctx, m.slot); err != nil {
		return err
	}
	m.mark("draining")
	deadline := time.Now().Add(f.o.DeregistrationDelay)
	for time.Now().Before(deadline) {
		st, err := f.lb.Server(ctx, m.slot)
		if err != nil {
			return err
		}
		if st.Current == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := f.lb.Disable(ctx, m.slot); err != nil {
		return err
	}
	m.mark("deregistered")
	return nil
}

// terminate sends SIGTERM and, in the background, SIGKILL after stopTimeout; then it frees
// the slot. afterExit runs once the process has exited, before the slot is freed.
func (f *fleet) terminate(m *member, afterExit func()) error {
	_, unhealthy := m.r.Health()
	m.mark("sigterm")
	if err := m.r.Terminate(); err != nil {
		return err
	}
	f.stopping.Add(1)
	go func() {
		defer f.stopping.Done()
		res := m.r.Wait(f.o.StopTimeout)
		if res.Killed {
			m.mark("sigkill after stopTimeout")
		}
		m.mark("exited")
		if afterExit != nil {
			afterExit()
		}
		m.r.Close()
		f.freeSlot(m)
		f.mu.Lock()
		f.stops = append(f.stops, stopInfo{name: m.r.Name, res: res, unhealthy: unhealthy})
		f.mu.Unlock()
	}()
	return nil
}

// kill sends SIGKILL and waits for the exit. The slot stays registered: the load balancer
// finds out through its health checks, and the caller deregisters it.
func (f *fleet) kill(m *member) {
	_, unhealthy := m.r.Health()
	m.mark("kill -9")
	m.r.Kill()
	<-m.r.Exited()
	m.mark("exited")
	f.mu.Lock()
	f.stops = append(f.stops, stopInfo{name: m.r.Name, res: replica.StopResult{ExitCode: -1}, unhealthy: unhealthy})
	f.mu.Unlock()
}

// takeStops waits for every replica being stopped, and returns how they ended since the
// last call.
func (f *fleet) takeStops() []stopInfo {
	f.stopping.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stops
	f.stops = nil
	return s
}

// unhealthyInService counts the UNHEALTHY transitions of the replicas in service.
func (f *fleet) unhealthyInService() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.live {
		_, u := m.r.Health()
		n += u
	}
	return n
}

// attribute names the replica that held the load-balancer server ("replicas/slot3") during
// a transaction, and its phases at the transaction's start and end: "r7 (sigterm)",
// "r6 (in service → exited)".
func (f *fleet) attribute(server string, start, end time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.history) - 1; i >= 0; i-- {
		m := f.history[i]
		if server != haproxy.Backend+"/"+haproxy.SlotName(m.slot) {
			continue
		}
		from := m.phaseAt(start)
		if from == "" {
			continue
		}
		if to := m.phaseAt(end); to != from && to != "" {
			return m.r.Name + " (" + from + " → " + to + ")"
		}
		return m.r.Name + " (" + from + ")"
	}
	return server
}

// close stops every replica at once and writes the timeline of every replica to
// timeline.log, to read beside the replicas' logs and HAProxy's.
func (f *fleet) close() {
	f.mu.Lock()
	all := append([]*member(nil), f.history...)
	f.mu.Unlock()
	for _, m := range all {
		m.r.Close()
	}
	f.stopping.Wait()

	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	f.mu.Lock()
	lbEvents := append([]lbEvent(nil), f.lbEvents...)
	f.mu.Unlock()
	for _, e := range lbEvents {
		who := f.attribute(e.server, e.at, e.at)
		lines = append(lines, line{e.at, fmt.Sprintf("%s %-5s %-7s load balancer: %s", e.at.UTC().Format("15:04:05.000"), strings.SplitN(who, " ", 2)[0], strings.TrimPrefix(e.server, haproxy.Backend+"/"), e.status)})
	}
	for _, m := range all {
		m.mu.Lock()
		for _, e := range m.events {
			lines = append(lines, line{e.at, fmt.Sprintf("%s %-5s %-7s %s", e.at.UTC().Format("15:04:05.000"), m.r.Name, haproxy.SlotName(m.slot), e.phase)})
		}
		m.mu.Unlock()
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text + "\n")
	}
	if err := os.WriteFile(filepath.Join(f.dir, "timeline.log"), []byte(b.String()), 0o644); err != nil {
		f.log("timeline: %v", err)
	}
}

// sortedKeys returns the keys of m, largest value first.
func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
