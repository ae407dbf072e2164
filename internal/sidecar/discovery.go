package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/gangway-ecs/gangway/internal/ecs"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// ecsDiscovery is what `proxy run` gives the data plane as proxy.Options.ECS: the endpoints
// of each cluster with ECS discovery, from ecs.Discovery. It touches AWS only once a cluster
// uses it: the ECS client (the default AWS configuration: AWS_REGION, AWS_ENDPOINT_URL,
// the task role's credentials, ...) and, for clusters without ecs.cluster, the task's own
// cluster (task metadata) are looked up on first use and kept for the process.
type ecsDiscovery struct {
	getenv func(string) string
	log    *slog.Logger

	mu     sync.Mutex
	client *ecssdk.Client
	task   *ecs.TaskMetadata
}

func newECSDiscovery(getenv func(string) string, log *slog.Logger) *ecsDiscovery {
	return &ecsDiscovery{getenv: getenv, log: log}
}

// ecsSetupRetryMax bounds the wait between attempts to set a cluster's discovery up (the
// client, the task metadata); the first wait is the cluster's refresh interval.
const ecsSetupRetryMax = 2 * time.Minute

// Run is proxy.Options.ECS: it runs the discovery of d until ctx ends, passing each endpoint
// set to update as "ip:port" strings and each failure to onError. A discovery that cannot be
// set up yet (no region, task metadata unavailable) is retried, each failure reported.
func (e *ecsDiscovery) Run(ctx context.Context, d spec.ECSDiscovery, update func([]string), onError func(error)) {
	wait := min(d.Refresh, ecsSetupRetryMax)
	for {
		disc, err := e.discovery(ctx, d)
		if err == nil {
			disc.Run(ctx, func(eps []netip.AddrPort) {
				addrs := make([]string, len(eps))
				for i, ep := range eps {
					addrs[i] = ep.String()
				}
				update(addrs)
			}, onError)
			return
		}
		if ctx.Err() != nil {
			return
		}
		onError(err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, ecsSetupRetryMax)
	}
}

// discovery builds the ecs.Discovery of d.
func (e *ecsDiscovery) discovery(ctx context.Context, d spec.ECSDiscovery) (*ecs.Discovery, error) {
	client, err := e.ecsClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("ecs service %s: %w", d.Service, err)
	}
	cluster := d.Cluster
	if cluster == "" {
		task, err := e.taskMetadata(ctx)
		if err != nil {
			return nil, fmt.Errorf("ecs service %s: no ecs.cluster, and the task's own cluster is unknown: %w", d.Service, err)
		}
		cluster = task.Cluster
	}
	return &ecs.Discovery{Client: client, Cluster: cluster, Service: d.Service, Port: uint16(d.Port), Interval: d.Refresh}, nil
}

// ecsClient returns the process's ECS client, creating it on first use. Without a configured
// region, the region of the task the process runs in is used.
func (e *ecsDiscovery) ecsClient(ctx context.Context) (*ecssdk.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		return e.client, nil
	}
	client, err := ecs.NewClient(ctx, "")
	if err != nil {
		task, terr := e.taskMetadataLocked(ctx)
		region := arnRegion(task)
		if region == "" {
			return nil, errors.Join(err, terr)
		}
		if client, err = ecs.NewClient(ctx, region); err != nil {
			return nil, err
		}
	}
	e.client = client
	e.log.Info("ecs discovery: client ready", "region", client.Options().Region)
	return client, nil
}

// taskMetadata returns the metadata of the task the process runs in, read once.
func (e *ecsDiscovery) taskMetadata(ctx context.Context) (*ecs.TaskMetadata, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.taskMetadataLocked(ctx)
}

func (e *ecsDiscovery) taskMetadataLocked(ctx context.Context) (*ecs.TaskMetadata, error) {
	if e.task != nil {
		return e.task, nil
	}
	md, ok := ecs.MetadataFromEnv(e.getenv)
	if !ok {
		return nil, fmt.Errorf("not in an ECS task (%s is not set)", ecs.MetadataEnv)
	}
	task, err := md.Task(ctx)
	if err != nil {
		return nil, err
	}
	e.task = task
	return task, nil
}

// arnRegion is the region of the task's ARN (arn:aws:ecs:REGION:ACCOUNT:task/...), or "".
func arnRegion(task *ecs.TaskMetadata) string {
	if task == nil {
		return ""
	}
	parts := strings.SplitN(task.TaskARN, ":", 5)
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}
