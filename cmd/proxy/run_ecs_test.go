package main

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecs/ecstest"
)

// TestRunECSCluster runs `proxy run` with an ECS cluster, all the way: the configuration
// compiles to xDS, the data plane reads the discovery back and runs it against ECS (in the
// task's own cluster), and the task it finds, on 127.0.0.1, takes the traffic.
func TestRunECSCluster(t *testing.T) {
	up := startUpstream(t)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "http://"))
	s := ecstest.NewServer(t)
	s.SetEnv(t, "us-west-2")
	s.On("ListTasks", ecstest.OK(`{"taskArns": []}`), ecstest.OK(`{"taskArns": ["t1"]}`))
	s.On("DescribeTasks", ecstest.OK(`{"tasks": [`+ecstest.RunningTask("t1", host)+`]}`))
	traffic := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := writeConfig(t, fmt.Sprintf(`
admin: {address: 127.0.0.1:0}
shutdown: {delay: 0s, drain_timeout: 2s, deadline: 20s}
listeners: [{name: public, address: %q, readiness_path: /gangway/ready}]
routes: [{name: orders, cluster: orders, required: true}]
clusters: [{name: orders, ecs: {service: orders, port: %s, refresh: 200ms}}]
`, traffic, port))
	admin, sigs, code, logs := startRunEnv(t, map[string]string{"ECS_CONTAINER_METADATA_URI_V4": ecstest.TaskMetadata(t)}, "-config", cfg)

	waitStatus(t, "http://"+traffic+"/gangway/ready", 200)
	if c, body := httpGet(t, "http://"+traffic+"/"); c != 200 || body != "hello" {
		t.Fatalf("traffic through the discovered task: %d %q\n%s", c, body, logs)
	}
	st := statusOf(t, admin)["upstream.cluster.orders"]
	if st.Status != "RUNNING" || st.Attributes["healthy"] != "1" {
		t.Fatalf("upstream.cluster.orders: %+v", st)
	}
	if req := s.Requests("ListTasks"); len(req) < 2 || !strings.Contains(req[0], `"cluster":"arn:aws:ecs:us-west-2:111122223333:cluster/default"`) {
		t.Fatalf("ListTasks requests %q", req)
	}
	sigs <- syscall.SIGTERM
	expectExit(t, code, 0, 20*time.Second, logs)
}
