package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

// start runs ecslocal (-no-containers) with args on a free port of 127.0.0.1 and returns its
// endpoint URL and a function that stops it (as SIGTERM does) and waits for it to end; the
// test's end stops it too.
func start(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0", "-no-containers", "-state-dir", t.TempDir()}, args...), os.Stderr, ready)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ecslocal: %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return "http://" + addr, stop
	case err := <-done:
		t.Fatalf("ecslocal did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("ecslocal did not start in 10 s")
	}
	return "", stop
}

// clients are SDK clients for ecslocal at url, with the dummy credentials a user passes.
func clients(url string) (*ecs.Client, *elb.Client) {
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: 3,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDECSLOCAL", SecretAccessKey: "secret"}, nil
		})}
	return ecs.NewFromConfig(cfg), elb.NewFromConfig(cfg)
}

// TestStateFile: the records made through the APIs are written to -state's file while
// ecslocal runs, and a new ecslocal with the same file describes them as they were; the task
// that was not stopped is STOPPED, saying why, and revision numbers go on.
func TestStateFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	ctx := context.Background()
	url, stop := start(t, "-state", file)
	c, e := clients(url)

	cluster := *ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("app"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("edge")}}})).Get(t).Cluster.ClusterArn
	// Written on change, not only at exit.
	deadline := time.Now().Add(5 * time.Second)
	for b, _ := os.ReadFile(file); !strings.Contains(string(b), cluster); b, _ = os.ReadFile(file) {
		if time.Now().After(deadline) {
			t.Fatalf("the state file does not hold the new cluster after 5 s: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	td := *ecslocaltest.Must(c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1"), PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}}}},
	})).Get(t).TaskDefinition.TaskDefinitionArn
	tg := *ecslocaltest.Must(e.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("web"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(8080),
		VpcId: aws.String("vpc-1"), TargetType: elbtypes.TargetTypeEnumIp, HealthCheckPath: aws.String("/health")})).Get(t).TargetGroups[0].TargetGroupArn
	ecslocaltest.Must(e.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("7")}}})).Get(t)
	lbArn := *ecslocaltest.Must(e.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
	listener := *ecslocaltest.Must(e.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(lbArn), Port: aws.Int32(ecslocaltest.FreePort(t)), Protocol: elbtypes.ProtocolEnumHttp,
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbtypes.FixedResponseActionConfig{StatusCode: aws.String("404")}}}})).Get(t).Listeners[0].ListenerArn
	rule := *ecslocaltest.Must(e.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: aws.String(listener), Priority: aws.Int32(10),
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/api/*"}}},
		Actions:    []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}}})).Get(t).Rules[0].RuleArn
	network := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}}
	svc := ecslocaltest.Must(c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("app"), ServiceName: aws.String("api"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(2), NetworkConfiguration: network,
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String(tg), ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}}})).Get(t).Service
	task := *ecslocaltest.Must(c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("app"), TaskDefinition: aws.String(td), NetworkConfiguration: network})).Get(t).Tasks[0].TaskArn
	stop()

	url, _ = start(t, "-state", file)
	c, e = clients(url)
	cl := ecslocaltest.Must(c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"app"}, Include: []types.ClusterField{types.ClusterFieldTags}})).Get(t).Clusters
	if len(cl) != 1 || *cl[0].ClusterArn != cluster || aws.ToString(cl[0].Status) != "ACTIVE" || len(cl[0].Tags) != 1 {
		t.Errorf("cluster after the restart: %+v", cl)
	}
	services := ecslocaltest.Must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("app"), Services: []string{"api"}})).Get(t).Services
	if len(services) != 1 || *services[0].ServiceArn != *svc.ServiceArn || services[0].DesiredCount != 2 || len(services[0].Deployments) != 1 ||
		*services[0].Deployments[0].Id != *svc.Deployments[0].Id || *services[0].TaskDefinition != td {
		t.Errorf("service after the restart: %+v", services)
	}
	deployments := ecslocaltest.Must(c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("app"), Service: aws.String("api")})).Get(t).ServiceDeployments
	if len(deployments) != 1 || *deployments[0].ServiceDeploymentArn != *services[0].CurrentServiceDeployment {
		t.Errorf("service deployments after the restart: %+v", deployments)
	} else {
		d := ecslocaltest.Must(c.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{*deployments[0].ServiceDeploymentArn}})).Get(t).ServiceDeployments
		if len(d) != 1 || d[0].TargetServiceRevision == nil {
			t.Errorf("service deployment after the restart: %+v", d)
		} else if r := ecslocaltest.Must(c.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{*d[0].TargetServiceRevision.Arn}})).Get(t).ServiceRevisions; len(r) != 1 || *r[0].TaskDefinition != td {
			t.Errorf("service revision after the restart: %+v", r)
		}
	}
	tasks := ecslocaltest.Must(c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("app"), Tasks: []string{task}})).Get(t).Tasks
	if len(tasks) != 1 || aws.ToString(tasks[0].LastStatus) != "STOPPED" || tasks[0].StopCode != types.TaskStopCodeTerminationNotice ||
		aws.ToString(tasks[0].StoppedReason) != statefile.StoppedReason || tasks[0].StoppedAt == nil {
		t.Errorf("the task that was not stopped, after the restart: %+v", tasks)
	}
	if next := ecslocaltest.Must(c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:2")}}})).Get(t).TaskDefinition; next.Revision != 2 {
		t.Errorf("the next revision of web after the restart: %d, want 2", next.Revision)
	}

	groups := ecslocaltest.Must(e.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{tg}})).Get(t).TargetGroups
	if len(groups) != 1 || aws.ToString(groups[0].HealthCheckPath) != "/health" || len(groups[0].LoadBalancerArns) != 1 {
		t.Errorf("target group after the restart: %+v", groups)
	}
	attrs := ecslocaltest.Must(e.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(tg)})).Get(t).Attributes
	delay := ""
	for _, a := range attrs {
		if aws.ToString(a.Key) == "deregistration_delay.timeout_seconds" {
			delay = aws.ToString(a.Value)
		}
	}
	if delay != "7" {
		t.Errorf("deregistration delay after the restart: %q, want 7", delay)
	}
	rules := ecslocaltest.Must(e.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(listener)})).Get(t).Rules
	if len(rules) != 2 || *rules[0].RuleArn != rule || aws.ToString(rules[0].Priority) != "10" || aws.ToString(rules[1].Priority) != "default" {
		t.Errorf("rules after the restart: %+v", rules)
	}
	if lbs := ecslocaltest.Must(e.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"front"}})).Get(t).LoadBalancers; len(lbs) != 1 || *lbs[0].LoadBalancerArn != lbArn {
		t.Errorf("load balancer after the restart: %+v", lbs)
	}
}
