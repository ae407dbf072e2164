package ecsapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
)

func start(t *testing.T) *ecs.Client {
	t.Helper()
	return ecslocaltest.Start(t, ecsapi.New(ecsapi.Options{}), elbapi.New(elbapi.Options{})).ECS
}

func container(name string) types.ContainerDefinition {
	return types.ContainerDefinition{Name: aws.String(name), Image: aws.String("public.ecr.aws/docker/library/busybox:1"),
		Essential: aws.Bool(true), PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}}}
}

func withDeps(c types.ContainerDefinition, deps []types.ContainerDependency) types.ContainerDefinition {
	c.DependsOn = deps
	return c
}

func register(t *testing.T, c *ecs.Client, family string) *types.TaskDefinition {
	t.Helper()
	out := ecslocaltest.Must(c.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{container("app")},
		Tags:                 []types.Tag{{Key: aws.String("team"), Value: aws.String("edge")}},
	})).Get(t)
	return out.TaskDefinition
}

func TestTaskDefinitions(t *testing.T) {
	ctx, c := context.Background(), start(t)
	first, second := register(t, c, "web"), register(t, c, "web")
	if first.Revision != 1 || second.Revision != 2 || *second.TaskDefinitionArn != "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2" {
		t.Fatalf("revisions %d %d, ARN %s", first.Revision, second.Revision, *second.TaskDefinitionArn)
	}
	// A bare family is its latest ACTIVE revision; the tags come with include TAGS.
	d := ecslocaltest.Must(c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})).Get(t)
	if d.TaskDefinition.Revision != 2 || len(d.Tags) != 1 || *d.Tags[0].Value != "edge" {
		t.Fatalf("describe web: revision %d, tags %v", d.TaskDefinition.Revision, d.Tags)
	}
	ecslocaltest.Must(c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:2")})).Get(t)
	d = ecslocaltest.Must(c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web")})).Get(t)
	if d.TaskDefinition.Revision != 1 {
		t.Errorf("after deregistering web:2, web is revision %d, want 1", d.TaskDefinition.Revision)
	}
	// A deregistered revision can still be described by number.
	d = ecslocaltest.Must(c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: second.TaskDefinitionArn})).Get(t)
	if d.TaskDefinition.Status != types.TaskDefinitionStatusInactive || d.TaskDefinition.DeregisteredAt == nil {
		t.Errorf("web:2 status %s, deregisteredAt %v", d.TaskDefinition.Status, d.TaskDefinition.DeregisteredAt)
	}
	active := ecslocaltest.Must(c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web")})).Get(t)
	inactive := ecslocaltest.Must(c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusInactive})).Get(t)
	if len(active.TaskDefinitionArns) != 1 || len(inactive.TaskDefinitionArns) != 1 {
		t.Errorf("active %v, inactive %v", active.TaskDefinitionArns, inactive.TaskDefinitionArns)
	}
	_, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("nope")})
	ecslocaltest.WantCode(t, err, "ClientException")
	_, err = c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("bad family"), ContainerDefinitions: []types.ContainerDefinition{container("a")}})
	ecslocaltest.WantCode(t, err, "ClientException")

	// dependsOn: the dependency exists, COMPLETE and SUCCESS are not on an essential
	// container, HEALTHY needs a health check, no cycles.
	dep := func(name string, cond types.ContainerCondition) []types.ContainerDependency {
		return []types.ContainerDependency{{ContainerName: aws.String(name), Condition: cond}}
	}
	for name, defs := range map[string][]types.ContainerDefinition{
		"unknown":               {withDeps(container("a"), dep("ghost", types.ContainerConditionStart))},
		"SUCCESS on essential":  {container("init"), withDeps(container("a"), dep("init", types.ContainerConditionSuccess))},
		"HEALTHY without check": {container("db"), withDeps(container("a"), dep("db", types.ContainerConditionHealthy))},
		"cycle":                 {withDeps(container("a"), dep("b", types.ContainerConditionStart)), withDeps(container("b"), dep("a", types.ContainerConditionStart))},
	} {
		_, err = c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("deps"), ContainerDefinitions: defs})
		var ce *types.ClientException
		if !errors.As(err, &ce) {
			t.Errorf("dependsOn %s: %v, want ClientException", name, err)
		}
	}
}

func TestPagination(t *testing.T) {
	ctx, c := context.Background(), start(t)
	for range 5 {
		register(t, c, "pages")
	}
	var all []string
	in := &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2)}
	for p := ecs.NewListTaskDefinitionsPaginator(c, in); p.HasMorePages(); {
		all = append(all, ecslocaltest.Must(p.NextPage(ctx)).Get(t).TaskDefinitionArns...)
	}
	if len(all) != 5 || !strings.HasSuffix(all[4], "pages:5") {
		t.Errorf("paged through %v", all)
	}
}

func TestClusters(t *testing.T) {
	ctx, c := context.Background(), start(t)
	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("app")})).Get(t)
	d := ecslocaltest.Must(c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"app", "ghost"}})).Get(t)
	if len(d.Clusters) != 1 || *d.Clusters[0].Status != "ACTIVE" || len(d.Failures) != 1 || *d.Failures[0].Reason != "MISSING" {
		t.Fatalf("describe: %+v %+v", d.Clusters, d.Failures)
	}
	_, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("ghost"), Services: []string{"x"}})
	var nf *types.ClusterNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("DescribeServices in a missing cluster: %v, want ClusterNotFoundException", err)
	}
	td := register(t, c, "web")
	ecslocaltest.Must(c.CreateService(ctx, serviceInput("app", "api", td, 0))).Get(t)
	_, err = c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("app")})
	ecslocaltest.WantCode(t, err, "ClusterContainsServicesException")
	ecslocaltest.Must(c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("app"), Service: aws.String("api")})).Get(t)
	del := ecslocaltest.Must(c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("app")})).Get(t)
	if *del.Cluster.Status != "INACTIVE" {
		t.Errorf("deleted cluster is %s", *del.Cluster.Status)
	}
	list := ecslocaltest.Must(c.ListClusters(ctx, &ecs.ListClustersInput{})).Get(t)
	if len(list.ClusterArns) != 0 {
		t.Errorf("clusters after delete: %v", list.ClusterArns)
	}
}

func serviceInput(cluster, name string, td *types.TaskDefinition, desired int32) *ecs.CreateServiceInput {
	return &ecs.CreateServiceInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(name), TaskDefinition: td.TaskDefinitionArn,
		DesiredCount: aws.Int32(desired), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}},
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/0123456789abcdef"),
			ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}},
		DeploymentConfiguration: &types.DeploymentConfiguration{
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
		},
	}
}

func TestServiceDeployments(t *testing.T) {
	ctx, c := context.Background(), start(t)
	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("app")})).Get(t)
	v1, v2 := register(t, c, "web"), register(t, c, "web")
	svc := ecslocaltest.Must(c.CreateService(ctx, serviceInput("app", "api", v1, 8))).Get(t).Service
	if *svc.Status != "ACTIVE" || len(svc.Deployments) != 1 || *svc.Deployments[0].Status != "PRIMARY" ||
		svc.Deployments[0].RolloutState != types.DeploymentRolloutStateInProgress || *svc.DeploymentConfiguration.MaximumPercent != 200 ||
		*svc.DeploymentConfiguration.MinimumHealthyPercent != 100 || svc.CurrentServiceDeployment == nil {
		t.Fatalf("created service: %+v", svc)
	}
	_, err := c.CreateService(ctx, serviceInput("app", "api", v1, 1))
	ecslocaltest.WantCode(t, err, "InvalidParameterException")

	// Changing the desired count alone does not start a deployment.
	ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("app"), Service: aws.String("api"), DesiredCount: aws.Int32(4)})).Get(t)
	list := ecslocaltest.Must(c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("app"), Service: aws.String("api")})).Get(t)
	if len(list.ServiceDeployments) != 1 {
		t.Fatalf("after a desired-count change: %d service deployments, want 1", len(list.ServiceDeployments))
	}
	first := list.ServiceDeployments[0]

	// A new task definition does: the first is STOPPED, the new one deploys from its revision.
	up := ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("app"), Service: aws.String("api"), TaskDefinition: aws.String("web:2")})).Get(t).Service
	if len(up.Deployments) != 2 || *up.Deployments[0].TaskDefinition != *v2.TaskDefinitionArn || *up.Deployments[1].Status != "ACTIVE" {
		t.Fatalf("deployments after update: %+v", up.Deployments)
	}
	list = ecslocaltest.Must(c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("app"), Service: aws.String("api")})).Get(t)
	if len(list.ServiceDeployments) != 2 || *list.ServiceDeployments[1].ServiceDeploymentArn != *first.ServiceDeploymentArn {
		t.Fatalf("list: %+v", list.ServiceDeployments)
	}
	second := list.ServiceDeployments[0]
	if second.Status != types.ServiceDeploymentStatusInProgress || list.ServiceDeployments[1].Status != types.ServiceDeploymentStatusStopped {
		t.Errorf("statuses %s, %s; want IN_PROGRESS, STOPPED", second.Status, list.ServiceDeployments[1].Status)
	}
	onlyStopped := ecslocaltest.Must(c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("app"), Service: aws.String("api"),
		Status: []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusStopped}})).Get(t)
	if len(onlyStopped.ServiceDeployments) != 1 {
		t.Errorf("status filter STOPPED: %d deployments", len(onlyStopped.ServiceDeployments))
	}

	desc := ecslocaltest.Must(c.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{*second.ServiceDeploymentArn, "arn:aws:ecs:us-east-1:000000000000:service-deployment/app/api/nope"}})).Get(t)
	if len(desc.ServiceDeployments) != 1 || len(desc.Failures) != 1 {
		t.Fatalf("describe: %d deployments, %d failures", len(desc.ServiceDeployments), len(desc.Failures))
	}
	sd := desc.ServiceDeployments[0]
	if sd.TargetServiceRevision.RequestedTaskCount != 4 || len(sd.SourceServiceRevisions) != 1 ||
		*sd.SourceServiceRevisions[0].Arn != *first.TargetServiceRevisionArn ||
		sd.DeploymentCircuitBreaker.Status != types.ServiceDeploymentRollbackMonitorsStatusMonitoring || sd.DeploymentCircuitBreaker.Threshold != 3 {
		t.Errorf("service deployment: %+v, breaker %+v", sd, sd.DeploymentCircuitBreaker)
	}
	revs := ecslocaltest.Must(c.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{*sd.TargetServiceRevision.Arn, *first.TargetServiceRevisionArn}})).Get(t)
	if len(revs.ServiceRevisions) != 2 || *revs.ServiceRevisions[0].TaskDefinition != *v2.TaskDefinitionArn || *revs.ServiceRevisions[1].TaskDefinition != *v1.TaskDefinitionArn {
		t.Errorf("revisions: %+v", revs.ServiceRevisions)
	}

	ecslocaltest.Must(c.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: second.ServiceDeploymentArn, StopType: types.StopServiceDeploymentStopTypeRollback})).Get(t)
	desc = ecslocaltest.Must(c.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{*second.ServiceDeploymentArn}})).Get(t)
	if desc.ServiceDeployments[0].Status != types.ServiceDeploymentStatusRollbackRequested {
		t.Errorf("after StopServiceDeployment: %s", desc.ServiceDeployments[0].Status)
	}
	_, err = c.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: first.ServiceDeploymentArn})
	ecslocaltest.WantCode(t, err, "ConflictException")

	_, err = c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("app"), Service: aws.String("api")})
	ecslocaltest.WantCode(t, err, "InvalidParameterException")
	del := ecslocaltest.Must(c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("app"), Service: aws.String("api"), Force: aws.Bool(true)})).Get(t)
	if *del.Service.Status != "DRAINING" {
		t.Errorf("DeleteService answered %s, want DRAINING", *del.Service.Status)
	}
	_, err = c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("app"), Service: aws.String("api"), DesiredCount: aws.Int32(1)})
	var na *types.ServiceNotActiveException
	if !errors.As(err, &na) {
		t.Errorf("UpdateService of a deleted service: %v, want ServiceNotActiveException", err)
	}
}

func TestCreateServiceChecksTheTaskDefinition(t *testing.T) {
	ctx, c := context.Background(), start(t)
	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{})).Get(t)
	td := register(t, c, "web")
	for name, mutate := range map[string]func(*ecs.CreateServiceInput){
		"no network configuration": func(in *ecs.CreateServiceInput) { in.NetworkConfiguration = nil },
		"unknown container":        func(in *ecs.CreateServiceInput) { in.LoadBalancers[0].ContainerName = aws.String("sidecar") },
		"unknown port":             func(in *ecs.CreateServiceInput) { in.LoadBalancers[0].ContainerPort = aws.Int32(9) },
	} {
		in := serviceInput("default", "api", td, 1)
		mutate(in)
		_, err := c.CreateService(ctx, in)
		var ip *types.InvalidParameterException
		if !errors.As(err, &ip) {
			t.Errorf("%s: %v, want InvalidParameterException", name, err)
		}
	}
}

func TestTasks(t *testing.T) {
	ctx, c := context.Background(), start(t)
	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{})).Get(t)
	td := register(t, c, "job")
	run := ecslocaltest.Must(c.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("job"), Count: aws.Int32(2), StartedBy: aws.String("ci"),
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}}})).Get(t)
	if len(run.Tasks) != 2 || *run.Tasks[0].LastStatus != "PROVISIONING" || *run.Tasks[0].DesiredStatus != "RUNNING" ||
		*run.Tasks[0].Group != "family:job" || *run.Tasks[0].TaskDefinitionArn != *td.TaskDefinitionArn || len(run.Tasks[0].Containers) != 1 {
		t.Fatalf("RunTask: %+v", run.Tasks)
	}
	id := (*run.Tasks[0].TaskArn)[strings.LastIndexByte(*run.Tasks[0].TaskArn, '/')+1:]
	if len(id) != 32 {
		t.Errorf("task ID %q is not 32 hex digits", id)
	}
	stop := ecslocaltest.Must(c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(id)})).Get(t)
	if stop.Task.StopCode != types.TaskStopCodeUserInitiated || *stop.Task.StoppedReason != "Task stopped by user" || *stop.Task.DesiredStatus != "STOPPED" {
		t.Errorf("StopTask: code %s, reason %q, desired %s", stop.Task.StopCode, *stop.Task.StoppedReason, *stop.Task.DesiredStatus)
	}
	running := ecslocaltest.Must(c.ListTasks(ctx, &ecs.ListTasksInput{})).Get(t)
	stopped := ecslocaltest.Must(c.ListTasks(ctx, &ecs.ListTasksInput{DesiredStatus: types.DesiredStatusStopped})).Get(t)
	byStarter := ecslocaltest.Must(c.ListTasks(ctx, &ecs.ListTasksInput{StartedBy: aws.String("ci"), Family: aws.String("job")})).Get(t)
	if len(running.TaskArns) != 1 || len(stopped.TaskArns) != 1 || len(byStarter.TaskArns) != 1 {
		t.Errorf("running %v, stopped %v, started by ci %v", running.TaskArns, stopped.TaskArns, byStarter.TaskArns)
	}
	d := ecslocaltest.Must(c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{*run.Tasks[1].TaskArn, "0123"}})).Get(t)
	if len(d.Tasks) != 1 || len(d.Failures) != 1 || *d.Failures[0].Reason != "MISSING" {
		t.Errorf("DescribeTasks: %d tasks, failures %+v", len(d.Tasks), d.Failures)
	}
	_, err := c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String("0123")})
	ecslocaltest.WantCode(t, err, "InvalidParameterException")
}
