package tasks_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/logs"
)

// awslogs is the log configuration of a container that writes to group.
func awslogs(group, prefix string, create bool) *types.LogConfiguration {
	opts := map[string]string{"awslogs-group": group, "awslogs-region": "us-east-1"}
	if prefix != "" {
		opts["awslogs-stream-prefix"] = prefix
	}
	if create {
		opts["awslogs-create-group"] = "true"
	}
	return &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: opts}
}

// TestAwslogs: a container whose log driver is awslogs writes each line of its stdout and
// stderr as an event of stream prefix/container/task-ID, which FilterLogEvents finds with the
// runbooks' pattern; a running container still stops on SIGTERM with its output going
// through a pipe; a group that does not exist fails the task unless awslogs-create-group is
// "true".
func TestAwslogs(t *testing.T) {
	t.Parallel()
	svc := logs.New(logs.Options{})
	c, _, _ := setupWith(t, svc)
	ctx := context.Background()
	filter := func(in cwl.FilterLogEventsInput) []string {
		t.Helper()
		out := ecslocaltest.Must(svc.FilterLogEvents(ctx, &in)).Get(t)
		var got []string
		for _, e := range out.Events {
			got = append(got, aws.ToString(e.LogStreamName)+": "+aws.ToString(e.Message))
		}
		return got
	}
	taskID := func(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

	// stdout: the health check command run as the container's command finds no server and
	// says "not ready"; the container exits 1 at once.
	register(t, c, "checker", func(d *types.ContainerDefinition) {
		d.Name = aws.String("proxy")
		d.EntryPoint = []string{"/app", "-check"}
		d.LogConfiguration = awslogs("/ecs/logged", "proxy", true)
	})
	arn := runTask(t, c, "checker")
	waitFor(t, c, arn, 30*time.Second, "STOPPED", isStatus("STOPPED"))
	got := filter(cwl.FilterLogEventsInput{LogGroupName: aws.String("/ecs/logged"), FilterPattern: aws.String(`?"not ready" ?failed ?error`),
		StartTime: aws.Int64(time.Now().Add(-time.Hour).UnixMilli())})
	if want := "proxy/proxy/" + taskID(arn) + ": not ready: "; len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Errorf("stdout events %q, want one starting %q", got, want)
	}

	// stderr: the server cannot listen on port "bad".
	register(t, c, "badport", func(d *types.ContainerDefinition) {
		d.Environment = append(d.Environment, types.KeyValuePair{Name: aws.String("PORT"), Value: aws.String("bad")})
		d.LogConfiguration = awslogs("/ecs/logged", "app", true)
	})
	arn = runTask(t, c, "badport")
	stopped := waitFor(t, c, arn, 30*time.Second, "STOPPED", isStatus("STOPPED"))
	got = filter(cwl.FilterLogEventsInput{LogGroupName: aws.String("/ecs/logged"), LogStreamNamePrefix: aws.String("app/")})
	if len(got) != 1 || !strings.HasPrefix(got[0], "app/app/"+taskID(arn)+": listen tcp") {
		t.Errorf("stderr events %q (task stopped: %s %q)", got, stopped.StopCode, aws.ToString(stopped.StoppedReason))
	}

	// A running container: its output goes through a pipe, and it still stops on SIGTERM
	// (the app exits 42). Without a prefix the stream is named after the container's ID.
	register(t, c, "quiet", func(d *types.ContainerDefinition) { d.LogConfiguration = awslogs("/ecs/logged", "", false) })
	arn = runTask(t, c, "quiet")
	waitFor(t, c, arn, 30*time.Second, "RUNNING", isStatus("RUNNING"))
	ecslocaltest.Must(c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn)})).Get(t)
	stopped = waitFor(t, c, arn, 30*time.Second, "STOPPED", isStatus("STOPPED"))
	if code := aws.ToInt32(stopped.Containers[0].ExitCode); code != 42 {
		t.Errorf("exit code %d after StopTask, want 42", code)
	}
	streams := ecslocaltest.Must(svc.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: aws.String("/ecs/logged")})).Get(t)
	var names []string
	for _, s := range streams.LogStreams {
		names = append(names, aws.ToString(s.LogStreamName))
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, "-"+taskID(arn)+"-app") }) {
		t.Errorf("streams %q: none named after the container ID of task %s", names, taskID(arn))
	}

	// A group that does not exist, without awslogs-create-group.
	register(t, c, "nogroup", func(d *types.ContainerDefinition) { d.LogConfiguration = awslogs("/ecs/missing", "app", false) })
	arn = runTask(t, c, "nogroup")
	stopped = waitFor(t, c, arn, 30*time.Second, "STOPPED", isStatus("STOPPED"))
	if stopped.StopCode != types.TaskStopCodeTaskFailedToStart ||
		!strings.HasPrefix(aws.ToString(stopped.StoppedReason), "ResourceInitializationError: failed to validate logger args:") ||
		!strings.Contains(aws.ToString(stopped.StoppedReason), "The specified log group does not exist.") {
		t.Errorf("missing group: stopped %s %q", stopped.StopCode, aws.ToString(stopped.StoppedReason))
	}
}
