// Package tasks runs ECS tasks as runc containers: each task in a network namespace of its
// own (internal/ecslocal/netns), each container from an unpacked OCI image
// (internal/ecslocal/rootfs), with the task states, container health checks and stop sequence
// of "Amazon ECS task lifecycle"
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle.html). It
// reports what happens by updating the task record through a Recorder.
package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/netns"
	"github.com/gangway-ecs/gangway/internal/ecslocal/rootfs"
)

// Recorder is where the runner writes task state: UpdateTask calls f with the task record
// while the record's owner holds its lock, so f must not block or call back.
type Recorder interface {
	UpdateTask(arn string, f func(*types.Task))
}

// taskSpec is what a task runs.
type taskSpec struct {
	ARN            string
	TaskDefinition types.TaskDefinition
	Overrides      *types.TaskOverride
}

// Options configure a Runner.
type Options struct {
	// Name names the network, the namespaces and the runc state of this runner (1 to 6
	// lowercase letters or digits): two runners need two names.
	Name string
	// Subnet is the /24 of 198.18.0.0/15 the tasks' addresses come from.
	Subnet netip.Prefix
	// StateDir holds unpacked images, bundles and runc's state.
	StateDir string
	// Images maps image names of task definitions to OCI layout directories.
	Images map[string]string
	// Logs receives the output of the containers whose log driver is awslogs; nil leaves it
	// in output.log alone.
	Logs LogStreams
	Log  *slog.Logger
}

// LogStreams opens CloudWatch Logs streams (a *logs.Service): every line written to a stream
// is an event; a missing group is created when createGroup is set, an error otherwise.
type LogStreams interface {
	OpenStream(group, stream string, createGroup bool) (io.WriteCloser, error)
}

// Runner runs tasks. Its methods are safe for concurrent use.
type Runner struct {
	net    *netns.Network
	images *rootfs.Store
	runc   runc
	dir    string
	name   string
	rec    Recorder
	logs   LogStreams
	log    *slog.Logger

	mu    sync.Mutex
	tasks map[string]*task
	wg    sync.WaitGroup
}

// ErrNotSupported is returned by New where tasks cannot run: not Linux, or not root.
var ErrNotSupported = errors.New("running tasks needs Linux and root (network namespaces and runc)")

// New checks that tasks can run here, takes the name (netns.ErrNameInUse while another
// runner of this name is open on the host), removes what a crashed run of the same name
// left (containers, namespaces, bridge, bundles) and creates the network.
func New(ctx context.Context, o Options, rec Recorder) (*Runner, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("%w: this is %s", ErrNotSupported, runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: running as uid %d", ErrNotSupported, os.Geteuid())
	}
	for _, tool := range []string{"runc", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: %s is not installed (Debian packages runc, iproute2)", ErrNotSupported, tool)
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Join(o.StateDir, o.Name)
	r := &Runner{
		runc:   runc{root: filepath.Join(dir, "runc")},
		images: rootfs.NewStore(filepath.Join(dir, "images"), o.Images),
		dir:    dir,
		name:   o.Name,
		rec:    rec,
		logs:   o.Logs,
		log:    o.Log,
		tasks:  map[string]*task{},
	}
	// The network first: it holds the name (netns.ErrNameInUse while another runner of this
	// name is open), so that the containers removed below are a crashed run's, never a
	// running one's.
	n, err := netns.Open(ctx, o.Name, o.Subnet)
	if err != nil {
		return nil, err
	}
	if err := r.removeLeftovers(ctx); err != nil {
		return nil, errors.Join(err, n.Close(ctx))
	}
	r.net = n
	return r, nil
}

// removeLeftovers deletes the containers and bundles of an earlier run.
func (r *Runner) removeLeftovers(ctx context.Context) error {
	if err := os.MkdirAll(r.runc.root, 0o700); err != nil {
		return err
	}
	ids, err := r.runc.list(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := r.runc.run(ctx, "delete", "--force", id); err != nil {
			return fmt.Errorf("removing a leftover container: %w", err)
		}
	}
	return os.RemoveAll(filepath.Join(r.dir, "bundles"))
}

// Start runs a task of task definition td in the background; it returns at once.
func (r *Runner) Start(arn string, td types.TaskDefinition, overrides *types.TaskOverride) {
	s := taskSpec{ARN: arn, TaskDefinition: td, Overrides: overrides}
	t := &task{r: r, spec: s, stop: make(chan stopRequest, 1), done: make(chan struct{})}
	r.mu.Lock()
	r.tasks[s.ARN] = t
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t.run()
		r.mu.Lock()
		delete(r.tasks, s.ARN)
		r.mu.Unlock()
	}()
}

// Stop asks a task to stop with the stop code and reason already recorded; it returns at
// once. Stopping a task that is not running does nothing.
func (r *Runner) Stop(arn string) {
	r.mu.Lock()
	t := r.tasks[arn]
	r.mu.Unlock()
	if t != nil {
		t.requestStop(stopRequest{})
	}
}

// Close stops every task (each with its stop timeout) and removes the network.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	for _, t := range r.tasks {
		t.requestStop(stopRequest{code: types.TaskStopCodeUserInitiated, reason: "ecslocal is shutting down"})
	}
	r.mu.Unlock()
	r.wg.Wait()
	err := r.removeLeftovers(ctx)
	return errors.Join(err, r.net.Close(ctx))
}

// stopRequest is why a task stops; an empty one means the record already says why.
type stopRequest struct {
	code   types.TaskStopCode
	reason string
}

func (r *Runner) now() *time.Time { return aws.Time(time.Now().UTC().Truncate(time.Millisecond)) }

// containerID is a runc container ID: the runner's name, the task ID and the container name.
func (r *Runner) containerID(taskARN, name string) string {
	return r.name + "-" + taskARN[strings.LastIndexByte(taskARN, '/')+1:] + "-" + name
}
