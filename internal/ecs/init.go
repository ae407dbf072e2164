package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// LiveService is what a running service is made of, in the forms `proxy lint` and
// `proxy rollout deploy` read: the task definition as register-task-definition input, the
// service as describe-services prints it, and its first target group as describe-target-groups
// prints it, with describe-target-group-attributes' Attributes added (`jq -s add`).
type LiveService struct {
	TaskDefinitionARN string
	TaskDefinition    *TaskDefinition
	Service           json.RawMessage // {"services": [...]}, without events and deployments
	TargetGroupARN    string          // "" when the service has no load balancer
	TargetGroup       json.RawMessage // {"TargetGroups": [...], "Attributes": [...]}, or nil
}

// serviceNoise are describe-services members that say what happened, not how the service is
// set up: left out of the service file, which is read for settings and kept in version control.
var serviceNoise = []string{"events", "deployments", "taskSets", "runningCount", "pendingCount"}

// ReadLiveService reads a service, the task definition it runs, and its first target group:
// DescribeServices, DescribeTaskDefinition, DescribeTargetGroups and
// DescribeTargetGroupAttributes.
func ReadLiveService(ctx context.Context, c *ecssdk.Client, lb *elbv2.Client, cluster, service string) (*LiveService, error) {
	out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeServicesOutput, error) {
		return c.DescribeServices(ctx, &ecssdk.DescribeServicesInput{Cluster: nonEmpty(cluster), Services: []string{service}})
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeServices %s: %w", service, err)
	}
	if len(out.Services) == 0 {
		return nil, &notFoundError{what: "service " + service, reason: "not found in cluster " + orString(cluster, "default")}
	}
	svc := out.Services[0]
	live := &LiveService{TaskDefinitionARN: aws.ToString(svc.TaskDefinition)}
	if live.TaskDefinition, err = DescribeTaskDefinition(ctx, c, live.TaskDefinitionARN); err != nil {
		return nil, err
	}
	doc, err := apiJSON(svc, lowerFirst)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", service, err)
	}
	for _, k := range serviceNoise {
		delete(doc.(map[string]any), k)
	}
	if live.Service, err = json.MarshalIndent(map[string]any{"services": []any{doc}}, "", "  "); err != nil {
		return nil, err
	}
	if len(svc.LoadBalancers) == 0 || aws.ToString(svc.LoadBalancers[0].TargetGroupArn) == "" {
		return live, nil
	}
	live.TargetGroupARN = aws.ToString(svc.LoadBalancers[0].TargetGroupArn)
	groups, err := withTimeout(ctx, func(ctx context.Context) (*elbv2.DescribeTargetGroupsOutput, error) {
		return lb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{live.TargetGroupARN}})
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeTargetGroups %s: %w", live.TargetGroupARN, err)
	}
	attrs, err := withTimeout(ctx, func(ctx context.Context) (*elbv2.DescribeTargetGroupAttributesOutput, error) {
		return lb.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(live.TargetGroupARN)})
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeTargetGroupAttributes %s: %w", live.TargetGroupARN, err)
	}
	// The AWS CLI prints Elastic Load Balancing's members as the API names them, which are the
	// SDK's Go names.
	tg, err := apiJSON(map[string]any{"TargetGroups": groups.TargetGroups, "Attributes": attrs.Attributes}, nil)
	if err != nil {
		return nil, fmt.Errorf("target group %s: %w", live.TargetGroupARN, err)
	}
	live.TargetGroup, err = json.MarshalIndent(tg, "", "  ")
	return live, err
}

// apiJSON renders an SDK value as the AWS CLI prints it: members that are not set (nil, or
// an empty string) left out,
// and each member's name passed through rename (ECS names members in lowerCamelCase; the
// SDK's Go names are the same in UpperCamelCase).
func apiJSON(v any, rename func(string) string) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	return prune(doc, rename), nil
}

func prune(v any, rename func(string) string) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			if e == nil || e == "" {
				continue // not set (the SDK's zero enum is "")
			}
			if rename != nil {
				k = rename(k)
			}
			out[k] = prune(e, rename)
		}
		return out
	case []any:
		for i := range v {
			v[i] = prune(v[i], rename)
		}
	}
	return v
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || strings.ToUpper(s) == s {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
