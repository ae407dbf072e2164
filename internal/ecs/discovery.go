package ecs

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Discovery finds the endpoints of an ECS service: the private IP of each RUNNING task
// whose health is HEALTHY — or UNKNOWN when its task definition declares no container health
// check, since such a task never becomes HEALTHY — with Port.
//
// Only awsvpc tasks (Fargate, or EC2 in awsvpc mode) have an IP of their own; other tasks are
// skipped. A Discovery is used by one goroutine at a time.
type Discovery struct {
	Client  *ecssdk.Client
	Cluster string // name or ARN; "" is the default cluster
	// Service selects the tasks of one service; when empty, Family selects the tasks of a
	// task definition family (standalone tasks started with RunTask, say).
	Service, Family string
	Port            uint16
	// Interval is the time between polls (default 10s); throttling doubles it up to
	// MaxInterval (default 2m), and a successful poll restores it.
	Interval, MaxInterval time.Duration

	// checked caches, per task definition ARN, whether it declares a health check on an
	// essential container (task definitions never change).
	checked map[string]bool
}

// Endpoints polls once: ListTasks and DescribeTasks, plus DescribeTaskDefinition for task
// definitions not seen before. The result is sorted.
func (d *Discovery) Endpoints(ctx context.Context) ([]netip.AddrPort, error) {
	in := &ecssdk.ListTasksInput{ServiceName: nonEmpty(d.Service), DesiredStatus: ecstypes.DesiredStatusRunning}
	if d.Service == "" {
		in.Family = nonEmpty(d.Family)
	}
	tasks, err := listTasks(ctx, d.Client, d.Cluster, in, 20)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	var out []netip.AddrPort
	for _, t := range tasks {
		if aws.ToString(t.LastStatus) != string(ecstypes.DesiredStatusRunning) {
			continue
		}
		switch t.HealthStatus {
		case ecstypes.HealthStatusHealthy:
		case ecstypes.HealthStatusUnknown, "":
			has, err := d.hasHealthCheck(ctx, aws.ToString(t.TaskDefinitionArn))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", d, err)
			}
			if has {
				continue // still starting: its check has not passed yet
			}
		default:
			continue
		}
		if ip, ok := taskIP(t); ok {
			out = append(out, netip.AddrPortFrom(ip, d.Port))
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out), nil
}

// String names what is discovered: "ecs service app", "ecs family app".
func (d *Discovery) String() string {
	if d.Service != "" {
		return "ecs service " + d.Service
	}
	return "ecs family " + d.Family
}

func (d *Discovery) hasHealthCheck(ctx context.Context, arn string) (bool, error) {
	if has, ok := d.checked[arn]; ok {
		return has, nil
	}
	out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeTaskDefinitionOutput, error) {
		return d.Client.DescribeTaskDefinition(ctx, &ecssdk.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
	})
	if err != nil {
		return false, fmt.Errorf("DescribeTaskDefinition %s: %w", arn, err)
	}
	has := false
	if out.TaskDefinition != nil {
		for _, c := range out.TaskDefinition.ContainerDefinitions {
			if c.HealthCheck != nil && (c.Essential == nil || *c.Essential) {
				has = true
			}
		}
	}
	if d.checked == nil {
		d.checked = map[string]bool{}
	}
	d.checked[arn] = has
	return has, nil
}

// taskIP is the task's private IPv4 address: from its elastic network interface
// attachment, or from its containers' network interfaces.
func taskIP(t ecstypes.Task) (netip.Addr, bool) {
	for _, a := range t.Attachments {
		if aws.ToString(a.Type) != "ElasticNetworkInterface" {
			continue
		}
		for _, kv := range a.Details {
			if aws.ToString(kv.Name) == "privateIPv4Address" {
				if ip, err := netip.ParseAddr(aws.ToString(kv.Value)); err == nil {
					return ip, true
				}
			}
		}
	}
	for _, c := range t.Containers {
		for _, ni := range c.NetworkInterfaces {
			if ip, err := netip.ParseAddr(aws.ToString(ni.PrivateIpv4Address)); err == nil {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

// Run polls until ctx is done. update is called with the first endpoint set, with every
// set that differs from the previous one, and with the first set after a failed poll (so
// that the caller can clear the error); onError with each failed poll, after which the
// last good set stays in force (update is not called). Run returns when ctx is done.
func (d *Discovery) Run(ctx context.Context, update func([]netip.AddrPort), onError func(error)) {
	interval := orDuration(d.Interval, 10*time.Second)
	maxInterval := max(orDuration(d.MaxInterval, 2*time.Minute), interval)
	wait := interval
	var last []netip.AddrPort
	first, failed := true, false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		eps, err := d.Endpoints(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			failed = true
			if Throttled(err) {
				wait = min(2*wait, maxInterval)
			}
			if onError != nil {
				onError(fmt.Errorf("%w (keeping %d endpoints; next poll in %s)", err, len(last), wait))
			}
		default:
			wait = interval
			if first || failed || !slices.Equal(eps, last) {
				first, failed, last = false, false, eps
				update(slices.Clone(eps))
			}
		}
		timer.Reset(wait)
	}
}
