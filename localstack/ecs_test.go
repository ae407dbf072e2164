// Package localstack holds tests that run against any AWS endpoint named by
// AWS_ENDPOINT_URL: moto server (what `make localstack-test` starts), LocalStack, or the
// real ECS API. Without AWS_ENDPOINT_URL they skip, saying so.
package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecs"
)

// A subnet and a security group of the endpoint's default VPC, for awsvpc services and
// tasks; scripts/localstack-test.sh looks them up with the AWS CLI.
const (
	SubnetEnv        = "GANGWAY_TEST_SUBNET"
	SecurityGroupEnv = "GANGWAY_TEST_SECURITY_GROUP"
)

// network returns the awsvpc configuration for the endpoint, or skips the test.
func network(t *testing.T) *ecstypes.NetworkConfiguration {
	t.Helper()
	subnet, sg := os.Getenv(SubnetEnv), os.Getenv(SecurityGroupEnv)
	if subnet == "" || sg == "" {
		t.Skip(SubnetEnv + " and " + SecurityGroupEnv + " are not set: awsvpc tasks need a subnet and security group of the endpoint's VPC (scripts/localstack-test.sh finds them)")
	}
	return &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
		Subnets: []string{subnet}, SecurityGroups: []string{sg}, AssignPublicIp: ecstypes.AssignPublicIpDisabled,
	}}
}

func client(t *testing.T) *ecssdk.Client {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		t.Skip("AWS_ENDPOINT_URL is not set: run `make localstack-test` (it starts moto server), or point AWS_ENDPOINT_URL at LocalStack")
	}
	c, err := ecs.NewClient(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return ecssdk.New(c.Options(), func(o *ecssdk.Options) { o.HTTPClient = &http.Client{Transport: containerNumbers{}} })
}

// containerNumbers adapts moto's task responses to the ECS API: moto returns a container's
// cpu and memory as JSON numbers where the API (and so the Go SDK, which is strict) has
// strings. Responses from a conforming endpoint pass through unchanged.
type containerNumbers struct{}

func (containerNumbers) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	target := req.Header.Get("X-Amz-Target")
	if err != nil || resp.StatusCode != http.StatusOK || !(strings.HasSuffix(target, ".RunTask") || strings.HasSuffix(target, ".DescribeTasks") || strings.HasSuffix(target, ".StopTask")) {
		return resp, err
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s response: %w", target, err)
	}
	tasks, _ := doc["tasks"].([]any)
	if task, ok := doc["task"]; ok {
		tasks = append(tasks, task)
	}
	for _, task := range tasks {
		containers, _ := task.(map[string]any)["containers"].([]any)
		for _, c := range containers {
			for _, k := range []string{"cpu", "memory", "memoryReservation"} {
				if n, ok := c.(map[string]any)[k].(float64); ok {
					c.(map[string]any)[k] = strconv.FormatFloat(n, 'f', -1, 64)
				}
			}
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// unique makes names that do not collide with an earlier run against a long-lived endpoint.
func unique(name string) string {
	return fmt.Sprintf("%s-%d", name, time.Now().UnixNano()%1_000_000_000)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func createCluster(t *testing.T, c *ecssdk.Client) string {
	t.Helper()
	name := unique("gangway-test")
	if _, err := c.CreateCluster(ctx(t), &ecssdk.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
		t.Fatalf("CreateCluster: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteCluster(context.Background(), &ecssdk.DeleteClusterInput{Cluster: aws.String(name)})
	})
	return name
}

func taskDefinitions(t *testing.T) []string {
	files, err := filepath.Glob("../taskdefs/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no task definitions in ../taskdefs: %v", err)
	}
	return files
}

// TestRegisterTaskDefinitions registers every shipped task definition and checks that what
// the endpoint stored is what the file says.
func TestRegisterTaskDefinitions(t *testing.T) {
	c := client(t)
	for _, f := range taskDefinitions(t) {
		td, err := ecs.ReadTaskDefinition(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.RegisterTaskDefinition(ctx(t), td)
		if err != nil {
			t.Fatalf("%s: RegisterTaskDefinition: %v", f, err)
		}
		arn := aws.ToString(out.TaskDefinition.TaskDefinitionArn)
		desc, err := c.DescribeTaskDefinition(ctx(t), &ecssdk.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
		if err != nil {
			t.Fatalf("%s: DescribeTaskDefinition %s: %v", f, arn, err)
		}
		got := desc.TaskDefinition
		if len(got.ContainerDefinitions) != len(td.ContainerDefinitions) {
			t.Fatalf("%s: %d containers stored, %d in the file", f, len(got.ContainerDefinitions), len(td.ContainerDefinitions))
		}
		for _, name := range ecs.GangwayContainers(td) {
			i := slices.IndexFunc(got.ContainerDefinitions, func(cd ecstypes.ContainerDefinition) bool { return aws.ToString(cd.Name) == name })
			if i < 0 {
				t.Fatalf("%s: container %s not stored", f, name)
			}
			stored, want := got.ContainerDefinitions[i], *mustContainer(t, td, name)
			if aws.ToInt32(stored.StopTimeout) != aws.ToInt32(want.StopTimeout) || stored.HealthCheck == nil ||
				!slices.Equal(stored.HealthCheck.Command, want.HealthCheck.Command) ||
				aws.ToInt32(stored.HealthCheck.Interval) != aws.ToInt32(want.HealthCheck.Interval) ||
				len(stored.DependsOn) != len(want.DependsOn) {
				t.Errorf("%s: container %s stored as %+v", f, name, stored)
			}
		}
		t.Logf("%s registered as %s", f, arn)
	}
}

func mustContainer(t *testing.T, td *ecs.TaskDefinition, name string) *ecstypes.ContainerDefinition {
	c, ok := ecs.Container(td, name)
	if !ok {
		t.Fatalf("no container %s", name)
	}
	return c
}

// TestServiceCreateAndDeploy creates a service with the shipped deployment configuration,
// then deploys a new image through ecs.Deploy (what `proxy rollout deploy` runs).
func TestServiceCreateAndDeploy(t *testing.T) {
	c := client(t)
	cluster := createCluster(t, c)
	td, err := ecs.ReadTaskDefinition("../taskdefs/fargate-proxy-app.json")
	if err != nil {
		t.Fatal(err)
	}
	td.Family = aws.String(unique("gangway-app"))
	reg, err := c.RegisterTaskDefinition(ctx(t), td)
	if err != nil {
		t.Fatalf("RegisterTaskDefinition: %v", err)
	}
	first := aws.ToString(reg.TaskDefinition.TaskDefinitionArn)

	data, err := os.ReadFile("../taskdefs/settings/service.json")
	if err != nil {
		t.Fatal(err)
	}
	var in ecssdk.CreateServiceInput
	if err := json.Unmarshal(data, &in); err != nil {
		t.Fatalf("settings/service.json: %v", err)
	}
	// The shipped target group, subnets and security groups are placeholders: no load
	// balancer exists here (and the grace period needs one).
	in.LoadBalancers = nil
	in.HealthCheckGracePeriodSeconds = nil
	in.NetworkConfiguration = network(t)
	in.Cluster, in.TaskDefinition, in.DesiredCount = aws.String(cluster), aws.String(first), aws.Int32(0)
	created, err := c.CreateService(ctx(t), &in)
	if err != nil {
		t.Fatalf("CreateService: %v", err)
	}
	service := aws.ToString(created.Service.ServiceName)
	t.Cleanup(func() {
		_, _ = c.DeleteService(context.Background(), &ecssdk.DeleteServiceInput{Cluster: aws.String(cluster), Service: aws.String(service), Force: aws.Bool(true)})
	})
	if dc := created.Service.DeploymentConfiguration; dc != nil {
		if aws.ToInt32(dc.MinimumHealthyPercent) != 100 || aws.ToInt32(dc.MaximumPercent) != 200 ||
			dc.DeploymentCircuitBreaker == nil || !dc.DeploymentCircuitBreaker.Enable || !dc.DeploymentCircuitBreaker.Rollback {
			t.Errorf("deployment configuration stored as %+v", dc)
		}
	} else {
		t.Log("the endpoint does not return deploymentConfiguration (moto does not keep it)")
	}

	next, err := ecs.Change{Image: "ghcr.io/gangway-ecs/gangway-proxy:test"}.Apply(td)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := ecs.Deploy(ctx(t), c, cluster, service, next)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if dep.TaskDefinitionARN == first {
		t.Fatalf("Deploy registered no new revision: %s", dep.TaskDefinitionARN)
	}
	desc, err := c.DescribeServices(ctx(t), &ecssdk.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
	if err != nil || len(desc.Services) != 1 {
		t.Fatalf("DescribeServices: %v %+v", err, desc)
	}
	if got := aws.ToString(desc.Services[0].TaskDefinition); got != dep.TaskDefinitionARN {
		t.Errorf("service runs %s after deploy, want %s", got, dep.TaskDefinitionARN)
	}
	stored, err := c.DescribeTaskDefinition(ctx(t), &ecssdk.DescribeTaskDefinitionInput{TaskDefinition: aws.String(dep.TaskDefinitionARN)})
	if err != nil {
		t.Fatal(err)
	}
	for _, cd := range stored.TaskDefinition.ContainerDefinitions {
		if aws.ToString(cd.Name) == "proxy" && aws.ToString(cd.Image) != "ghcr.io/gangway-ecs/gangway-proxy:test" {
			t.Errorf("new revision's proxy image %s", aws.ToString(cd.Image))
		}
	}
}

// TestDiscoveryFindsRunTaskTasks starts standalone tasks with RunTask and discovers them.
func TestDiscoveryFindsRunTaskTasks(t *testing.T) {
	c := client(t)
	net := network(t)
	cluster := createCluster(t, c)
	family := unique("gangway-discovery")
	// No health check: such tasks stay UNKNOWN, and discovery must still use them. (Container
	// memory is set because moto requires it.)
	_, err := c.RegisterTaskDefinition(ctx(t), &ecssdk.RegisterTaskDefinitionInput{
		Family:                  aws.String(family),
		NetworkMode:             ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		Cpu:                     aws.String("256"),
		Memory:                  aws.String("512"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("public.ecr.aws/docker/library/nginx:stable-alpine"), Memory: aws.Int32(512),
			PortMappings: []ecstypes.PortMapping{{ContainerPort: aws.Int32(80)}},
		}},
	})
	if err != nil {
		t.Fatalf("RegisterTaskDefinition: %v", err)
	}
	run, err := c.RunTask(ctx(t), &ecssdk.RunTaskInput{
		Cluster: aws.String(cluster), TaskDefinition: aws.String(family), Count: aws.Int32(2), LaunchType: ecstypes.LaunchTypeFargate,
		NetworkConfiguration: net,
	})
	if err != nil {
		t.Fatalf("RunTask: %v", err)
	}
	if len(run.Tasks) != 2 {
		t.Fatalf("RunTask started %d tasks (failures %+v)", len(run.Tasks), run.Failures)
	}

	d := &ecs.Discovery{Client: c, Cluster: cluster, Family: family, Port: 8080}
	want := waitEndpoints(t, d, 2)
	for _, ep := range want {
		if ep.Port() != 8080 || !ep.Addr().Is4() || !(ep.Addr().IsPrivate() || benchmarkRange.Contains(ep.Addr())) {
			t.Errorf("endpoint %s: want a private IPv4 address (or ecslocal's 198.18.0.0/15) with port 8080", ep)
		}
	}

	if _, err := c.StopTask(ctx(t), &ecssdk.StopTaskInput{Cluster: aws.String(cluster), Task: run.Tasks[0].TaskArn, Reason: aws.String("test")}); err != nil {
		t.Fatalf("StopTask: %v", err)
	}
	if left := waitEndpoints(t, d, 1); !slices.Contains(want, left[0]) {
		t.Errorf("after StopTask: %v, want one of %v", left, want)
	}
}

// benchmarkRange is where ecslocal's tasks get their addresses (RFC 2544's range for network
// tests), in place of a VPC's private range.
var benchmarkRange = netip.MustParsePrefix("198.18.0.0/15")

// waitEndpoints polls until discovery returns n endpoints (the endpoint may take a moment to
// start or stop tasks).
func waitEndpoints(t *testing.T, d *ecs.Discovery, n int) []netip.AddrPort {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		eps, err := d.Endpoints(ctx(t))
		if err != nil {
			t.Fatalf("Endpoints: %v", err)
		}
		if len(eps) == n {
			return eps
		}
		if time.Now().After(deadline) {
			t.Fatalf("discovery returned %v, want %d endpoints", eps, n)
		}
		time.Sleep(time.Second)
	}
}

// TestWatchAgainstEndpoint runs the rollout watcher against the endpoint: it must
// either follow a deployment or say plainly that the API is missing, never report success
// for something it could not see.
func TestWatchAgainstEndpoint(t *testing.T) {
	c := client(t)
	w := &ecs.Watcher{Client: c, Cluster: createCluster(t, c), Service: "absent", Timeout: 5 * time.Second, Interval: time.Second}
	res := w.Watch(context.Background())
	if res.Outcome == ecs.Succeeded || res.Outcome == ecs.RolledBack {
		t.Fatalf("watching a service that does not exist: %s (%s)", res.Outcome, res.Cause)
	}
	if !strings.Contains(res.Cause, "ListServiceDeployments") && res.Outcome != ecs.TimedOut {
		t.Errorf("cause %q does not name the call that failed", res.Cause)
	}
	t.Logf("watch outcome against this endpoint: %s: %s", res.Outcome, res.Cause)
}
