package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/netns"
	"github.com/gangway-ecs/gangway/internal/ecslocal/rootfs"
)

// Defaults of the ECS API model: a container's stopTimeout is 30 s; a health check's
// interval 30 s, timeout 5 s, retries 3, startPeriod off.
const (
	defaultStopTimeout = 30 * time.Second
	defaultInterval    = 30 * time.Second
	defaultTimeout     = 5 * time.Second
	defaultRetries     = 3
	// killWait bounds the wait for a container after SIGKILL.
	killWait = 10 * time.Second
	// maxHealthOutput is how much of a health check's output is kept, as the agent keeps it.
	maxHealthOutput = 1024
)

// essentialExitReason is the stoppedReason ECS writes when an essential container exits.
const essentialExitReason = "Essential container in task exited"

type task struct {
	r    *Runner
	spec taskSpec
	stop chan stopRequest
	done chan struct{}

	ns         *netns.Namespace
	containers []*container
	health     sync.WaitGroup // the health-check goroutines
}

type container struct {
	def    types.ContainerDefinition
	image  *rootfs.Image
	id     string
	bundle string
	cmd    *exec.Cmd
	logs   io.WriteCloser // its awslogs stream, or nil
	exited chan struct{}  // closed when the process has exited; exitCode is then set
	code   int

	mu           sync.Mutex
	health       types.HealthStatus
	healthOutput string
}

func (t *task) requestStop(s stopRequest) {
	select {
	case t.stop <- s:
	default: // a stop is already on its way
	}
}

func (t *task) set(f func(*types.Task)) {
	t.r.rec.UpdateTask(t.spec.ARN, func(tk *types.Task) {
		f(tk)
		tk.Version++
	})
}

func (t *task) container(tk *types.Task, name string) *types.Container {
	for i := range tk.Containers {
		if aws.ToString(tk.Containers[i].Name) == name {
			return &tk.Containers[i]
		}
	}
	return nil
}

// run takes the task from PROVISIONING to STOPPED.
func (t *task) run() {
	ctx := context.Background()
	t.set(func(tk *types.Task) {
		tk.LastStatus = aws.String("PENDING")
		tk.PullStartedAt = t.r.now()
	})
	if err := t.prepare(ctx); err != nil {
		t.r.log.Info("task failed to start", "task", t.spec.ARN, "error", err)
		t.finish(ctx, stopRequest{code: types.TaskStopCodeTaskFailedToStart, reason: err.Error()})
		return
	}
	t.set(func(tk *types.Task) { tk.PullStoppedAt = t.r.now() })
	hctx, cancelHealth := context.WithCancel(ctx)
	defer cancelHealth()
	why, started := t.startContainers(hctx)
	if started {
		t.setRunning()
		why = t.wait()
	}
	cancelHealth()
	t.health.Wait()
	t.finish(ctx, why)
}

// prepare unpacks the images, creates the task's network namespace and writes a bundle per
// container. Its errors are the stoppedReason of a task that failed to start.
func (t *task) prepare(ctx context.Context) error {
	for _, def := range t.spec.TaskDefinition.ContainerDefinitions {
		img, err := t.r.images.Get(aws.ToString(def.Image))
		if err != nil {
			return fmt.Errorf("CannotPullContainerError: %v", err)
		}
		t.containers = append(t.containers, &container{def: def, image: img, id: t.r.containerID(t.spec.ARN, aws.ToString(def.Name)),
			exited: make(chan struct{}), health: types.HealthStatusUnknown})
	}
	ns, err := t.r.net.Create(ctx)
	if err != nil {
		return fmt.Errorf("ResourceInitializationError: %v", err)
	}
	t.ns = ns
	for _, c := range t.containers {
		if err := t.writeBundle(c); err != nil {
			return fmt.Errorf("CannotCreateContainerError: container %s: %v", aws.ToString(c.def.Name), err)
		}
		if err := t.openLogStream(c); err != nil {
			return fmt.Errorf("ResourceInitializationError: failed to validate logger args: container %s: %v", aws.ToString(c.def.Name), err)
		}
	}
	return nil
}

// openLogStream opens the CloudWatch Logs stream of a container whose log driver is
// awslogs, named as the driver names it ("Using the awslogs log driver", Amazon ECS
// Developer Guide): prefix/container-name/task-ID, or without a prefix the container's ID
// (which the documentation gives for the EC2 launch type; Fargate requires a prefix). The
// group is created only when awslogs-create-group is "true"; otherwise a missing group fails
// the task, as the driver's ResourceNotFoundException does on AWS.
func (t *task) openLogStream(c *container) error {
	lc := c.def.LogConfiguration
	if t.r.logs == nil || lc == nil || lc.LogDriver != types.LogDriverAwslogs {
		return nil
	}
	group := lc.Options["awslogs-group"]
	if group == "" {
		return errors.New("must specify a value for log opt 'awslogs-group'")
	}
	stream := c.id
	if prefix := lc.Options["awslogs-stream-prefix"]; prefix != "" {
		stream = prefix + "/" + aws.ToString(c.def.Name) + "/" + t.spec.ARN[strings.LastIndexByte(t.spec.ARN, '/')+1:]
	}
	w, err := t.r.logs.OpenStream(group, stream, lc.Options["awslogs-create-group"] == "true")
	if err != nil {
		return fmt.Errorf("failed to create Cloudwatch log stream: %w", err)
	}
	c.logs = w
	return nil
}

// writeBundle makes a container's runc bundle: the image's root filesystem (shared when it
// is read-only, a copy otherwise) and a config.json from the container definition over the
// image's configuration, as Docker combines them for the ECS agent.
func (t *task) writeBundle(c *container) error {
	c.bundle = filepath.Join(t.r.dir, "bundles", c.id)
	if err := os.MkdirAll(c.bundle, 0o700); err != nil {
		return err
	}
	readonly := aws.ToBool(c.def.ReadonlyRootFilesystem)
	root := c.image.Rootfs
	if !readonly {
		root = filepath.Join(c.bundle, "rootfs")
		if out, err := exec.Command("cp", "-a", c.image.Rootfs, root).CombinedOutput(); err != nil {
			return fmt.Errorf("copying the root filesystem: %v: %s", err, out)
		}
	}
	// An entryPoint in the task definition replaces the image's entrypoint and, as in
	// Docker, its cmd; a command replaces the cmd (the task's override first).
	args := c.image.Entrypoint
	cmd := c.image.Cmd
	if len(c.def.EntryPoint) > 0 {
		args, cmd = c.def.EntryPoint, nil
	}
	if len(c.def.Command) > 0 {
		cmd = c.def.Command
	}
	env := append([]string{}, c.image.Env...)
	for _, kv := range c.def.Environment {
		env = append(env, aws.ToString(kv.Name)+"="+aws.ToString(kv.Value))
	}
	if o := t.override(aws.ToString(c.def.Name)); o != nil {
		if len(o.Command) > 0 {
			cmd = o.Command
		}
		for _, kv := range o.Environment {
			env = append(env, aws.ToString(kv.Name)+"="+aws.ToString(kv.Value))
		}
	}
	args = append(append([]string{}, args...), cmd...)
	if len(args) == 0 {
		return errors.New("no command: neither the image nor the container definition has an entrypoint or command")
	}
	cwd := aws.ToString(c.def.WorkingDirectory)
	if cwd == "" {
		cwd = c.image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	userSpec := aws.ToString(c.def.User)
	if userSpec == "" {
		userSpec = c.image.User
	}
	u, err := resolveUser(c.image.Rootfs, userSpec)
	if err != nil {
		return err
	}
	if !hasVar(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	hostname := "ip-" + strings.ReplaceAll(t.ns.Addr.String(), ".", "-")
	return writeSpec(c.bundle, newSpec(root, readonly, u, args, env, cwd, hostname, t.ns.Path, memoryLimits(c.def.Memory, c.def.MemoryReservation)))
}

func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

func (t *task) override(name string) *types.ContainerOverride {
	if t.spec.Overrides == nil {
		return nil
	}
	for i := range t.spec.Overrides.ContainerOverrides {
		if aws.ToString(t.spec.Overrides.ContainerOverrides[i].Name) == name {
			return &t.spec.Overrides.ContainerOverrides[i]
		}
	}
	return nil
}

// startContainers starts the containers, each after its dependencies, and their health
// checks. When not every container started it says why the task stops.
func (t *task) startContainers(hctx context.Context) (stopRequest, bool) {
	failed := func(err error) (stopRequest, bool) {
		t.r.log.Info("task failed to start", "task", t.spec.ARN, "error", err)
		if errors.Is(err, errEssentialExited) {
			return stopRequest{code: types.TaskStopCodeEssentialContainerExited, reason: essentialExitReason}, false
		}
		return stopRequest{code: types.TaskStopCodeTaskFailedToStart, reason: err.Error()}, false
	}
	order, err := startOrder(t.containers)
	if err != nil {
		return failed(fmt.Errorf("CannotStartContainerError: %v", err))
	}
	byName := map[string]*container{}
	for _, c := range t.containers {
		byName[aws.ToString(c.def.Name)] = c
	}
	for _, c := range order {
		err := t.awaitDependencies(c, byName)
		if errors.Is(err, errStopRequested) || len(t.stop) > 0 {
			return <-t.stop, false
		}
		if err != nil {
			return failed(err)
		}
		if err := t.startContainer(c); err != nil {
			return failed(fmt.Errorf("CannotStartContainerError: container %s: %v", aws.ToString(c.def.Name), err))
		}
		if c.def.HealthCheck != nil {
			t.health.Add(1)
			go func() {
				defer t.health.Done()
				t.checkHealth(hctx, c)
			}()
		}
	}
	return stopRequest{}, true
}

// startContainer runs a container with runc and waits until it runs.
func (t *task) startContainer(c *container) error {
	log, err := os.Create(filepath.Join(c.bundle, "output.log"))
	if err != nil {
		return err
	}
	cmd := t.r.runc.cmd(context.Background(), "run", "--bundle", c.bundle, c.id)
	// With an awslogs stream the output goes through a pipe to both; Wait returns when the
	// container has exited and its last output is copied.
	var out io.Writer = log
	if c.logs != nil {
		out = io.MultiWriter(log, c.logs)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	c.cmd = cmd
	go func() {
		err := cmd.Wait()
		log.Close()
		if c.logs != nil {
			c.logs.Close()
		}
		c.code = exitCode(err)
		close(c.exited)
	}()
	return t.waitRunning(c)
}

// startWait bounds the wait for runc to report a container running.
const startWait = 30 * time.Second

// waitRunning waits until runc reports the container running; a container whose process
// ends first did not start, and its output says why.
func (t *task) waitRunning(c *container) error {
	deadline := time.Now().Add(startWait)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			raw, _ := os.ReadFile(filepath.Join(c.bundle, "output.log"))
			return fmt.Errorf("exited with code %d before running: %s", c.code, strings.TrimSpace(string(raw)))
		default:
		}
		if t.r.runc.status(context.Background(), c.id) == "running" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not running after %s", startWait)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// setRunning records the task RUNNING with its address: the awsvpc attachment and each
// container's network interface.
func (t *task) setRunning() {
	now := t.r.now()
	attachment := "eni-attach-" + t.ns.Name[len(t.ns.Name)-8:]
	t.set(func(tk *types.Task) {
		tk.LastStatus = aws.String("RUNNING")
		tk.StartedAt, tk.ConnectivityAt = now, now
		tk.Connectivity = types.ConnectivityConnected
		tk.Attachments = []types.Attachment{{
			Id: aws.String(attachment), Type: aws.String("ElasticNetworkInterface"), Status: aws.String("ATTACHED"),
			Details: []types.KeyValuePair{
				{Name: aws.String("networkInterfaceId"), Value: aws.String("eni-" + t.ns.Name[len(t.ns.Name)-8:])},
				{Name: aws.String("privateIPv4Address"), Value: aws.String(t.ns.Addr.String())},
			},
		}}
		for _, c := range t.containers {
			if tc := t.container(tk, aws.ToString(c.def.Name)); tc != nil {
				tc.LastStatus = aws.String("RUNNING")
				tc.RuntimeId = aws.String(c.id)
				tc.ImageDigest = aws.String(c.image.Digest)
				tc.NetworkInterfaces = []types.NetworkInterface{{AttachmentId: aws.String(attachment), PrivateIpv4Address: aws.String(t.ns.Addr.String())}}
			}
		}
	})
}

// wait returns when the task must stop: a stop request, or an essential container's exit
// ("Essential container in task exited"). A non-essential container's exit is recorded and
// the task goes on.
func (t *task) wait() stopRequest {
	pending := append([]*container{}, t.containers...)
	for {
		cases := make(chan *container, len(pending))
		stopWatch := make(chan struct{})
		for _, c := range pending {
			go func() {
				select {
				case <-c.exited:
					cases <- c
				case <-stopWatch:
				}
			}()
		}
		select {
		case s := <-t.stop:
			close(stopWatch)
			return s
		case c := <-cases:
			close(stopWatch)
			t.recordExit(c)
			if c.def.Essential == nil || *c.def.Essential {
				return stopRequest{code: types.TaskStopCodeEssentialContainerExited, reason: essentialExitReason}
			}
			for i, p := range pending {
				if p == c {
					pending = append(pending[:i], pending[i+1:]...)
					break
				}
			}
		}
	}
}

func (t *task) recordExit(c *container) {
	t.set(func(tk *types.Task) {
		if tc := t.container(tk, aws.ToString(c.def.Name)); tc != nil && aws.ToString(tc.LastStatus) != "STOPPED" {
			tc.LastStatus = aws.String("STOPPED")
			tc.ExitCode = aws.Int32(int32(c.code))
		}
	})
}

// finish stops the containers in reverse dependency order (the image's stop signal, SIGTERM
// by default, then SIGKILL after the container's stopTimeout), removes them and the
// namespace, and records STOPPED.
func (t *task) finish(ctx context.Context, why stopRequest) {
	t.set(func(tk *types.Task) {
		if aws.ToString(tk.DesiredStatus) != "STOPPED" {
			tk.DesiredStatus = aws.String("STOPPED")
		}
		if tk.StopCode == "" && why.code != "" {
			tk.StopCode, tk.StoppedReason = why.code, aws.String(why.reason)
		}
		if tk.StoppingAt == nil {
			tk.StoppingAt = t.r.now()
		}
		tk.LastStatus = aws.String("STOPPING")
	})
	for _, wave := range stopOrder(t.containers) {
		var wg sync.WaitGroup
		for _, c := range wave {
			if c.cmd == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.stopContainer(ctx, c)
				t.recordExit(c)
			}()
		}
		wg.Wait()
	}
	t.set(func(tk *types.Task) {
		tk.LastStatus = aws.String("DEPROVISIONING")
		tk.ExecutionStoppedAt = t.r.now()
	})
	for _, c := range t.containers {
		if c.cmd != nil {
			if err := t.r.runc.run(ctx, "delete", "--force", c.id); err != nil {
				t.r.log.Debug("runc delete", "container", c.id, "error", err)
			}
		}
		if c.bundle != "" {
			t.logOutput(c)
			_ = os.RemoveAll(c.bundle)
		}
	}
	if t.ns != nil {
		if err := t.r.net.Remove(ctx, t.ns); err != nil {
			t.r.log.Info("removing a task namespace", "task", t.spec.ARN, "error", err)
		}
	}
	t.set(func(tk *types.Task) {
		tk.LastStatus = aws.String("STOPPED")
		tk.StoppedAt = t.r.now()
		if tk.ExecutionStoppedAt == nil {
			tk.ExecutionStoppedAt = tk.StoppedAt
		}
		tk.Connectivity = types.ConnectivityDisconnected
		for i := range tk.Containers {
			tk.Containers[i].LastStatus = aws.String("STOPPED")
		}
		for i := range tk.Attachments {
			tk.Attachments[i].Status = aws.String("DELETED")
		}
	})
	close(t.done)
}

// stopContainer signals a running container and waits for it.
func (t *task) stopContainer(ctx context.Context, c *container) {
	select {
	case <-c.exited:
		return
	default:
	}
	timeout := defaultStopTimeout
	if c.def.StopTimeout != nil {
		timeout = time.Duration(*c.def.StopTimeout) * time.Second
	}
	sig := "TERM"
	if s := c.image.StopSignal; s != "" {
		sig = strings.TrimPrefix(s, "SIG")
	}
	if err := t.r.runc.run(ctx, "kill", c.id, sig); err != nil {
		t.r.log.Debug("runc kill", "container", c.id, "signal", sig, "error", err)
	}
	select {
	case <-c.exited:
		return
	case <-time.After(timeout):
	}
	if err := t.r.runc.run(ctx, "kill", c.id, "KILL"); err != nil {
		t.r.log.Debug("runc kill", "container", c.id, "signal", "KILL", "error", err)
	}
	select {
	case <-c.exited:
	case <-time.After(killWait):
		t.r.log.Info("container did not exit after SIGKILL", "container", c.id)
	}
}

// runExec runs args inside a container and reports whether it exited 0, with its output.
func (t *task) runExec(ctx context.Context, c *container, args []string, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := t.r.runc.cmd(ctx, append([]string{"exec", c.id}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return false, fmt.Sprintf("health check timed out after %s", timeout)
	}
	return err == nil, out.String()
}

// maxLoggedOutput bounds how much of a container's output is logged when it is removed.
const maxLoggedOutput = 4096

// logOutput logs the end of what a container wrote to stdout and stderr, the stand-in for its
// log driver.
func (t *task) logOutput(c *container) {
	raw, err := os.ReadFile(filepath.Join(c.bundle, "output.log"))
	if err != nil || len(raw) == 0 {
		return
	}
	if len(raw) > maxLoggedOutput {
		raw = raw[len(raw)-maxLoggedOutput:]
	}
	t.r.log.Info("container output", "container", c.id, "exitCode", c.code, "output", string(raw))
}
