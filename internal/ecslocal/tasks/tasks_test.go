package tasks_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/netns"
	"github.com/gangway-ecs/gangway/internal/ecslocal/tasks"
)

const appImage = "registry.example/app:1"

// setup serves the ECS API with a runner whose network has a random name and subnet, so
// that parallel test binaries do not meet, and returns an ECS client and the runner.
func setup(t *testing.T) (*ecs.Client, *tasks.Runner) {
	t.Helper()
	c, r, _ := setupWith(t, nil)
	return c, r
}

// setupWith is setup with the CloudWatch Logs streams the runner writes to; it returns the
// runner's options too.
func setupWith(t *testing.T, streams tasks.LogStreams) (*ecs.Client, *tasks.Runner, tasks.Options) {
	t.Helper()
	ecslocaltest.RequireRoot(t, "runc", "ip")
	bin := ecslocaltest.BuildGo(t, "testdata/app")
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	layoutDir := ecslocaltest.ImageLayout(t, map[string][]byte{"app": raw}, v1.Config{Entrypoint: []string{"/app"}, User: "65532"})
	return setupRunner(t, map[string]string{appImage: layoutDir}, streams)
}

// setupRunner starts a runner with images (reference: OCI layout) on a network of its own,
// behind ECS and ELB APIs, with a cluster, and returns the runner's options with the name
// and subnet it took.
func setupRunner(t *testing.T, images map[string]string, streams tasks.LogStreams) (*ecs.Client, *tasks.Runner, tasks.Options) {
	t.Helper()
	api := ecsapi.New(ecsapi.Options{})
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	r, o := ecslocaltest.Runner(ctx, t, tasks.Options{StateDir: t.TempDir(), Images: images, Logs: streams, Log: log}, api)
	name := o.Name
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("closing the runner: %v", err)
		}
		if leftovers, _ := filepath.Glob(filepath.Join(netns.Dir, "ecsl-"+name+"-*")); len(leftovers) > 0 {
			t.Errorf("namespaces left after Close: %v", leftovers)
		}
	})
	api.SetRunner(r)
	c := ecslocaltest.Start(t, api, elbapi.New(elbapi.Options{})).ECS
	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{})).Get(t)
	return c, r, o
}

// testWriter sends the runner's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func register(t *testing.T, c *ecs.Client, family string, mutate func(*types.ContainerDefinition)) {
	t.Helper()
	def := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String(appImage), Essential: aws.Bool(true),
		PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
		Environment:  []types.KeyValuePair{{Name: aws.String("GREETING"), Value: aws.String("hello")}}}
	mutate(&def)
	ecslocaltest.Must(c.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc, ContainerDefinitions: []types.ContainerDefinition{def},
	})).Get(t)
}

func runTask(t *testing.T, c *ecs.Client, family string) string {
	t.Helper()
	out := ecslocaltest.Must(c.RunTask(context.Background(), &ecs.RunTaskInput{TaskDefinition: aws.String(family),
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}}})).Get(t)
	return *out.Tasks[0].TaskArn
}

// waitFor describes the task until cond holds, for at most limit.
func waitFor(t *testing.T, c *ecs.Client, arn string, limit time.Duration, what string, cond func(types.Task) bool) types.Task {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		d := ecslocaltest.Must(c.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Tasks: []string{arn}})).Get(t)
		if len(d.Tasks) == 1 && cond(d.Tasks[0]) {
			return d.Tasks[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: not %s after %s: %+v", arn, what, limit, d.Tasks)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func address(t *testing.T, task types.Task) string {
	t.Helper()
	for _, a := range task.Attachments {
		for _, d := range a.Details {
			if *d.Name == "privateIPv4Address" {
				return *d.Value
			}
		}
	}
	t.Fatalf("task has no privateIPv4Address: %+v", task.Attachments)
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	status, body := tryGet(url)
	if status == 0 {
		t.Fatalf("GET %s: %s", url, body)
	}
	return status, body
}

func isStatus(s string) func(types.Task) bool {
	return func(t types.Task) bool { return aws.ToString(t.LastStatus) == s }
}

// TestTaskLifecycle runs a task as a container in its own namespace: it serves on its own
// address as the user and environment of its definition, its health check runs inside it
// over localhost, its root is read-only, and StopTask ends it with SIGTERM (the app exits 42
// on SIGTERM).
func TestTaskLifecycle(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	ctx := context.Background()
	register(t, c, "web", func(d *types.ContainerDefinition) {
		d.ReadonlyRootFilesystem = aws.Bool(true)
		d.HealthCheck = &types.HealthCheck{Command: []string{"CMD", "/app", "-check"}, Interval: aws.Int32(5), Timeout: aws.Int32(2), Retries: aws.Int32(2)}
		d.Memory, d.MemoryReservation = aws.Int32(96), aws.Int32(64)
	})
	arn := runTask(t, c, "web")
	running := waitFor(t, c, arn, 30*time.Second, "RUNNING", isStatus("RUNNING"))
	if running.StartedAt == nil || running.Connectivity != types.ConnectivityConnected || aws.ToString(running.Containers[0].LastStatus) != "RUNNING" {
		t.Errorf("running task: %+v", running)
	}
	addr := address(t, running)
	if !netip.MustParsePrefix("198.18.0.0/15").Contains(netip.MustParseAddr(addr)) {
		t.Errorf("task address %s is outside 198.18.0.0/15", addr)
	}
	// The app may take a moment to listen after the container starts.
	var status int
	var body string
	for i := 0; i < 50; i++ {
		if status, body = tryGet("http://" + addr + ":8080/"); status == http.StatusOK {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != http.StatusOK || body != "uid=65532 greeting=hello\n" {
		t.Fatalf("GET the task: %d %q", status, body)
	}
	if status, body := get(t, "http://"+addr+":8080/write"); status != http.StatusInternalServerError || !strings.Contains(body, "read-only file system") {
		t.Errorf("writing to a read-only root: %d %q", status, body)
	}
	// The container's memory and memoryReservation are its cgroup's hard and soft limits,
	// which it sees at /sys/fs/cgroup as under Docker (cgroup v1, else v2).
	limits := map[string]string{"memory/memory.limit_in_bytes": "100663296\n", "memory/memory.soft_limit_in_bytes": "67108864\n"}
	if status, _ := get(t, "http://"+addr+":8080/file?path=/sys/fs/cgroup/memory/memory.limit_in_bytes"); status == http.StatusNotFound {
		limits = map[string]string{"memory.max": "100663296\n", "memory.low": "67108864\n"}
	}
	for file, want := range limits {
		if status, body := get(t, "http://"+addr+":8080/file?path=/sys/fs/cgroup/"+file); status != http.StatusOK || body != want {
			t.Errorf("/sys/fs/cgroup/%s in the container: %d %q, want %q", file, status, body, want)
		}
	}
	healthy := waitFor(t, c, arn, 20*time.Second, "HEALTHY", func(t types.Task) bool { return t.HealthStatus == types.HealthStatusHealthy })
	if healthy.Containers[0].HealthStatus != types.HealthStatusHealthy {
		t.Errorf("container health %s", healthy.Containers[0].HealthStatus)
	}

	ecslocaltest.Must(c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn), Reason: aws.String("test over")})).Get(t)
	stopped := waitFor(t, c, arn, 20*time.Second, "STOPPED", isStatus("STOPPED"))
	if stopped.StopCode != types.TaskStopCodeUserInitiated || *stopped.StoppedReason != "test over" ||
		aws.ToInt32(stopped.Containers[0].ExitCode) != 42 || stopped.StoppedAt == nil || stopped.ExecutionStoppedAt == nil {
		t.Errorf("stopped task: code %s reason %q exit %d", stopped.StopCode, aws.ToString(stopped.StoppedReason), aws.ToInt32(stopped.Containers[0].ExitCode))
	}
	if status, _ := tryGet("http://" + addr + ":8080/"); status != 0 {
		t.Errorf("the stopped task's address still answers: %d", status)
	}
}

// TestSecondRunnerOfTheSameName: a runner of a name that an open runner has is refused
// (netns.ErrNameInUse) before it touches anything, on any subnet and with the same state
// directory: the first runner's task keeps running and answering. (Before, the second
// removed the first's containers, namespaces and bridge as a crashed run's.)
func TestSecondRunnerOfTheSameName(t *testing.T) {
	t.Parallel()
	c, _, o := setupWith(t, nil)
	register(t, c, "web", func(*types.ContainerDefinition) {})
	arn := runTask(t, c, "web")
	addr := address(t, waitFor(t, c, arn, 30*time.Second, "RUNNING", isStatus("RUNNING")))
	answers := func() bool {
		for range 50 {
			if status, _ := tryGet("http://" + addr + ":8080/"); status == http.StatusOK {
				return true
			}
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
	if !answers() {
		t.Fatal("the task does not answer")
	}

	second := o
	second.Subnet = netip.MustParsePrefix("198.19.248.0/24") // above the /24s ecslocaltest.Runner draws
	r, err := tasks.New(context.Background(), second, ecsapi.New(ecsapi.Options{}))
	if err == nil {
		r.Close(context.Background())
	}
	if !errors.Is(err, netns.ErrNameInUse) || !strings.Contains(err.Error(), o.Name) {
		t.Fatalf("a second runner named %s: %v; want netns.ErrNameInUse naming it", o.Name, err)
	}
	if !answers() {
		t.Fatal("the first runner's task stopped answering after the second runner was refused")
	}
	if task := waitFor(t, c, arn, time.Second, "RUNNING", isStatus("RUNNING")); aws.ToString(task.Containers[0].LastStatus) != "RUNNING" {
		t.Errorf("the first runner's container: %s", aws.ToString(task.Containers[0].LastStatus))
	}
}

func tryGet(url string) (int, string) {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStopSequence: a container that ignores SIGTERM gets SIGKILL after its stopTimeout; an
// essential container that exits stops its task with EssentialContainerExited.
func TestStopSequence(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	ctx := context.Background()
	register(t, c, "stubborn", func(d *types.ContainerDefinition) {
		d.StopTimeout = aws.Int32(2)
		d.Environment = append(d.Environment, types.KeyValuePair{Name: aws.String("IGNORE_TERM"), Value: aws.String("1")})
	})
	register(t, c, "crashing", func(d *types.ContainerDefinition) {
		d.Environment = append(d.Environment, types.KeyValuePair{Name: aws.String("EXIT_AFTER"), Value: aws.String("1s")},
			types.KeyValuePair{Name: aws.String("EXIT_CODE"), Value: aws.String("3")})
	})
	stubborn, crashing := runTask(t, c, "stubborn"), runTask(t, c, "crashing")

	waitFor(t, c, stubborn, 30*time.Second, "RUNNING", isStatus("RUNNING"))
	time.Sleep(300 * time.Millisecond) // let the app install its signal handler
	start := time.Now()
	ecslocaltest.Must(c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(stubborn)})).Get(t)
	stopped := waitFor(t, c, stubborn, 20*time.Second, "STOPPED", isStatus("STOPPED"))
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("a container ignoring SIGTERM stopped after %s, before its 2 s stopTimeout", took)
	}
	if code := aws.ToInt32(stopped.Containers[0].ExitCode); code != 128+9 || *stopped.StoppedReason != "Task stopped by user" {
		t.Errorf("stubborn: exit %d, reason %q; want SIGKILL's 137", code, *stopped.StoppedReason)
	}

	crashed := waitFor(t, c, crashing, 30*time.Second, "STOPPED", isStatus("STOPPED"))
	if crashed.StopCode != types.TaskStopCodeEssentialContainerExited || *crashed.StoppedReason != "Essential container in task exited" ||
		aws.ToInt32(crashed.Containers[0].ExitCode) != 3 || *crashed.DesiredStatus != "STOPPED" {
		t.Errorf("crashing: code %s reason %q exit %v desired %s", crashed.StopCode, aws.ToString(crashed.StoppedReason),
			crashed.Containers[0].ExitCode, *crashed.DesiredStatus)
	}
}

// TestFailedToStart: a task whose image cannot be pulled (not in the image map, and its
// registry, on a loopback port, refuses connections), or whose command does not exist in the
// image, fails to start, saying why.
func TestFailedToStart(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	ecslocaltest.Must(c.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("ghost"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("127.0.0.1:1/ghost:1")}},
	})).Get(t)
	arn := runTask(t, c, "ghost")
	stopped := waitFor(t, c, arn, 10*time.Second, "STOPPED", isStatus("STOPPED"))
	if stopped.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.HasPrefix(*stopped.StoppedReason, "CannotPullContainerError:") ||
		!strings.Contains(*stopped.StoppedReason, "127.0.0.1:1/ghost:1") {
		t.Errorf("image that cannot be pulled: code %s reason %q", stopped.StopCode, aws.ToString(stopped.StoppedReason))
	}

	register(t, c, "nocommand", func(d *types.ContainerDefinition) { d.EntryPoint = []string{"/no/such/binary"} })
	arn = runTask(t, c, "nocommand")
	stopped = waitFor(t, c, arn, 30*time.Second, "STOPPED", isStatus("STOPPED"))
	if stopped.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.HasPrefix(*stopped.StoppedReason, "CannotStartContainerError:") ||
		!strings.Contains(*stopped.StoppedReason, "/no/such/binary") || stopped.StartedAt != nil {
		t.Errorf("missing command: code %s reason %q startedAt %v", stopped.StopCode, aws.ToString(stopped.StoppedReason), stopped.StartedAt)
	}
}

// TestDependsOn: containers start after their dependencies (SUCCESS of a non-essential init
// container, HEALTHY of the app) and stop in reverse order; a dependency that never turns
// healthy fails the task after its startTimeout.
func TestDependsOn(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	ctx := context.Background()
	env := func(kv ...string) []types.KeyValuePair {
		var out []types.KeyValuePair
		for i := 0; i < len(kv); i += 2 {
			out = append(out, types.KeyValuePair{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return out
	}
	defs := []types.ContainerDefinition{
		{Name: aws.String("init"), Image: aws.String(appImage), Essential: aws.Bool(false), Environment: env("EXIT_AFTER", "500ms", "EXIT_CODE", "0", "PORT", "8081")},
		{Name: aws.String("app"), Image: aws.String(appImage), Essential: aws.Bool(true),
			DependsOn:   []types.ContainerDependency{{ContainerName: aws.String("init"), Condition: types.ContainerConditionSuccess}},
			HealthCheck: &types.HealthCheck{Command: []string{"CMD", "/app", "-check"}, Interval: aws.Int32(5), Timeout: aws.Int32(2), Retries: aws.Int32(2)}},
		// The sidecar ignores SIGTERM for its 2 s stopTimeout: the app must outlive it.
		{Name: aws.String("sidecar"), Image: aws.String(appImage), Essential: aws.Bool(true), StopTimeout: aws.Int32(2), Environment: env("PORT", "8082", "IGNORE_TERM", "1"),
			DependsOn: []types.ContainerDependency{{ContainerName: aws.String("app"), Condition: types.ContainerConditionHealthy}}},
	}
	ecslocaltest.Must(c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("chain"), NetworkMode: types.NetworkModeAwsvpc, ContainerDefinitions: defs})).Get(t)
	arn := runTask(t, c, "chain")
	running := waitFor(t, c, arn, 40*time.Second, "RUNNING", isStatus("RUNNING"))
	byName := func(task types.Task) map[string]types.Container {
		m := map[string]types.Container{}
		for _, ct := range task.Containers {
			m[*ct.Name] = ct
		}
		return m
	}
	if app := byName(running)["app"]; app.HealthStatus != types.HealthStatusHealthy {
		t.Errorf("the task ran before app was HEALTHY (%s), which the sidecar waits for", app.HealthStatus)
	}
	if took := running.StartedAt.Sub(*running.CreatedAt); took < 5*time.Second {
		t.Errorf("RUNNING %s after creation, before app's first health check could pass", took)
	}
	settled := waitFor(t, c, arn, 10*time.Second, "init STOPPED", func(task types.Task) bool { return aws.ToString(byName(task)["init"].LastStatus) == "STOPPED" })
	if code := aws.ToInt32(byName(settled)["init"].ExitCode); code != 0 || aws.ToString(settled.LastStatus) != "RUNNING" {
		t.Errorf("init exited %d and the task is %s; want 0 and RUNNING (init is not essential)", code, aws.ToString(settled.LastStatus))
	}

	ecslocaltest.Must(c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn)})).Get(t)
	first := waitFor(t, c, arn, 20*time.Second, "a container STOPPED", func(task types.Task) bool {
		m := byName(task)
		return aws.ToString(m["app"].LastStatus) == "STOPPED" || aws.ToString(m["sidecar"].LastStatus) == "STOPPED"
	})
	if m := byName(first); aws.ToString(m["sidecar"].LastStatus) != "STOPPED" {
		t.Errorf("app stopped before the sidecar that depends on it (sidecar %s)", aws.ToString(m["sidecar"].LastStatus))
	}
	waitFor(t, c, arn, 20*time.Second, "STOPPED", isStatus("STOPPED"))

	defs = []types.ContainerDefinition{
		// The dependency's startTimeout bounds the wait, not the waiting container's.
		{Name: aws.String("sick"), Image: aws.String(appImage), Essential: aws.Bool(true), StartTimeout: aws.Int32(2),
			HealthCheck: &types.HealthCheck{Command: []string{"CMD", "/no/such/check"}, Interval: aws.Int32(5), Retries: aws.Int32(1)}},
		{Name: aws.String("waiter"), Image: aws.String(appImage), Essential: aws.Bool(true), StartTimeout: aws.Int32(600), Environment: env("PORT", "8082"),
			DependsOn: []types.ContainerDependency{{ContainerName: aws.String("sick"), Condition: types.ContainerConditionHealthy}}},
	}
	ecslocaltest.Must(c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("never"), NetworkMode: types.NetworkModeAwsvpc, ContainerDefinitions: defs})).Get(t)
	arn = runTask(t, c, "never")
	stopped := waitFor(t, c, arn, 30*time.Second, "STOPPED", isStatus("STOPPED"))
	if stopped.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.Contains(aws.ToString(stopped.StoppedReason), "startTimeout 2s for sick to be HEALTHY") {
		t.Errorf("never healthy: code %s reason %q", stopped.StopCode, aws.ToString(stopped.StoppedReason))
	}
}
