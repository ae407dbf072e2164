package ecsapi

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Runner runs the tasks the API records. The API calls both methods with its lock held, so
// that a stop cannot overtake a start: they must return at once and not call back into the
// API before they return; the runner reports through UpdateTask.
type Runner interface {
	// Start runs task arn of task definition td.
	Start(arn string, td types.TaskDefinition, overrides *types.TaskOverride)
	// Stop stops a task whose record says why (stopCode, stoppedReason).
	Stop(arn string)
}

// SetRunner makes r run the tasks recorded from now on. Call it before serving.
func (a *API) SetRunner(r Runner) {
	a.mu.Lock()
	a.runner = r
	a.mu.Unlock()
}

// SetHooks makes h run the lifecycle hooks of the deployments from now on, in place of
// Options.Hooks: the Lambda service needs the endpoint, which is served after the API is
// built. Call it before serving.
func (a *API) SetHooks(h HookInvoker) {
	a.mu.Lock()
	a.hooks = h
	a.mu.Unlock()
}

// SetAlarms makes r report the deployments' alarms from now on, in place of Options.Alarms.
// Call it before serving.
func (a *API) SetAlarms(r AlarmReader) {
	a.mu.Lock()
	a.alarms = r
	a.mu.Unlock()
}

// UpdateTask lets the runner change a task's record: f runs with the API's lock held, so it
// must not block or call the API. A task that reaches STOPPED lets a draining service become
// INACTIVE.
func (a *API) UpdateTask(arn string, f func(*types.Task)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tasks[arn]
	if t == nil {
		return
	}
	f(&t.t)
	if aws.ToString(t.t.LastStatus) == StatusStopped {
		a.settleDrainingOf(t)
	}
}
