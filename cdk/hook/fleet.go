package hook

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// AWSFleet is the Fleet of a deployed stack: the production rule through Elastic Load
// Balancing, the desired count through ECS. The function's role needs
// elasticloadbalancing:DescribeRules, elasticloadbalancing:DescribeTargetHealth and
// ecs:DescribeServices.
type AWSFleet struct {
	ELB            *elbv2.Client
	ECS            *ecs.Client
	ProductionRule string
}

// ProductionWeights reads the production rule's forward action.
func (f AWSFleet) ProductionWeights(ctx context.Context) (map[string]int, error) {
	out, err := f.ELB.DescribeRules(ctx, &elbv2.DescribeRulesInput{RuleArns: []string{f.ProductionRule}})
	if err != nil {
		return nil, fmt.Errorf("rule %s: %w", f.ProductionRule, err)
	}
	if len(out.Rules) != 1 {
		return nil, fmt.Errorf("rule %s: %d rules described, want 1", f.ProductionRule, len(out.Rules))
	}
	weights := map[string]int{}
	for _, a := range out.Rules[0].Actions {
		if a.ForwardConfig != nil {
			for _, tg := range a.ForwardConfig.TargetGroups {
				weights[aws.ToString(tg.TargetGroupArn)] += int(aws.ToInt32(tg.Weight))
			}
		} else if a.TargetGroupArn != nil {
			weights[aws.ToString(a.TargetGroupArn)] = 1
		}
	}
	if len(weights) == 0 {
		return nil, fmt.Errorf("rule %s: no forward action", f.ProductionRule)
	}
	return weights, nil
}

// TargetHealth lists a target group's targets.
func (f AWSFleet) TargetHealth(ctx context.Context, targetGroupARN string) ([]Target, error) {
	out, err := f.ELB.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(targetGroupARN)})
	if err != nil {
		return nil, fmt.Errorf("target group %s: %w", targetGroupARN, err)
	}
	var ts []Target
	for _, d := range out.TargetHealthDescriptions {
		t := Target{}
		if d.Target != nil {
			t.ID = aws.ToString(d.Target.Id)
		}
		if d.TargetHealth != nil {
			t.State, t.Reason = string(d.TargetHealth.State), string(d.TargetHealth.Reason)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// DesiredCount reads the service's desired count. The cluster is taken from the service's
// ARN (arn:aws:ecs:region:account:service/cluster/name).
func (f AWSFleet) DesiredCount(ctx context.Context, serviceARN string) (int, error) {
	_, rest, ok := strings.Cut(serviceARN, ":service/")
	cluster, _, hasCluster := strings.Cut(rest, "/")
	if !ok || !hasCluster {
		return 0, fmt.Errorf("service %q: not a service ARN with a cluster", serviceARN)
	}
	out, err := f.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{serviceARN}})
	if err != nil {
		return 0, fmt.Errorf("service %s: %w", serviceARN, err)
	}
	if len(out.Services) != 1 {
		reason := "not found"
		if len(out.Failures) > 0 {
			reason = aws.ToString(out.Failures[0].Reason)
		}
		return 0, fmt.Errorf("service %s: %s", serviceARN, reason)
	}
	n := int(out.Services[0].DesiredCount)
	if n < 1 {
		return 0, errors.New("service " + serviceARN + ": desired count 0")
	}
	return n, nil
}
