package ecsapi

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

type taskDefinition struct {
	td types.TaskDefinition
}

// familyName is the family name rule of RegisterTaskDefinition: "Up to 255 letters
// (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
var familyName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// RegisterTaskDefinition registers the next revision of a family.
func (a *API) RegisterTaskDefinition(_ context.Context, in *ecs.RegisterTaskDefinitionInput) (*ecs.RegisterTaskDefinitionOutput, error) {
	family := aws.ToString(in.Family)
	if !familyName.MatchString(family) {
		return nil, clientError("Family contains invalid characters or is not between 1 and 255 characters.")
	}
	if len(in.ContainerDefinitions) == 0 {
		return nil, clientError("Container list cannot be empty.")
	}
	names := map[string]bool{}
	for _, c := range in.ContainerDefinitions {
		name := aws.ToString(c.Name)
		if name == "" {
			return nil, clientError("Container.name should not be null or empty.")
		}
		if aws.ToString(c.Image) == "" {
			return nil, clientError("Container.image should not be null or empty.")
		}
		if names[name] {
			return nil, clientError("Duplicate container name: %s.", name)
		}
		names[name] = true
	}
	if err := checkDependencies(in.ContainerDefinitions); err != nil {
		return nil, err
	}
	if slices.Contains(in.RequiresCompatibilities, types.CompatibilityFargate) && in.NetworkMode != types.NetworkModeAwsvpc {
		return nil, clientError("Fargate only supports network mode ‘awsvpc’.")
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	rev := int32(len(a.families[family]) + 1)
	td := types.TaskDefinition{
		TaskDefinitionArn:       aws.String(a.arn(fmt.Sprintf("task-definition/%s:%d", family, rev))),
		Family:                  aws.String(family),
		Revision:                rev,
		ContainerDefinitions:    in.ContainerDefinitions,
		Cpu:                     in.Cpu,
		Memory:                  in.Memory,
		EphemeralStorage:        in.EphemeralStorage,
		EnableFaultInjection:    in.EnableFaultInjection,
		ExecutionRoleArn:        in.ExecutionRoleArn,
		TaskRoleArn:             in.TaskRoleArn,
		IpcMode:                 in.IpcMode,
		PidMode:                 in.PidMode,
		NetworkMode:             in.NetworkMode,
		PlacementConstraints:    in.PlacementConstraints,
		ProxyConfiguration:      in.ProxyConfiguration,
		RequiresCompatibilities: in.RequiresCompatibilities,
		RuntimePlatform:         in.RuntimePlatform,
		Volumes:                 in.Volumes,
		Status:                  types.TaskDefinitionStatusActive,
		Compatibilities:         []types.Compatibility{types.CompatibilityEc2},
		RegisteredAt:            a.timestamp(),
		RegisteredBy:            aws.String(fmt.Sprintf("arn:aws:iam::%s:root", a.account)),
	}
	if td.NetworkMode == "" {
		td.NetworkMode = types.NetworkModeBridge
	}
	if td.NetworkMode == types.NetworkModeAwsvpc {
		td.Compatibilities = append(td.Compatibilities, types.CompatibilityFargate)
	}
	a.families[family] = append(a.families[family], &taskDefinition{td: td})
	a.setTags(*td.TaskDefinitionArn, in.Tags)
	return &ecs.RegisterTaskDefinitionOutput{TaskDefinition: wire.Clone(&td), Tags: a.tagList(*td.TaskDefinitionArn)}, nil
}

// lookupTaskDefinition resolves family, family:revision or a task definition ARN; a bare
// family is its latest ACTIVE revision. The caller holds a.mu.
func (a *API) lookupTaskDefinition(ref string) *taskDefinition {
	if strings.HasPrefix(ref, "arn:") {
		ref = lastPart(ref)
	}
	family, revText, hasRev := strings.Cut(ref, ":")
	revs := a.families[family]
	if !hasRev {
		for i := len(revs) - 1; i >= 0; i-- {
			if revs[i].td.Status == types.TaskDefinitionStatusActive {
				return revs[i]
			}
		}
		return nil
	}
	n, err := strconv.Atoi(revText)
	if err != nil || n < 1 || n > len(revs) {
		return nil
	}
	return revs[n-1]
}

// DescribeTaskDefinition describes a task definition revision.
func (a *API) DescribeTaskDefinition(_ context.Context, in *ecs.DescribeTaskDefinitionInput) (*ecs.DescribeTaskDefinitionOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	td := a.lookupTaskDefinition(aws.ToString(in.TaskDefinition))
	if td == nil {
		return nil, clientError("Unable to describe task definition.")
	}
	out := &ecs.DescribeTaskDefinitionOutput{TaskDefinition: wire.Clone(&td.td)}
	if slices.Contains(in.Include, types.TaskDefinitionFieldTags) {
		out.Tags = a.tagList(*td.td.TaskDefinitionArn)
	}
	return out, nil
}

// ListTaskDefinitions lists revision ARNs, oldest first unless sort is DESC.
func (a *API) ListTaskDefinitions(_ context.Context, in *ecs.ListTaskDefinitionsInput) (*ecs.ListTaskDefinitionsOutput, error) {
	status := in.Status
	if status == "" {
		status = types.TaskDefinitionStatusActive
	}
	a.mu.Lock()
	var arns []string
	families := make([]string, 0, len(a.families))
	for f := range a.families {
		families = append(families, f)
	}
	slices.Sort(families)
	for _, f := range families {
		if in.FamilyPrefix != nil && !strings.HasPrefix(f, *in.FamilyPrefix) {
			continue
		}
		for _, td := range a.families[f] {
			if td.td.Status == status {
				arns = append(arns, *td.td.TaskDefinitionArn)
			}
		}
	}
	a.mu.Unlock()
	if in.Sort == types.SortOrderDesc {
		slices.Reverse(arns)
	}
	page, next, err := pageOf(arns, in.NextToken, in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: page, NextToken: next}, nil
}

// ListTaskDefinitionFamilies lists family names.
func (a *API) ListTaskDefinitionFamilies(_ context.Context, in *ecs.ListTaskDefinitionFamiliesInput) (*ecs.ListTaskDefinitionFamiliesOutput, error) {
	a.mu.Lock()
	var names []string
	for f, revs := range a.families {
		if in.FamilyPrefix != nil && !strings.HasPrefix(f, *in.FamilyPrefix) {
			continue
		}
		active := slices.ContainsFunc(revs, func(td *taskDefinition) bool { return td.td.Status == types.TaskDefinitionStatusActive })
		switch in.Status {
		case types.TaskDefinitionFamilyStatusActive:
			if !active {
				continue
			}
		case types.TaskDefinitionFamilyStatusInactive:
			if active {
				continue
			}
		}
		names = append(names, f)
	}
	a.mu.Unlock()
	slices.Sort(names)
	page, next, err := pageOf(names, in.NextToken, in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListTaskDefinitionFamiliesOutput{Families: page, NextToken: next}, nil
}

// DeregisterTaskDefinition marks a revision INACTIVE. Tasks and services that use it keep
// running, as in ECS.
func (a *API) DeregisterTaskDefinition(_ context.Context, in *ecs.DeregisterTaskDefinitionInput) (*ecs.DeregisterTaskDefinitionOutput, error) {
	ref := aws.ToString(in.TaskDefinition)
	if !strings.Contains(lastPart(ref), ":") {
		return nil, clientError("Invalid revision number. Number: %s", ref)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	td := a.lookupTaskDefinition(ref)
	if td == nil {
		return nil, clientError("The specified task definition does not exist.")
	}
	if td.td.Status == types.TaskDefinitionStatusActive {
		td.td.Status = types.TaskDefinitionStatusInactive
		td.td.DeregisteredAt = a.timestamp()
	}
	return &ecs.DeregisterTaskDefinitionOutput{TaskDefinition: wire.Clone(&td.td)}, nil
}

// checkDependencies applies ContainerDependency's rules: a dependency names a container of
// the task definition; COMPLETE and SUCCESS "can't be set on an essential container"; HEALTHY
// needs the dependency to have a health check; and the dependencies form no cycle.
func checkDependencies(defs []types.ContainerDefinition) error {
	byName := map[string]*types.ContainerDefinition{}
	for i := range defs {
		byName[aws.ToString(defs[i].Name)] = &defs[i]
	}
	for _, c := range defs {
		for _, d := range c.DependsOn {
			dep := byName[aws.ToString(d.ContainerName)]
			switch {
			case dep == nil:
				return clientError("Container %s depends on container %s, which is not in the task definition.", aws.ToString(c.Name), aws.ToString(d.ContainerName))
			case (d.Condition == types.ContainerConditionComplete || d.Condition == types.ContainerConditionSuccess) && (dep.Essential == nil || *dep.Essential):
				return clientError("Container %s: dependency condition %s can't be set on the essential container %s.", aws.ToString(c.Name), d.Condition, aws.ToString(dep.Name))
			case d.Condition == types.ContainerConditionHealthy && dep.HealthCheck == nil:
				return clientError("Container %s: dependency condition HEALTHY needs a health check on container %s.", aws.ToString(c.Name), aws.ToString(dep.Name))
			}
		}
	}
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return clientError("Container %s: dependsOn forms a cycle.", name)
		case 2:
			return nil
		}
		state[name] = 1
		for _, d := range byName[name].DependsOn {
			if err := visit(aws.ToString(d.ContainerName)); err != nil {
				return err
			}
		}
		state[name] = 2
		return nil
	}
	for _, c := range defs {
		if err := visit(aws.ToString(c.Name)); err != nil {
			return err
		}
	}
	return nil
}
