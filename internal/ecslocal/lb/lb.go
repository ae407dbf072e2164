// Package lb is the Application Load Balancer's data plane: HAProxy (Debian package haproxy)
// with a configuration that follows elbapi's state. Listeners, rules and target groups become
// frontends, ACLs and backends (config.go). Only a change of those starts a new HAProxy (-sf:
// it takes over the listening sockets once ready, and the old one finishes the requests it
// has in flight and exits). Targets and weights change in the running HAProxy through its
// runtime API, as they change in an ALB without its clients noticing: a target that turns
// healthy is a server added and made ready, a deregistered one is put in "drain" (it finishes
// its requests, takes no new one) and removed when the deregistration delay ends, a forward's
// weights are a map file set at runtime.
package lb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	// Dir holds the configuration file, the forwards' weight maps and the runtime API socket.
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
	applied  string // the configuration in effect, for Applied
	counters *counters

	gen       int        // HAProxy processes started
	cur       *process   // the HAProxy with the configuration applied
	old       []*process // earlier ones, finishing their requests
	sock      string     // cur's runtime API socket
	structure string     // cur's configuration without the socket and the servers
	refused   string     // the last structure HAProxy refused, not tried again
	// What cur runs, as the runtime API left it: each backend's servers (by name) and each
	// forward's map file.
	servers map[string]map[string]*server
	maps    map[string]string
}

// server is a server of the running HAProxy.
type server struct {
	Server
	// gone: no longer a target that takes or finishes requests, in maintenance until
	// HAProxy lets it be deleted (when its last connection has closed).
	gone bool
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

// apply renders the state and brings HAProxy to it: a new HAProxy when the structure
// changed (or none runs), the runtime API otherwise.
func (l *LB) apply(ctx context.Context) error {
	dp := l.src.DataPlane()
	if len(dp.Listeners) == 0 && l.cur == nil {
		return nil
	}
	if l.cur != nil && !l.cur.done() {
		cfg, maps, err := Config(dp, l.o.Bind, l.sock, l.o.Dir)
		if err != nil {
			return err
		}
		structure := Structure(strings.Replace(cfg, l.sock, "", 1))
		if structure == l.refused {
			return nil // cur runs the last structure HAProxy took; its backends are not these
		}
		if structure == l.structure {
			if err := l.sync(dp, maps); err != nil {
				return err
			}
			l.setApplied(cfg)
			return nil
		}
	}
	sock := filepath.Join(l.o.Dir, fmt.Sprintf("haproxy-%d.sock", l.gen+1))
	cfg, maps, err := Config(dp, l.o.Bind, sock, l.o.Dir)
	if err != nil {
		return err
	}
	structure := Structure(strings.Replace(cfg, sock, "", 1))
	if structure == l.refused {
		return nil
	}
	for file, m := range maps {
		if err := os.WriteFile(file, []byte(m), 0o600); err != nil {
			return err
		}
	}
	if err := os.WriteFile(l.cfg+".new", []byte(cfg), 0o600); err != nil {
		return err
	}
	var out bytes.Buffer
	check := exec.CommandContext(ctx, "haproxy", "-c", "-q", "-f", l.cfg+".new")
	check.Stdout, check.Stderr = &out, &out
	if err := check.Run(); err != nil {
		l.refused = structure // do not try the same configuration again
		return fmt.Errorf("haproxy refused the configuration: %v: %s", err, bytes.TrimSpace(out.Bytes()))
	}
	if err := os.Rename(l.cfg+".new", l.cfg); err != nil {
		return err
	}
	for _, tg := range dp.TargetGroups {
		l.counters.name(BackendName(tg.Arn), tg.Arn)
	}
	l.structure = structure
	l.gen++
	if err := l.start(ctx, sock); err != nil {
		return err
	}
	l.sock = sock
	l.servers = map[string]map[string]*server{}
	for _, tg := range dp.TargetGroups {
		be := map[string]*server{}
		for _, s := range Servers(tg) {
			be[s.Name] = &server{Server: s}
		}
		l.servers[BackendName(tg.Arn)] = be
	}
	l.maps = maps
	l.setApplied(cfg)
	return nil
}

func (l *LB) setApplied(cfg string) {
	l.mu.Lock()
	l.applied = cfg
	l.mu.Unlock()
}

// sync brings the running HAProxy's servers and maps to the data plane's through the runtime
// API. New serving targets come first and removals last, so that a group that swaps its
// targets in one step always has one to send to. A server leaving is put in maintenance
// (no new request); one whose deregistration delay has ended has its connections shut, as
// an ALB closes them then; one that stops serving for its health finishes its requests.
// Either is deleted once HAProxy has no connection on it, here or at a later call.
func (l *LB) sync(dp elbapi.DataPlane, maps map[string]string) error {
	var errs []error
	for _, tg := range dp.TargetGroups {
		be := BackendName(tg.Arn)
		have := l.servers[be]
		if have == nil {
			have = map[string]*server{}
			l.servers[be] = have
		}
		want := map[string]bool{}
		for _, s := range Servers(tg) {
			want[s.Name] = true
			h := have[s.Name]
			switch {
			case h == nil && s.Drain:
				// Never served here (it drained before it turned healthy): nothing to finish.
				delete(want, s.Name)
			case h == nil:
				err := l.call(fmt.Sprintf("add server %s/%s %s weight %d", be, s.Name, s.Addr, serverWeight), "New server registered.")
				if err == nil {
					have[s.Name] = &server{Server: s, gone: true} // added in maintenance
					h = have[s.Name]
				}
				errs = append(errs, err)
			}
			if h == nil || (!h.gone && h.Drain == s.Drain) {
				continue
			}
			var err error
			if s.Drain {
				err = l.call(fmt.Sprintf("set server %s/%s state drain", be, s.Name), "")
			} else {
				err = errors.Join(l.call(fmt.Sprintf("set server %s/%s weight %d", be, s.Name, serverWeight), ""),
					l.call(fmt.Sprintf("set server %s/%s state ready", be, s.Name), ""))
			}
			if err == nil {
				h.Drain, h.gone = s.Drain, false
			}
			errs = append(errs, err)
		}
		for name, h := range have {
			if want[name] || h.gone {
				continue
			}
			err := l.call(fmt.Sprintf("set server %s/%s state maint", be, name), "")
			if err == nil && h.Drain {
				err = l.call(fmt.Sprintf("shutdown sessions server %s/%s", be, name), "")
			}
			if err == nil {
				h.gone = true
			}
			errs = append(errs, err)
		}
		for name, h := range have {
			if !h.gone || want[name] {
				continue
			}
			// Refused while a connection is open: tried again at the next call.
			if err := l.call(fmt.Sprintf("del server %s/%s", be, name), "Server deleted."); err == nil {
				delete(have, name)
			} else {
				l.o.Log.Debug("load balancer: server not deleted yet", "server", be+"/"+name, "error", err)
			}
		}
	}
	for file, m := range maps {
		if l.maps[file] == m {
			continue
		}
		err := l.setMap(file, m)
		if err == nil {
			l.maps[file] = m
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// setMap replaces a map's content at once: a new version is prepared, filled and committed,
// so that no request sees it half written.
func (l *LB) setMap(file, content string) error {
	out, err := l.send("prepare map " + file)
	if err != nil {
		return err
	}
	ver, ok := strings.CutPrefix(out, "New version created: ")
	if !ok {
		return fmt.Errorf("prepare map %s: %s", file, out)
	}
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(content), "\n") {
		if line != "" {
			cmds = append(cmds, fmt.Sprintf("add map @%s %s %s", ver, file, line))
		}
	}
	cmds = append(cmds, fmt.Sprintf("commit map @%s %s", ver, file))
	return l.call(strings.Join(cmds, "; "), "")
}

// call sends a runtime API command and checks that HAProxy answered want.
func (l *LB) call(cmd, want string) error {
	out, err := l.send(cmd)
	if err == nil && out != want {
		err = fmt.Errorf("haproxy runtime API: %s: %s", cmd, out)
	}
	if err == nil {
		l.o.Log.Debug("load balancer", "command", cmd)
	}
	return err
}

// send sends one line of commands to the current HAProxy's runtime API and returns its
// answer, trimmed.
func (l *LB) send(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", l.sock, apiWait)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(apiWait))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy runtime API: %s: %w", cmd, err)
	}
	out, err := io.ReadAll(c) // HAProxy closes after answering a non-interactive line
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API: %s: %w", cmd, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// apiWait bounds a runtime API exchange.
const apiWait = 5 * time.Second

// Counters returns each target group's request counts since the load balancer started.
func (l *LB) Counters() map[string]Counters { return l.counters.snapshot() }

// Applied returns the configuration in effect ("" before the first): what the running HAProxy
// was started with and then changed to through its runtime API, as a configuration file
// would say it. For a caller that must know a change is in effect.
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
