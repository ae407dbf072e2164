package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
)

// MetadataEnv is the variable through which ECS gives each container the address of its
// task metadata endpoint, version 4 (Fargate platform 1.4.0 and later, EC2 agent 1.39.0 and
// later).
const MetadataEnv = "ECS_CONTAINER_METADATA_URI_V4"

// MetadataTimeout bounds one request to the metadata endpoint, which is local to the task.
const MetadataTimeout = 5 * time.Second

// Metadata reads the task metadata endpoint v4.
type Metadata struct {
	// URI is the value of ECS_CONTAINER_METADATA_URI_V4.
	URI string
	// HTTP is the client to use; nil means one with no proxy and MetadataTimeout.
	HTTP *http.Client
}

// MetadataFromEnv returns a client when the process runs in an ECS task (the variable is
// set), and false otherwise.
func MetadataFromEnv(getenv func(string) string) (*Metadata, bool) {
	uri := strings.TrimRight(getenv(MetadataEnv), "/")
	if uri == "" {
		return nil, false
	}
	return &Metadata{URI: uri}, true
}

// TaskMetadata is the part of ${ECS_CONTAINER_METADATA_URI_V4}/task that Gangway uses.
type TaskMetadata struct {
	Cluster          string              `json:"Cluster"`
	TaskARN          string              `json:"TaskARN"`
	Family           string              `json:"Family"`
	Revision         string              `json:"Revision"`
	DesiredStatus    string              `json:"DesiredStatus"`
	KnownStatus      string              `json:"KnownStatus"`
	AvailabilityZone string              `json:"AvailabilityZone"`
	LaunchType       string              `json:"LaunchType"`
	Containers       []ContainerMetadata `json:"Containers"`
}

// ContainerMetadata is one container, as ${ECS_CONTAINER_METADATA_URI_V4} (this container)
// and the Containers list of /task describe it.
type ContainerMetadata struct {
	Name          string           `json:"Name"`
	DockerID      string           `json:"DockerId"`
	Image         string           `json:"Image"`
	DesiredStatus string           `json:"DesiredStatus"`
	KnownStatus   string           `json:"KnownStatus"`
	ContainerARN  string           `json:"ContainerARN"`
	Health        *ContainerHealth `json:"Health,omitempty"`
	Networks      []struct {
		NetworkMode   string   `json:"NetworkMode"`
		IPv4Addresses []string `json:"IPv4Addresses"`
	} `json:"Networks"`
}

// ContainerHealth is the container's Docker health-check state, including the output of the
// last check: the one place ECS exposes it.
type ContainerHealth struct {
	Status      string    `json:"status"`
	StatusSince time.Time `json:"statusSince"`
	ExitCode    *int      `json:"exitCode,omitempty"`
	Output      string    `json:"output,omitempty"`
}

// Task reads the task's metadata.
func (m *Metadata) Task(ctx context.Context) (*TaskMetadata, error) {
	var t TaskMetadata
	if err := m.get(ctx, "/task", &t); err != nil {
		return nil, err
	}
	if t.TaskARN == "" {
		return nil, fmt.Errorf("task metadata %s/task: no TaskARN in the response", m.URI)
	}
	return &t, nil
}

// Container reads this container's metadata.
func (m *Metadata) Container(ctx context.Context) (*ContainerMetadata, error) {
	var c ContainerMetadata
	if err := m.get(ctx, "", &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (m *Metadata) get(ctx context.Context, path string, v any) error {
	url := m.URI + path
	ctx, cancel := context.WithTimeout(ctx, MetadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("task metadata %s: %w", url, err)
	}
	client := m.HTTP
	if client == nil {
		// The endpoint is link-local: never send it through an HTTP proxy.
		client = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: MetadataTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("task metadata %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("task metadata %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("task metadata %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("task metadata %s: %w", url, err)
	}
	return nil
}

// HealthAttrs are the task's identity as health-check attributes, so that /status and
// `proxy health` say which task, zone and revision answered.
func (t *TaskMetadata) HealthAttrs() []health.Attr {
	return []health.Attr{
		health.A("ecs.task_arn", t.TaskARN),
		health.A("ecs.availability_zone", t.AvailabilityZone),
		health.A("ecs.revision", t.Family+":"+t.Revision),
	}
}

// LogAttrs are the same as log fields, for slog.Logger.With.
func (t *TaskMetadata) LogAttrs() []any {
	return []any{
		slog.String("ecs_task_arn", t.TaskARN),
		slog.String("ecs_az", t.AvailabilityZone),
		slog.String("ecs_revision", t.Family+":"+t.Revision),
	}
}
