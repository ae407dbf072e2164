package tasks_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

// TestImageFromRegistry runs a task whose image is not in the image map: it is pulled from
// its registry (go-containerregistry's, on 127.0.0.1, holding the test app pushed there) and
// serves. A tag the registry does not have stops the task as ECS does: TaskFailedToStart,
// "CannotPullContainerError: …" naming the image.
func TestImageFromRegistry(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	raw, err := os.ReadFile(ecslocaltest.BuildGo(t, "testdata/app"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(ecslocaltest.ImageLayout(t, map[string][]byte{"app": raw}, v1.Config{Entrypoint: []string{"/app"}, User: "65532"}))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}

	register(t, c, "pulled", func(d *types.ContainerDefinition) { d.Image = aws.String(ref.String()) })
	arn := runTask(t, c, "pulled")
	running := waitFor(t, c, arn, 30*time.Second, "RUNNING", isStatus("RUNNING"))
	if running.PullStartedAt == nil || running.PullStoppedAt == nil {
		t.Errorf("pull timestamps: %v %v", running.PullStartedAt, running.PullStoppedAt)
	}
	addr := address(t, running)
	var status int
	var body string
	for range 50 {
		if status, body = tryGet("http://" + addr + ":8080/"); status == 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != 200 || body != "uid=65532 greeting=hello\n" {
		t.Errorf("GET the task of the pulled image: %d %q", status, body)
	}
	ecslocaltest.Must(c.StopTask(context.Background(), &ecs.StopTaskInput{Task: aws.String(arn)})).Get(t)

	register(t, c, "unpulled", func(d *types.ContainerDefinition) { d.Image = aws.String(host + "/team/app:2") })
	arn = runTask(t, c, "unpulled")
	stopped := waitFor(t, c, arn, 10*time.Second, "STOPPED", isStatus("STOPPED"))
	if stopped.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.HasPrefix(aws.ToString(stopped.StoppedReason), "CannotPullContainerError: ") ||
		!strings.Contains(aws.ToString(stopped.StoppedReason), host+"/team/app:2") {
		t.Errorf("a tag the registry does not have: code %s reason %q", stopped.StopCode, aws.ToString(stopped.StoppedReason))
	}
}
