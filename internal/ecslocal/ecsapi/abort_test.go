package ecsapi_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

// TestStopServiceDeploymentAbort: StopServiceDeployment with stopType ABORT stops a rolling
// deployment where it is: the service deployment goes STOP_REQUESTED then STOPPED, its
// deployment FAILED, no further task of the new revision starts, and the tasks that run go on
// (nothing is rolled back).
func TestStopServiceDeploymentAbort(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	// HEALTHY 5 s after the start: the deployment has one new task for a few seconds.
	check := &types.HealthCheck{Command: []string{"CMD", "/app", "-check"}, Interval: aws.Int32(5), Timeout: aws.Int32(2), Retries: aws.Int32(1)}
	v1 := s.revision(t, check, "GREETING=v1")
	// Desired 2, at most 3 (150 %), at least 2 healthy: one new task at a time.
	ecslocaltest.Must(s.ecs.CreateService(s.ctx, &ecs.CreateServiceInput{ServiceName: aws.String("api"), TaskDefinition: aws.String(v1), DesiredCount: aws.Int32(2),
		NetworkConfiguration:    &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}},
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(150)},
	})).Get(t)
	s.poll(t, 40*time.Second, "the first deployment completed", func() bool {
		svc := ecslocaltest.Must(s.ecs.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
		return svc.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
	})

	v2 := s.revision(t, check, "GREETING=v2")
	ecslocaltest.Must(s.ecs.UpdateService(s.ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String(v2)})).Get(t)
	ofV2 := func() (all, healthy int) {
		for _, task := range s.tasksOf(t, "api") {
			if *task.TaskDefinitionArn == v2 {
				all++
				if task.HealthStatus == types.HealthStatusHealthy && aws.ToString(task.DesiredStatus) == "RUNNING" {
					healthy++
				}
			}
		}
		return all, healthy
	}
	s.poll(t, 20*time.Second, "the first task of v2", func() bool { n, _ := ofV2(); return n > 0 })
	svc := ecslocaltest.Must(s.ecs.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
	arn := svc.CurrentServiceDeployment
	ecslocaltest.Must(s.ecs.StopServiceDeployment(s.ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: arn, StopType: types.StopServiceDeploymentStopTypeAbort})).Get(t)

	// The new task turns healthy and an old one may leave (the bounds allow it), but no
	// second task of v2 starts: wait well past the moment one would have.
	var healthyAt time.Time
	s.poll(t, 30*time.Second, "v2's task healthy, and 3 s more", func() bool {
		if _, h := ofV2(); h > 0 && healthyAt.IsZero() {
			healthyAt = time.Now()
		}
		return !healthyAt.IsZero() && time.Since(healthyAt) > 3*time.Second
	})
	if n, _ := ofV2(); n != 1 {
		t.Errorf("%d tasks of v2 after the ABORT, want the 1 that ran before it", n)
	}
	d := ecslocaltest.Must(s.ecs.DescribeServiceDeployments(s.ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{*arn}})).Get(t).ServiceDeployments[0]
	if d.Status != types.ServiceDeploymentStatusStopped || d.StoppedAt == nil || aws.ToString(d.StatusReason) == "" {
		t.Errorf("the aborted service deployment: %s %q stopped at %v, want STOPPED with a reason and a time", d.Status, aws.ToString(d.StatusReason), d.StoppedAt)
	}
	svc = ecslocaltest.Must(s.ecs.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
	if *svc.TaskDefinition != v2 || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateFailed || svc.RunningCount < 2 {
		t.Errorf("the service after the ABORT: task definition %s, rollout %s, running %d; want v2 (not rolled back), FAILED, at least 2 running",
			*svc.TaskDefinition, svc.Deployments[0].RolloutState, svc.RunningCount)
	}
}
