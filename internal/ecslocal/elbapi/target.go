package elbapi

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// target is a registered target. Its health is what the last check said (initial until a
// checker reports); draining overrides it until drainUntil, when the target is gone.
type target struct {
	id         string
	port       int32
	state      types.TargetHealthStateEnum
	reason     types.TargetHealthReasonEnum
	desc       string
	drainUntil time.Time // zero unless deregistered
	// passes and fails count consecutive check results toward the thresholds.
	passes, fails int
}

// The reason descriptions of "Health checks for Application Load Balancer target groups"
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html).
const (
	descRegistration   = "Target registration is in progress"
	descDeregistration = "Target deregistration is in progress"
	descNotRegistered  = "Target is not registered to the target group"
	descNotInUse       = "Target group is not configured to receive traffic from the load balancer"
	descDisabled       = "Health checks are disabled"
)

// reap forgets the targets whose deregistration delay has passed. The caller holds a.mu.
func (a *API) reap(g *targetGroup) {
	now := a.now()
	kept := g.targets[:0]
	for _, t := range g.targets {
		if t.drainUntil.IsZero() || now.Before(t.drainUntil) {
			kept = append(kept, t)
		}
	}
	clear(g.targets[len(kept):])
	g.targets = kept
}

func (g *targetGroup) find(id string, port int32) *target {
	for _, t := range g.targets {
		if t.id == id && t.port == port {
			return t
		}
	}
	return nil
}

// checkTargets validates target descriptions against the group's target type and fills in the
// group's port.
func checkTargets(g *targetGroup, in []types.TargetDescription) ([]types.TargetDescription, error) {
	if len(in) == 0 {
		return nil, validation("Targets must contain at least one target")
	}
	out := make([]types.TargetDescription, 0, len(in))
	for _, t := range in {
		id := aws.ToString(t.Id)
		switch g.tg.TargetType {
		case types.TargetTypeEnumIp:
			if addr, err := netip.ParseAddr(id); err != nil || !addr.Is4() {
				return nil, wire.Errorf("InvalidTarget", "The IP address '%s' is not a valid IPv4 address", id)
			}
		case types.TargetTypeEnumInstance:
			if !strings.HasPrefix(id, "i-") {
				return nil, wire.Errorf("InvalidTarget", "The following targets are not valid instances: '%s'", id)
			}
		}
		if t.Port == nil {
			t.Port = g.tg.Port
		}
		if *t.Port < 1 || *t.Port > 65535 {
			return nil, validation("Port must be between 1 and 65535")
		}
		out = append(out, t)
	}
	return out, nil
}

// targetsOf resolves a target group and checks the targets named for it, forgetting the
// targets whose deregistration delay has passed. The caller holds a.mu.
func (a *API) targetsOf(arn *string, in []types.TargetDescription) (*targetGroup, []types.TargetDescription, error) {
	g := a.targetGroups[aws.ToString(arn)]
	if g == nil {
		return nil, nil, targetGroupNotFound()
	}
	targets, err := checkTargets(g, in)
	if err != nil {
		return nil, nil, err
	}
	a.reap(g)
	return g, targets, nil
}

// RegisterTargets registers targets; each starts in initial (Elb.RegistrationInProgress).
// Registering a draining target again takes it back.
func (a *API) RegisterTargets(_ context.Context, in *elb.RegisterTargetsInput) (*elb.RegisterTargetsOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, targets, err := a.targetsOf(in.TargetGroupArn, in.Targets)
	if err != nil {
		return nil, err
	}
	for _, d := range targets {
		t := g.find(*d.Id, *d.Port)
		if t == nil {
			t = &target{id: *d.Id, port: *d.Port}
			g.targets = append(g.targets, t)
		} else if t.drainUntil.IsZero() {
			continue
		}
		t.state, t.reason, t.desc = types.TargetHealthStateEnumInitial, types.TargetHealthReasonEnumRegistrationInProgress, descRegistration
		t.drainUntil = time.Time{}
		t.passes, t.fails = 0, 0
	}
	return &elb.RegisterTargetsOutput{}, nil
}

// DeregisterTargets starts draining targets for the group's deregistration delay; a group that
// receives no traffic, or a delay of 0, lets them go at once. Deregistering a target that is
// not registered succeeds.
func (a *API) DeregisterTargets(_ context.Context, in *elb.DeregisterTargetsInput) (*elb.DeregisterTargetsOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, targets, err := a.targetsOf(in.TargetGroupArn, in.Targets)
	if err != nil {
		return nil, err
	}
	delay, _ := strconv.Atoi(g.attrs["deregistration_delay.timeout_seconds"])
	inUse := len(a.loadBalancersOf(*g.tg.TargetGroupArn)) > 0
	now := a.now()
	for _, d := range targets {
		t := g.find(*d.Id, *d.Port)
		if t == nil || !t.drainUntil.IsZero() {
			continue
		}
		t.drainUntil = now.Add(time.Duration(delay) * time.Second)
		if !inUse || delay == 0 {
			t.drainUntil = now // reap removes it
		}
	}
	a.reap(g)
	return &elb.DeregisterTargetsOutput{}, nil
}

// health is the TargetHealth DescribeTargetHealth reports for t. The caller holds a.mu.
func (a *API) health(g *targetGroup, t *target, inUse bool) *types.TargetHealth {
	switch {
	case !t.drainUntil.IsZero():
		return &types.TargetHealth{State: types.TargetHealthStateEnumDraining, Reason: types.TargetHealthReasonEnumDeregistrationInProgress, Description: aws.String(descDeregistration)}
	case !aws.ToBool(g.tg.HealthCheckEnabled):
		return &types.TargetHealth{State: types.TargetHealthStateEnumUnavailable, Reason: types.TargetHealthReasonEnumHealthCheckDisabled, Description: aws.String(descDisabled)}
	case !inUse:
		return &types.TargetHealth{State: types.TargetHealthStateEnumUnused, Reason: types.TargetHealthReasonEnumNotInUse, Description: aws.String(descNotInUse)}
	case t.state == types.TargetHealthStateEnumHealthy:
		return &types.TargetHealth{State: t.state}
	}
	return &types.TargetHealth{State: t.state, Reason: t.reason, Description: aws.String(t.desc)}
}

// DescribeTargetHealth reports the health of the group's registered targets, or of the targets
// named (unused, Target.NotRegistered for one that is not registered).
func (a *API) DescribeTargetHealth(_ context.Context, in *elb.DescribeTargetHealthInput) (*elb.DescribeTargetHealthOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.targetGroups[aws.ToString(in.TargetGroupArn)]
	if g == nil {
		return nil, targetGroupNotFound()
	}
	a.reap(g)
	inUse := len(a.loadBalancersOf(*g.tg.TargetGroupArn)) > 0
	describe := func(t *target) types.TargetHealthDescription {
		port := strconv.Itoa(int(t.port))
		if p := aws.ToString(g.tg.HealthCheckPort); p != "traffic-port" {
			port = p
		}
		return types.TargetHealthDescription{
			Target:          &types.TargetDescription{Id: aws.String(t.id), Port: aws.Int32(t.port)},
			HealthCheckPort: aws.String(port),
			TargetHealth:    a.health(g, t, inUse),
		}
	}
	out := &elb.DescribeTargetHealthOutput{TargetHealthDescriptions: []types.TargetHealthDescription{}}
	if len(in.Targets) == 0 {
		for _, t := range g.targets {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, describe(t))
		}
		return out, nil
	}
	targets, err := checkTargets(g, in.Targets)
	if err != nil {
		return nil, err
	}
	for _, d := range targets {
		if t := g.find(*d.Id, *d.Port); t != nil {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, describe(t))
			continue
		}
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, types.TargetHealthDescription{
			Target: &types.TargetDescription{Id: d.Id, Port: d.Port},
			TargetHealth: &types.TargetHealth{State: types.TargetHealthStateEnumUnused,
				Reason: types.TargetHealthReasonEnumNotRegistered, Description: aws.String(descNotRegistered)},
		})
	}
	return out, nil
}
