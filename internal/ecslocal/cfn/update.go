package cfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// UpdateParameter is one of UpdateStack's Parameters: a value, or the stack's current one.
type UpdateParameter struct {
	Key, Value       string
	UsePreviousValue bool
}

// serviceStableTimeout bounds how long an update waits for an ECS service to reach a steady
// state (CloudFormation waits up to three hours; a deployment here takes minutes).
const serviceStableTimeout = 30 * time.Minute

// Update updates the stack name (its name or ID) to the template body (nil: the stack's
// current template) with params, as UpdateStack does ("Update behaviors of stack
// resources",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html):
// each resource's properties are resolved and compared with those it was created or last
// updated with, and only the resources whose properties changed are updated, in dependency
// order; new resources are created, and removed ones deleted once every update has
// succeeded. A task definition is replaced (a new revision, whose Ref its dependents see); a
// service gets UpdateService with the changed members only, and the update waits for the
// service's deployment to complete; a Custom::AWS listener rule gets its Update call
// (modifyRule); target groups, listener rules and alarms are modified in place.
//
// Update returns once the stack is UPDATE_IN_PROGRESS; the update goes on in the
// background, until UPDATE_COMPLETE, or UPDATE_ROLLBACK_COMPLETE when a resource fails
// (StackStatusReason names it; what was updated is set back). A change ecslocal cannot
// apply (one that CloudFormation makes by replacing a resource ecslocal does not replace)
// fails the update before any resource is touched. An update that changes nothing is a
// ValidationError, "No updates are to be performed.", as in CloudFormation.
func (s *Service) Update(ctx context.Context, name string, body []byte, params []UpdateParameter) (*Stack, error) {
	s.mu.Lock()
	var st *Stack
	for _, c := range s.stacks {
		if (c.StackName == name || c.StackId == name) && c.StackStatus != "DELETE_COMPLETE" {
			st = c
		}
	}
	if st == nil {
		s.mu.Unlock()
		return nil, &stackError{"ValidationError", fmt.Sprintf("Stack [%s] does not exist", name)}
	}
	status, previous, oldParams := st.StackStatus, st.Template, st.Parameters
	s.mu.Unlock()
	switch status {
	case "CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE":
	default:
		return nil, &stackError{"ValidationError", fmt.Sprintf("Stack:%s is in %s state and can not be updated.", st.StackId, status)}
	}
	if body == nil {
		body = []byte(previous)
	}
	t, err := ParseTemplate(body)
	if err != nil {
		return nil, &stackError{"ValidationError", err.Error()}
	}
	values := map[string]string{}
	for _, p := range params {
		if _, ok := t.Parameters[p.Key]; !ok {
			return nil, &stackError{"ValidationError", fmt.Sprintf("Parameters: [%s] do not exist in the template", p.Key)}
		}
		if !p.UsePreviousValue {
			values[p.Key] = p.Value
			continue
		}
		i := slices.IndexFunc(oldParams, func(o Parameter) bool { return o.ParameterKey == p.Key })
		if i < 0 {
			return nil, &stackError{"ValidationError", fmt.Sprintf("Invalid input for parameter key %s. Cannot specify usePreviousValue as true for a parameter key not in the previous template", p.Key)}
		}
		values[p.Key] = oldParams[i].ParameterValue
	}
	r, err := s.resolver(st, t, values)
	if err != nil {
		return nil, &stackError{"ValidationError", err.Error()}
	}

	s.mu.Lock()
	if st.StackStatus != status {
		s.mu.Unlock()
		return nil, &stackError{"ValidationError", fmt.Sprintf("Stack:%s is in %s state and can not be updated.", st.StackId, st.StackStatus)}
	}
	old := map[string]*Resource{}
	for _, res := range st.Resources {
		old[res.LogicalResourceId] = res
	}
	s.mu.Unlock()
	u := &update{s: s, st: st, old: old, r: r, body: string(body)}
	changes, err := u.plan()
	if err != nil {
		return nil, &stackError{"ValidationError", err.Error()}
	}
	if len(changes) == 0 && u.sameOutputs() {
		return nil, &stackError{"ValidationError", "No updates are to be performed."}
	}

	s.mu.Lock()
	if st.StackStatus != status {
		s.mu.Unlock()
		return nil, &stackError{"ValidationError", fmt.Sprintf("Stack:%s is in %s state and can not be updated.", st.StackId, st.StackStatus)}
	}
	st.StackStatus, st.StackStatusReason = "UPDATE_IN_PROGRESS", "User Initiated"
	s.eventLocked(st, nil, st.StackStatus, st.StackStatusReason)
	for _, c := range changes {
		if c.blocked != "" {
			// Nothing was touched: the stack rolls back at once.
			res := *old[c.id]
			res.ResourceStatus, res.ResourceStatusReason, res.Timestamp = "UPDATE_FAILED", c.blocked, time.Now().UTC()
			s.eventLocked(st, &res, res.ResourceStatus, res.ResourceStatusReason)
			s.rolledBackLocked(st, c.id, c.blocked)
			s.mu.Unlock()
			s.log.Warn("stack update refused", "stack", st.StackName, "resource", c.id, "reason", c.blocked)
			return st, nil
		}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.updates.Add(1)
	s.cancels = append(s.cancels, cancel)
	s.mu.Unlock()
	go func() {
		defer s.updates.Done()
		defer cancel()
		u.apply(ctx)
	}()
	return st, nil
}

// Close stops the updates in progress (their stacks end UPDATE_ROLLBACK_FAILED or where the
// stop finds them) and waits for them.
func (s *Service) Close() {
	s.mu.Lock()
	for _, c := range s.cancels {
		c()
	}
	s.mu.Unlock()
	s.updates.Wait()
}

// rolledBackLocked ends an update that failed at resource id for reason, once what it
// changed is set back. The caller holds s.mu.
func (s *Service) rolledBackLocked(st *Stack, id, reason string) {
	st.StackStatus = "UPDATE_ROLLBACK_IN_PROGRESS"
	st.StackStatusReason = fmt.Sprintf("The following resource(s) failed to update: [%s]. %s: %s", id, id, reason)
	s.eventLocked(st, nil, st.StackStatus, st.StackStatusReason)
	st.StackStatus = "UPDATE_ROLLBACK_COMPLETE"
	s.eventLocked(st, nil, st.StackStatus, "")
}

// change is what an update does to one resource.
type change struct {
	id      string
	kind    string   // "create", "update" or "delete"
	keys    []string // the top-level properties that changed
	blocked string   // why ecslocal cannot make the change; "" when it can
}

// update is one UpdateStack's state: the stack's resources before it, and the resolver of
// the new template, whose refs and attributes follow the resources as they are updated.
type update struct {
	s    *Service
	st   *Stack
	old  map[string]*Resource
	r    *resolver
	body string
}

// replacedRef stands, while planning, for the Ref and attributes of a resource that the
// update creates or replaces: its dependents see a change.
const replacedRef = "ecslocal:replaced:"

// plan lists the changes the update makes, without making any: each resource's properties
// resolved against the resources as the update leaves them (a created or replaced
// resource's Ref and attributes are new).
func (u *update) plan() ([]change, error) {
	r := u.r.fork()
	order, err := r.t.order()
	if err != nil {
		return nil, err
	}
	var changes []change
	kept := map[string]bool{}
	for _, id := range order {
		def := r.t.Resources[id]
		if ok, err := r.include(id, def); err != nil {
			return nil, err
		} else if !ok {
			continue
		}
		kept[id] = true
		props, err := r.props(id, def)
		if err != nil {
			return nil, err
		}
		prev := u.old[id]
		c := change{id: id}
		switch {
		case prev == nil:
			c.kind = "create"
		case prev.ResourceType != def.Type:
			c.kind, c.blocked = "update", fmt.Sprintf("Type: %s → %s: CloudFormation replaces the resource, which ecslocal does not", prev.ResourceType, def.Type)
		default:
			c.keys = changedKeys(prev.props, props)
			if len(c.keys) == 0 {
				r.refs[id], r.attrs[id] = prev.PhysicalResourceId, prev.attrs
				continue
			}
			c.kind = "update"
			c.blocked = u.blocked(prev, c.keys)
		}
		changes = append(changes, c)
		if c.kind == "create" || replaces(def.Type) {
			r.refs[id], r.attrs[id] = replacedRef+id, map[string]any{ignoredAttr: true}
		} else {
			r.refs[id], r.attrs[id] = prev.PhysicalResourceId, prev.attrs
		}
	}
	ids := make([]string, 0, len(u.old))
	for id := range u.old {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if !kept[id] {
			changes = append(changes, change{id: id, kind: "delete", blocked: u.undeletable(u.old[id])})
		}
	}
	return changes, nil
}

// sameOutputs reports whether the new template's outputs, resolved against the resources
// as they are, equal the stack's.
func (u *update) sameOutputs() bool {
	r := u.r.fork()
	for id, res := range u.old {
		r.refs[id], r.attrs[id] = res.PhysicalResourceId, res.attrs
	}
	out, err := r.outputs()
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	return err == nil && reflect.DeepEqual(out, u.st.Outputs)
}

// fork is a copy of r with its own refs, attributes and conditions.
func (r *resolver) fork() *resolver {
	c := *r
	c.refs, c.attrs, c.conditions = map[string]any{}, map[string]map[string]any{}, map[string]bool{}
	for k, v := range r.refs {
		c.refs[k] = v
	}
	for k, v := range r.attrs {
		c.attrs[k] = v
	}
	return &c
}

// include reports whether the resource's Condition, if any, holds.
func (r *resolver) include(id string, def resourceDef) (bool, error) {
	if def.Condition == "" {
		return true, nil
	}
	ok, err := r.condition(def.Condition)
	if err != nil {
		return false, fmt.Errorf("resource %s: %w", id, err)
	}
	return ok, nil
}

// props is the resource's properties, resolved.
func (r *resolver) props(id string, def resourceDef) (map[string]any, error) {
	v, err := r.resolve(def.Properties)
	if err != nil {
		return nil, fmt.Errorf("resource %s: %w", id, err)
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return cloneProps(m), nil
}

// cloneProps is a deep copy of resolved properties, in their JSON form (numbers as float64).
func cloneProps(props map[string]any) map[string]any {
	raw, _ := json.Marshal(props)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// changedKeys are the top-level properties that differ between a and b, sorted.
func changedKeys(a, b map[string]any) []string {
	var keys []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !reflect.DeepEqual(v, w) {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// replaces reports whether every update of a resource of type typ is a replacement, as
// for an ECS task definition (each is a new revision).
func replaces(typ string) bool { return typ == "AWS::ECS::TaskDefinition" }

// updatable are the properties ecslocal updates in place, by resource type: what
// CloudFormation updates without replacement ("Update requires: No interruption") and
// ecslocal's APIs can change. nil means every property.
var updatable = map[string][]string{
	"AWS::ECS::TaskDefinition": nil, // replaced: a new revision
	"AWS::ECS::Service": {"AvailabilityZoneRebalancing", "CapacityProviderStrategy", "DeploymentConfiguration", "DesiredCount",
		"EnableECSManagedTags", "EnableExecuteCommand", "HealthCheckGracePeriodSeconds", "LoadBalancers", "NetworkConfiguration",
		"PlacementConstraints", "PlacementStrategies", "PlatformVersion", "PropagateTags", "ServiceConnectConfiguration",
		"ServiceRegistries", "TaskDefinition", "VolumeConfigurations", "VpcLatticeConfigurations"},
	"AWS::ElasticLoadBalancingV2::TargetGroup": {"HealthCheckEnabled", "HealthCheckIntervalSeconds", "HealthCheckPath", "HealthCheckPort",
		"HealthCheckProtocol", "HealthCheckTimeoutSeconds", "HealthyThresholdCount", "Matcher", "TargetGroupAttributes", "UnhealthyThresholdCount"},
	"AWS::ElasticLoadBalancingV2::ListenerRule":   {"Actions", "Conditions", "Priority"},
	"AWS::CloudWatch::Alarm":                      nil, // but AlarmName, which replaces it
	"AWS::ApplicationAutoScaling::ScalableTarget": {"MinCapacity", "MaxCapacity", "SuspendedState"},
	"Custom::AWS": nil, // its Update call
}

// blocked says why ecslocal cannot update res's changed properties keys, or "".
func (u *update) blocked(res *Resource, keys []string) string {
	if res.attrs[ignoredAttr] == true || res.attrs["ecslocal:lambdaTargetGroup"] == true {
		return "" // not modelled: the change is recorded
	}
	allowed, ok := updatable[res.ResourceType]
	if !ok {
		return fmt.Sprintf("ecslocal cannot update a resource of type %s in place (properties %s changed)", res.ResourceType, strings.Join(keys, ", "))
	}
	for _, k := range keys {
		if res.ResourceType == "AWS::CloudWatch::Alarm" && k == "AlarmName" ||
			allowed != nil && !slices.Contains(allowed, k) {
			return fmt.Sprintf("ecslocal cannot update property %s of %s: CloudFormation replaces the resource or updates it in a way ecslocal does not model", k, res.ResourceType)
		}
	}
	if res.ResourceType == "Custom::AWS" {
		if call, err := customCall(res.props, "Update"); err != nil || call.Service != "ElasticLoadBalancingV2" || call.Action != "modifyRule" {
			if _, created := res.attrs["Rules.0.RuleArn"]; created {
				return "ecslocal updates a Custom::AWS listener rule through its Update call, an ElasticLoadBalancingV2 modifyRule; this one has none"
			}
		}
	}
	return ""
}

// undeletable says why ecslocal cannot delete res, removed from the template, or "".
func (u *update) undeletable(res *Resource) string {
	switch {
	case res.attrs[ignoredAttr] == true, res.attrs["ecslocal:lambdaTargetGroup"] == true:
		return ""
	case res.ResourceType == "AWS::ECS::TaskDefinition", res.ResourceType == "AWS::ElasticLoadBalancingV2::ListenerRule",
		res.ResourceType == "AWS::CloudWatch::Alarm", res.ResourceType == "Custom::AWS",
		res.ResourceType == "AWS::ApplicationAutoScaling::ScalableTarget":
		return ""
	}
	return fmt.Sprintf("ecslocal cannot delete a resource of type %s, which the template no longer has", res.ResourceType)
}

// apply makes the update, then cleans up (deletes what was removed or replaced), or sets
// back what it changed when a resource fails.
func (u *update) apply(ctx context.Context) {
	s, st, r := u.s, u.st, u.r
	order, _ := r.t.order()
	d := &deployer{s: s, st: st, r: r, assetDir: st.assetDir}
	var undo []func(context.Context) error
	var cleanup []*Resource // replaced or removed resources, deleted once the update succeeds
	resources := []*Resource{}
	kept := map[string]bool{}
	fail := func(id string, res *Resource, err error) {
		s.mu.Lock()
		res.ResourceStatus, res.ResourceStatusReason, res.Timestamp = "UPDATE_FAILED", err.Error(), time.Now().UTC()
		if u.old[id] == nil {
			res.ResourceStatus = "CREATE_FAILED"
		}
		s.eventLocked(st, res, res.ResourceStatus, res.ResourceStatusReason)
		if prev := u.old[id]; prev != nil {
			prev.ResourceStatus, prev.ResourceStatusReason, prev.Timestamp = res.ResourceStatus, res.ResourceStatusReason, res.Timestamp
		}
		st.StackStatus = "UPDATE_ROLLBACK_IN_PROGRESS"
		st.StackStatusReason = fmt.Sprintf("The following resource(s) failed to update: [%s]. %s: %v", id, id, err)
		s.eventLocked(st, nil, st.StackStatus, st.StackStatusReason)
		s.mu.Unlock()
		s.log.Warn("stack update failed; rolling back", "stack", st.StackName, "resource", id, "error", err)
		var undoErr error
		for i := len(undo) - 1; i >= 0; i-- {
			undoErr = errors.Join(undoErr, undo[i](context.WithoutCancel(ctx)))
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if undoErr != nil {
			st.StackStatus, st.StackStatusReason = "UPDATE_ROLLBACK_FAILED", fmt.Sprintf("%s; setting it back: %v", st.StackStatusReason, undoErr)
			s.eventLocked(st, nil, st.StackStatus, st.StackStatusReason)
			return
		}
		// The resources are as they were.
		st.Resources = st.Resources[:0]
		for _, res := range u.old {
			if !strings.HasSuffix(res.ResourceStatus, "_COMPLETE") {
				res.ResourceStatus, res.ResourceStatusReason = "UPDATE_COMPLETE", ""
			}
			st.Resources = append(st.Resources, res)
		}
		slices.SortFunc(st.Resources, func(a, b *Resource) int { return strings.Compare(a.LogicalResourceId, b.LogicalResourceId) })
		st.StackStatus = "UPDATE_ROLLBACK_COMPLETE"
		s.eventLocked(st, nil, st.StackStatus, "")
	}
	for _, id := range order {
		def := r.t.Resources[id]
		if ok, err := r.include(id, def); err != nil || !ok {
			if err != nil {
				fail(id, &Resource{LogicalResourceId: id, ResourceType: def.Type}, err)
				return
			}
			continue
		}
		kept[id] = true
		prev := u.old[id]
		res := &Resource{LogicalResourceId: id, ResourceType: def.Type, StackName: st.StackName, StackId: st.StackId, Timestamp: time.Now().UTC()}
		props, err := r.props(id, def)
		if err != nil {
			fail(id, res, err)
			return
		}
		var keys []string
		if prev != nil {
			if keys = changedKeys(prev.props, props); len(keys) == 0 {
				resources = append(resources, prev)
				r.refs[id], r.attrs[id] = prev.PhysicalResourceId, prev.attrs
				continue
			}
		}
		inProgress, done := "CREATE_IN_PROGRESS", "CREATE_COMPLETE"
		if prev != nil {
			inProgress, done = "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"
		}
		s.mu.Lock()
		if prev != nil {
			// DescribeStackResources lists the stack's resources as they are until the update
			// ends: the one being updated says so, as in CloudFormation.
			prev.ResourceStatus, prev.ResourceStatusReason, prev.Timestamp = inProgress, "", res.Timestamp
		}
		s.eventLocked(st, res, inProgress, "")
		s.mu.Unlock()
		switch {
		case prev == nil || replaces(def.Type):
			if err := d.create(ctx, res, def); err != nil {
				fail(id, res, err)
				return
			}
			if prev != nil {
				cleanup = append(cleanup, prev)
			}
			created := *res
			undo = append(undo, func(ctx context.Context) error { return d.remove(ctx, &created) })
		default:
			*res = *prev
			res.attrs = maps.Clone(prev.attrs)
			res.Timestamp, res.ResourceStatusReason = time.Now().UTC(), ""
			back, err := d.update(ctx, res, prev, props, keys)
			if back != nil {
				undo = append(undo, back)
			}
			if err != nil {
				fail(id, res, err)
				return
			}
			res.props = props
		}
		res.ResourceStatus = done
		r.refs[id], r.attrs[id] = res.PhysicalResourceId, res.attrs
		resources = append(resources, res)
		s.event(st, res, done, res.ResourceStatusReason)
	}
	outputs, err := r.outputs()
	if err != nil {
		fail("Outputs", &Resource{LogicalResourceId: "Outputs"}, err)
		return
	}
	for id, res := range u.old {
		if !kept[id] {
			cleanup = append(cleanup, res)
		}
	}
	s.mu.Lock()
	st.StackStatus, st.StackStatusReason = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", ""
	s.eventLocked(st, nil, st.StackStatus, "")
	st.Resources, st.Outputs, st.Template, st.Parameters = resources, outputs, u.body, r.parameters()
	s.mu.Unlock()
	for _, res := range cleanup {
		gone := *res
		if err := d.remove(ctx, &gone); err != nil {
			// As in CloudFormation, a resource that cannot be deleted is left behind; the update
			// stands.
			s.event(st, &gone, "DELETE_FAILED", err.Error())
			continue
		}
		s.event(st, &gone, "DELETE_COMPLETE", "")
	}
	now := time.Now().UTC()
	s.mu.Lock()
	st.StackStatus, st.LastUpdatedTime = "UPDATE_COMPLETE", &now
	s.eventLocked(st, nil, st.StackStatus, "")
	s.mu.Unlock()
	s.log.Info("stack updated", "stack", st.StackName, "resources", len(resources))
}

// update changes res (a copy of prev) in place to props, whose keys changed; back, when not
// nil, sets it back as it was.
func (d *deployer) update(ctx context.Context, res, prev *Resource, props map[string]any, keys []string) (back func(context.Context) error, err error) {
	o := d.s.o
	switch {
	case res.attrs[ignoredAttr] == true, res.attrs["ecslocal:lambdaTargetGroup"] == true:
		res.ResourceStatusReason = "ecslocal does not model " + res.ResourceType + ": the change is accepted and ignored"
		return nil, nil
	case res.ResourceType == "AWS::ECS::Service":
		// Set back, the service gets its previous members again; ECS's own rollback may have
		// done so already, so the update back does not wait for a deployment.
		back = func(ctx context.Context) error { return d.updateService(ctx, res, prev.props, keys, false) }
		return back, d.updateService(ctx, res, props, keys, true)
	case res.ResourceType == "AWS::ElasticLoadBalancingV2::TargetGroup":
		back = func(ctx context.Context) error {
			return d.modifyTargetGroup(ctx, res.PhysicalResourceId, prev.props, keys)
		}
		return back, d.modifyTargetGroup(ctx, res.PhysicalResourceId, props, keys)
	case res.ResourceType == "AWS::ElasticLoadBalancingV2::ListenerRule":
		back = func(ctx context.Context) error { return d.modifyRule(ctx, res.PhysicalResourceId, prev.props, keys) }
		return back, d.modifyRule(ctx, res.PhysicalResourceId, props, keys)
	case res.ResourceType == "AWS::CloudWatch::Alarm":
		back = func(context.Context) error {
			return d.alarm(&Resource{attrs: map[string]any{}}, cloneProps(prev.props))
		}
		return back, d.alarm(res, cloneProps(props))
	case res.ResourceType == "AWS::ApplicationAutoScaling::ScalableTarget":
		return nil, d.scalableTarget(ctx, res, props)
	case res.ResourceType == "Custom::AWS" && o.ELB != nil:
		call, err := customCall(props, "Update")
		if err != nil || call.Action != "modifyRule" {
			res.ResourceStatusReason = "Custom::AWS without an Update call ecslocal models: accepted and ignored"
			return nil, nil
		}
		before, _ := customCall(prev.props, "Update")
		back = func(ctx context.Context) error {
			return d.customModifyRule(ctx, res.PhysicalResourceId, before.Parameters)
		}
		return back, d.customModifyRule(ctx, res.PhysicalResourceId, call.Parameters)
	}
	return nil, fmt.Errorf("ecslocal cannot update %s in place", res.ResourceType)
}

// updateService sends UpdateService with the changed members only (a template without
// DesiredCount leaves the count to Application Auto Scaling) and, with wait, waits as
// CloudFormation does for the service's deployment to complete.
func (d *deployer) updateService(ctx context.Context, res *Resource, props map[string]any, keys []string, wait bool) error {
	changed := map[string]any{}
	for _, k := range keys {
		if v, ok := props[k]; ok {
			changed[k] = v
		}
	}
	var in ecs.UpdateServiceInput
	if err := decode(changed, &in); err != nil {
		return err
	}
	if cluster, _ := res.props["Cluster"].(string); cluster != "" {
		in.Cluster = aws.String(cluster)
	}
	in.Service = aws.String(res.PhysicalResourceId)
	out, err := d.s.o.ECS.UpdateService(ctx, &in)
	if err != nil || !wait || len(out.Service.Deployments) == 0 {
		return err
	}
	id := aws.ToString(out.Service.Deployments[0].Id)
	ctx, cancel := context.WithTimeout(ctx, serviceStableTimeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		svc, err := d.s.o.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: in.Cluster, Services: []string{res.PhysicalResourceId}})
		if err == nil && len(svc.Services) == 1 {
			ss := svc.Services[0]
			i := slices.IndexFunc(ss.Deployments, func(dp ecstypes.Deployment) bool { return aws.ToString(dp.Id) == id })
			switch {
			case i < 0:
				return fmt.Errorf("service %s: deployment %s is gone before it completed", aws.ToString(ss.ServiceName), id)
			case ss.Deployments[i].RolloutState == ecstypes.DeploymentRolloutStateFailed:
				return fmt.Errorf("Error occurred during operation 'ECS Deployment Circuit Breaker was triggered'. service %s: deployment %s failed: %s",
					aws.ToString(ss.ServiceName), id, aws.ToString(ss.Deployments[i].RolloutStateReason))
			case ss.Deployments[i].RolloutState == ecstypes.DeploymentRolloutStateCompleted && len(ss.Deployments) == 1 && ss.RunningCount == ss.DesiredCount:
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s did not stabilize: %w", res.PhysicalResourceId, ctx.Err())
		case <-tick.C:
		}
	}
}

// modifyTargetGroup applies the target group's changed health check and attributes.
func (d *deployer) modifyTargetGroup(ctx context.Context, arn string, props map[string]any, keys []string) error {
	check := map[string]any{}
	for _, k := range keys {
		switch k {
		case "TargetGroupAttributes":
			var mod elb.ModifyTargetGroupAttributesInput
			if err := decode(map[string]any{"Attributes": props[k]}, &mod); err != nil {
				return err
			}
			mod.TargetGroupArn = &arn
			if _, err := d.s.o.ELB.ModifyTargetGroupAttributes(ctx, &mod); err != nil {
				return fmt.Errorf("TargetGroupAttributes: %w", err)
			}
		case "Matcher":
			if m, ok := props[k].(map[string]any); ok {
				check[k] = map[string]any{"HttpCode": m["HttpCode"], "GrpcCode": m["GrpcCode"]}
			}
		default:
			check[k] = props[k]
		}
	}
	if len(check) == 0 {
		return nil
	}
	var in elb.ModifyTargetGroupInput
	if err := decode(check, &in); err != nil {
		return err
	}
	in.TargetGroupArn = &arn
	_, err := d.s.o.ELB.ModifyTargetGroup(ctx, &in)
	return err
}

// modifyRule applies a listener rule's changed actions, conditions and priority.
func (d *deployer) modifyRule(ctx context.Context, arn string, props map[string]any, keys []string) error {
	mod := map[string]any{}
	for _, k := range keys {
		switch k {
		case "Actions":
			mod[k] = d.actions(cloneProps(props)[k])
		case "Conditions":
			mod[k] = props[k]
		case "Priority":
			p := capacity(props[k])
			if _, err := d.s.o.ELB.SetRulePriorities(ctx, &elb.SetRulePrioritiesInput{RulePriorities: []elbtypes.RulePriorityPair{{RuleArn: &arn, Priority: aws.Int32(int32(p))}}}); err != nil {
				return fmt.Errorf("property Priority: %w", err)
			}
		}
	}
	if len(mod) == 0 {
		return nil
	}
	var in elb.ModifyRuleInput
	if err := decode(mod, &in); err != nil {
		return err
	}
	in.RuleArn = &arn
	_, err := d.s.o.ELB.ModifyRule(ctx, &in)
	return err
}

// customModifyRule is a Custom::AWS Update call, modifyRule, on the rule arn: its
// parameters (the construct's name only Conditions, so that the weights ECS sets stay), with
// PHYSICAL:RESOURCEID: the rule.
func (d *deployer) customModifyRule(ctx context.Context, arn string, params map[string]any) error {
	params = cloneProps(params)
	for k, v := range params {
		if v == "PHYSICAL:RESOURCEID:" {
			params[k] = arn
		}
	}
	if a, ok := params["Actions"]; ok {
		params["Actions"] = d.actions(a)
	}
	var in elb.ModifyRuleInput
	if err := decode(params, &in); err != nil {
		return fmt.Errorf("Custom::AWS modifyRule: %w", err)
	}
	if _, err := d.s.o.ELB.ModifyRule(ctx, &in); err != nil {
		return fmt.Errorf("Custom::AWS modifyRule: %w", err)
	}
	return nil
}

// remove deletes a resource the update replaced or the template no longer has.
func (d *deployer) remove(ctx context.Context, res *Resource) error {
	o := d.s.o
	switch {
	case res.attrs[ignoredAttr] == true, res.attrs["ecslocal:lambdaTargetGroup"] == true:
		return nil
	case res.ResourceType == "AWS::ECS::TaskDefinition":
		_, err := o.ECS.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(res.PhysicalResourceId)})
		return err
	case res.ResourceType == "AWS::ElasticLoadBalancingV2::ListenerRule", res.ResourceType == "Custom::AWS":
		if !strings.Contains(res.PhysicalResourceId, ":listener-rule/") {
			return nil
		}
		_, err := o.ELB.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: aws.String(res.PhysicalResourceId)})
		return err
	case res.ResourceType == "AWS::CloudWatch::Alarm":
		return o.CloudWatch.DeleteAlarms([]string{res.PhysicalResourceId})
	case res.ResourceType == "AWS::ApplicationAutoScaling::ScalableTarget":
		return nil
	}
	return fmt.Errorf("ecslocal cannot delete a resource of type %s", res.ResourceType)
}

// customCall is a Custom::AWS resource's call (Create, Update or Delete), as the CDK's
// AwsCustomResource writes it.
func customCall(props map[string]any, which string) (awsCall, error) {
	var call awsCall
	raw, _ := props[which].(string)
	if raw == "" {
		return call, fmt.Errorf("Custom::AWS has no %s call", which)
	}
	if err := json.Unmarshal([]byte(raw), &call); err != nil {
		return call, fmt.Errorf("Custom::AWS %s: %w", which, err)
	}
	return call, nil
}

// awsCall is an AwsCustomResource SDK call.
type awsCall struct {
	Service, Action    string
	Parameters         map[string]any
	OutputPaths        []string
	PhysicalResourceId struct{ ID, ResponsePath string }
}
