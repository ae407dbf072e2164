// Package cfn is ecslocal's AWS CloudFormation: it reads a template (what `cdk synth` writes
// to cdk.out) and creates the resources ecslocal models by calling its own APIs in-process —
// ECS clusters, task definitions and services, load balancers, target groups, listeners and
// rules, CloudWatch alarms and Lambda functions (from their cdk.out asset directories) — and
// the listener rules the CDK's AwsCustomResource (Custom::AWS) creates through the
// ElasticLoadBalancingV2 API. Every other resource type is accepted and ignored: it gets a
// physical ID and CREATE_COMPLETE, with a status reason that says so.
//
// Stacks are created with CreateStack (the CloudFormation Query API) or from a file at start
// (ecslocal -template); DescribeStacks answers with the stack's Outputs.
package cfn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/gangway-ecs/gangway/internal/ecslocal/cloudwatch"
	"github.com/gangway-ecs/gangway/internal/ecslocal/lambda"
)

// ECS is what stacks create through ecsapi.
type ECS interface {
	CreateCluster(context.Context, *ecs.CreateClusterInput) (*ecs.CreateClusterOutput, error)
	RegisterTaskDefinition(context.Context, *ecs.RegisterTaskDefinitionInput) (*ecs.RegisterTaskDefinitionOutput, error)
	DeregisterTaskDefinition(context.Context, *ecs.DeregisterTaskDefinitionInput) (*ecs.DeregisterTaskDefinitionOutput, error)
	CreateService(context.Context, *ecs.CreateServiceInput) (*ecs.CreateServiceOutput, error)
	DescribeServices(context.Context, *ecs.DescribeServicesInput) (*ecs.DescribeServicesOutput, error)
	UpdateService(context.Context, *ecs.UpdateServiceInput) (*ecs.UpdateServiceOutput, error)
}

// ELB is what stacks create through elbapi.
type ELB interface {
	CreateLoadBalancer(context.Context, *elb.CreateLoadBalancerInput) (*elb.CreateLoadBalancerOutput, error)
	CreateTargetGroup(context.Context, *elb.CreateTargetGroupInput) (*elb.CreateTargetGroupOutput, error)
	ModifyTargetGroup(context.Context, *elb.ModifyTargetGroupInput) (*elb.ModifyTargetGroupOutput, error)
	ModifyTargetGroupAttributes(context.Context, *elb.ModifyTargetGroupAttributesInput) (*elb.ModifyTargetGroupAttributesOutput, error)
	CreateListener(context.Context, *elb.CreateListenerInput) (*elb.CreateListenerOutput, error)
	CreateRule(context.Context, *elb.CreateRuleInput) (*elb.CreateRuleOutput, error)
	ModifyRule(context.Context, *elb.ModifyRuleInput) (*elb.ModifyRuleOutput, error)
	SetRulePriorities(context.Context, *elb.SetRulePrioritiesInput) (*elb.SetRulePrioritiesOutput, error)
	DeleteRule(context.Context, *elb.DeleteRuleInput) (*elb.DeleteRuleOutput, error)
}

// Lambda creates functions.
type Lambda interface {
	CreateFunction(lambda.Function) (string, error)
}

// CloudWatch creates, updates and deletes alarms.
type CloudWatch interface {
	PutMetricAlarm(cloudwatch.Alarm) error
	DeleteAlarms(names []string) error
}

// Options configure a Service; a nil API leaves its resource types ignored.
type Options struct {
	Region, Account string
	ECS             ECS
	ELB             ELB
	Lambda          Lambda
	CloudWatch      CloudWatch
	Logs            Logs
	Log             *slog.Logger
}

// Resource is one resource of a stack (the StackResource shape).
type Resource struct {
	LogicalResourceId    string
	PhysicalResourceId   string
	ResourceType         string
	ResourceStatus       string
	ResourceStatusReason string
	Timestamp            time.Time
	StackName, StackId   string

	attrs map[string]any
	props map[string]any // as resolved when the resource was last created or updated
}

// Output is one of a stack's outputs.
type Output struct {
	OutputKey   string
	OutputValue string
	Description string
	ExportName  string
}

// Parameter is one of a stack's parameters.
type Parameter struct {
	ParameterKey   string
	ParameterValue string
}

// Stack is a created stack.
type Stack struct {
	StackName         string
	StackId           string
	Description       string
	StackStatus       string
	StackStatusReason string
	CreationTime      time.Time
	LastUpdatedTime   *time.Time
	Parameters        []Parameter
	Outputs           []Output
	Resources         []*Resource
	Template          string

	assetDir string
	events   []Event // oldest first
}

// Service holds the stacks.
type Service struct {
	o        Options
	log      *slog.Logger
	mu       sync.Mutex
	stacks   []*Stack
	assetDir string
	updates  sync.WaitGroup       // the updates in progress
	cancels  []context.CancelFunc // stop them
}

// Event is one of a stack's events (the StackEvent shape): a resource's or the stack's
// status changed.
type Event struct {
	StackId              string
	EventId              string
	StackName            string
	LogicalResourceId    string
	PhysicalResourceId   string
	ResourceType         string
	Timestamp            time.Time
	ResourceStatus       string
	ResourceStatusReason string
}

// eventLocked records that res (nil: the stack) is now status. The caller holds s.mu.
func (s *Service) eventLocked(st *Stack, res *Resource, status, reason string) {
	e := Event{StackId: st.StackId, EventId: uuid(), StackName: st.StackName, LogicalResourceId: st.StackName, PhysicalResourceId: st.StackId,
		ResourceType: "AWS::CloudFormation::Stack", Timestamp: time.Now().UTC(), ResourceStatus: status, ResourceStatusReason: reason}
	if res != nil {
		e.LogicalResourceId, e.PhysicalResourceId, e.ResourceType = res.LogicalResourceId, res.PhysicalResourceId, res.ResourceType
	}
	st.events = append(st.events, e)
}

// event is eventLocked for a caller that does not hold s.mu.
func (s *Service) event(st *Stack, res *Resource, status, reason string) {
	s.mu.Lock()
	s.eventLocked(st, res, status, reason)
	s.mu.Unlock()
}

// Events returns the events of the stack named (name or stack ID), newest first, as
// DescribeStackEvents lists them.
func (s *Service) Events(name string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	for _, st := range s.stacks {
		if st.StackName == name || st.StackId == name {
			out = out[:0]
			for i := len(st.events) - 1; i >= 0; i-- {
				out = append(out, st.events[i])
			}
		}
	}
	return out
}

// New returns a Service with no stacks.
func New(o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, log: o.Log}
}

func randomID(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// Create creates a stack from body (a JSON template) with the parameters, each resource in
// dependency order. assetDir is where the template's assets are (cdk.out: a Lambda
// function's code is the directory its aws:asset:path metadata names); "" means none. The
// stack ends CREATE_COMPLETE, or CREATE_FAILED at the first resource that fails, with that
// resource's reason (the resources created before it stay).
func (s *Service) Create(ctx context.Context, name string, body []byte, params map[string]string, assetDir string) (*Stack, error) {
	t, err := ParseTemplate(body)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, st := range s.stacks {
		if st.StackName == name && st.StackStatus != "DELETE_COMPLETE" {
			s.mu.Unlock()
			return nil, &stackError{"AlreadyExistsException", fmt.Sprintf("Stack [%s] already exists", name)}
		}
	}
	st := &Stack{
		StackName: name, Description: t.Description, StackStatus: "CREATE_IN_PROGRESS", CreationTime: time.Now().UTC(),
		StackId:  fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%s", s.o.Region, s.o.Account, name, uuid()),
		Template: string(body), assetDir: assetDir,
	}
	s.stacks = append(s.stacks, st)
	s.eventLocked(st, nil, "CREATE_IN_PROGRESS", "User Initiated")
	s.mu.Unlock()

	r, err := s.resolver(st, t, params)
	if err != nil {
		return s.fail(st, err)
	}
	st.Parameters = r.parameters()
	order, err := t.order()
	if err != nil {
		return s.fail(st, err)
	}
	d := &deployer{s: s, st: st, r: r, assetDir: assetDir}
	for _, id := range order {
		def := t.Resources[id]
		if def.Condition != "" {
			ok, err := r.condition(def.Condition)
			if err != nil {
				return s.fail(st, fmt.Errorf("resource %s: %w", id, err))
			}
			if !ok {
				continue
			}
		}
		res := &Resource{LogicalResourceId: id, ResourceType: def.Type, StackName: name, StackId: st.StackId, Timestamp: time.Now().UTC()}
		if err := d.create(ctx, res, def); err != nil {
			res.ResourceStatus, res.ResourceStatusReason = "CREATE_FAILED", err.Error()
			s.addResource(st, res)
			return s.fail(st, fmt.Errorf("resource %s (%s): %w", id, def.Type, err))
		}
		res.ResourceStatus = "CREATE_COMPLETE"
		r.refs[id] = res.PhysicalResourceId
		r.attrs[id] = res.attrs
		s.addResource(st, res)
		if res.ResourceStatusReason != "" {
			s.log.Info("stack resource accepted and ignored", "stack", name, "resource", id, "type", def.Type, "reason", res.ResourceStatusReason)
		} else {
			s.log.Debug("stack resource created", "stack", name, "resource", id, "type", def.Type, "physicalId", res.PhysicalResourceId)
		}
	}
	outputs, err := r.outputs()
	if err != nil {
		return s.fail(st, err)
	}
	s.mu.Lock()
	st.Outputs = outputs
	st.StackStatus = "CREATE_COMPLETE"
	s.eventLocked(st, nil, st.StackStatus, "")
	s.mu.Unlock()
	s.log.Info("stack created", "stack", name, "resources", len(st.Resources))
	return st, nil
}

func (s *Service) addResource(st *Stack, res *Resource) {
	s.mu.Lock()
	st.Resources = append(st.Resources, res)
	s.eventLocked(st, res, res.ResourceStatus, res.ResourceStatusReason)
	s.mu.Unlock()
}

// resolver is a resolver for a stack of template t with the parameters' values (the
// template's Default for those not given).
func (s *Service) resolver(st *Stack, t *Template, params map[string]string) (*resolver, error) {
	r := &resolver{t: t, refs: map[string]any{}, attrs: map[string]map[string]any{}, conditions: map[string]bool{}, region: s.o.Region,
		params: map[string]any{
			"AWS::Region": s.o.Region, "AWS::AccountId": s.o.Account, "AWS::StackName": st.StackName, "AWS::StackId": st.StackId,
			"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NotificationARNs": []any{},
		}}
	for k, p := range t.Parameters {
		v, ok := params[k]
		switch {
		case ok:
			r.params[k] = v
		case p.Default != nil:
			r.params[k] = str(p.Default)
		default:
			return nil, fmt.Errorf("parameter %s: no value given and no Default", k)
		}
	}
	for k := range params {
		if _, ok := t.Parameters[k]; !ok {
			return nil, fmt.Errorf("parameter %s is not in the template's Parameters", k)
		}
	}
	return r, nil
}

// parameters are the stack's parameters (not the pseudo parameters), by key.
func (r *resolver) parameters() []Parameter {
	var out []Parameter
	for k, v := range r.params {
		if !strings.HasPrefix(k, "AWS::") {
			out = append(out, Parameter{k, str(v)})
		}
	}
	slices.SortFunc(out, func(a, b Parameter) int { return strings.Compare(a.ParameterKey, b.ParameterKey) })
	return out
}

// outputs resolves the template's Outputs, by key.
func (r *resolver) outputs() ([]Output, error) {
	var outputs []Output
	for k, o := range r.t.Outputs {
		if o.Condition != "" {
			if ok, err := r.condition(o.Condition); err != nil || !ok {
				continue
			}
		}
		v, err := r.resolve(o.Value)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", k, err)
		}
		out := Output{OutputKey: k, OutputValue: str(v), Description: o.Description}
		if o.Export != nil {
			e, err := r.resolve(o.Export.Name)
			if err != nil {
				return nil, fmt.Errorf("output %s: Export: %w", k, err)
			}
			out.ExportName = str(e)
		}
		outputs = append(outputs, out)
	}
	slices.SortFunc(outputs, func(a, b Output) int { return strings.Compare(a.OutputKey, b.OutputKey) })
	return outputs, nil
}

func (s *Service) fail(st *Stack, err error) (*Stack, error) {
	s.mu.Lock()
	st.StackStatus, st.StackStatusReason = "CREATE_FAILED", err.Error()
	s.eventLocked(st, nil, st.StackStatus, st.StackStatusReason)
	s.mu.Unlock()
	s.log.Warn("stack creation failed", "stack", st.StackName, "error", err)
	return st, fmt.Errorf("stack %s: %w", st.StackName, err)
}

// CreateFromFile creates a stack from a template file; its directory holds the assets.
func (s *Service) CreateFromFile(ctx context.Context, name, path string, params map[string]string) (*Stack, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return s.Create(ctx, name, body, params, filepath.Dir(path))
}

// Stacks returns the stacks, oldest first, or the one named (name or stack ID).
func (s *Service) Stacks(name string) []Stack {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Stack
	for _, st := range s.stacks {
		if name == "" || st.StackName == name || st.StackId == name {
			c := *st
			c.Resources, c.events = nil, nil
			for _, r := range st.Resources {
				c.Resources = append(c.Resources, &Resource{
					LogicalResourceId: r.LogicalResourceId, PhysicalResourceId: r.PhysicalResourceId, ResourceType: r.ResourceType,
					ResourceStatus: r.ResourceStatus, ResourceStatusReason: r.ResourceStatusReason, Timestamp: r.Timestamp,
					StackName: r.StackName, StackId: r.StackId,
				})
			}
			out = append(out, c)
		}
	}
	return out
}

func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// deployer creates one stack's resources.
type deployer struct {
	s        *Service
	st       *Stack
	r        *resolver
	assetDir string
}

// generatedName is the name CloudFormation gives a resource whose name property is unset:
// stack name, logical ID and a random suffix, cut to max characters.
func (d *deployer) generatedName(logicalID string, maxLen int) string {
	suffix := strings.ToUpper(randomID(12))
	n := d.st.StackName + "-" + logicalID
	if len(n)+1+len(suffix) > maxLen {
		n = n[:max(0, maxLen-1-len(suffix))]
	}
	return strings.Trim(n, "-") + "-" + suffix
}

// decode resolves props and decodes them into v, an SDK input (or ecslocal) shape: the
// template's property names are the API's members, which encoding/json matches without
// regard to case.
func decode(props map[string]any, v any) error {
	raw, err := json.Marshal(props)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("properties: %w", err)
	}
	return nil
}

// create makes one resource: ecslocal's own API for the types it models, an ignored record
// for the rest.
func (d *deployer) create(ctx context.Context, res *Resource, def resourceDef) error {
	propsAny, err := d.r.resolve(def.Properties)
	if err != nil {
		return err
	}
	props, _ := propsAny.(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	res.props = cloneProps(props)
	res.attrs = map[string]any{}
	o := d.s.o
	switch {
	case def.Type == "AWS::ECS::Cluster" && o.ECS != nil:
		return d.cluster(ctx, res, props)
	case def.Type == "AWS::ECS::TaskDefinition" && o.ECS != nil:
		return d.taskDefinition(ctx, res, props)
	case def.Type == "AWS::ECS::Service" && o.ECS != nil:
		return d.service(ctx, res, props)
	case def.Type == "AWS::ApplicationAutoScaling::ScalableTarget" && o.ECS != nil && props["ScalableDimension"] == "ecs:service:DesiredCount":
		return d.scalableTarget(ctx, res, props)
	case def.Type == "AWS::ElasticLoadBalancingV2::LoadBalancer" && o.ELB != nil:
		return d.loadBalancer(ctx, res, props)
	case def.Type == "AWS::ElasticLoadBalancingV2::TargetGroup" && o.ELB != nil:
		if tt, _ := props["TargetType"].(string); tt == "lambda" {
			d.ignore(res, "Lambda target groups are not modelled: listeners and rules that forward to one answer a fixed 404 instead")
			res.attrs["ecslocal:lambdaTargetGroup"] = true
			return nil
		}
		return d.targetGroup(ctx, res, props)
	case def.Type == "AWS::ElasticLoadBalancingV2::Listener" && o.ELB != nil:
		return d.listener(ctx, res, props)
	case def.Type == "AWS::ElasticLoadBalancingV2::ListenerRule" && o.ELB != nil:
		return d.listenerRule(ctx, res, props)
	case def.Type == "AWS::CloudWatch::Alarm" && o.CloudWatch != nil:
		return d.alarm(res, props)
	case def.Type == "AWS::Lambda::Function" && o.Lambda != nil:
		return d.function(res, props, def.Metadata)
	case def.Type == "AWS::Logs::LogGroup" && o.Logs != nil:
		return d.logGroup(ctx, res, props)
	case def.Type == "Custom::AWS" && o.ELB != nil:
		return d.awsCustomResource(ctx, res, props)
	}
	d.ignore(res, "ecslocal does not model "+def.Type+": accepted and ignored")
	return nil
}

// ignore records a resource that is not modelled: a physical ID of the stack's naming and an
// Arn attribute of the usual form, so that references to it resolve.
func (d *deployer) ignore(res *Resource, reason string) {
	res.PhysicalResourceId = d.generatedName(res.LogicalResourceId, 64)
	res.ResourceStatusReason = reason
	service := strings.ToLower(strings.Split(strings.TrimPrefix(res.ResourceType, "AWS::"), "::")[0])
	res.attrs["Arn"] = fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, d.s.o.Region, d.s.o.Account, res.PhysicalResourceId)
	res.attrs[ignoredAttr] = true
}

// ignoredAttr marks the attributes of an ignored resource: any attribute resolves, to a
// placeholder, since nothing ecslocal models reads it.
const ignoredAttr = "ecslocal:ignored"

// hasLambdaTargetGroup reports whether arn is a Lambda target group of the stack.
func (d *deployer) hasLambdaTargetGroup(arn string) bool {
	for id, v := range d.r.refs {
		if v == arn && d.r.attrs[id]["ecslocal:lambdaTargetGroup"] == true {
			return true
		}
	}
	return false
}

func (d *deployer) cluster(ctx context.Context, res *Resource, props map[string]any) error {
	var in ecs.CreateClusterInput
	if err := decode(props, &in); err != nil {
		return err
	}
	if in.ClusterName == nil || *in.ClusterName == "" {
		n := d.generatedName(res.LogicalResourceId, 255)
		in.ClusterName = &n
	}
	out, err := d.s.o.ECS.CreateCluster(ctx, &in)
	if err != nil {
		return err
	}
	res.PhysicalResourceId = *in.ClusterName
	res.attrs["Arn"] = *out.Cluster.ClusterArn
	return nil
}

func (d *deployer) taskDefinition(ctx context.Context, res *Resource, props map[string]any) error {
	var in ecs.RegisterTaskDefinitionInput
	if err := decode(props, &in); err != nil {
		return err
	}
	if in.Family == nil || *in.Family == "" {
		n := d.st.StackName + res.LogicalResourceId
		in.Family = &n
	}
	out, err := d.s.o.ECS.RegisterTaskDefinition(ctx, &in)
	if err != nil {
		return err
	}
	res.PhysicalResourceId = *out.TaskDefinition.TaskDefinitionArn
	res.attrs["TaskDefinitionArn"] = res.PhysicalResourceId
	return nil
}

func (d *deployer) service(ctx context.Context, res *Resource, props map[string]any) error {
	var in ecs.CreateServiceInput
	if err := decode(props, &in); err != nil {
		return err
	}
	if in.ServiceName == nil || *in.ServiceName == "" {
		n := d.generatedName(res.LogicalResourceId, 255)
		in.ServiceName = &n
	}
	// AWS::ECS::Service: "For new services, if a desired count is not specified, a default
	// value of 1 is used" (a service under Application Auto Scaling leaves it unset).
	if in.DesiredCount == nil && in.SchedulingStrategy != ecstypes.SchedulingStrategyDaemon {
		in.DesiredCount = aws.Int32(1)
	}
	out, err := d.s.o.ECS.CreateService(ctx, &in)
	if err != nil {
		return err
	}
	res.PhysicalResourceId = *out.Service.ServiceArn
	res.attrs["ServiceArn"] = *out.Service.ServiceArn
	res.attrs["Name"] = *out.Service.ServiceName
	return nil
}

// scalableTarget registers a service's desired count with Application Auto Scaling as far as
// a stack's creation sees it: a desired count outside MinCapacity–MaxCapacity is brought
// inside, as RegisterScalableTarget does. The scaling policies are not modelled.
func (d *deployer) scalableTarget(ctx context.Context, res *Resource, props map[string]any) error {
	id, _ := props["ResourceId"].(string)
	parts := strings.Split(id, "/")
	if len(parts) != 3 || parts[0] != "service" {
		return fmt.Errorf("ResourceId %q: want service/CLUSTER/SERVICE", id)
	}
	lo, hi := capacity(props["MinCapacity"]), capacity(props["MaxCapacity"])
	if lo < 0 || hi < lo {
		return fmt.Errorf("MinCapacity %v, MaxCapacity %v: want 0 <= MinCapacity <= MaxCapacity", props["MinCapacity"], props["MaxCapacity"])
	}
	svc, err := d.s.o.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(parts[1]), Services: []string{parts[2]}})
	if err != nil {
		return err
	}
	if len(svc.Services) != 1 {
		return fmt.Errorf("ResourceId %q: no such service", id)
	}
	n := min(max(svc.Services[0].DesiredCount, int32(lo)), int32(hi))
	if n != svc.Services[0].DesiredCount {
		if _, err := d.s.o.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(parts[1]), Service: aws.String(parts[2]), DesiredCount: aws.Int32(n)}); err != nil {
			return err
		}
	}
	res.PhysicalResourceId = id + "|ecs:service:DesiredCount|ecs"
	res.ResourceStatusReason = fmt.Sprintf("the desired count kept within %d-%d; scaling policies are not modelled", lo, hi)
	return nil
}

// capacity is a template's number, given as a number or a string; -1 when it is neither.
func capacity(v any) int {
	switch v := v.(type) {
	case float64:
		return int(v)
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return -1
}

func (d *deployer) loadBalancer(ctx context.Context, res *Resource, props map[string]any) error {
	delete(props, "LoadBalancerAttributes") // no load balancer attributes in ecslocal
	var in elb.CreateLoadBalancerInput
	if err := decode(props, &in); err != nil {
		return err
	}
	if in.Name == nil || *in.Name == "" {
		n := d.generatedName(res.LogicalResourceId, 32)
		n = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '-'
		}, n)
		in.Name = &n
	}
	out, err := d.s.o.ELB.CreateLoadBalancer(ctx, &in)
	if err != nil {
		return err
	}
	lb := out.LoadBalancers[0]
	arn := *lb.LoadBalancerArn
	res.PhysicalResourceId = arn
	res.attrs["LoadBalancerArn"] = arn
	res.attrs["LoadBalancerFullName"] = arn[strings.Index(arn, ":loadbalancer/")+len(":loadbalancer/"):]
	res.attrs["LoadBalancerName"] = *lb.LoadBalancerName
	res.attrs["DNSName"] = deref(lb.DNSName)
	res.attrs["CanonicalHostedZoneID"] = deref(lb.CanonicalHostedZoneId)
	sgs := []any{}
	for _, g := range lb.SecurityGroups {
		sgs = append(sgs, g)
	}
	res.attrs["SecurityGroups"] = sgs
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (d *deployer) targetGroup(ctx context.Context, res *Resource, props map[string]any) error {
	attrs, _ := props["TargetGroupAttributes"].([]any)
	delete(props, "TargetGroupAttributes")
	if m, ok := props["Matcher"].(map[string]any); ok {
		props["Matcher"] = map[string]any{"HttpCode": m["HttpCode"], "GrpcCode": m["GrpcCode"]}
	}
	var in elb.CreateTargetGroupInput
	if err := decode(props, &in); err != nil {
		return err
	}
	if in.Name == nil || *in.Name == "" {
		n := d.generatedName(res.LogicalResourceId, 32)
		in.Name = &n
	}
	out, err := d.s.o.ELB.CreateTargetGroup(ctx, &in)
	if err != nil {
		return err
	}
	tg := out.TargetGroups[0]
	arn := *tg.TargetGroupArn
	if len(attrs) > 0 {
		var mod elb.ModifyTargetGroupAttributesInput
		if err := decode(map[string]any{"Attributes": attrs}, &mod); err != nil {
			return err
		}
		mod.TargetGroupArn = &arn
		if _, err := d.s.o.ELB.ModifyTargetGroupAttributes(ctx, &mod); err != nil {
			return fmt.Errorf("TargetGroupAttributes: %w", err)
		}
	}
	res.PhysicalResourceId = arn
	res.attrs["TargetGroupArn"] = arn
	res.attrs["TargetGroupFullName"] = arn[strings.Index(arn, ":targetgroup/")+1:]
	res.attrs["TargetGroupName"] = *tg.TargetGroupName
	res.attrs["LoadBalancerArns"] = []any{}
	return nil
}

// actions rewrites forward actions to Lambda target groups (not modelled) as the fixed 404
// answer of a function that matches nothing, and drops what ecslocal does not read.
func (d *deployer) actions(v any) any {
	list, _ := v.([]any)
	for i, a := range list {
		m, _ := a.(map[string]any)
		if m == nil {
			continue
		}
		if arn, _ := m["TargetGroupArn"].(string); m["Type"] == "forward" && d.hasLambdaTargetGroup(arn) {
			list[i] = map[string]any{"Type": "fixed-response", "FixedResponseConfig": map[string]any{
				"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no route (a Lambda target group, not modelled by ecslocal)\n"}}
		}
	}
	return list
}

func (d *deployer) listener(ctx context.Context, res *Resource, props map[string]any) error {
	props["DefaultActions"] = d.actions(props["DefaultActions"])
	if p, _ := props["Protocol"].(string); p == "HTTPS" {
		// No certificates in ecslocal: the listener serves HTTP on its port.
		props["Protocol"] = "HTTP"
		delete(props, "Certificates")
		delete(props, "SslPolicy")
		res.ResourceStatusReason = "an HTTPS listener, created as HTTP on the same port: ecslocal has no certificates"
	}
	var in elb.CreateListenerInput
	if err := decode(props, &in); err != nil {
		return err
	}
	out, err := d.s.o.ELB.CreateListener(ctx, &in)
	if err != nil {
		return err
	}
	res.PhysicalResourceId = *out.Listeners[0].ListenerArn
	res.attrs["ListenerArn"] = res.PhysicalResourceId
	return nil
}

func (d *deployer) listenerRule(ctx context.Context, res *Resource, props map[string]any) error {
	props["Actions"] = d.actions(props["Actions"])
	if p, ok := props["Priority"].(float64); ok {
		props["Priority"] = int(p)
	}
	var in elb.CreateRuleInput
	if err := decode(props, &in); err != nil {
		return err
	}
	out, err := d.s.o.ELB.CreateRule(ctx, &in)
	if err != nil {
		return err
	}
	res.PhysicalResourceId = *out.Rules[0].RuleArn
	res.attrs["RuleArn"] = res.PhysicalResourceId
	return nil
}

func (d *deployer) alarm(res *Resource, props map[string]any) error {
	var in cloudwatch.Alarm
	if err := decode(props, &in); err != nil {
		return err
	}
	if in.AlarmName == "" {
		in.AlarmName = d.generatedName(res.LogicalResourceId, 255)
	}
	if _, set := props["ActionsEnabled"]; !set {
		in.ActionsEnabled = true
	}
	if err := d.s.o.CloudWatch.PutMetricAlarm(in); err != nil {
		return err
	}
	res.PhysicalResourceId = in.AlarmName
	res.attrs["Arn"] = fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", d.s.o.Region, d.s.o.Account, in.AlarmName)
	return nil
}

// function creates a Lambda function whose code is its cdk.out asset directory (the
// resource's aws:asset:path metadata); a function of a managed runtime (Node.js, Python, …)
// or with inline code is accepted and ignored: ecslocal runs OS-only runtimes' bootstraps.
func (d *deployer) function(res *Resource, props map[string]any, meta map[string]any) error {
	var in struct {
		FunctionName, Runtime, Handler string
		Timeout, MemorySize            int
		Environment                    struct{ Variables map[string]any }
		LoggingConfig                  struct{ LogGroup string }
	}
	if err := decode(props, &in); err != nil {
		return err
	}
	name := in.FunctionName
	if name == "" {
		name = d.generatedName(res.LogicalResourceId, 64)
	}
	arn := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", d.s.o.Region, d.s.o.Account, name)
	asset, _ := meta["aws:asset:path"].(string)
	if !strings.HasPrefix(in.Runtime, "provided") || asset == "" || d.assetDir == "" {
		d.ignore(res, fmt.Sprintf("Lambda function of runtime %s without an asset directory ecslocal can run: accepted and ignored (ecslocal runs provided.* bootstraps from cdk.out assets)", in.Runtime))
		res.PhysicalResourceId = name
		res.attrs["Arn"] = arn
		return nil
	}
	env := map[string]string{}
	for k, v := range in.Environment.Variables {
		env[k] = str(v)
	}
	dir := asset
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(d.assetDir, asset)
	}
	if _, err := d.s.o.Lambda.CreateFunction(lambda.Function{Name: name, Code: dir, Runtime: in.Runtime, Handler: in.Handler,
		Timeout: in.Timeout, MemorySize: in.MemorySize, Environment: env, LogGroup: in.LoggingConfig.LogGroup}); err != nil {
		return err
	}
	res.PhysicalResourceId = name
	res.attrs["Arn"] = arn
	return nil
}

// awsCustomResource carries out a Custom::AWS resource (the CDK's AwsCustomResource) in
// process: its Create call, when it is an ElasticLoadBalancingV2 createRule, becomes
// CreateRule, and its outputPaths (Rules.0.RuleArn) become attributes. Other calls are
// accepted and ignored.
func (d *deployer) awsCustomResource(ctx context.Context, res *Resource, props map[string]any) error {
	call, err := customCall(props, "Create")
	if err != nil {
		d.ignore(res, "Custom::AWS without a Create call ecslocal can read: accepted and ignored")
		return nil
	}
	if call.Service != "ElasticLoadBalancingV2" || call.Action != "createRule" {
		d.ignore(res, fmt.Sprintf("Custom::AWS call %s.%s is not modelled: accepted and ignored", call.Service, call.Action))
		return nil
	}
	call.Parameters["Actions"] = d.actions(call.Parameters["Actions"])
	var in elb.CreateRuleInput
	if err := decode(call.Parameters, &in); err != nil {
		return fmt.Errorf("Custom::AWS createRule: %w", err)
	}
	out, err := d.s.o.ELB.CreateRule(ctx, &in)
	if err != nil {
		return fmt.Errorf("Custom::AWS createRule: %w", err)
	}
	flat := map[string]any{}
	raw, _ := json.Marshal(out)
	var tree any
	_ = json.Unmarshal(raw, &tree)
	flatten("", tree, flat)
	for _, p := range call.OutputPaths {
		if v, ok := flat[p]; ok {
			res.attrs[p] = v
		}
	}
	res.PhysicalResourceId = call.PhysicalResourceId.ID
	if p := call.PhysicalResourceId.ResponsePath; p != "" {
		res.PhysicalResourceId = str(flat[p])
	}
	if res.PhysicalResourceId == "" {
		res.PhysicalResourceId = d.generatedName(res.LogicalResourceId, 64)
	}
	return nil
}

// flatten writes every leaf of v under its dotted path (Rules.0.RuleArn), as AwsCustomResource
// flattens an SDK response.
func flatten(prefix string, v any, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(join(prefix, k), e, out)
		}
	case []any:
		for i, e := range x {
			flatten(join(prefix, strconv.Itoa(i)), e, out)
		}
	default:
		out[prefix] = v
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// stackError is an error of the CloudFormation API with its awsQuery code.
type stackError struct{ code, message string }

func (e *stackError) Error() string { return e.code + ": " + e.message }
