package ecs

// The task metadata endpoint exists only inside an ECS task, so it cannot run here. These
// tests serve responses recorded in the v4 format (testdata/metadata-v4-*.json, the shape of
// the examples in the ECS developer guide, with a container Health record as the ECS agent
// reports it) from an httptest server on 127.0.0.1.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
)

func metadataServer(t *testing.T, handler http.HandlerFunc) *Metadata {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	m, ok := MetadataFromEnv(func(k string) string {
		if k == MetadataEnv {
			return srv.URL + "/v4/e9028f8d/"
		}
		return ""
	})
	if !ok {
		t.Fatal("MetadataFromEnv: not found")
	}
	return m
}

func serveFile(t *testing.T, files map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
	}
}

func TestMetadataTask(t *testing.T) {
	m := metadataServer(t, serveFile(t, map[string]string{
		"/v4/e9028f8d/task": "testdata/metadata-v4-task.json",
		"/v4/e9028f8d":      "testdata/metadata-v4-container.json",
	}))
	task, err := m.Task(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantAttrs := []health.Attr{
		health.A("ecs.task_arn", "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3"),
		health.A("ecs.availability_zone", "us-west-2a"),
		health.A("ecs.revision", "gangway-app:7"),
	}
	if got := task.HealthAttrs(); !reflect.DeepEqual(got, wantAttrs) {
		t.Errorf("HealthAttrs = %v, want %v", got, wantAttrs)
	}
	if got := len(task.LogAttrs()); got != 3 {
		t.Errorf("LogAttrs has %d fields", got)
	}
	if task.LaunchType != "FARGATE" || len(task.Containers) != 1 || task.Containers[0].Networks[0].IPv4Addresses[0] != "10.0.2.106" {
		t.Errorf("task %+v", task)
	}

	c, err := m.Container(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "proxy" || c.Health == nil || c.Health.Status != "UNHEALTHY" || c.Health.ExitCode == nil || *c.Health.ExitCode != 1 ||
		!strings.Contains(c.Health.Output, "no healthy endpoint") || c.Health.StatusSince.IsZero() {
		t.Errorf("container %+v health %+v", c, c.Health)
	}
}

func TestMetadataNotInECS(t *testing.T) {
	if _, ok := MetadataFromEnv(func(string) string { return "" }); ok {
		t.Fatal("MetadataFromEnv found an endpoint in an empty environment")
	}
}

func TestMetadataErrors(t *testing.T) {
	tests := map[string]struct {
		handler http.HandlerFunc
		want    string
	}{
		"server error": {func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "agent restarting", http.StatusInternalServerError)
		}, "500 Internal Server Error: agent restarting"},
		"not json":    {func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }, "invalid character"},
		"no task arn": {func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"Cluster": "c"}`)) }, "no TaskARN"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m := metadataServer(t, tt.handler)
			_, err := m.Task(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "task metadata http://127.0.0.1:") {
				t.Fatalf("error %v, want one naming the endpoint and %q", err, tt.want)
			}
		})
	}
}

func TestMetadataDeadline(t *testing.T) {
	release := make(chan struct{})
	m := metadataServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := m.Task(ctx); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("error %v, want a deadline error", err)
	}
}
