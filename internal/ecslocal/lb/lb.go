// Package lb is the Application Load Balancer's data plane: HAProxy (Debian package haproxy)
// with a configuration that follows elbapi's state. Listeners, rules and target groups become
// frontends, ACLs and backends (config.go); a change of any of them, of a target's health or
// of a deregistration starts a new HAProxy with the new configuration and -sf: it takes over
// the listening sockets once ready, and the old one finishes the requests it has in flight
// and exits.
package lb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
)

// Source is the state to follow (an *elbapi.API).
type Source interface {
	DataPlane() elbapi.DataPlane
}

// Options configure a load balancer.
type Options struct {
	// Dir holds the configuration file and the runtime API socket.
	Dir string
	// Bind is the address the listeners listen on, at their ports; 127.0.0.1 when invalid.
	Bind netip.Addr
	// Poll is how often the state is read; 100 ms when 0.
	Poll time.Duration
	Log  *slog.Logger
}

// LB runs HAProxy.
type LB struct {
	src Source
	o   Options
	cfg string // the configuration file

	mu       sync.Mutex
	applied  string // the configuration HAProxy runs, for Applied
	counters *counters

	gen  int        // configurations applied
	cur  *process   // the HAProxy with the configuration applied
	old  []*process // earlier ones, finishing their requests
	last string     // the configuration applied
}

type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *process) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// New returns a load balancer; Run starts it.
func New(src Source, o Options) *LB {
	if !o.Bind.IsValid() {
		o.Bind = netip.MustParseAddr("127.0.0.1")
	}
	if o.Poll == 0 {
		o.Poll = 100 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &LB{src: src, o: o, cfg: filepath.Join(o.Dir, "haproxy.cfg"), counters: newCounters()}
}

// Run follows the state until ctx ends, then stops HAProxy. HAProxy starts with the first
// listener.
func (l *LB) Run(ctx context.Context) error {
	if err := os.MkdirAll(l.o.Dir, 0o700); err != nil {
		return err
	}
	defer l.stop()
	tick := time.NewTicker(l.o.Poll)
	defer tick.Stop()
	for {
		if err := l.apply(ctx); err != nil {
			l.o.Log.Error("load balancer", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// apply renders the state and, when it changed, starts or reloads HAProxy with it.
func (l *LB) apply(ctx context.Context) error {
	dp := l.src.DataPlane()
	if len(dp.Listeners) == 0 && l.cur == nil {
		return nil
	}
	sock := filepath.Join(l.o.Dir, fmt.Sprintf("haproxy-%d.sock", l.gen+1))
	cfg, err := Config(dp, l.o.Bind, sock)
	if err != nil {
		return err
	}
	// The socket path changes with every generation; compare the rest.
	if strings.Replace(cfg, sock, "", 1) == l.last {
		return nil
	}
	if err := os.WriteFile(l.cfg+".new", []byte(cfg), 0o600); err != nil {
		return err
	}
	var out bytes.Buffer
	check := exec.CommandContext(ctx, "haproxy", "-c", "-q", "-f", l.cfg+".new")
	check.Stdout, check.Stderr = &out, &out
	if err := check.Run(); err != nil {
		l.last = cfg // do not try the same configuration again
		return fmt.Errorf("haproxy refused the configuration: %v: %s", err, bytes.TrimSpace(out.Bytes()))
	}
	if err := os.Rename(l.cfg+".new", l.cfg); err != nil {
		return err
	}
	for _, tg := range dp.TargetGroups {
		l.counters.name(BackendName(tg.Arn), tg.Arn)
	}
	l.last = strings.Replace(cfg, sock, "", 1)
	l.gen++
	if err := l.start(ctx, sock); err != nil {
		return err
	}
	l.mu.Lock()
	l.applied = cfg
	l.mu.Unlock()
	return nil
}

// Counters returns each target group's request counts since the load balancer started.
func (l *LB) Counters() map[string]Counters { return l.counters.snapshot() }

// Applied returns the configuration the running HAProxy has taken over with ("" before the
// first), for a caller that must know a change is in effect.
func (l *LB) Applied() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied
}

// start runs a HAProxy with the configuration file, taking over from the current one, and
// waits until its runtime API answers.
func (l *LB) start(ctx context.Context, sock string) error {
	log, err := os.OpenFile(filepath.Join(l.o.Dir, "haproxy.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own descriptor
	args := []string{"-db", "-f", l.cfg}
	if l.cur != nil && !l.cur.done() {
		args = append(args, "-sf", strconv.Itoa(l.cur.cmd.Process.Pid))
	}
	cmd := exec.Command("haproxy", args...)
	cmd.Stderr = log
	access, err := cmd.StdoutPipe() // the request log, counted
	if err != nil {
		return err
	}
	// HAProxy dies with ecslocal, however ecslocal ends: nothing is left to a next run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting haproxy: %w", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		l.counters.read(access) // until HAProxy exits: Wait must come after
		_ = cmd.Wait()
		close(p.exited)
	}()
	if l.cur != nil {
		l.old = append(l.old, l.cur)
	}
	l.cur = p
	kept := l.old[:0]
	for _, o := range l.old {
		if !o.done() {
			kept = append(kept, o)
		}
	}
	l.old = kept
	deadline := time.Now().Add(readyWait)
	for {
		var d net.Dialer
		if c, err := d.DialContext(ctx, "unix", sock); err == nil {
			c.Close()
			l.o.Log.Debug("load balancer configuration applied", "generation", l.gen)
			return nil
		}
		if p.done() {
			return fmt.Errorf("haproxy exited at start; see %s", filepath.Join(l.o.Dir, "haproxy.log"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy did not answer on %s within %s", sock, readyWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readyWait bounds the wait for a new HAProxy to be ready.
const readyWait = 10 * time.Second

// stop ends every HAProxy: SIGTERM, then SIGKILL after 5 s.
func (l *LB) stop() {
	all := l.old
	if l.cur != nil {
		all = append(all, l.cur)
	}
	for _, p := range all {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range all {
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
}

// ErrNoHAProxy says the haproxy binary is missing.
var ErrNoHAProxy = errors.New("the load balancer needs haproxy (Debian package haproxy)")

// Available reports whether haproxy can be run.
func Available() error {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return ErrNoHAProxy
	}
	return nil
}
