package timeline

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
)

// counter stands for the load generator.
type counter struct{ n, f atomic.Int64 }

func (c *counter) Progress() (int64, int64) { return c.n.Add(10), c.f.Load() }

// The recorder reads what ecslocal's ECS and ELBv2 APIs say, through the SDK, as it changes:
// the listener's weights moving from blue to green, a task started and stopped, and the
// load's running totals. (ecslocal without containers: the tasks are records.)
func TestRecorderFollowsTheAPIs(t *testing.T) {
	ctx := context.Background()
	ep := ecslocaltest.Start(t, ecsapi.New(ecsapi.Options{}), elbapi.New(elbapi.Options{}))
	c, e := ep.ECS, ep.ELB
	tg := func(name string) string {
		return *ecslocaltest.Must(e.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp,
			Port: aws.Int32(8080), VpcId: aws.String("vpc-1"), TargetType: elbtypes.TargetTypeEnumIp})).Get(t).TargetGroups[0].TargetGroupArn
	}
	blue, green := tg("blue"), tg("green")
	lb := ecslocaltest.Must(e.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
	forward := func(b, g int32) []elbtypes.Action {
		return []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{
			TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: aws.String(blue), Weight: aws.Int32(b)}, {TargetGroupArn: aws.String(green), Weight: aws.Int32(g)}}}}}
	}
	listener := *ecslocaltest.Must(e.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb, Port: aws.Int32(ecslocaltest.FreePort(t)),
		Protocol: elbtypes.ProtocolEnumHttp, DefaultActions: forward(1, 0)})).Get(t).Listeners[0].ListenerArn

	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")})).Get(t)
	td := *ecslocaltest.Must(c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("app"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1"), Essential: aws.Bool(true)}}})).Get(t).TaskDefinition.TaskDefinitionArn
	ecslocaltest.Must(c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("app"),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(0)})).Get(t)

	load := &counter{}
	rec := Record(ctx, "shift", Source{ECS: c, ELB: e, Cluster: "prod", Service: "app",
		Groups: map[string]string{"blue": blue, "green": green}, Production: listener, Load: load, Every: 20 * time.Millisecond})
	waitSamples := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			rec.mu.Lock()
			got := len(rec.s.Samples)
			rec.mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d samples after 10 s, want %d", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSamples(2)
	task := *ecslocaltest.Must(c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String(td),
		Group: aws.String("service:app")})).Get(t).Tasks[0].TaskArn
	ecslocaltest.Must(e.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: aws.String(listener), DefaultActions: forward(1, 3)})).Get(t)
	waitSamples(5)
	rec.Mark("StopTask")
	ecslocaltest.Must(c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("prod"), Task: aws.String(task)})).Get(t)
	waitSamples(8)
	s := rec.Stop("done")

	if s.Result != "done" {
		t.Errorf("result %q: no API read may fail", s.Result)
	}
	first, last := s.Samples[0], s.Samples[len(s.Samples)-1]
	if first.Production["blue"] != 100 || first.Production["green"] != 0 {
		t.Errorf("first weights %v, want blue 100, green 0", first.Production)
	}
	if last.Production["blue"] != 25 || last.Production["green"] != 75 {
		t.Errorf("last weights %v, want blue 25, green 75 (weights 1:3 as percentages)", last.Production)
	}
	if last.Requests <= first.Requests {
		t.Errorf("requests %d then %d: the load's totals must be sampled", first.Requests, last.Requests)
	}
	if len(s.Tasks) != 1 {
		t.Fatalf("tasks %+v, want the one started", s.Tasks)
	}
	states := s.Tasks[0].States
	if len(states) < 2 || states[0].Name != "PROVISIONING" || states[len(states)-1].Name != "STOPPED" {
		t.Errorf("task states %+v, want PROVISIONING … STOPPED", states)
	}
	if s.Tasks[0].Revision != "app:1" {
		t.Errorf("revision %q, want app:1", s.Tasks[0].Revision)
	}
	var marked bool
	for _, m := range s.Stages {
		marked = marked || m.Name == "StopTask"
	}
	if !marked {
		t.Errorf("stages %+v lack the mark", s.Stages)
	}
}
