package ecs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
)

// Change is what a deployment changes in a task definition before registering it.
type Change struct {
	// Container is where Image and Env apply; empty means the task's one Gangway container.
	Container string
	Image     string
	Env       map[string]string
}

// Apply changes a copy of td (the container definitions are copied; td is not modified).
func (c Change) Apply(td *TaskDefinition) (*TaskDefinition, error) {
	name := c.Container
	if name == "" && (c.Image != "" || len(c.Env) > 0) {
		names := GangwayContainers(td)
		if len(names) != 1 {
			return nil, fmt.Errorf("name the container to change: the task has %d Gangway containers (%v)", len(names), names)
		}
		name = names[0]
	}
	out := *td
	out.ContainerDefinitions = make([]ecstypes.ContainerDefinition, len(td.ContainerDefinitions))
	for i, cd := range td.ContainerDefinitions {
		cd.Environment = append([]ecstypes.KeyValuePair(nil), cd.Environment...)
		out.ContainerDefinitions[i] = cd
	}
	if name == "" {
		return &out, nil
	}
	cd, ok := Container(&out, name)
	if !ok {
		return nil, fmt.Errorf("task definition %s has no container %q", str(td.Family), name)
	}
	if c.Image != "" {
		cd.Image = aws.String(c.Image)
	}
	for k, v := range c.Env {
		SetEnv(cd, k, v)
	}
	return &out, nil
}

// Deployment is what Deploy started.
type Deployment struct {
	TaskDefinitionARN string
	// DeploymentARN is the service deployment UpdateService started, when ECS reported it;
	// otherwise watch the newest deployment created since Started.
	DeploymentARN string
	Started       time.Time
}

// Deploy registers td as a new revision and points the service at it.
func Deploy(ctx context.Context, c *ecssdk.Client, cluster, service string, td *TaskDefinition) (*Deployment, error) {
	reg, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.RegisterTaskDefinitionOutput, error) {
		return c.RegisterTaskDefinition(ctx, td)
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && rejectCodes[ae.ErrorCode()] {
			return nil, &RejectedError{Family: str(td.Family), Code: ae.ErrorCode(), Message: ae.ErrorMessage()}
		}
		return nil, fmt.Errorf("RegisterTaskDefinition %s: %w", str(td.Family), err)
	}
	if reg.TaskDefinition == nil || reg.TaskDefinition.TaskDefinitionArn == nil {
		return nil, errors.New("RegisterTaskDefinition: the response names no task definition")
	}
	d := &Deployment{TaskDefinitionARN: *reg.TaskDefinition.TaskDefinitionArn}
	// ECS stamps the deployment with its own clock; a minute of slack keeps a skewed local
	// clock from missing it.
	d.Started = time.Now().Add(-time.Minute)
	upd, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.UpdateServiceOutput, error) {
		return c.UpdateService(ctx, &ecssdk.UpdateServiceInput{
			Cluster:        nonEmpty(cluster),
			Service:        aws.String(service),
			TaskDefinition: aws.String(d.TaskDefinitionARN),
		})
	})
	if err != nil {
		return d, fmt.Errorf("UpdateService %s to %s: %w", service, d.TaskDefinitionARN, err)
	}
	if upd.Service != nil {
		d.DeploymentARN = aws.ToString(upd.Service.CurrentServiceDeployment)
	}
	return d, nil
}

// Continue resumes a deployment paused at a PAUSE lifecycle hook. hookID may be empty when
// exactly one hook awaits action.
func Continue(ctx context.Context, c *ecssdk.Client, deploymentARN, hookID string) (string, error) {
	if hookID == "" {
		id, err := awaitingHook(ctx, c, deploymentARN)
		if err != nil {
			return "", err
		}
		hookID = id
	}
	_, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.ContinueServiceDeploymentOutput, error) {
		return c.ContinueServiceDeployment(ctx, &ecssdk.ContinueServiceDeploymentInput{
			ServiceDeploymentArn: aws.String(deploymentARN),
			HookId:               aws.String(hookID),
			Action:               ecstypes.DeploymentLifecycleHookActionContinue,
		})
	})
	if err != nil {
		return hookID, fmt.Errorf("ContinueServiceDeployment %s hook %s: %w", deploymentARN, hookID, err)
	}
	return hookID, nil
}

func awaitingHook(ctx context.Context, c *ecssdk.Client, deploymentARN string) (string, error) {
	out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeServiceDeploymentsOutput, error) {
		return c.DescribeServiceDeployments(ctx, &ecssdk.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{deploymentARN}})
	})
	if err != nil {
		return "", fmt.Errorf("DescribeServiceDeployments %s: %w", deploymentARN, err)
	}
	var ids []string
	for _, d := range out.ServiceDeployments {
		for _, h := range d.LifecycleHookDetails {
			if h.Status == ecstypes.DeploymentLifecycleHookStatusAwaitingAction {
				ids = append(ids, aws.ToString(h.HookId))
			}
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("deployment %s has %d hooks awaiting action (%v): name one with -hook", deploymentARN, len(ids), ids)
	}
	return ids[0], nil
}

// RollbackKind says how Rollback returned the service to its previous revision.
type RollbackKind string

const (
	// RollbackStopped: the deployment was still running and ECS was asked to stop it and roll
	// back (StopServiceDeployment, stopType ROLLBACK). Watch the same deployment; it ends
	// ROLLBACK_SUCCESSFUL.
	RollbackStopped RollbackKind = "stopped"
	// RollbackUnderWay: ECS was already rolling the deployment back; nothing was asked.
	RollbackUnderWay RollbackKind = "under_way"
	// RollbackRedeployed: the deployment had completed, so the service was pointed back at the
	// previous revision's task definition (UpdateService). Watch the new deployment; it
	// ends SUCCESSFUL.
	RollbackRedeployed RollbackKind = "redeployed"
)

// RollbackPlan is what Rollback did.
type RollbackPlan struct {
	Kind RollbackKind
	// DeploymentARN is the deployment to watch: the one rolled back, or the new one.
	DeploymentARN string
	// From and To are the task definitions of the deployment's target revision and of the
	// revision the service returns to (To is known for RollbackRedeployed only).
	From, To string
	Started  time.Time
}

// Rollback returns a service to the revision it ran before deploymentARN.
//
// A deployment still in progress is stopped with StopServiceDeployment and stopType ROLLBACK,
// which works whether or not it was configured to roll back on failure
// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopServiceDeployment.html).
// A deployment that completed (SUCCESSFUL) can no longer be stopped; the previous revision is
// its source revision, and the service is updated back to that revision's task definition
// with UpdateService — a new deployment. Only the task definition is restored: when the
// deployment changed nothing but the service's own settings (network, load balancers,
// capacity providers), Rollback refuses and says so.
func Rollback(ctx context.Context, c *ecssdk.Client, cluster, service, deploymentARN string) (*RollbackPlan, error) {
	out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeServiceDeploymentsOutput, error) {
		return c.DescribeServiceDeployments(ctx, &ecssdk.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{deploymentARN}})
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeServiceDeployments %s: %w", deploymentARN, err)
	}
	if len(out.ServiceDeployments) == 0 {
		return nil, &notFoundError{what: "service deployment " + deploymentARN, reason: "not found"}
	}
	d := out.ServiceDeployments[0]
	plan := &RollbackPlan{DeploymentARN: deploymentARN}
	var revs []string
	if d.TargetServiceRevision != nil {
		revs = append(revs, aws.ToString(d.TargetServiceRevision.Arn))
	}
	for _, r := range d.SourceServiceRevisions {
		revs = append(revs, aws.ToString(r.Arn))
	}
	described, err := describeRevisions(ctx, c, revs)
	if err != nil {
		return nil, err
	}
	if d.TargetServiceRevision != nil {
		plan.From = aws.ToString(described[aws.ToString(d.TargetServiceRevision.Arn)].TaskDefinition)
	}

	switch d.Status {
	case ecstypes.ServiceDeploymentStatusPending, ecstypes.ServiceDeploymentStatusInProgress:
		_, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.StopServiceDeploymentOutput, error) {
			return c.StopServiceDeployment(ctx, &ecssdk.StopServiceDeploymentInput{
				ServiceDeploymentArn: aws.String(deploymentARN),
				StopType:             ecstypes.StopServiceDeploymentStopTypeRollback,
			})
		})
		if err != nil {
			return nil, fmt.Errorf("StopServiceDeployment %s: %w", deploymentARN, err)
		}
		plan.Kind = RollbackStopped
		return plan, nil
	case ecstypes.ServiceDeploymentStatusRollbackRequested, ecstypes.ServiceDeploymentStatusRollbackInProgress:
		plan.Kind = RollbackUnderWay
		return plan, nil
	case ecstypes.ServiceDeploymentStatusSuccessful:
	default:
		return nil, &RefusedError{fmt.Sprintf("deployment %s is %s: the service does not run its revision, so there is nothing to roll back", deploymentARN, d.Status)}
	}

	// The previous revision: the newest source revision.
	var prev *ecstypes.ServiceRevision
	for _, r := range d.SourceServiceRevisions {
		rev, ok := described[aws.ToString(r.Arn)]
		if ok && (prev == nil || aws.ToTime(rev.CreatedAt).After(aws.ToTime(prev.CreatedAt))) {
			prev = &rev
		}
	}
	if prev == nil || aws.ToString(prev.TaskDefinition) == "" {
		return nil, &RefusedError{fmt.Sprintf("deployment %s names no previous service revision (the service's first deployment?): nothing to roll back to", deploymentARN)}
	}
	plan.To = aws.ToString(prev.TaskDefinition)
	if plan.To == plan.From {
		return nil, &RefusedError{fmt.Sprintf("deployment %s kept task definition %s and changed only the service's settings; rollback restores task definitions, so revert the setting with UpdateService",
			deploymentARN, ShortARN(plan.To))}
	}
	plan.Started = time.Now().Add(-time.Minute) // as in Deploy: ECS's clock, not ours
	upd, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.UpdateServiceOutput, error) {
		return c.UpdateService(ctx, &ecssdk.UpdateServiceInput{
			Cluster:        nonEmpty(cluster),
			Service:        aws.String(service),
			TaskDefinition: aws.String(plan.To),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("UpdateService %s to %s: %w", service, plan.To, err)
	}
	plan.Kind, plan.DeploymentARN = RollbackRedeployed, ""
	if upd.Service != nil {
		plan.DeploymentARN = aws.ToString(upd.Service.CurrentServiceDeployment)
	}
	return plan, nil
}

// rejectCodes are the errors with which RegisterTaskDefinition refuses the task definition
// itself (a field out of range, a missing image, an unknown parameter): the request was
// answered, and the answer is about the change.
var rejectCodes = map[string]bool{"ClientException": true, "InvalidParameterException": true}

// RejectedError is ECS refusing to register a task definition; nothing was registered and
// the service was not changed.
type RejectedError struct{ Family, Code, Message string }

func (e *RejectedError) Error() string {
	return fmt.Sprintf("RegisterTaskDefinition %s: ECS refused the task definition: %s: %s", e.Family, e.Code, e.Message)
}

// RefusedError is Rollback declining a deployment it cannot roll back; ECS was not changed.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// describeRevisions describes service revisions (at most 20 per call), keyed by ARN.
func describeRevisions(ctx context.Context, c *ecssdk.Client, arns []string) (map[string]ecstypes.ServiceRevision, error) {
	revs := map[string]ecstypes.ServiceRevision{}
	for chunk := range slices.Chunk(arns, 20) {
		out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeServiceRevisionsOutput, error) {
			return c.DescribeServiceRevisions(ctx, &ecssdk.DescribeServiceRevisionsInput{ServiceRevisionArns: chunk})
		})
		if err != nil {
			return nil, fmt.Errorf("DescribeServiceRevisions: %w", err)
		}
		for _, r := range out.ServiceRevisions {
			revs[aws.ToString(r.ServiceRevisionArn)] = r
		}
	}
	return revs, nil
}

// CurrentDeployment returns the service's current service deployment.
func CurrentDeployment(ctx context.Context, c *ecssdk.Client, cluster, service string) (string, error) {
	out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeServicesOutput, error) {
		return c.DescribeServices(ctx, &ecssdk.DescribeServicesInput{Cluster: nonEmpty(cluster), Services: []string{service}})
	})
	if err != nil {
		return "", fmt.Errorf("DescribeServices %s: %w", service, err)
	}
	if len(out.Services) == 0 {
		return "", &notFoundError{what: "service " + service, reason: "not found in cluster " + cluster}
	}
	arn := aws.ToString(out.Services[0].CurrentServiceDeployment)
	if arn == "" {
		return "", fmt.Errorf("service %s reports no current deployment: pass -deployment", service)
	}
	return arn, nil
}
