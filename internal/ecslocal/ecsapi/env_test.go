package ecsapi_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/lb"
	"github.com/gangway-ecs/gangway/internal/ecslocal/targethealth"
	"github.com/gangway-ecs/gangway/internal/ecslocal/tasks"
)

// env is ecslocal with real containers behind HAProxy: the two APIs, the task runner, the
// health checker at 0.2× (ALB's 5 s minimum interval is a second), the load balancer and
// the scheduler, all stopped when the test ends. The image app:1 is tasks/testdata/app.
type env struct {
	ctx    context.Context
	ecs    *ecsapi.API
	elb    *elbapi.API
	c      *ecs.Client
	e      *elb.Client
	checks *lastLines // the health checks' log, for a failure's message
	subnet netip.Prefix
}

// network is what the host knows of the tasks' network, for a failure's message.
func (v *env) network() string {
	neigh, _ := exec.Command("ip", "neigh", "show", "to", v.subnet.String()).CombinedOutput()
	route, _ := exec.Command("ip", "route", "show", "to", "match", v.subnet.Addr().Next().String()).CombinedOutput()
	return "ip neigh:\n" + string(neigh) + "ip route:\n" + string(route)
}

// lastLines keeps the last lines written to it.
type lastLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lastLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	if len(l.lines) > 60 {
		l.lines = l.lines[len(l.lines)-60:]
	}
	return len(p), nil
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

// startEnv starts an env whose ECS API has the options o; it needs root, runc, ip and
// haproxy, and skips the test without them.
func startEnv(t *testing.T, o ecsapi.Options) *env {
	t.Helper()
	ecslocaltest.RequireRoot(t, "runc", "ip", "haproxy")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	app := ecslocaltest.BuildGo(t, "../tasks/testdata/app")
	raw, err := os.ReadFile(app)
	if err != nil {
		t.Fatal(err)
	}
	layout := ecslocaltest.ImageLayout(t, map[string][]byte{"app": raw}, v1.Config{Entrypoint: []string{"/app"}})
	ecsAPI, elbAPI := ecsapi.New(o), elbapi.New(elbapi.Options{})
	runner, ro := ecslocaltest.Runner(ctx, t, tasks.Options{StateDir: t.TempDir(), Images: map[string]string{"app:1": layout}}, ecsAPI)
	t.Cleanup(func() { runner.Close(context.Background()) })
	ecsAPI.SetRunner(runner)
	ecsAPI.SetLoadBalancing(elbAPI)
	checks := &lastLines{}
	log := slog.New(slog.NewTextHandler(checks, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var actors sync.WaitGroup
	for _, run := range []func(context.Context) error{
		targethealth.New(elbAPI, targethealth.Options{Scale: 0.2, Log: log}).Run,
		lb.New(elbAPI, lb.Options{Dir: t.TempDir(), Poll: 20 * time.Millisecond}).Run,
		func(ctx context.Context) error { return ecsAPI.RunScheduler(ctx, 100*time.Millisecond) },
	} {
		actors.Add(1)
		go func() { defer actors.Done(); _ = run(ctx) }()
	}
	t.Cleanup(func() { cancel(); actors.Wait() }) // runs before the runner closes
	ep := ecslocaltest.Start(t, ecsAPI, elbAPI)
	return &env{ctx: ctx, ecs: ecsAPI, elb: elbAPI, c: ep.ECS, e: ep.ELB, checks: checks, subnet: ro.Subnet}
}

// targetGroup creates a target group checked every second (5 s at 0.2×) on /health,
// healthy after 2 passes, with a 2 s deregistration delay.
func (v *env) targetGroup(t *testing.T, name string) string {
	t.Helper()
	tg := *ecslocaltest.Must(v.e.CreateTargetGroup(v.ctx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(8080), VpcId: aws.String("vpc-1"), TargetType: elbtypes.TargetTypeEnumIp, HealthCheckPath: aws.String("/health"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2),
	})).Get(t).TargetGroups[0].TargetGroupArn
	ecslocaltest.Must(v.e.ModifyTargetGroupAttributes(v.ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("2")}}})).Get(t)
	return tg
}

// listener creates an HTTP listener of load balancer lbArn on a free port with actions.
func (v *env) listener(t *testing.T, lbArn *string, actions []elbtypes.Action) (port int32, arn string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = int32(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	out := ecslocaltest.Must(v.e.CreateListener(v.ctx, &elb.CreateListenerInput{LoadBalancerArn: lbArn, Port: aws.Int32(port), Protocol: elbtypes.ProtocolEnumHttp,
		DefaultActions: actions})).Get(t)
	return port, *out.Listeners[0].ListenerArn
}

// revision registers a revision of family web whose app answers "greeting=GREETING",
// with more environment variables for the app (EXIT_AFTER, SICK, …).
func (v *env) revision(t *testing.T, greeting string, more ...types.KeyValuePair) string {
	t.Helper()
	out := ecslocaltest.Must(v.c.RegisterTaskDefinition(v.ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1"), Essential: aws.Bool(true), StopTimeout: aws.Int32(5),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
			Environment:  append([]types.KeyValuePair{{Name: aws.String("GREETING"), Value: aws.String(greeting)}}, more...)}}})).Get(t)
	return *out.TaskDefinition.TaskDefinitionArn
}
