package ecsapi

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// State is the control plane's records, as a state file keeps them: every task definition,
// cluster, service, service deployment, service revision, task and tag. Equal states give
// equal values (everything in a stable order), so that a caller can tell a change.
type State struct {
	TaskDefinitions    []types.TaskDefinition
	Clusters           []types.Cluster
	Services           []types.Service
	ServiceDeployments []DeploymentState
	ServiceRevisions   []RevisionState
	Tasks              []types.Task
	Tags               map[string]map[string]string
	Seq                int
}

// DeploymentState is a service deployment and its creation order.
type DeploymentState struct {
	Deployment types.ServiceDeployment
	Seq        int
}

// RevisionState is a service revision and the deployment (Service.deployments) that runs it.
type RevisionState struct {
	Revision     types.ServiceRevision
	DeploymentID string
}

// State returns a copy of the records.
func (a *API) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := State{Tags: map[string]map[string]string{}, Seq: a.seq}
	for _, revs := range a.families {
		for _, td := range revs {
			s.TaskDefinitions = append(s.TaskDefinitions, *wire.Clone(&td.td))
		}
	}
	slices.SortFunc(s.TaskDefinitions, func(x, y types.TaskDefinition) int {
		return strings.Compare(*x.TaskDefinitionArn, *y.TaskDefinitionArn)
	})
	for _, c := range a.clusters {
		s.Clusters = append(s.Clusters, *wire.Clone(&c.c))
		for _, svc := range c.services {
			s.Services = append(s.Services, *wire.Clone(&svc.s))
		}
	}
	slices.SortFunc(s.Clusters, func(x, y types.Cluster) int { return strings.Compare(*x.ClusterArn, *y.ClusterArn) })
	slices.SortFunc(s.Services, func(x, y types.Service) int { return strings.Compare(*x.ServiceArn, *y.ServiceArn) })
	for _, d := range a.deployments {
		s.ServiceDeployments = append(s.ServiceDeployments, DeploymentState{Deployment: *wire.Clone(&d.d), Seq: d.seq})
	}
	slices.SortFunc(s.ServiceDeployments, func(x, y DeploymentState) int { return x.Seq - y.Seq })
	for _, r := range a.revisions {
		s.ServiceRevisions = append(s.ServiceRevisions, RevisionState{Revision: *wire.Clone(&r.r), DeploymentID: r.deploymentID})
	}
	slices.SortFunc(s.ServiceRevisions, func(x, y RevisionState) int {
		return strings.Compare(*x.Revision.ServiceRevisionArn, *y.Revision.ServiceRevisionArn)
	})
	for _, t := range a.tasks {
		s.Tasks = append(s.Tasks, *wire.Clone(&t.t))
	}
	slices.SortFunc(s.Tasks, func(x, y types.Task) int { return strings.Compare(*x.TaskArn, *y.TaskArn) })
	for arn, tags := range a.tags {
		s.Tags[arn] = maps.Clone(tags)
	}
	return s
}

// Restore loads records into an API that has none. Tasks are not resurrected: a task that
// was not STOPPED (it ran when the process that kept the records ended) is STOPPED now, with
// stopCode TerminationNotice and the stoppedReason reason, and the scheduler starts
// replacements for a service's. Every service task counts as registered with its service's
// target groups, so that the scheduler deregisters what a previous process left there; none
// counts again for a circuit breaker.
func (a *API) Restore(s State, reason string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.families)+len(a.clusters)+len(a.tasks) > 0 {
		return fmt.Errorf("restoring ECS records: the API already holds records")
	}
	for _, td := range s.TaskDefinitions {
		family := aws.ToString(td.Family)
		if int(td.Revision) != len(a.families[family])+1 {
			return fmt.Errorf("restoring task definition %s: revision %d follows %d", aws.ToString(td.TaskDefinitionArn), td.Revision, len(a.families[family]))
		}
		a.families[family] = append(a.families[family], &taskDefinition{td: td})
	}
	for _, c := range s.Clusters {
		a.clusters[aws.ToString(c.ClusterName)] = &cluster{c: c, services: map[string]*service{}}
	}
	byArn := map[string]*service{}
	for _, svc := range s.Services {
		c := a.clusters[lastPart(aws.ToString(svc.ClusterArn))]
		if c == nil {
			return fmt.Errorf("restoring service %s: no cluster %s", aws.ToString(svc.ServiceArn), aws.ToString(svc.ClusterArn))
		}
		sv := &service{s: svc, cluster: c}
		c.services[aws.ToString(svc.ServiceName)] = sv
		byArn[aws.ToString(svc.ServiceArn)] = sv
	}
	for _, d := range s.ServiceDeployments {
		sv := byArn[aws.ToString(d.Deployment.ServiceArn)]
		if sv == nil {
			return fmt.Errorf("restoring service deployment %s: no service %s", aws.ToString(d.Deployment.ServiceDeploymentArn), aws.ToString(d.Deployment.ServiceArn))
		}
		a.deployments[aws.ToString(d.Deployment.ServiceDeploymentArn)] = &deployment{d: d.Deployment, service: sv, seq: d.Seq}
	}
	for _, r := range s.ServiceRevisions {
		a.revisions[aws.ToString(r.Revision.ServiceRevisionArn)] = &revision{r: r.Revision, deploymentID: r.DeploymentID}
	}
	now := a.timestamp()
	for _, t := range s.Tasks {
		if aws.ToString(t.LastStatus) != StatusStopped {
			t.LastStatus, t.DesiredStatus = aws.String(StatusStopped), aws.String(StatusStopped)
			t.StopCode, t.StoppedReason = types.TaskStopCodeTerminationNotice, aws.String(reason)
			t.Connectivity = types.ConnectivityDisconnected
			for _, p := range []**time.Time{&t.StoppingAt, &t.ExecutionStoppedAt, &t.StoppedAt} {
				if *p == nil {
					*p = now
				}
			}
			for i := range t.Containers {
				t.Containers[i].LastStatus = aws.String(StatusStopped)
			}
		}
		rt := &task{t: t}
		if strings.HasPrefix(aws.ToString(t.Group), "service:") {
			rt.sched = &serviceTask{registered: taskAddress(&rt.t) != "", counted: true}
		}
		a.tasks[aws.ToString(t.TaskArn)] = rt
	}
	for arn, tags := range s.Tags {
		a.tags[arn] = maps.Clone(tags)
	}
	a.seq = s.Seq
	return nil
}
