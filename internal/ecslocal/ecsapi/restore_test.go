package ecsapi_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/statefile"
)

// TestRestartFromStateFile: a service behind a listener runs a task; the state file is
// written while it runs (what a killed ecslocal leaves) and a new ecslocal starts from it.
// The old task is STOPPED with the stated reason and not run again, its target leaves the
// group, and the scheduler starts a new task that the listener serves.
func TestRestartFromStateFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "state.json")
	port := ecslocaltest.FreePort(t)
	var old types.Task
	t.Run("first", func(t *testing.T) {
		s := startStack(t, file)
		tg := *ecslocaltest.Must(s.elb.CreateTargetGroup(s.ctx, &elb.CreateTargetGroupInput{Name: aws.String("web"), Protocol: elbtypes.ProtocolEnumHttp,
			Port: aws.Int32(8080), VpcId: aws.String("vpc-1"), TargetType: elbtypes.TargetTypeEnumIp, HealthCheckPath: aws.String("/health"),
			HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2),
		})).Get(t).TargetGroups[0].TargetGroupArn
		ecslocaltest.Must(s.elb.ModifyTargetGroupAttributes(s.ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
			Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("1")}}})).Get(t)
		lbArn := ecslocaltest.Must(s.elb.CreateLoadBalancer(s.ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
		ecslocaltest.Must(s.elb.CreateListener(s.ctx, &elb.CreateListenerInput{LoadBalancerArn: lbArn, Port: aws.Int32(port), Protocol: elbtypes.ProtocolEnumHttp,
			DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}}})).Get(t)
		ecslocaltest.Must(s.ecs.CreateService(s.ctx, &ecs.CreateServiceInput{ServiceName: aws.String("api"), TaskDefinition: aws.String(s.revision(t, nil, "GREETING=first")),
			DesiredCount: aws.Int32(1), NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}},
			LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String(tg), ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}},
		})).Get(t)
		s.poll(t, 40*time.Second, "the first deployment completed", func() bool {
			svc := ecslocaltest.Must(s.ecs.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
			return svc.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
		})
		old = s.tasksOf(t, "api")[0]
		if err := s.state.Save(); err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		return
	}

	s := startStack(t, file)
	var tasks []types.Task
	s.poll(t, 40*time.Second, "a new task running and healthy in the group, the old one's target gone", func() bool {
		tasks = s.tasksOf(t, "api")
		svc := ecslocaltest.Must(s.ecs.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
		h := ecslocaltest.Must(s.elb.DescribeTargetHealth(s.ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: svc.LoadBalancers[0].TargetGroupArn})).Get(t).TargetHealthDescriptions
		return len(tasks) == 2 && aws.ToString(tasks[1].LastStatus) == "RUNNING" && len(h) == 1 && h[0].TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy
	})
	if *tasks[0].TaskArn != *old.TaskArn || aws.ToString(tasks[0].LastStatus) != "STOPPED" || tasks[0].StopCode != types.TaskStopCodeTerminationNotice ||
		aws.ToString(tasks[0].StoppedReason) != statefile.StoppedReason {
		t.Errorf("the task of the previous run: %s %s %s %q", *tasks[0].TaskArn, aws.ToString(tasks[0].LastStatus), tasks[0].StopCode, aws.ToString(tasks[0].StoppedReason))
	}
	var body string
	s.poll(t, 10*time.Second, "the listener serving the new task", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	if body != "uid=0 greeting=first\n" {
		t.Errorf("the listener answered %q", body)
	}
}
