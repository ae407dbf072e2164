package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/gangway-ecs/gangway/internal/ecs"
	"github.com/gangway-ecs/gangway/internal/probecmd"
)

const rolloutUsage = `usage: proxy rollout <command> [flags]

Follows ECS service deployments through the Service Deployments API (never the
ServicesStable waiter, which calls a rolled-back deployment a success) and prints what a
person needs: lifecycle stage, running/desired/healthy tasks per revision, circuit-breaker
failures against the threshold, triggered alarms, lifecycle hooks, and the stopped reason
and health-check event of each failed task.

commands:
  watch      follow a deployment (default: the service's newest) until it ends, or
             until it reaches -until STAGE
  deploy     register a new revision of a task definition file (new image and/or
             environment), update the service, then watch; first it runs the checks
             of 'proxy lint' with -target-group, -service-file (the service's JSON)
             and -config, and refuses on any finding unless -force
  continue   resume a deployment paused at a PAUSE lifecycle hook, then watch
  rollback   return the service to its previous revision, then watch: a deployment in
             progress is stopped and rolled back by ECS; a completed one is undone by
             deploying the previous revision's task definition again
  diff       show how a task definition file (with -image/-env applied) differs from
             the one the service runs now
  init       write taskdef.json, service.json and target-group.json from a live service
             (-dir, default .), the files the other commands and 'proxy lint' read

A deployment stopped by a newer UpdateService is followed into the newer one when that
one ships the same task definition; otherwise the watch ends with exit 7.

exit codes:
  0  the deployment succeeded (SUCCESSFUL), or reached the -until stage; diff printed
  1  the deployment failed or was stopped (STOPPED, ROLLBACK_FAILED), deploy refused a
     task definition with lint findings, or rollback found nothing to roll back
  3  ECS API error: missing or expired credentials, access denied, service not found,
     an endpoint that answers 5xx without an AWS error, or calls that kept failing
     (throttling)
  4  bad flags or arguments
  5  the deployment was rolled back (ROLLBACK_SUCCESSFUL): the service is healthy on the
     previous revision, but the change did not ship
  6  timed out: the deployment was still in progress when -timeout passed (ECS carries on)
  7  superseded: another UpdateService replaced the deployment with one of a different
     task definition, so the change watched will not ship

AWS credentials, region and endpoint come from the environment, as for the AWS CLI
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).

Run 'proxy rollout <command> -h' for a command's flags.
`

// RolloutCommand is `proxy rollout`.
type RolloutCommand struct {
	env env
}

// Run executes the command.
func (c *RolloutCommand) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.env.stderr, rolloutUsage)
		return usageError("no rollout command given")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.env.stderr, rolloutUsage)
		return nil
	}
	o := &rolloutOptions{env: c.env, sub: args[0]}
	switch args[0] {
	case "watch":
		return o.watchCmd(ctx, args[1:])
	case "deploy":
		return o.deployCmd(ctx, args[1:])
	case "continue":
		return o.continueCmd(ctx, args[1:])
	case "rollback":
		return o.rollbackCmd(ctx, args[1:])
	case "diff":
		return o.diffCmd(ctx, args[1:])
	case "init":
		return o.initCmd(ctx, args[1:])
	}
	fmt.Fprint(c.env.stderr, rolloutUsage)
	return usageError("unknown rollout command %q", args[0])
}

// rolloutOptions holds the flags every rollout command shares.
type rolloutOptions struct {
	env                env
	sub                string
	cluster, service   string
	region, output     string
	deployment         string
	timeout, interval  time.Duration
	until              string
	printedFailedTasks map[string]bool
}

func (o *rolloutOptions) flags(watching bool) *flag.FlagSet {
	fs := newFlagSet("rollout "+o.sub, o.env)
	fs.StringVar(&o.cluster, "cluster", "", "cluster name or ARN (default: the default cluster)")
	fs.StringVar(&o.service, "service", "", "service name or ARN (required)")
	fs.StringVar(&o.region, "region", "", "AWS region (default: from the environment)")
	fs.StringVar(&o.output, "output", "text", "text, or json (one JSON object per line) for CI")
	if watching {
		fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up watching after this long (exit 6)")
		fs.DurationVar(&o.interval, "interval", 10*time.Second, "time between polls (doubled while throttled, up to 1m)")
		fs.StringVar(&o.until, "until", "", "return 0 once the deployment, still in progress, reaches this lifecycle `STAGE` (e.g. BAKE_TIME)")
	}
	return fs
}

func (o *rolloutOptions) parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.service == "" {
		return usageError("-service is required")
	}
	if o.output != "text" && o.output != "json" {
		return usageError("-output %q: want text or json", o.output)
	}
	if o.until != "" {
		if err := ecs.CheckStage(o.until); err != nil {
			return usageError("-until: %v", err)
		}
	}
	return nil
}

func (o *rolloutOptions) client(ctx context.Context) (*ecssdk.Client, error) {
	c, err := ecs.NewClient(ctx, o.region)
	if err != nil {
		return nil, o.apiError(err)
	}
	return c, nil
}

func (o *rolloutOptions) watchCmd(ctx context.Context, args []string) error {
	fs := o.flags(true)
	fs.StringVar(&o.deployment, "deployment", "", "service deployment ARN (default: the service's newest deployment)")
	if err := o.parse(fs, args); err != nil {
		return err
	}
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	return o.watch(ctx, c, o.deployment, time.Time{}, "")
}

// taskDefFlags are the flags that name a task definition file and the changes to make to it.
type taskDefFlags struct {
	file         string
	images, envs multiFlag
}

func (t *taskDefFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.file, "taskdef", "", "task definition file (register-task-definition JSON, required)")
	fs.Var(&t.images, "image", "new image, `[container=]ref` (repeatable; without container=, the Gangway container)")
	fs.Var(&t.envs, "env", "set an environment variable, `[container:]NAME=VALUE` (repeatable)")
}

// read reads the file and applies -image and -env.
func (t *taskDefFlags) read() (*ecs.TaskDefinition, error) {
	if t.file == "" {
		return nil, usageError("-taskdef is required")
	}
	changes := map[string]*ecs.Change{}
	change := func(container string) *ecs.Change {
		if changes[container] == nil {
			changes[container] = &ecs.Change{Container: container, Env: map[string]string{}}
		}
		return changes[container]
	}
	for _, img := range t.images {
		container, ref := "", img
		if k, v, ok := strings.Cut(img, "="); ok {
			container, ref = k, v
		}
		if ref == "" {
			return nil, usageError("-image %q: empty image", img)
		}
		change(container).Image = ref
	}
	for _, kv := range t.envs {
		container, rest := "", kv
		if k, v, ok := strings.Cut(kv, ":"); ok && !strings.Contains(k, "=") {
			container, rest = k, v
		}
		name, value, ok := strings.Cut(rest, "=")
		if !ok || name == "" {
			return nil, usageError("-env %q: want [container:]NAME=VALUE", kv)
		}
		change(container).Env[name] = value
	}
	td, err := ecs.ReadTaskDefinition(t.file)
	if err != nil {
		return nil, &exitError{code: exitFailure, err: err}
	}
	for _, ch := range changes {
		if td, err = ch.Apply(td); err != nil {
			return nil, usageError("%v", err)
		}
	}
	return td, nil
}

func (o *rolloutOptions) deployCmd(ctx context.Context, args []string) error {
	fs := o.flags(true)
	var tf taskDefFlags
	tf.register(fs)
	var lf lintFlags
	lf.register(fs, "service-file")
	force := fs.Bool("force", false, "deploy even when proxy lint finds problems")
	noWatch := fs.Bool("no-watch", false, "return once the service is updated")
	if err := o.parse(fs, args); err != nil {
		return err
	}
	td, err := tf.read()
	if err != nil {
		return err
	}
	in, err := lf.input()
	if err != nil {
		return err
	}
	in.TaskDefinition = td
	for _, u := range ecs.Unchecked(in) {
		fmt.Fprintf(o.env.stderr, "%s: not checked: %s\n", tf.file, u)
	}
	if findings := ecs.Lint(in); findings != nil && !*force {
		for _, v := range findings {
			fmt.Fprintf(o.env.stderr, "%s: %s\n", tf.file, v.Error())
		}
		return &exitError{code: exitFailure, err: fmt.Errorf("not deploying: %d lint finding(s) (fix them, or pass -force)", len(findings))}
	}

	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	dep, err := ecs.Deploy(ctx, c, o.cluster, o.service, td)
	var rejected *ecs.RejectedError
	switch {
	case errors.As(err, &rejected):
		return &exitError{code: exitFailure, err: err}
	case err != nil:
		return o.apiError(err)
	}
	o.notice("registered " + dep.TaskDefinitionARN + "; updated service " + o.service)
	if *noWatch {
		o.emit(map[string]any{"type": "deployed", "taskDefinitionArn": dep.TaskDefinitionARN, "deploymentArn": dep.DeploymentARN},
			fmt.Sprintf("deployment %s started\n", orUnknown(dep.DeploymentARN)))
		return nil
	}
	return o.watch(ctx, c, dep.DeploymentARN, dep.Started, dep.TaskDefinitionARN)
}

func (o *rolloutOptions) continueCmd(ctx context.Context, args []string) error {
	fs := o.flags(true)
	fs.StringVar(&o.deployment, "deployment", "", "service deployment ARN (default: the service's current deployment)")
	hook := fs.String("hook", "", "hook ID (default: the one hook awaiting action)")
	noWatch := fs.Bool("no-watch", false, "return once ECS accepted the request")
	if err := o.parse(fs, args); err != nil {
		return err
	}
	c, arn, err := o.current(ctx)
	if err != nil {
		return err
	}
	id, err := ecs.Continue(ctx, c, arn, *hook)
	if err != nil {
		return o.apiError(err)
	}
	o.notice("continued " + arn + " past hook " + id)
	if *noWatch {
		return nil
	}
	return o.watch(ctx, c, arn, time.Time{}, "")
}

func (o *rolloutOptions) rollbackCmd(ctx context.Context, args []string) error {
	fs := o.flags(true)
	fs.StringVar(&o.deployment, "deployment", "", "service deployment ARN (default: the service's current deployment)")
	noWatch := fs.Bool("no-watch", false, "return once ECS accepted the request")
	if err := o.parse(fs, args); err != nil {
		return err
	}
	c, arn, err := o.current(ctx)
	if err != nil {
		return err
	}
	plan, err := ecs.Rollback(ctx, c, o.cluster, o.service, arn)
	var refused *ecs.RefusedError
	switch {
	case errors.As(err, &refused):
		return &exitError{code: exitFailure, err: err}
	case err != nil:
		return o.apiError(err)
	}
	switch plan.Kind {
	case ecs.RollbackStopped:
		o.notice("rollback of " + arn + " requested")
	case ecs.RollbackUnderWay:
		o.notice("deployment " + arn + " is already rolling back")
	case ecs.RollbackRedeployed:
		o.notice(fmt.Sprintf("deployment %s had completed; redeploying the previous task definition %s in place of %s (deployment %s)",
			arn, plan.To, ecs.ShortARN(plan.From), orUnknown(plan.DeploymentARN)))
	}
	if *noWatch {
		return nil
	}
	return o.watch(ctx, c, plan.DeploymentARN, plan.Started, plan.To)
}

func (o *rolloutOptions) diffCmd(ctx context.Context, args []string) error {
	fs := o.flags(false)
	var tf taskDefFlags
	tf.register(fs)
	if err := o.parse(fs, args); err != nil {
		return err
	}
	file, err := tf.read()
	if err != nil {
		return err
	}
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	running, arn, err := ecs.ServiceTaskDefinition(ctx, c, o.cluster, o.service)
	if err != nil {
		return o.apiError(err)
	}
	diff := ecs.UnifiedDiff(arn+" (service "+o.service+")", tf.file, ecs.NormalJSON(running), ecs.NormalJSON(file))
	text := diff
	if diff == "" {
		text = fmt.Sprintf("no difference: service %s runs %s, which matches %s\n", o.service, ecs.ShortARN(arn), tf.file)
	}
	o.emit(map[string]any{"type": "diff", "taskDefinitionArn": arn, "file": tf.file, "same": diff == "", "diff": diff}, text)
	return nil
}

// current returns a client and the deployment to act on: -deployment, or the service's
// current one.
func (o *rolloutOptions) current(ctx context.Context) (*ecssdk.Client, string, error) {
	c, err := o.client(ctx)
	if err != nil {
		return nil, "", err
	}
	if o.deployment != "" {
		return c, o.deployment, nil
	}
	arn, err := ecs.CurrentDeployment(ctx, c, o.cluster, o.service)
	if err != nil {
		return nil, "", o.apiError(err)
	}
	return c, arn, nil
}

func (o *rolloutOptions) apiError(err error) error {
	return &exitError{code: exitUnreached, err: ecs.Explain(err)}
}

// watch follows a deployment and maps its outcome to an exit code. taskDefinition is the
// one being shipped, when the command knows it.
func (o *rolloutOptions) watch(ctx context.Context, c *ecssdk.Client, arn string, since time.Time, taskDefinition string) error {
	w := &ecs.Watcher{
		Client: c, Cluster: o.cluster, Service: o.service, DeploymentARN: arn, Since: since,
		TaskDefinition: taskDefinition, Until: o.until,
		Timeout: o.timeout, Interval: o.interval,
		OnProgress: o.progress, OnNotice: o.notice,
	}
	res := w.Watch(ctx)
	code := map[ecs.Outcome]probecmd.ExitCode{
		ecs.Succeeded:    exitOK,
		ecs.ReachedStage: exitOK,
		ecs.RolledBack:   exitRolledBack,
		ecs.Failed:       exitFailure,
		ecs.TimedOut:     exitTimedOut,
		ecs.APIError:     exitUnreached,
		ecs.Superseded:   exitSuperseded,
	}[res.Outcome]
	o.emit(map[string]any{"type": "result", "outcome": res.Outcome, "exitCode": code, "cause": res.Cause, "deployment": res.Last},
		"")
	if code == exitOK {
		if o.output == "text" {
			fmt.Fprintf(o.env.stdout, "%s: %s\n", map[ecs.Outcome]string{ecs.Succeeded: "succeeded", ecs.ReachedStage: "reached"}[res.Outcome], res.Cause)
		}
		return nil
	}
	msg := res.Cause
	if res.Outcome == ecs.APIError {
		msg = "api error: " + msg
	}
	return &exitError{code: code, err: errors.New(msg)}
}

// emit writes v as one JSON line in json mode, or text in text mode.
func (o *rolloutOptions) emit(v any, text string) {
	if o.output == "json" {
		_ = json.NewEncoder(o.env.stdout).Encode(v)
		return
	}
	io.WriteString(o.env.stdout, text)
}

func (o *rolloutOptions) notice(msg string) {
	if o.output == "json" {
		o.emit(map[string]any{"type": "notice", "time": time.Now().UTC(), "message": msg}, "")
		return
	}
	fmt.Fprintf(o.env.stderr, "%s %s\n", time.Now().UTC().Format(time.TimeOnly), msg)
}

func (o *rolloutOptions) progress(p ecs.Progress) {
	if o.output == "json" {
		o.emit(map[string]any{"type": "progress", "deployment": p}, "")
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s deployment %s %s", p.Time.UTC().Format(time.TimeOnly), p.DeploymentARN, p.Status)
	if p.LifecycleStage != "" {
		fmt.Fprintf(&b, ", stage %s", p.LifecycleStage)
	}
	if p.StatusReason != "" {
		fmt.Fprintf(&b, " (%s)", p.StatusReason)
	}
	b.WriteString("\n")
	for _, r := range p.Revisions {
		name := r.TaskDefinition
		if name == "" {
			name = r.ARN
		}
		fmt.Fprintf(&b, "  %-6s %s: running %d/%d, pending %d, healthy %d\n", r.Role, ecs.ShortARN(name), r.Running, r.Desired, r.Pending, r.Healthy)
	}
	if cb := p.CircuitBreaker; cb != nil {
		fmt.Fprintf(&b, "  circuit breaker %s: %d of %d failed tasks\n", cb.Status, cb.Failures, cb.Threshold)
	}
	if a := p.Alarms; a != nil {
		fmt.Fprintf(&b, "  alarms %s", a.Status)
		if len(a.Names) > 0 { // a DISABLED record names none
			fmt.Fprintf(&b, ": watching %s", strings.Join(a.Names, ", "))
		}
		if len(a.Triggered) > 0 {
			fmt.Fprintf(&b, "; IN ALARM: %s", strings.Join(a.Triggered, ", "))
		}
		b.WriteString("\n")
	}
	for _, h := range p.Hooks {
		target := h.TargetType
		if h.TargetARN != "" {
			target += " " + ecs.ShortARN(h.TargetARN)
		}
		fmt.Fprintf(&b, "  hook %s (%s): %s", h.ID, target, h.Status)
		if h.ExpiresAt != nil {
			fmt.Fprintf(&b, ", expires %s then %s", h.ExpiresAt.UTC().Format(time.DateTime), h.TimeoutAction)
		}
		b.WriteString("\n")
		if h.Status == "AWAITING_ACTION" {
			flags := fmt.Sprintf("-service %s -deployment %s", o.service, p.DeploymentARN)
			if o.cluster != "" {
				flags = "-cluster " + o.cluster + " " + flags
			}
			fmt.Fprintf(&b, "    continue:  proxy rollout continue %s -hook %s\n", flags, h.ID)
			fmt.Fprintf(&b, "    roll back: proxy rollout rollback %s\n", flags)
		}
	}
	if r := p.Rollback; r != nil {
		to := ""
		if r.RevisionARN != "" {
			to = " to " + ecs.ShortARN(r.RevisionARN)
		}
		fmt.Fprintf(&b, "  rolling back%s: %s\n", to, r.Reason)
	}
	if o.printedFailedTasks == nil {
		o.printedFailedTasks = map[string]bool{}
	}
	for _, t := range p.FailedTasks {
		if o.printedFailedTasks[t.TaskARN] {
			continue
		}
		o.printedFailedTasks[t.TaskARN] = true
		fmt.Fprintf(&b, "  failed task %s (%s)", ecs.TaskID(t.TaskARN), ecs.ShortARN(t.TaskDefinition))
		if t.StoppedAt != nil {
			fmt.Fprintf(&b, " stopped %s", t.StoppedAt.UTC().Format(time.TimeOnly))
		}
		fmt.Fprintf(&b, ": %s [%s]\n", t.StoppedReason, t.StopCode)
		for _, ct := range t.Containers {
			fmt.Fprintf(&b, "    container %s:", ct.Name)
			if ct.ExitCode != nil {
				fmt.Fprintf(&b, " exit %d", *ct.ExitCode)
			}
			if ct.HealthStatus != "" {
				fmt.Fprintf(&b, " health %s", ct.HealthStatus)
			}
			if ct.Reason != "" {
				fmt.Fprintf(&b, " — %s", ct.Reason)
			}
			b.WriteString("\n")
		}
		if t.Event != "" {
			fmt.Fprintf(&b, "    last event: %s\n", t.Event)
		}
	}
	io.WriteString(o.env.stdout, b.String())
}

func orUnknown(s string) string {
	if s == "" {
		return "(ARN not reported yet; run proxy rollout watch)"
	}
	return s
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
