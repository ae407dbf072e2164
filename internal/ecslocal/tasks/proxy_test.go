package tasks_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/logs"
)

// TestProxyFindsItsContainerMemoryLimit runs Gangway's proxy in a task whose proxy container
// has a memory limit of 48 MiB, too small for it: in the container, without a cgroup
// namespace, the proxy finds the limit at /sys/fs/cgroup and says at start, in its awslogs
// stream, how much it needs.
func TestProxyFindsItsContainerMemoryLimit(t *testing.T) {
	t.Parallel()
	ecslocaltest.RequireRoot(t, "runc", "ip")
	raw, err := os.ReadFile(ecslocaltest.BuildGo(t, "../../../cmd/proxy"))
	if err != nil {
		t.Fatal(err)
	}
	layout := ecslocaltest.ImageLayout(t, map[string][]byte{"proxy": raw}, v1.Config{Entrypoint: []string{"/proxy", "run"}, User: "65532"})
	svc := logs.New(logs.Options{})
	c, _, _ := setupRunner(t, map[string]string{"proxy:1": layout}, svc)
	ctx := context.Background()
	ecslocaltest.Must(c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("proxy"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("proxy"), Image: aws.String("proxy:1"), Essential: aws.Bool(true), Memory: aws.Int32(48),
			Environment:      []types.KeyValuePair{{Name: aws.String("GANGWAY_UPSTREAM"), Value: aws.String("127.0.0.1:8080")}},
			LogConfiguration: awslogs("/ecs/proxy", "proxy", true)}}})).Get(t)
	arn := runTask(t, c, "proxy")
	defer func() {
		ecslocaltest.Must(c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn)})).Get(t)
		waitFor(t, c, arn, 60*time.Second, "STOPPED", isStatus("STOPPED"))
	}()
	waitFor(t, c, arn, 30*time.Second, "RUNNING", isStatus("RUNNING"))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := svc.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String("/ecs/proxy"), FilterPattern: aws.String(`"memory limit too small"`)})
		if err == nil && len(out.Events) > 0 {
			if msg := aws.ToString(out.Events[0].Message); !strings.Contains(msg, "memory limit of 48 MiB leaves") {
				t.Fatalf("the warning does not name the container's limit: %s", msg)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy in a 48 MiB container did not warn within 20 s that the limit is too small (last error: %v)", err)
		}
	}
}
