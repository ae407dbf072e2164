package timeline

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// Source says what a Recorder samples: the service, its target groups, the listener rules
// whose weights move, and the load.
type Source struct {
	ECS *ecs.Client
	ELB *elb.Client
	// Cluster and Service name the service whose tasks and deployments are drawn.
	Cluster, Service string
	// Groups maps a target group's name, as drawn, to its ARN.
	Groups map[string]string
	// Production and Test are the ARNs of the listener rules whose forward weights are
	// drawn, or of listeners, whose default rule is then drawn. Test may be empty.
	Production, Test string
	// Load is the load generator (load.Generator); nil draws no requests.
	Load interface {
		Progress() (requests, failed int64)
	}
	// Every is the sampling interval; 0 means 250 ms.
	Every time.Duration
}

// Recorder samples a Source until Stop. The APIs are read with the caller's clients; a call
// that fails leaves that part of the sample empty and is counted in Scenario.Result.
type Recorder struct {
	src  Source
	stop chan struct{} // closed by Stop; a sample in progress finishes
	done chan struct{}

	mu       sync.Mutex // guards s and errors while the sampler runs
	s        Scenario
	errors   int
	lastErr  error
	stage    string
	taskSeen map[string]int // task ARN → index in s.Tasks
}

// Record starts sampling src for the scenario name, until Stop (or ctx ends).
func Record(ctx context.Context, name string, src Source) *Recorder {
	if src.Every <= 0 {
		src.Every = 250 * time.Millisecond
	}
	r := &Recorder{src: src, stop: make(chan struct{}), done: make(chan struct{}),
		s: Scenario{Name: name, Start: time.Now()}, taskSeen: map[string]int{}}
	go r.run(ctx)
	return r
}

func (r *Recorder) run(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(r.src.Every)
	defer tick.Stop()
	for {
		r.sample(ctx)
		select {
		case <-r.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Mark adds a named moment to the stages, for what the APIs do not show (say, "StopTask").
func (r *Recorder) Mark(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Stages = append(r.s.Stages, Mark{Name: name, At: time.Now()})
}

// Stop ends the sampling, takes a last sample, and returns the scenario with result as its
// one-line account (and the number of failed API reads, if any).
func (r *Recorder) Stop(result string) Scenario {
	close(r.stop)
	<-r.done
	r.sample(context.Background())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Result = result
	if r.errors > 0 {
		r.s.Result += "; " + plural(r.errors, "API read") + " failed while sampling, the last: " + r.lastErr.Error()
	}
	return r.s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// sample reads everything once and appends a Sample.
func (r *Recorder) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	smp := Sample{At: time.Now(), Production: r.weights(ctx, r.src.Production), Test: r.weights(ctx, r.src.Test),
		Healthy: map[string]int{}}
	for name, arn := range r.src.Groups {
		out, err := r.src.ELB.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
		if r.failed(err) {
			continue
		}
		n := 0
		for _, d := range out.TargetHealthDescriptions {
			if d.TargetHealth != nil && d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				n++
			}
		}
		smp.Healthy[name] = n
	}
	if r.src.Load != nil {
		smp.Requests, smp.Failed = r.src.Load.Progress()
	}
	tasks := r.tasks(ctx)
	stage := r.deploymentStage(ctx)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Samples = append(r.s.Samples, smp)
	if stage != "" && stage != r.stage {
		r.stage = stage
		r.s.Stages = append(r.s.Stages, Mark{Name: stage, At: smp.At})
	}
	for _, t := range tasks {
		arn := aws.ToString(t.TaskArn)
		state := taskState(t)
		i, ok := r.taskSeen[arn]
		if !ok {
			i = len(r.s.Tasks)
			r.taskSeen[arn] = i
			r.s.Tasks = append(r.s.Tasks, Task{ID: arn[strings.LastIndexByte(arn, '/')+1:], Revision: revision(t)})
		}
		st := &r.s.Tasks[i].States
		if n := len(*st); n == 0 || (*st)[n-1].Name != state {
			*st = append(*st, Mark{Name: state, At: smp.At})
		}
	}
}

// failed counts err, if any, and says whether there was one.
func (r *Recorder) failed(err error) bool {
	if err == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors++
	r.lastErr = err
	return true
}

// weights returns the forward weights by target group name of a rule, or of a listener's
// default rule; nil when arn is empty.
func (r *Recorder) weights(ctx context.Context, arn string) map[string]int32 {
	if arn == "" {
		return nil
	}
	in := &elb.DescribeRulesInput{RuleArns: []string{arn}}
	if strings.Contains(arn, ":listener/") {
		in = &elb.DescribeRulesInput{ListenerArn: aws.String(arn)}
	}
	out, err := r.src.ELB.DescribeRules(ctx, in)
	if r.failed(err) {
		return nil
	}
	i := slices.IndexFunc(out.Rules, func(rule elbtypes.Rule) bool {
		return in.ListenerArn == nil || aws.ToBool(rule.IsDefault)
	})
	if i < 0 {
		return nil
	}
	w := map[string]int32{}
	for _, a := range out.Rules[i].Actions {
		if a.Type != elbtypes.ActionTypeEnumForward {
			continue
		}
		if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
			for _, tg := range a.ForwardConfig.TargetGroups {
				w[r.groupName(aws.ToString(tg.TargetGroupArn))] = aws.ToInt32(tg.Weight)
			}
		} else if a.TargetGroupArn != nil {
			w[r.groupName(*a.TargetGroupArn)] = 100
		}
	}
	// Weights are relative: draw them as the percentage of traffic each group gets.
	var sum int32
	for _, v := range w {
		sum += v
	}
	if sum > 0 {
		for k, v := range w {
			w[k] = v * 100 / sum
		}
	}
	return w
}

// groupName is the name Source.Groups gives arn, or else the name in the ARN
// (…:targetgroup/NAME/id).
func (r *Recorder) groupName(arn string) string {
	for name, a := range r.src.Groups {
		if a == arn {
			return name
		}
	}
	if _, rest, ok := strings.Cut(arn, ":targetgroup/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	return arn
}

// tasks returns the service's tasks, running and stopped.
func (r *Recorder) tasks(ctx context.Context) []ecstypes.Task {
	var arns []string
	for _, desired := range []ecstypes.DesiredStatus{ecstypes.DesiredStatusRunning, ecstypes.DesiredStatusStopped} {
		out, err := r.src.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(r.src.Cluster),
			ServiceName: aws.String(r.src.Service), DesiredStatus: desired})
		if r.failed(err) {
			continue
		}
		arns = append(arns, out.TaskArns...)
	}
	var tasks []ecstypes.Task
	for chunk := range slices.Chunk(arns, 100) {
		out, err := r.src.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(r.src.Cluster), Tasks: chunk})
		if r.failed(err) {
			continue
		}
		tasks = append(tasks, out.Tasks...)
	}
	slices.SortFunc(tasks, func(a, b ecstypes.Task) int {
		return aws.ToTime(a.CreatedAt).Compare(aws.ToTime(b.CreatedAt))
	})
	return tasks
}

// taskState is what a task's row shows: its last status, with its health while it runs.
func taskState(t ecstypes.Task) string {
	s := aws.ToString(t.LastStatus)
	if s == "RUNNING" && (t.HealthStatus == ecstypes.HealthStatusHealthy || t.HealthStatus == ecstypes.HealthStatusUnhealthy) {
		s += " " + string(t.HealthStatus)
	}
	return s
}

// revision is the task definition's family:revision.
func revision(t ecstypes.Task) string {
	arn := aws.ToString(t.TaskDefinitionArn)
	return arn[strings.LastIndexByte(arn, '/')+1:]
}

// deploymentStage is the newest service deployment's lifecycle stage, or its status when
// it has no stage (ROLLING deployments, and the end of any deployment).
func (r *Recorder) deploymentStage(ctx context.Context) string {
	out, err := r.src.ECS.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{
		Cluster: aws.String(r.src.Cluster), Service: aws.String(r.src.Service)})
	if r.failed(err) || len(out.ServiceDeployments) == 0 {
		return ""
	}
	newest := slices.MaxFunc(out.ServiceDeployments, func(a, b ecstypes.ServiceDeploymentBrief) int {
		return aws.ToTime(a.CreatedAt).Compare(aws.ToTime(b.CreatedAt))
	})
	d, err := r.src.ECS.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{
		ServiceDeploymentArns: []string{aws.ToString(newest.ServiceDeploymentArn)}})
	if r.failed(err) || len(d.ServiceDeployments) == 0 {
		return string(newest.Status)
	}
	sd := d.ServiceDeployments[0]
	switch sd.Status {
	case ecstypes.ServiceDeploymentStatusInProgress, ecstypes.ServiceDeploymentStatusRollbackInProgress:
		if sd.LifecycleStage != "" {
			if sd.Status == ecstypes.ServiceDeploymentStatusRollbackInProgress {
				return "ROLLBACK " + string(sd.LifecycleStage)
			}
			return string(sd.LifecycleStage)
		}
	}
	return string(sd.Status)
}
