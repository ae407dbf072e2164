// Package targethealth runs the health checks of Application Load Balancer target groups
// against the registered targets, as "Health checks for Application Load Balancer target
// groups"
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html)
// describes them: an HTTP GET of the group's path on the target (or the group's health-check
// port), with the User-Agent ELB-HealthChecker/2.0, a new connection closed after each check,
// the group's timeout, and the status matched against the group's matcher. It reports each
// result to the target's owner (elbapi), which decides the state; it decides nothing itself.
package targethealth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
)

// Source says which targets to check and takes the results (an *elbapi.API).
type Source interface {
	CheckTargets() []elbapi.Check
	ReportCheck(elbapi.Check, elbapi.Result)
}

// Options configure a Checker.
type Options struct {
	// Scale multiplies every interval and timeout; 1 (real seconds) when 0. Tests shrink
	// time with it; a run that measures timing keeps 1.
	Scale float64
	// Reconcile is how often the list of targets is read again; 200 ms when 0.
	Reconcile time.Duration
	Log       *slog.Logger
}

// Checker checks every target the Source lists, each on its group's interval.
type Checker struct {
	src Source
	o   Options
}

// New returns a Checker; Run starts it.
func New(src Source, o Options) *Checker {
	if o.Scale == 0 {
		o.Scale = 1
	}
	if o.Reconcile == 0 {
		o.Reconcile = 200 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Checker{src: src, o: o}
}

// Run checks until ctx ends, then waits for the checks in flight.
func (c *Checker) Run(ctx context.Context) error {
	type running struct {
		check  elbapi.Check
		cancel context.CancelFunc
	}
	active := map[string]running{}
	var wg sync.WaitGroup
	defer func() {
		for _, r := range active {
			r.cancel()
		}
		wg.Wait()
	}()
	tick := time.NewTicker(c.o.Reconcile)
	defer tick.Stop()
	for {
		seen := map[string]bool{}
		for _, ch := range c.src.CheckTargets() {
			key := ch.Key()
			seen[key] = true
			if r, ok := active[key]; ok {
				if r.check == ch {
					continue
				}
				r.cancel() // the group's settings changed: check with the new ones
			}
			cctx, cancel := context.WithCancel(ctx)
			active[key] = running{check: ch, cancel: cancel}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.loop(cctx, ch)
			}()
		}
		for key, r := range active {
			if !seen[key] {
				r.cancel()
				delete(active, key)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (c *Checker) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.o.Scale)
}

// loop checks one target at once, then every interval, until ctx ends.
func (c *Checker) loop(ctx context.Context, ch elbapi.Check) {
	for {
		r := c.check(ctx, ch)
		if ctx.Err() != nil {
			return
		}
		c.o.Log.Debug("target health check", "targetGroup", ch.TargetGroupArn, "target", ch.ID, "port", ch.CheckPort, "pass", r.Pass, "reason", r.Reason, "code", r.Code)
		c.src.ReportCheck(ch, r)
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.scaled(ch.Interval)):
		}
	}
}

// check runs one HTTP check.
func (c *Checker) check(ctx context.Context, ch elbapi.Check) elbapi.Result {
	timeout := c.scaled(ch.Timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr, err := netip.ParseAddr(ch.ID)
	if err != nil {
		return elbapi.Result{Reason: types.TargetHealthReasonEnumFailedHealthChecks}
	}
	url := "http://" + netip.AddrPortFrom(addr, uint16(ch.CheckPort)).String() + ch.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return elbapi.Result{Reason: types.TargetHealthReasonEnumFailedHealthChecks}
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	req.Close = true
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		// A redirect is a status to match, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return elbapi.Result{Reason: types.TargetHealthReasonEnumTimeout}
		}
		return elbapi.Result{Reason: types.TargetHealthReasonEnumFailedHealthChecks}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if ok, _ := Matches(ch.Matcher, resp.StatusCode); ok {
		return elbapi.Result{Pass: true, Code: resp.StatusCode}
	}
	return elbapi.Result{Reason: types.TargetHealthReasonEnumResponseCodeMismatch, Code: resp.StatusCode}
}

// Matches reports whether code is one of matcher's codes: "200", "200,202", "200-299".
func Matches(matcher string, code int) (bool, error) {
	for _, part := range strings.Split(matcher, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		from, err := strconv.Atoi(lo)
		if err != nil {
			return false, fmt.Errorf("matcher %q: %w", matcher, err)
		}
		to := from
		if isRange {
			if to, err = strconv.Atoi(hi); err != nil {
				return false, fmt.Errorf("matcher %q: %w", matcher, err)
			}
		}
		if code >= from && code <= to {
			return true, nil
		}
	}
	return false, nil
}
