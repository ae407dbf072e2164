package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// This file runs the lifecycle hooks of blue/green deployments as "Lambda functions for
// lifecycle hooks" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html)
// and "Pause lifecycle hooks" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html)
// describe them. Every hook configured for a stage starts when the stage begins, side by
// side; the stage ends when each has SUCCEEDED (or TIMED_OUT with the timeout action
// CONTINUE), and a FAILED one, or one TIMED_OUT with the action ROLLBACK, fails the
// deployment. An AWS_LAMBDA hook is invoked with ECS's event; its response's hookStatus is
// SUCCEEDED, FAILED or IN_PROGRESS (invoked again after callBackDelay seconds, 30 by default,
// with the hookDetails it returned merged into the next event); a function error, a missing
// or unknown hookStatus, or an invoke error counts as FAILED. A PAUSE hook waits
// (AWAITING_ACTION) for ContinueServiceDeployment. A hook times out after its
// timeoutConfiguration.timeoutInMinutes (1440 by default), in the API's time scale.

// HookInvoker runs a lifecycle hook's Lambda function: payload is the event ECS sends,
// the result is the function's response payload.
type HookInvoker interface {
	InvokeHook(ctx context.Context, functionARN string, payload []byte) ([]byte, error)
}

// hookRun is one hook at the stage in progress.
type hookRun struct {
	detail types.DeploymentLifecycleHookDetail // as lifecycleHookDetails shows it
	reason string                              // why it FAILED
}

// hookEvent is the payload ECS sends a Lambda hook.
type hookEvent struct {
	ExecutionID      string         `json:"executionId"`
	LifecycleStage   string         `json:"lifecycleStage"`
	ResourceArn      string         `json:"resourceArn"`
	ExecutionDetails hookExecution  `json:"executionDetails"`
	HookDetails      map[string]any `json:"hookDetails,omitempty"`
}

type hookExecution struct {
	ServiceArn               string             `json:"serviceArn"`
	TargetServiceRevisionArn string             `json:"targetServiceRevisionArn"`
	TestTrafficWeights       map[string]float64 `json:"testTrafficWeights"`
	ProductionTrafficWeights map[string]float64 `json:"productionTrafficWeights"`
}

// hookResponse is what a Lambda hook returns; errorMessage and errorType are a function
// error's.
type hookResponse struct {
	HookStatus    string         `json:"hookStatus"`
	CallBackDelay *float64       `json:"callBackDelay"`
	HookDetails   map[string]any `json:"hookDetails"`
	ErrorMessage  string         `json:"errorMessage"`
	ErrorType     string         `json:"errorType"`
}

// defaultCallBackDelay is how long ECS waits before invoking an IN_PROGRESS hook again when
// its response gives no callBackDelay.
const defaultCallBackDelay = 30 * time.Second

// startHooks starts the hooks configured for stage as the hooks in progress; their
// invocations end with ctx. The caller holds a.mu.
func (a *API) startHooks(ctx context.Context, s *service, cur *deployment, stage types.DeploymentLifecycleHookStage) {
	bg := cur.bg
	bg.hooks = nil
	if stage == "" {
		return
	}
	now := a.now()
	for _, h := range cur.d.DeploymentConfiguration.LifecycleHooks {
		if !slices.Contains(h.LifecycleStages, stage) {
			continue
		}
		timeout, action := 1440*time.Minute, types.DeploymentLifecycleHookActionRollback
		if tc := h.TimeoutConfiguration; tc != nil {
			if tc.TimeoutInMinutes != nil {
				timeout = time.Duration(*tc.TimeoutInMinutes) * time.Minute
			}
			if tc.Action != "" {
				action = tc.Action
			}
		}
		run := &hookRun{detail: types.DeploymentLifecycleHookDetail{HookId: aws.String(uuid()), TargetType: h.TargetType,
			Status: types.DeploymentLifecycleHookStatusInProgress, ExpiresAt: aws.Time(now.Add(a.scaled(timeout)).UTC().Truncate(time.Millisecond)), TimeoutAction: action}}
		bg.hooks = append(bg.hooks, run)
		if h.TargetType == types.DeploymentLifecycleHookTargetTypePause {
			run.detail.Status = types.DeploymentLifecycleHookStatusAwaitingAction
			a.addEvent(s, fmt.Sprintf("(service %s) lifecycle hook %s is awaiting action at %s.", *s.s.ServiceName, *run.detail.HookId, stage))
			continue
		}
		if run.detail.TargetType == "" {
			run.detail.TargetType = types.DeploymentLifecycleHookTargetTypeAwsLambda
		}
		run.detail.TargetArn = h.HookTargetArn
		ev := hookEvent{ExecutionID: uuid(), LifecycleStage: string(stage), ResourceArn: *cur.d.ServiceDeploymentArn,
			ExecutionDetails: hookExecution{ServiceArn: *s.s.ServiceArn, TargetServiceRevisionArn: bg.greenRevision,
				TestTrafficWeights: map[string]float64{}, ProductionTrafficWeights: map[string]float64{}}}
		switch stage {
		case types.DeploymentLifecycleHookStageTestTrafficShift:
			ev.ExecutionDetails.TestTrafficWeights = map[string]float64{bg.greenRevision: bg.test, bg.blueRevision: 100 - bg.test}
		case types.DeploymentLifecycleHookStagePreProductionTrafficShift, types.DeploymentLifecycleHookStageProductionTrafficShift:
			ev.ExecutionDetails.ProductionTrafficWeights = map[string]float64{bg.greenRevision: bg.prod, bg.blueRevision: 100 - bg.prod}
		}
		if h.HookDetails != nil {
			// The document's own decoder refuses the integers a request carries: go through JSON.
			if raw, err := h.HookDetails.MarshalSmithyDocument(); err == nil {
				_ = json.Unmarshal(raw, &ev.HookDetails)
			}
		}
		a.hookRuns.Add(1)
		go a.invokeHook(ctx, cur, run, ev)
	}
	a.recordHooks(cur)
}

// invokeHook invokes a Lambda hook until it answers SUCCEEDED or FAILED or ctx ends (the
// stage ended, the deployment failed, or the hook timed out), and records the outcome.
func (a *API) invokeHook(ctx context.Context, cur *deployment, run *hookRun, ev hookEvent) {
	defer a.hookRuns.Done()
	arn, stage := aws.ToString(run.detail.TargetArn), ev.LifecycleStage
	deadline := time.Until(*run.detail.ExpiresAt)
	ctx, cancel := context.WithTimeout(ctx, max(deadline, 0))
	defer cancel()
	for {
		payload, err := json.Marshal(ev)
		if err != nil {
			a.settleHook(cur, run, types.DeploymentLifecycleHookStatusFailed, fmt.Sprintf("lifecycle hook %s at %s: event: %v", arn, stage, err))
			return
		}
		var out []byte
		if a.hooks == nil {
			err = fmt.Errorf("no Lambda runner is configured")
		} else {
			out, err = a.hooks.InvokeHook(ctx, arn, payload)
		}
		if ctx.Err() != nil {
			a.expired(ctx, cur, run)
			return
		}
		var resp hookResponse
		if err == nil {
			if jerr := json.Unmarshal(out, &resp); jerr != nil {
				err = fmt.Errorf("response %q: %v", truncate(out, 200), jerr)
			}
		}
		switch {
		case err != nil:
			a.settleHook(cur, run, types.DeploymentLifecycleHookStatusFailed, fmt.Sprintf("lifecycle hook %s at %s: invoke: %v", arn, stage, err))
			return
		case resp.ErrorType != "" || resp.ErrorMessage != "":
			a.settleHook(cur, run, types.DeploymentLifecycleHookStatusFailed, fmt.Sprintf("lifecycle hook %s at %s: function error %s: %s", arn, stage, resp.ErrorType, resp.ErrorMessage))
			return
		}
		switch resp.HookStatus {
		case "SUCCEEDED":
			a.settleHook(cur, run, types.DeploymentLifecycleHookStatusSucceeded, "")
			return
		case "IN_PROGRESS":
		case "FAILED":
			a.settleHook(cur, run, types.DeploymentLifecycleHookStatusFailed, fmt.Sprintf("lifecycle hook %s at %s returned FAILED.", arn, stage))
			return
		case "":
			a.settleHook(cur, run, types.DeploymentLifecycleHookStatusFailed, fmt.Sprintf("lifecycle hook %s at %s: HookStatus must not be null.", arn, stage))
			return
		default:
			a.settleHook(cur, run, types.DeploymentLifecycleHookStatusFailed, fmt.Sprintf("lifecycle hook %s at %s: unknown hookStatus %q.", arn, stage, resp.HookStatus))
			return
		}
		if len(resp.HookDetails) > 0 {
			if ev.HookDetails == nil {
				ev.HookDetails = map[string]any{}
			}
			maps.Copy(ev.HookDetails, resp.HookDetails)
		}
		delay := defaultCallBackDelay
		if d := resp.CallBackDelay; d != nil && *d > 0 {
			delay = time.Duration(*d * float64(time.Second))
		}
		timer := time.NewTimer(a.scaled(delay))
		select {
		case <-ctx.Done():
			timer.Stop()
			a.expired(ctx, cur, run)
			return
		case <-timer.C:
		}
	}
}

// expired records a hook whose invocations ctx ended: TIMED_OUT when its own deadline
// passed; when the stage ended first there is nothing to record.
func (a *API) expired(ctx context.Context, cur *deployment, run *hookRun) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		a.settleHook(cur, run, types.DeploymentLifecycleHookStatusTimedOut, fmt.Sprintf("lifecycle hook %s timed out.", aws.ToString(run.detail.TargetArn)))
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// settleHook records a hook's outcome unless the scheduler already settled it (timed out).
func (a *API) settleHook(cur *deployment, run *hookRun, status types.DeploymentLifecycleHookStatus, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if run.detail.Status != types.DeploymentLifecycleHookStatusInProgress {
		return
	}
	run.detail.Status, run.reason = status, reason
	a.recordHooks(cur)
}

// recordHooks shows every hook the deployment ran, in the order they started, in
// lifecycleHookDetails. The caller holds a.mu.
func (a *API) recordHooks(cur *deployment) {
	cur.d.LifecycleHookDetails = nil
	for _, run := range slices.Concat(cur.bg.past, cur.bg.hooks) {
		cur.d.LifecycleHookDetails = append(cur.d.LifecycleHookDetails, *wire.Clone(&run.detail))
	}
	cur.d.UpdatedAt = a.timestamp()
}

// hooksSettled reports whether every hook of the stage in progress let the deployment go
// on, or why one failed it; a hook past its expiry is TIMED_OUT here. The caller holds a.mu.
func (a *API) hooksSettled(cur *deployment) (ok bool, failure string) {
	ok = true
	now := a.now()
	for _, run := range cur.bg.hooks {
		st := run.detail.Status
		if (st == types.DeploymentLifecycleHookStatusInProgress || st == types.DeploymentLifecycleHookStatusAwaitingAction) && !now.Before(*run.detail.ExpiresAt) {
			run.detail.Status = types.DeploymentLifecycleHookStatusTimedOut
			run.reason = fmt.Sprintf("lifecycle hook %s timed out.", cmpString(aws.ToString(run.detail.TargetArn), *run.detail.HookId))
			a.recordHooks(cur)
		}
		switch run.detail.Status {
		case types.DeploymentLifecycleHookStatusSucceeded:
		case types.DeploymentLifecycleHookStatusTimedOut:
			if run.detail.TimeoutAction != types.DeploymentLifecycleHookActionContinue {
				return false, run.reason
			}
		case types.DeploymentLifecycleHookStatusFailed:
			return false, run.reason
		default:
			ok = false
		}
	}
	return ok, ""
}

func cmpString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ContinueServiceDeployment resolves a PAUSE hook that is AWAITING_ACTION: CONTINUE (the
// default) lets the deployment go on, ROLLBACK rolls it back.
func (a *API) ContinueServiceDeployment(_ context.Context, in *ecs.ContinueServiceDeploymentInput) (*ecs.ContinueServiceDeploymentOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.deployments[aws.ToString(in.ServiceDeploymentArn)]
	if d == nil {
		return nil, wire.Errorf("ServiceDeploymentNotFoundException", "The service deployment %s does not exist.", aws.ToString(in.ServiceDeploymentArn))
	}
	var run *hookRun
	if d.bg != nil {
		for _, r := range d.bg.hooks {
			if aws.ToString(r.detail.HookId) == aws.ToString(in.HookId) {
				run = r
			}
		}
	}
	if run == nil {
		return nil, invalidParameter("The lifecycle hook %s is not a hook of the stage in progress of service deployment %s.", aws.ToString(in.HookId), *d.d.ServiceDeploymentArn)
	}
	if run.detail.Status != types.DeploymentLifecycleHookStatusAwaitingAction || d.d.Status != types.ServiceDeploymentStatusInProgress {
		return nil, wire.Errorf("ConflictException", "The lifecycle hook %s is %s, not AWAITING_ACTION.", *run.detail.HookId, run.detail.Status)
	}
	switch in.Action {
	case "", types.DeploymentLifecycleHookActionContinue:
		run.detail.Status = types.DeploymentLifecycleHookStatusSucceeded
	case types.DeploymentLifecycleHookActionRollback:
		run.detail.Status, run.reason = types.DeploymentLifecycleHookStatusFailed, "Rolled back by ContinueServiceDeployment."
	default:
		return nil, invalidParameter("action must be CONTINUE or ROLLBACK.")
	}
	a.recordHooks(d)
	return &ecs.ContinueServiceDeploymentOutput{ServiceDeploymentArn: d.d.ServiceDeploymentArn}, nil
}
