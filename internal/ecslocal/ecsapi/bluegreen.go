package ecsapi

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// This file is the scheduler of the BLUE_GREEN, LINEAR and CANARY strategies, as "How Amazon
// ECS blue/green deployments work" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html),
// "Amazon ECS linear deployments" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-linear.html),
// the API reference's LinearConfiguration and CanaryConfiguration
// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CanaryConfiguration.html)
// and the API model's ServiceDeploymentLifecycleStage describe them. A deployment that
// replaces a running revision goes through the stages in ECS's order:
//
//	RECONCILE_SERVICE (only with more than one revision running), PRE_SCALE_UP,
//	SCALE_UP (the new, green, revision starts at the full desired count in the target group
//	the old, blue, one does not use), POST_SCALE_UP, TEST_TRAFFIC_SHIFT (the test listener
//	rule forwards to green), POST_TEST_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT (the
//	production rule's weights move to green: at once, in steps of stepPercent with
//	stepBakeTimeInMinutes between them, or canaryPercent, canaryBakeTimeInMinutes, then the
//	rest), POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME (bakeTimeInMinutes with both revisions
//	running), CLEAN_UP (blue drains and stops, as the ROLLING scheduler stops old tasks).
//
// Lifecycle hooks run at their stages (hooks.go), alarms are watched throughout (alarms.go).
// A failure before CLEAN_UP rolls back: both rules forward to blue again, then green drains
// and stops. The weights change through the load balancer's ModifyRule, as ECS does with
// the role of advancedConfiguration.

// phaseKind is what a phase of a blue/green deployment does besides running its hooks.
type phaseKind int

const (
	phaseHooks     phaseKind = iota // only the hooks
	phaseScaleUp                    // green reaches the desired count of healthy tasks
	phaseTestShift                  // the test rule forwards to green
	phaseProdShift                  // the production rule gives green percent
	phaseWait                       // wait, alarms watched
	phaseCleanUp                    // blue is stopped by the ROLLING scheduler
)

// phase is one step of a blue/green deployment.
type phase struct {
	stage   types.ServiceDeploymentLifecycleStage // the deployment's lifecycleStage meanwhile
	hooks   types.DeploymentLifecycleHookStage    // the hooks run in it; "" for none
	kind    phaseKind
	percent float64       // phaseProdShift: green's share of production traffic after it
	wait    time.Duration // phaseWait, unscaled
}

// blueGreen is the state of a blue/green deployment in progress.
type blueGreen struct {
	blueRevision, greenRevision string   // service revision ARNs
	blue, green                 []string // target groups, one per load balancer of the service
	phases                      []phase
	at                          int                // the phase in progress
	entered                     bool               // the phase's action ran and its hooks started
	since                       time.Time          // when the phase was entered
	hooks                       []*hookRun         // of the phase in progress
	past                        []*hookRun         // of the phases before
	cancel                      context.CancelFunc // ends the phase's hook invocations
	test, prod                  float64            // green's share of test and production traffic
	scaled                      bool               // SCALE_UP began: green is kept at the desired count
	done                        bool               // CLEAN_UP reached or rolled back: the ROLLING scheduler finishes
	stopped                     bool               // failed without rollback: blue serves, green is left as it is
}

// isBlueGreen reports whether strategy shifts traffic between two target groups.
func isBlueGreen(strategy types.DeploymentStrategy) bool {
	switch strategy {
	case types.DeploymentStrategyBlueGreen, types.DeploymentStrategyLinear, types.DeploymentStrategyCanary:
		return true
	}
	return false
}

// checkStrategy applies the rules of DeploymentConfiguration and LoadBalancer that tie a
// BLUE_GREEN, LINEAR or CANARY service to its load balancers, with the ranges of the API model.
// The messages are ecslocal's wording.
func checkStrategy(dc *types.DeploymentConfiguration, lbs []types.LoadBalancer) error {
	if !isBlueGreen(dc.Strategy) {
		return nil
	}
	for i, lb := range lbs {
		ac := lb.AdvancedConfiguration
		if ac == nil || aws.ToString(ac.AlternateTargetGroupArn) == "" || aws.ToString(ac.ProductionListenerRule) == "" {
			return invalidParameter("loadBalancers[%d]: the %s strategy needs advancedConfiguration with alternateTargetGroupArn and productionListenerRule.", i, dc.Strategy)
		}
		if *ac.AlternateTargetGroupArn == aws.ToString(lb.TargetGroupArn) {
			return invalidParameter("loadBalancers[%d]: advancedConfiguration.alternateTargetGroupArn must differ from targetGroupArn.", i)
		}
	}
	if b := dc.BakeTimeInMinutes; b != nil && (*b < 0 || *b > 1440) {
		return invalidParameter("bakeTimeInMinutes must be between 0 and 1440.")
	}
	if l := dc.LinearConfiguration; l != nil {
		if p := l.StepPercent; p != nil && (*p < 3 || *p > 100) {
			return invalidParameter("linearConfiguration.stepPercent must be between 3.0 and 100.0.")
		}
		if b := l.StepBakeTimeInMinutes; b != nil && (*b < 0 || *b > 1440) {
			return invalidParameter("linearConfiguration.stepBakeTimeInMinutes must be between 0 and 1440.")
		}
	}
	if c := dc.CanaryConfiguration; c != nil {
		if p := c.CanaryPercent; p != nil && (*p < 0.1 || *p > 100) {
			return invalidParameter("canaryConfiguration.canaryPercent must be between 0.1 and 100.0.")
		}
		if b := c.CanaryBakeTimeInMinutes; b != nil && (*b < 0 || *b > 1440) {
			return invalidParameter("canaryConfiguration.canaryBakeTimeInMinutes must be between 0 and 1440.")
		}
	}
	for i, h := range dc.LifecycleHooks {
		if h.TargetType == types.DeploymentLifecycleHookTargetTypePause {
			for _, st := range h.LifecycleStages {
				if st == types.DeploymentLifecycleHookStageTestTrafficShift || st == types.DeploymentLifecycleHookStageProductionTrafficShift {
					return invalidParameter("lifecycleHooks[%d]: PAUSE hooks cannot be configured at the %s stage.", i, st)
				}
			}
		} else if aws.ToString(h.HookTargetArn) == "" {
			return invalidParameter("lifecycleHooks[%d]: hookTargetArn is required for an AWS_LAMBDA hook.", i)
		}
		if len(h.LifecycleStages) == 0 {
			return invalidParameter("lifecycleHooks[%d]: lifecycleStages is required.", i)
		}
	}
	return nil
}

// shiftSteps is green's share of production traffic after each production traffic shift, and
// the bake after each step but the last: all at once for BLUE_GREEN; stepPercent at a time
// (default 10, stepBakeTimeInMinutes default 6) for LINEAR; canaryPercent (default 5,
// canaryBakeTimeInMinutes default 10) then the rest for CANARY.
func shiftSteps(dc *types.DeploymentConfiguration) (steps []float64, bake time.Duration) {
	switch dc.Strategy {
	case types.DeploymentStrategyLinear:
		step, minutes := 10.0, int32(6)
		if l := dc.LinearConfiguration; l != nil {
			step = aws.ToFloat64(orFloat(l.StepPercent, 10))
			minutes = aws.ToInt32(orInt(l.StepBakeTimeInMinutes, 6))
		}
		for p := step; ; p += step {
			if p >= 100-1e-9 {
				steps = append(steps, 100)
				break
			}
			steps = append(steps, math.Round(p*10)/10)
		}
		return steps, time.Duration(minutes) * time.Minute
	case types.DeploymentStrategyCanary:
		pct, minutes := 5.0, int32(10)
		if c := dc.CanaryConfiguration; c != nil {
			pct = aws.ToFloat64(orFloat(c.CanaryPercent, 5))
			minutes = aws.ToInt32(orInt(c.CanaryBakeTimeInMinutes, 10))
		}
		if pct >= 100 {
			return []float64{100}, 0
		}
		return []float64{pct, 100}, time.Duration(minutes) * time.Minute
	}
	return []float64{100}, 0
}

func orFloat(p *float64, def float64) *float64 {
	if p == nil {
		return &def
	}
	return p
}

func orInt(p *int32, def int32) *int32 {
	if p == nil {
		return &def
	}
	return p
}

// blueGreenPhases lays out the phases of a deployment from sources revisions.
func blueGreenPhases(dc *types.DeploymentConfiguration, sources int) []phase {
	var ps []phase
	if sources > 1 {
		ps = append(ps, phase{stage: types.ServiceDeploymentLifecycleStageReconcileService, hooks: types.DeploymentLifecycleHookStageReconcileService})
	}
	ps = append(ps,
		phase{stage: types.ServiceDeploymentLifecycleStagePreScaleUp, hooks: types.DeploymentLifecycleHookStagePreScaleUp},
		phase{stage: types.ServiceDeploymentLifecycleStageScaleUp, kind: phaseScaleUp},
		phase{stage: types.ServiceDeploymentLifecycleStagePostScaleUp, hooks: types.DeploymentLifecycleHookStagePostScaleUp},
		phase{stage: types.ServiceDeploymentLifecycleStageTestTrafficShift, hooks: types.DeploymentLifecycleHookStageTestTrafficShift, kind: phaseTestShift},
		phase{stage: types.ServiceDeploymentLifecycleStagePostTestTrafficShift, hooks: types.DeploymentLifecycleHookStagePostTestTrafficShift},
	)
	steps, bake := shiftSteps(dc)
	for i, p := range steps {
		// PRE_PRODUCTION_TRAFFIC_SHIFT is a hook stage, not a lifecycleStage of the record.
		ps = append(ps,
			phase{stage: types.ServiceDeploymentLifecycleStageProductionTrafficShift, hooks: types.DeploymentLifecycleHookStagePreProductionTrafficShift},
			phase{stage: types.ServiceDeploymentLifecycleStageProductionTrafficShift, hooks: types.DeploymentLifecycleHookStageProductionTrafficShift, kind: phaseProdShift, percent: p})
		if i < len(steps)-1 && bake > 0 {
			ps = append(ps, phase{stage: types.ServiceDeploymentLifecycleStageProductionTrafficShift, kind: phaseWait, wait: bake})
		}
	}
	ps = append(ps,
		phase{stage: types.ServiceDeploymentLifecycleStagePostProductionTrafficShift, hooks: types.DeploymentLifecycleHookStagePostProductionTrafficShift},
		phase{stage: types.ServiceDeploymentLifecycleStageBakeTime, kind: phaseWait, wait: time.Duration(aws.ToInt32(dc.BakeTimeInMinutes)) * time.Minute},
		phase{stage: types.ServiceDeploymentLifecycleStageCleanUp, kind: phaseCleanUp},
	)
	return ps
}

// resolveTargetGroups chooses the target group of each load balancer that a new revision's
// tasks register with: for a blue/green deployment from a running revision, the one of
// targetGroupArn and alternateTargetGroupArn that the running revision does not use; else
// the running revision's when it is one of the two, else targetGroupArn.
func resolveTargetGroups(strategy types.DeploymentStrategy, lbs []types.LoadBalancer, prev *revision) []types.ServiceRevisionLoadBalancer {
	out := make([]types.ServiceRevisionLoadBalancer, 0, len(lbs))
	for i, lb := range lbs {
		tg, alt := aws.ToString(lb.TargetGroupArn), ""
		var rule *string
		if ac := lb.AdvancedConfiguration; ac != nil {
			alt, rule = aws.ToString(ac.AlternateTargetGroupArn), ac.ProductionListenerRule
		}
		chosen := tg
		if prev != nil && prev.r.ResolvedConfiguration != nil && i < len(prev.r.ResolvedConfiguration.LoadBalancers) {
			old := aws.ToString(prev.r.ResolvedConfiguration.LoadBalancers[i].TargetGroupArn)
			switch {
			case isBlueGreen(strategy) && old == tg && alt != "":
				chosen = alt
			case isBlueGreen(strategy) && old == alt:
				chosen = tg
			case old == alt && alt != "":
				chosen = alt
			}
		}
		out = append(out, types.ServiceRevisionLoadBalancer{TargetGroupArn: aws.String(chosen), ProductionListenerRule: rule})
	}
	return out
}

// revisionLoadBalancers are the load balancers a task of the service's deployment id
// registers with: its revision's, each with the target group resolved for the revision.
// The caller holds a.mu.
func (a *API) revisionLoadBalancers(s *service, id string) []types.LoadBalancer {
	r := a.revisionOfDeployment(id)
	if r == nil || r.r.ResolvedConfiguration == nil || len(r.r.ResolvedConfiguration.LoadBalancers) != len(r.r.LoadBalancers) {
		return s.s.LoadBalancers
	}
	out := make([]types.LoadBalancer, len(r.r.LoadBalancers))
	for i, lb := range r.r.LoadBalancers {
		lb.TargetGroupArn = r.r.ResolvedConfiguration.LoadBalancers[i].TargetGroupArn
		out[i] = lb
	}
	return out
}

// newBlueGreen is the state of a deployment from blue to green, nil when the strategy is
// ROLLING or there is no running revision to shift traffic from (the first deployment starts
// its tasks as ROLLING does). The caller holds a.mu.
func (a *API) newBlueGreen(dc *types.DeploymentConfiguration, blue, green *revision, sources int) *blueGreen {
	if !isBlueGreen(dc.Strategy) || blue == nil {
		return nil
	}
	bg := &blueGreen{blueRevision: *blue.r.ServiceRevisionArn, greenRevision: *green.r.ServiceRevisionArn, phases: blueGreenPhases(dc, sources)}
	for i := range green.r.ResolvedConfiguration.LoadBalancers {
		bg.green = append(bg.green, aws.ToString(green.r.ResolvedConfiguration.LoadBalancers[i].TargetGroupArn))
		b := ""
		if rc := blue.r.ResolvedConfiguration; rc != nil && i < len(rc.LoadBalancers) {
			b = aws.ToString(rc.LoadBalancers[i].TargetGroupArn)
		}
		bg.blue = append(bg.blue, b)
	}
	return bg
}

// stepBlueGreen advances a blue/green deployment as far as it can go in this pass:
// greenLive are the green tasks not stopping, greenHealthy those that count as healthy.
// It reports whether it holds the service (the ROLLING scheduler is to do nothing more in
// this pass): a deployment whose stop was requested (STOP_REQUESTED, not carried out) stays
// where it is. The caller holds a.mu.
func (a *API) stepBlueGreen(ctx context.Context, s *service, cur *deployment, greenLive, greenHealthy int) bool {
	bg := cur.bg
	if bg == nil || bg.done {
		return false
	}
	if cur.d.Status != types.ServiceDeploymentStatusInProgress {
		return true
	}
	d := int(s.s.DesiredCount)
	for !bg.done {
		p := bg.phases[bg.at]
		if !bg.entered {
			if err := a.enterPhase(ctx, s, cur, p); err != nil {
				a.rollBackOrStop(ctx, s, cur, err.Error(), true)
				return false
			}
			if bg.done {
				return false // CLEAN_UP: the ROLLING scheduler stops blue
			}
		}
		if started := 0; bg.scaled {
			for ; greenLive < d && aws.ToString(s.s.Status) == "ACTIVE"; greenLive++ {
				a.startServiceTask(s, *s.s.Deployments[0].Id)
				started++
			}
			if started > 0 {
				a.addEvent(s, fmt.Sprintf("(service %s) has started %d tasks: %s.", *s.s.ServiceName, started, a.lastStarted(s, started)))
			}
		}
		ok, failure := a.hooksSettled(cur)
		if failure != "" {
			a.rollBackOrStop(ctx, s, cur, failure, true)
			return false
		}
		switch p.kind {
		case phaseScaleUp:
			ok = ok && greenHealthy >= d
		case phaseWait:
			ok = ok && !a.now().Before(bg.since.Add(a.scaled(p.wait)))
		}
		if !ok {
			return true
		}
		bg.endPhase()
		bg.at++
	}
	return false
}

// endPhase stops what is left of the phase's hook invocations.
func (bg *blueGreen) endPhase() {
	if bg.cancel != nil {
		bg.cancel()
		bg.cancel = nil
	}
	bg.entered, bg.past, bg.hooks = false, append(bg.past, bg.hooks...), nil
}

// enterPhase records the phase's stage, carries out its action and starts its hooks. The
// caller holds a.mu.
func (a *API) enterPhase(ctx context.Context, s *service, cur *deployment, p phase) error {
	bg := cur.bg
	bg.entered, bg.since = true, a.now()
	if cur.d.LifecycleStage != p.stage {
		cur.d.LifecycleStage, cur.d.UpdatedAt = p.stage, a.timestamp()
	}
	switch p.kind {
	case phaseScaleUp:
		bg.scaled = true
	case phaseTestShift:
		if err := a.setWeights(ctx, s, cur, 100, bg.prod); err != nil {
			return err
		}
	case phaseProdShift:
		if err := a.setWeights(ctx, s, cur, bg.test, p.percent); err != nil {
			return err
		}
	case phaseCleanUp:
		bg.done = true
		return nil
	}
	hctx, cancel := context.WithCancel(ctx)
	bg.cancel = cancel
	a.startHooks(hctx, s, cur, p.hooks)
	return nil
}

// setWeights points green's share of test and production traffic (percent) at the rules of
// every load balancer, and records the requested weights on the revisions. The caller holds
// a.mu.
func (a *API) setWeights(ctx context.Context, s *service, cur *deployment, test, prod float64) error {
	bg := cur.bg
	if a.lb != nil {
		for i, lb := range s.s.LoadBalancers {
			ac := lb.AdvancedConfiguration
			if ac == nil || i >= len(bg.green) {
				continue
			}
			if err := a.forwardWeights(ctx, aws.ToString(ac.ProductionListenerRule), bg.blue[i], bg.green[i], prod); err != nil {
				return err
			}
			if r := aws.ToString(ac.TestListenerRule); r != "" {
				if err := a.forwardWeights(ctx, r, bg.blue[i], bg.green[i], test); err != nil {
					return err
				}
			}
		}
	}
	if bg.test != test || bg.prod != prod {
		a.addEvent(s, fmt.Sprintf("(service %s) shifted traffic: production %g%%, test %g%% to (service-revision %s).", *s.s.ServiceName, prod, test, lastPart(bg.greenRevision)))
	}
	bg.test, bg.prod = test, prod
	cur.d.TargetServiceRevision.RequestedTestTrafficWeight = aws.Float64(test)
	cur.d.TargetServiceRevision.RequestedProductionTrafficWeight = aws.Float64(prod)
	for i := range cur.d.SourceServiceRevisions {
		src := &cur.d.SourceServiceRevisions[i]
		if aws.ToString(src.Arn) == bg.blueRevision {
			src.RequestedTestTrafficWeight, src.RequestedProductionTrafficWeight = aws.Float64(100-test), aws.Float64(100-prod)
		}
	}
	cur.d.UpdatedAt = a.timestamp()
	return nil
}

// forwardWeights rewrites the forward action of a listener rule (or of a listener's default
// rule, when ruleARN names a listener) so that green gets percent of its requests and blue
// the rest, through DescribeRules and ModifyRule. Both groups must be in the forward action,
// as ECS requires of the production and test rules. ALB weights are integers: percent is
// rounded.
func (a *API) forwardWeights(ctx context.Context, ruleARN, blue, green string, percent float64) error {
	in := &elb.DescribeRulesInput{RuleArns: []string{ruleARN}}
	if strings.Contains(ruleARN, ":listener/") {
		in = &elb.DescribeRulesInput{ListenerArn: aws.String(ruleARN)}
	}
	out, err := a.lb.DescribeRules(ctx, in)
	if err != nil {
		return fmt.Errorf("listener rule %s: %w", ruleARN, err)
	}
	var rule *elbtypes.Rule
	for i := range out.Rules {
		if in.ListenerArn == nil || aws.ToBool(out.Rules[i].IsDefault) {
			rule = &out.Rules[i]
			break
		}
	}
	if rule == nil {
		return fmt.Errorf("listener rule %s: not found", ruleARN)
	}
	g := int32(math.Round(percent))
	actions := rule.Actions
	found := 0
	for i := range actions {
		fc := actions[i].ForwardConfig
		if actions[i].Type != elbtypes.ActionTypeEnumForward || fc == nil {
			continue
		}
		for j := range fc.TargetGroups {
			switch aws.ToString(fc.TargetGroups[j].TargetGroupArn) {
			case green:
				fc.TargetGroups[j].Weight = aws.Int32(g)
				found++
			case blue:
				fc.TargetGroups[j].Weight = aws.Int32(100 - g)
				found++
			}
		}
		actions[i].TargetGroupArn = nil
	}
	if found < 2 {
		return fmt.Errorf("listener rule %s: its forward action must name both target groups %s and %s", ruleARN, blue, green)
	}
	if _, err := a.lb.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: rule.RuleArn, Actions: actions}); err != nil {
		return fmt.Errorf("listener rule %s: %w", ruleARN, err)
	}
	return nil
}

// rollBackOrStop ends a deployment that failed for reason: rolled back when rollback is set
// and there is a revision to go back to, else STOPPED. The caller holds a.mu.
func (a *API) rollBackOrStop(ctx context.Context, s *service, cur *deployment, reason string, rollback bool) {
	p := &s.s.Deployments[0]
	p.RolloutState, p.RolloutStateReason, p.UpdatedAt = types.DeploymentRolloutStateFailed, aws.String(reason), a.timestamp()
	a.addEvent(s, fmt.Sprintf("(service %s) (deployment %s) deployment failed: %s", *s.s.ServiceName, *p.Id, reason))
	if !rollback || len(cur.d.SourceServiceRevisions) == 0 {
		a.stopBlueGreen(ctx, s, cur)
		now := a.timestamp()
		cur.d.Status, cur.d.StatusReason, cur.d.StoppedAt, cur.d.UpdatedAt = types.ServiceDeploymentStatusStopped, aws.String(reason), now, now
		return
	}
	a.rollBack(ctx, s, cur, reason, "Rolling back to deploymentId %s.")
}

// stopBlueGreen ends a blue/green deployment that failed without rollback: blue serves
// again, and the scheduler neither starts nor stops the service's tasks until the next
// deployment (it still replaces tasks that fail). The caller holds a.mu.
func (a *API) stopBlueGreen(ctx context.Context, s *service, cur *deployment) {
	if cur.bg != nil {
		a.restoreBlue(ctx, s, cur)
		cur.bg.stopped = true
	}
}

// rollBackHooks invokes again, as ECS does during a rollback, the TEST_TRAFFIC_SHIFT hooks when
// test traffic had moved and the PRODUCTION_TRAFFIC_SHIFT hooks when production traffic had,
// with the weights back on blue. The rollback does not wait for them; their outcomes are in
// lifecycleHookDetails. The caller holds a.mu, after restoreBlue.
func (a *API) rollBackHooks(ctx context.Context, s *service, cur *deployment, test, prod bool) {
	bg := cur.bg
	for _, st := range []struct {
		moved bool
		stage types.DeploymentLifecycleHookStage
	}{{test, types.DeploymentLifecycleHookStageTestTrafficShift}, {prod, types.DeploymentLifecycleHookStageProductionTrafficShift}} {
		if st.moved {
			a.startHooks(ctx, s, cur, st.stage)
			bg.past, bg.hooks = append(bg.past, bg.hooks...), nil
		}
	}
}

// restoreBlue ends a blue/green deployment's phases and points both rules at blue again;
// the ROLLING scheduler then stops green. A failure to restore is an event: nothing else can
// be done about it. The caller holds a.mu.
func (a *API) restoreBlue(ctx context.Context, s *service, cur *deployment) {
	bg := cur.bg
	if bg == nil || bg.done {
		return
	}
	bg.endPhase()
	bg.done = true
	if err := a.setWeights(ctx, s, cur, 0, 0); err != nil {
		a.addEvent(s, fmt.Sprintf("(service %s) failed to shift traffic back to (service-revision %s): %v", *s.s.ServiceName, lastPart(bg.blueRevision), err))
	}
}
