package ecs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Outcome is how a watched deployment ended.
type Outcome string

const (
	Succeeded  Outcome = "succeeded"   // SUCCESSFUL: the new revision is serving
	RolledBack Outcome = "rolled_back" // ROLLBACK_SUCCESSFUL: the service is back on the previous revision
	Failed     Outcome = "failed"      // STOPPED with no newer deployment, or ROLLBACK_FAILED
	TimedOut   Outcome = "timed_out"   // still in progress when the watch's time ran out
	APIError   Outcome = "api_error"   // the ECS API refused or kept failing
	// Superseded: another UpdateService stopped the deployment (STOPPED) and started one that
	// deploys a different task definition, so the one watched will never ship.
	Superseded Outcome = "superseded"
	// ReachedStage: the deployment, still in progress, reached Watcher.Until.
	ReachedStage Outcome = "reached_stage"
)

// stageOrder is the order in which a deployment passes its lifecycle stages, from
// "Amazon ECS blue/green service deployments workflow"
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html).
// LINEAR and CANARY deployments repeat PRODUCTION_TRAFFIC_SHIFT once per step.
var stageOrder = []ecstypes.ServiceDeploymentLifecycleStage{
	ecstypes.ServiceDeploymentLifecycleStageReconcileService,
	ecstypes.ServiceDeploymentLifecycleStagePreScaleUp,
	ecstypes.ServiceDeploymentLifecycleStageScaleUp,
	ecstypes.ServiceDeploymentLifecycleStagePostScaleUp,
	ecstypes.ServiceDeploymentLifecycleStageTestTrafficShift,
	ecstypes.ServiceDeploymentLifecycleStagePostTestTrafficShift,
	ecstypes.ServiceDeploymentLifecycleStageProductionTrafficShift,
	ecstypes.ServiceDeploymentLifecycleStagePostProductionTrafficShift,
	ecstypes.ServiceDeploymentLifecycleStageBakeTime,
	ecstypes.ServiceDeploymentLifecycleStageCleanUp,
}

// CheckStage returns an error unless stage is a lifecycle stage that DescribeServiceDeployments
// reports (the API model's ServiceDeploymentLifecycleStage).
func CheckStage(stage string) error {
	var names []string
	for _, v := range ecstypes.ServiceDeploymentLifecycleStage("").Values() {
		if string(v) == stage && slices.Contains(stageOrder, v) {
			return nil
		}
		names = append(names, string(v))
	}
	return fmt.Errorf("unknown lifecycle stage %q: want one of %s", stage, strings.Join(names, ", "))
}

// stageIndex is the position of stage in stageOrder, or -1.
func stageIndex(stage string) int {
	return slices.Index(stageOrder, ecstypes.ServiceDeploymentLifecycleStage(stage))
}

// Watcher follows one service deployment through ListServiceDeployments and
// DescribeServiceDeployments until it ends. It never uses the ServicesStable waiter, which
// reports success after an automatic rollback.
type Watcher struct {
	Client           *ecssdk.Client
	Cluster, Service string
	// DeploymentARN is the deployment to follow; when empty, the newest deployment of the
	// service created at or after Since.
	DeploymentARN string
	Since         time.Time
	// TaskDefinition is the task definition the deployment ships (Deploy registered it);
	// when empty, the target revision's task definition at the first reading. A deployment
	// stopped by a newer one with this task definition is followed into the newer one.
	TaskDefinition string
	// Until, when set, ends the watch with ReachedStage once the deployment, still in
	// progress, reaches this lifecycle stage or a later one (see CheckStage).
	Until string
	// Timeout bounds the whole watch (default 30m).
	Timeout time.Duration
	// Interval is the time between polls (default 10s); throttling doubles it, up to
	// MaxInterval (default 1m), and a successful poll restores it.
	Interval, MaxInterval time.Duration
	// OnProgress is called with the first state and every change; OnNotice with things a
	// person following along should know (throttling, waiting for the deployment).
	OnProgress func(Progress)
	OnNotice   func(string)
}

// Result is the end of a watch.
type Result struct {
	Outcome Outcome `json:"outcome"`
	// Cause says why, in one sentence that names the failed check, alarm, hook or task.
	Cause string `json:"cause"`
	// Last is the last state read, or nil when the deployment could not be read at all.
	Last *Progress `json:"deployment,omitempty"`
	// Err is the API error behind an APIError outcome.
	Err error `json:"-"`
}

// Progress is one reading of a deployment.
type Progress struct {
	Time           time.Time       `json:"time"`
	DeploymentARN  string          `json:"deploymentArn"`
	Status         string          `json:"status"`
	StatusReason   string          `json:"statusReason,omitempty"`
	LifecycleStage string          `json:"lifecycleStage,omitempty"`
	Revisions      []Revision      `json:"revisions"`
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	Alarms         *Alarms         `json:"alarms,omitempty"`
	Hooks          []Hook          `json:"hooks,omitempty"`
	Rollback       *RollbackInfo   `json:"rollback,omitempty"`
	FailedTasks    []FailedTask    `json:"failedTasks,omitempty"`
}

// Revision is one service revision taking part in the deployment.
type Revision struct {
	ARN            string `json:"arn"`
	Role           string `json:"role"` // "target" (being deployed) or "source" (being replaced)
	TaskDefinition string `json:"taskDefinition,omitempty"`
	Desired        int    `json:"desired"`
	Running        int    `json:"running"`
	Pending        int    `json:"pending"`
	Healthy        int    `json:"healthy"`
}

// CircuitBreaker is the deployment circuit breaker's state.
type CircuitBreaker struct {
	Status    string `json:"status"`
	Failures  int    `json:"failures"`
	Threshold int    `json:"threshold"`
}

// Alarms is the state of the deployment's CloudWatch alarms.
type Alarms struct {
	Status    string   `json:"status"`
	Names     []string `json:"names"`
	Triggered []string `json:"triggered,omitempty"`
}

// Hook is a lifecycle hook of the deployment.
type Hook struct {
	ID            string     `json:"id"`
	Status        string     `json:"status"`
	TargetType    string     `json:"targetType"`
	TargetARN     string     `json:"targetArn,omitempty"`
	TimeoutAction string     `json:"timeoutAction,omitempty"`
	ExpiresAt     *time.Time `json:"expiresAt,omitempty"`
}

// RollbackInfo is set once ECS started rolling the deployment back.
type RollbackInfo struct {
	Reason      string     `json:"reason"`
	RevisionARN string     `json:"revisionArn,omitempty"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
}

// FailedTask is a task of the target revision that failed during the deployment.
type FailedTask struct {
	TaskARN        string            `json:"taskArn"`
	TaskDefinition string            `json:"taskDefinition"`
	StopCode       string            `json:"stopCode,omitempty"`
	StoppedReason  string            `json:"stoppedReason,omitempty"`
	StoppedAt      *time.Time        `json:"stoppedAt,omitempty"`
	Containers     []FailedContainer `json:"containers,omitempty"`
	// Event is the newest service event that names the task: for a load-balancer health
	// check it carries the check's reason ("Health checks failed with these codes: [503]").
	// ECS does not return the output of container health checks through its API.
	Event string `json:"event,omitempty"`
}

// FailedContainer is one container of a failed task.
type FailedContainer struct {
	Name         string `json:"name"`
	ExitCode     *int32 `json:"exitCode,omitempty"`
	Reason       string `json:"reason,omitempty"`
	HealthStatus string `json:"healthStatus,omitempty"`
}

// Watch follows the deployment until it ends, the timeout passes, ctx is cancelled, or the
// API fails in a way that retrying cannot fix.
func (w *Watcher) Watch(ctx context.Context) Result {
	timeout := orDuration(w.Timeout, 30*time.Minute)
	interval := orDuration(w.Interval, 10*time.Second)
	maxInterval := max(orDuration(w.MaxInterval, time.Minute), interval)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	s := &watch{Watcher: w, revisions: map[string]string{}, want: w.TaskDefinition}
	wait := interval
	var lastErr error
	for {
		done, res, err := s.poll(ctx)
		switch {
		case err == nil:
			lastErr, wait = nil, interval
			if done {
				return res
			}
		case ctx.Err() != nil:
			// The deadline interrupted a call; the timeout decides below.
		case !Transient(err):
			return Result{Outcome: APIError, Cause: Explain(err).Error(), Last: s.last, Err: err}
		default:
			lastErr = err
			if Throttled(err) {
				wait = min(2*wait, maxInterval)
				s.notice("throttled by the ECS API (%v); next poll in %s", err, wait)
			} else {
				s.notice("ECS API error, retrying in %s: %v", wait, err)
			}
		}
		select {
		case <-ctx.Done():
			return s.timedOut(timeout, lastErr)
		case <-time.After(wait):
		}
	}
}

// watch is the state of one Watch call.
type watch struct {
	*Watcher
	arn       string
	created   time.Time         // when ECS created the deployment being followed
	want      string            // the task definition being shipped
	revisions map[string]string // service revision ARN -> task definition ARN
	last      *Progress
	changedAt time.Time
	waiting   bool // the "no deployment yet" notice was given
}

func (s *watch) notice(format string, args ...any) {
	if s.OnNotice != nil {
		s.OnNotice(fmt.Sprintf(format, args...))
	}
}

// poll reads the deployment once; done is true when it has ended.
func (s *watch) poll(ctx context.Context) (done bool, res Result, err error) {
	if s.arn == "" {
		arn, err := s.resolve(ctx)
		if err != nil || arn == "" {
			return false, Result{}, err
		}
		s.arn = arn
	}
	p, err := s.read(ctx)
	if err != nil {
		return false, Result{}, err
	}
	if s.last == nil || !sameProgress(*s.last, *p) {
		s.changedAt = p.Time
		if s.OnProgress != nil {
			s.OnProgress(*p)
		}
	}
	s.last = p
	switch ecstypes.ServiceDeploymentStatus(p.Status) {
	case ecstypes.ServiceDeploymentStatusSuccessful:
		return true, Result{Outcome: Succeeded, Cause: "deployment " + p.DeploymentARN + " completed: " + revisionSummary(p, "target"), Last: p}, nil
	case ecstypes.ServiceDeploymentStatusRollbackSuccessful:
		return true, Result{Outcome: RolledBack, Cause: "rolled back: " + failureCause(p), Last: p}, nil
	case ecstypes.ServiceDeploymentStatusRollbackFailed:
		return true, Result{Outcome: Failed, Cause: "rollback failed: " + failureCause(p), Last: p}, nil
	case ecstypes.ServiceDeploymentStatusStopped:
		next, td, err := s.successor(ctx)
		if err != nil {
			return false, Result{}, err
		}
		switch {
		case next == "":
			return true, Result{Outcome: Failed, Cause: "stopped: " + failureCause(p), Last: p}, nil
		case td != s.want:
			return true, Result{Outcome: Superseded, Last: p, Cause: fmt.Sprintf("superseded by %s, which deploys %s instead of %s",
				next, ShortARN(orString(td, "an unknown task definition")), ShortARN(s.want))}, nil
		}
		s.notice("deployment %s was superseded by %s, which deploys the same task definition %s; following it", s.arn, next, ShortARN(td))
		s.arn, s.created = next, time.Time{}
		return false, Result{}, nil
	case ecstypes.ServiceDeploymentStatusInProgress:
		if s.Until != "" && stageIndex(p.LifecycleStage) >= stageIndex(s.Until) && stageIndex(p.LifecycleStage) >= 0 {
			return true, Result{Outcome: ReachedStage, Last: p, Cause: fmt.Sprintf("deployment %s reached stage %s (ECS carries on): %s",
				p.DeploymentARN, p.LifecycleStage, revisionSummary(p, "target"))}, nil
		}
	}
	return false, Result{}, nil
}

// successor finds the deployment that stopped the one being followed: the newest deployment
// of the service created after it. A deployment that a newer UpdateService replaces before it
// finishes ends STOPPED, one of the "Completed" states of "View service history using Amazon
// ECS service deployments"
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html);
// StopServiceDeployment with stopType ABORT ends the same way, with no newer deployment.
// successor returns "" when there is none.
func (s *watch) successor(ctx context.Context) (arn, taskDefinition string, err error) {
	if s.created.IsZero() {
		return "", "", nil
	}
	newest, err := s.newest(ctx, s.created)
	if err != nil || newest == nil || aws.ToString(newest.ServiceDeploymentArn) == s.arn || !aws.ToTime(newest.CreatedAt).After(s.created) {
		return "", "", err
	}
	rev := aws.ToString(newest.TargetServiceRevisionArn)
	if err := s.taskDefinitions(ctx, []string{rev}); err != nil {
		return "", "", err
	}
	return aws.ToString(newest.ServiceDeploymentArn), s.revisions[rev], nil
}

// resolve finds the deployment to follow: the newest one created at or after Since. It
// returns "" (and no error) while none exists yet.
func (s *watch) resolve(ctx context.Context) (string, error) {
	if s.DeploymentARN != "" {
		return s.DeploymentARN, nil
	}
	newest, err := s.newest(ctx, s.Since)
	if err != nil {
		return "", err
	}
	if newest == nil {
		if !s.waiting {
			s.waiting = true
			s.notice("no deployment of service %s yet; waiting", s.Service)
		}
		return "", nil
	}
	return aws.ToString(newest.ServiceDeploymentArn), nil
}

// newest returns the service's newest deployment created at or after since (any time when
// since is zero), or nil.
func (s *watch) newest(ctx context.Context, since time.Time) (*ecstypes.ServiceDeploymentBrief, error) {
	in := &ecssdk.ListServiceDeploymentsInput{Cluster: nonEmpty(s.Cluster), Service: aws.String(s.Service)}
	if !since.IsZero() {
		in.CreatedAt = &ecstypes.CreatedAt{After: aws.Time(since)}
	}
	var newest *ecstypes.ServiceDeploymentBrief
	for page := 0; page < 10; page++ {
		out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.ListServiceDeploymentsOutput, error) {
			return s.Client.ListServiceDeployments(ctx, in)
		})
		if err != nil {
			return nil, fmt.Errorf("ListServiceDeployments %s: %w", s.Service, err)
		}
		for i := range out.ServiceDeployments {
			d := &out.ServiceDeployments[i]
			if newest == nil || aws.ToTime(d.CreatedAt).After(aws.ToTime(newest.CreatedAt)) {
				newest = d
			}
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	return newest, nil
}

// read describes the deployment, its revisions and its tasks.
func (s *watch) read(ctx context.Context) (*Progress, error) {
	out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeServiceDeploymentsOutput, error) {
		return s.Client.DescribeServiceDeployments(ctx, &ecssdk.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{s.arn}})
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeServiceDeployments %s: %w", s.arn, err)
	}
	if len(out.ServiceDeployments) == 0 {
		reason := "not found"
		if len(out.Failures) > 0 {
			reason = aws.ToString(out.Failures[0].Reason) + " " + aws.ToString(out.Failures[0].Detail)
		}
		return nil, &notFoundError{what: "service deployment " + s.arn, reason: strings.TrimSpace(reason)}
	}
	d := out.ServiceDeployments[0]
	if s.created.IsZero() {
		s.created = aws.ToTime(cmp.Or(d.CreatedAt, d.StartedAt))
	}
	p := &Progress{
		Time:           time.Now(),
		DeploymentARN:  aws.ToString(d.ServiceDeploymentArn),
		Status:         string(d.Status),
		StatusReason:   aws.ToString(d.StatusReason),
		LifecycleStage: string(d.LifecycleStage),
	}
	if cb := d.DeploymentCircuitBreaker; cb != nil {
		p.CircuitBreaker = &CircuitBreaker{Status: string(cb.Status), Failures: int(cb.FailureCount), Threshold: int(cb.Threshold)}
	}
	if a := d.Alarms; a != nil {
		p.Alarms = &Alarms{Status: string(a.Status), Names: a.AlarmNames, Triggered: a.TriggeredAlarmNames}
	}
	for _, h := range d.LifecycleHookDetails {
		p.Hooks = append(p.Hooks, Hook{ID: aws.ToString(h.HookId), Status: string(h.Status), TargetType: string(h.TargetType),
			TargetARN: aws.ToString(h.TargetArn), TimeoutAction: string(h.TimeoutAction), ExpiresAt: h.ExpiresAt})
	}
	if r := d.Rollback; r != nil {
		p.Rollback = &RollbackInfo{Reason: aws.ToString(r.Reason), RevisionARN: aws.ToString(r.ServiceRevisionArn), StartedAt: r.StartedAt}
	}
	if t := d.TargetServiceRevision; t != nil {
		p.Revisions = append(p.Revisions, revision(t, "target"))
	}
	for i := range d.SourceServiceRevisions {
		p.Revisions = append(p.Revisions, revision(&d.SourceServiceRevisions[i], "source"))
	}
	if err := s.describeRevisions(ctx, p); err != nil {
		return nil, err
	}
	if s.want == "" {
		s.want = targetRevision(p).TaskDefinition
	}
	if err := s.readTasks(ctx, p, aws.ToTime(d.StartedAt)); err != nil {
		return nil, err
	}
	return p, nil
}

func revision(r *ecstypes.ServiceRevisionSummary, role string) Revision {
	return Revision{ARN: aws.ToString(r.Arn), Role: role, Desired: int(r.RequestedTaskCount),
		Running: int(r.RunningTaskCount), Pending: int(r.PendingTaskCount)}
}

// describeRevisions fills in each revision's task definition.
func (s *watch) describeRevisions(ctx context.Context, p *Progress) error {
	var arns []string
	for _, r := range p.Revisions {
		arns = append(arns, r.ARN)
	}
	if err := s.taskDefinitions(ctx, arns); err != nil {
		return err
	}
	for i := range p.Revisions {
		p.Revisions[i].TaskDefinition = s.revisions[p.Revisions[i].ARN]
	}
	return nil
}

// taskDefinitions looks up the task definitions of service revisions into s.revisions
// (cached: a revision never changes).
func (s *watch) taskDefinitions(ctx context.Context, arns []string) error {
	var missing []string
	for _, arn := range arns {
		if _, ok := s.revisions[arn]; !ok && arn != "" {
			missing = append(missing, arn)
		}
	}
	if len(missing) > 0 {
		revs, err := describeRevisions(ctx, s.Client, missing)
		if err != nil {
			return err
		}
		for arn, r := range revs {
			s.revisions[arn] = aws.ToString(r.TaskDefinition)
		}
	}
	return nil
}

// targetRevision returns the revision being deployed (a zero Revision when none is reported).
func targetRevision(p *Progress) Revision {
	for _, r := range p.Revisions {
		if r.Role == "target" {
			return r
		}
	}
	return Revision{}
}

// revisionOf returns the index of the revision a task belongs to, or -1. ECS starts a
// service's tasks with startedBy "ecs-svc/<ID>", and the same ID ends the ARN of the
// service revision they belong to. Two revisions can run the same task definition (a
// rollback, a forced new deployment, a network change), so a task definition ARN alone says
// which revision a task belongs to only when no other revision of the deployment has it.
func revisionOf(revs []Revision, t ecstypes.Task) int {
	if id, ok := strings.CutPrefix(aws.ToString(t.StartedBy), "ecs-svc/"); ok && id != "" {
		for i, r := range revs {
			if r.ARN[strings.LastIndexByte(r.ARN, '/')+1:] == id {
				return i
			}
		}
	}
	found := -1
	for i, r := range revs {
		if r.TaskDefinition != "" && r.TaskDefinition == aws.ToString(t.TaskDefinitionArn) {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}

// readTasks counts healthy tasks per revision and collects the target revision's tasks that
// failed since the deployment started, with the service event that names each.
func (s *watch) readTasks(ctx context.Context, p *Progress, started time.Time) error {
	running, err := s.tasks(ctx, ecstypes.DesiredStatusRunning)
	if err != nil {
		return err
	}
	for _, t := range running {
		if i := revisionOf(p.Revisions, t); i >= 0 && t.HealthStatus == ecstypes.HealthStatusHealthy {
			p.Revisions[i].Healthy++
		}
	}
	target := slices.IndexFunc(p.Revisions, func(r Revision) bool { return r.Role == "target" })
	if target < 0 {
		return nil
	}
	stopped, err := s.tasks(ctx, ecstypes.DesiredStatusStopped)
	if err != nil {
		return err
	}
	var events []ecstypes.ServiceEvent
	for _, t := range stopped {
		if revisionOf(p.Revisions, t) != target || !taskFailed(t) || (t.CreatedAt != nil && t.CreatedAt.Before(started)) {
			continue
		}
		if events == nil {
			if events, err = s.events(ctx); err != nil {
				return err
			}
		}
		p.FailedTasks = append(p.FailedTasks, failedTask(t, events))
	}
	slices.SortFunc(p.FailedTasks, func(a, b FailedTask) int { return aws.ToTime(a.StoppedAt).Compare(aws.ToTime(b.StoppedAt)) })
	return nil
}

// tasks lists and describes the service's tasks with the given desired status (at most
// 500: enough to tell a person what is happening).
func (s *watch) tasks(ctx context.Context, desired ecstypes.DesiredStatus) ([]ecstypes.Task, error) {
	return listTasks(ctx, s.Client, s.Cluster, &ecssdk.ListTasksInput{ServiceName: aws.String(s.Service), DesiredStatus: desired}, 5)
}

// listTasks runs ListTasks (up to pages pages of 100) and DescribeTasks on the result.
func listTasks(ctx context.Context, c *ecssdk.Client, cluster string, in *ecssdk.ListTasksInput, pages int) ([]ecstypes.Task, error) {
	in.Cluster = nonEmpty(cluster)
	in.MaxResults = aws.Int32(100)
	var tasks []ecstypes.Task
	for page := 0; page < pages; page++ {
		out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.ListTasksOutput, error) { return c.ListTasks(ctx, in) })
		if err != nil {
			return nil, fmt.Errorf("ListTasks: %w", err)
		}
		if len(out.TaskArns) > 0 {
			desc, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeTasksOutput, error) {
				return c.DescribeTasks(ctx, &ecssdk.DescribeTasksInput{Cluster: nonEmpty(cluster), Tasks: out.TaskArns})
			})
			if err != nil {
				return nil, fmt.Errorf("DescribeTasks: %w", err)
			}
			tasks = append(tasks, desc.Tasks...)
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	return tasks, nil
}

func (s *watch) events(ctx context.Context) ([]ecstypes.ServiceEvent, error) {
	out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeServicesOutput, error) {
		return s.Client.DescribeServices(ctx, &ecssdk.DescribeServicesInput{Cluster: nonEmpty(s.Cluster), Services: []string{s.Service}})
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeServices %s: %w", s.Service, err)
	}
	events := []ecstypes.ServiceEvent{} // non-nil: read once per poll
	for _, svc := range out.Services {
		events = append(events, svc.Events...)
	}
	return events, nil
}

// taskFailed tells a task that failed from one the scheduler stopped on purpose (scale-in,
// replacement by a rollback).
func taskFailed(t ecstypes.Task) bool {
	switch t.StopCode {
	case ecstypes.TaskStopCodeTaskFailedToStart, ecstypes.TaskStopCodeEssentialContainerExited:
		return true
	}
	if strings.Contains(strings.ToLower(aws.ToString(t.StoppedReason)), "health check") {
		return true
	}
	for _, c := range t.Containers {
		if c.HealthStatus == ecstypes.HealthStatusUnhealthy {
			return true
		}
	}
	return false
}

func failedTask(t ecstypes.Task, events []ecstypes.ServiceEvent) FailedTask {
	f := FailedTask{
		TaskARN:        aws.ToString(t.TaskArn),
		TaskDefinition: aws.ToString(t.TaskDefinitionArn),
		StopCode:       string(t.StopCode),
		StoppedReason:  aws.ToString(t.StoppedReason),
		StoppedAt:      t.StoppedAt,
	}
	for _, c := range t.Containers {
		f.Containers = append(f.Containers, FailedContainer{Name: aws.ToString(c.Name), ExitCode: c.ExitCode,
			Reason: aws.ToString(c.Reason), HealthStatus: string(c.HealthStatus)})
	}
	id := TaskID(f.TaskARN)
	var newest time.Time
	for _, e := range events {
		if id != "" && strings.Contains(aws.ToString(e.Message), id) && aws.ToTime(e.CreatedAt).After(newest) {
			f.Event, newest = aws.ToString(e.Message), aws.ToTime(e.CreatedAt)
		}
	}
	return f
}

// TaskID is the last part of a task ARN.
func TaskID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// timedOut ends a watch whose time ran out.
func (s *watch) timedOut(timeout time.Duration, lastErr error) Result {
	if lastErr != nil {
		return Result{Outcome: APIError, Cause: fmt.Sprintf("gave up after %s of failing API calls: %v", timeout, lastErr), Last: s.last, Err: lastErr}
	}
	if s.last == nil {
		return Result{Outcome: TimedOut, Cause: fmt.Sprintf("timed out after %s: no deployment of service %s appeared", timeout, s.Service)}
	}
	p := s.last
	cause := fmt.Sprintf("timed out after %s: deployment %s is still %s", timeout, p.DeploymentARN, p.Status)
	if p.LifecycleStage != "" {
		cause += " at stage " + p.LifecycleStage
	}
	cause += "; " + revisionSummary(p, "target")
	for _, h := range p.Hooks {
		if h.Status == string(ecstypes.DeploymentLifecycleHookStatusAwaitingAction) {
			cause += fmt.Sprintf("; paused at hook %s, waiting for continue or rollback", h.ID)
		}
	}
	if len(p.FailedTasks) > 0 {
		cause += "; " + taskCause(p.FailedTasks[len(p.FailedTasks)-1])
	}
	cause += fmt.Sprintf("; no change since %s (%s before the timeout). ECS keeps going: watch it again or roll it back",
		s.changedAt.UTC().Format(time.TimeOnly), time.Since(s.changedAt).Round(time.Second))
	return Result{Outcome: TimedOut, Cause: cause, Last: p}
}

// failureCause names what made ECS stop or roll back a deployment, most specific first.
func failureCause(p *Progress) string {
	var causes []string
	if cb := p.CircuitBreaker; cb != nil && cb.Status == string(ecstypes.ServiceDeploymentRollbackMonitorsStatusTriggered) {
		causes = append(causes, fmt.Sprintf("circuit breaker triggered after %d failed tasks (threshold %d)", cb.Failures, cb.Threshold))
	}
	if a := p.Alarms; a != nil && len(a.Triggered) > 0 {
		causes = append(causes, "alarm "+strings.Join(a.Triggered, ", ")+" went into ALARM")
	}
	for _, h := range p.Hooks {
		if h.Status == string(ecstypes.DeploymentLifecycleHookStatusFailed) || h.Status == string(ecstypes.DeploymentLifecycleHookStatusTimedOut) {
			target := h.TargetARN
			if target == "" {
				target = h.TargetType
			}
			causes = append(causes, fmt.Sprintf("lifecycle hook %s (%s) %s", h.ID, target, h.Status))
		}
	}
	if len(causes) == 0 {
		switch {
		case p.Rollback != nil && p.Rollback.Reason != "":
			causes = append(causes, p.Rollback.Reason)
		case p.StatusReason != "":
			causes = append(causes, p.StatusReason)
		default:
			causes = append(causes, "ECS gave no reason")
		}
	}
	if len(p.FailedTasks) > 0 {
		causes = append(causes, taskCause(p.FailedTasks[len(p.FailedTasks)-1]))
	}
	return strings.Join(causes, "; ")
}

func taskCause(t FailedTask) string {
	s := "last failed task " + TaskID(t.TaskARN)
	if t.StoppedReason != "" {
		s += ": " + t.StoppedReason
	}
	for _, c := range t.Containers {
		if c.HealthStatus == string(ecstypes.HealthStatusUnhealthy) {
			s += fmt.Sprintf(" (container %s UNHEALTHY)", c.Name)
		}
	}
	if t.Event != "" {
		s += " — " + t.Event
	}
	return s
}

func revisionSummary(p *Progress, role string) string {
	for _, r := range p.Revisions {
		if r.Role == role {
			name := r.TaskDefinition
			if name == "" {
				name = r.ARN
			}
			return fmt.Sprintf("%s revision %s has %d/%d tasks running, %d healthy", role, ShortARN(name), r.Running, r.Desired, r.Healthy)
		}
	}
	return "no " + role + " revision reported"
}

// ShortARN keeps the name part of an ARN: ".../task-definition/app:7" → "app:7",
// "arn:aws:lambda:...:function:smoke" → "function:smoke". Anything else is returned as is.
func ShortARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return arn
	}
	res := parts[5]
	return res[strings.LastIndexByte(res, '/')+1:]
}

// sameProgress compares two readings, ignoring when they were taken.
func sameProgress(a, b Progress) bool {
	a.Time, b.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

type notFoundError struct{ what, reason string }

func (e *notFoundError) Error() string { return e.what + ": " + e.reason }

// IsNotFound reports whether err says a deployment or service does not exist.
func IsNotFound(err error) bool {
	var nf *notFoundError
	return errors.As(err, &nf)
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
