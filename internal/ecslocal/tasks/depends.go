package tasks

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// defaultStartTimeout is how long a container waits for a dependency whose definition has
// no startTimeout: 3 minutes, the Fargate default of "ContainerDefinition"
// (startTimeout) in the Amazon ECS API Reference.
const defaultStartTimeout = 3 * time.Minute

// dependencyPoll is how often a waiting container looks at its dependencies.
const dependencyPoll = 50 * time.Millisecond

// errEssentialExited ends a task's start when an essential container exits while another
// waits for its dependencies; errStopRequested when a stop is asked for meanwhile.
var (
	errEssentialExited = errors.New("an essential container exited")
	errStopRequested   = errors.New("stop requested")
)

// startOrder orders the containers so that each comes after the containers it depends on,
// keeping the task definition's order otherwise. RegisterTaskDefinition refuses cycles.
func startOrder(cs []*container) ([]*container, error) {
	byName := map[string]*container{}
	for _, c := range cs {
		byName[aws.ToString(c.def.Name)] = c
	}
	var order []*container
	state := map[*container]int{} // 1 visiting, 2 done
	var visit func(c *container) error
	visit = func(c *container) error {
		switch state[c] {
		case 1:
			return fmt.Errorf("container %s: dependsOn forms a cycle", aws.ToString(c.def.Name))
		case 2:
			return nil
		}
		state[c] = 1
		for _, d := range c.def.DependsOn {
			dep := byName[aws.ToString(d.ContainerName)]
			if dep == nil {
				return fmt.Errorf("container %s depends on %s, which is not in the task", aws.ToString(c.def.Name), aws.ToString(d.ContainerName))
			}
			if err := visit(dep); err != nil {
				return err
			}
		}
		state[c] = 2
		order = append(order, c)
		return nil
	}
	for _, c := range cs {
		if err := visit(c); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// awaitDependencies waits until every dependsOn condition of c holds: START (the dependency
// runs), COMPLETE (it exited), SUCCESS (it exited 0), HEALTHY (its health check passed).
// Each dependency is waited for at most its own startTimeout ("If a startTimeout value is
// specified for containerB and it doesn't reach the desired status within that time then
// containerA gives up", ContainerDefinition in the Amazon ECS API Reference). A SUCCESS
// dependency that exits non-zero fails at once; an essential container's exit while waiting
// ends the task's start.
func (t *task) awaitDependencies(c *container, byName map[string]*container) error {
	if len(c.def.DependsOn) == 0 {
		return nil
	}
	begin := time.Now()
	name := aws.ToString(c.def.Name)
	for {
		if t.essentialExited() {
			return errEssentialExited
		}
		if len(t.stop) > 0 {
			return errStopRequested
		}
		waiting := false
		for _, d := range c.def.DependsOn {
			dep := byName[aws.ToString(d.ContainerName)]
			ok, err := dep.satisfies(d.Condition)
			if err != nil {
				return fmt.Errorf("DependencyError: container %s: %v", name, err)
			}
			if ok {
				continue
			}
			waiting = true
			timeout := defaultStartTimeout
			if dep.def.StartTimeout != nil {
				timeout = time.Duration(*dep.def.StartTimeout) * time.Second
			}
			if time.Since(begin) > timeout {
				return fmt.Errorf("DependencyError: container %s: waited startTimeout %s for %s to be %s", name, timeout, aws.ToString(d.ContainerName), d.Condition)
			}
		}
		if !waiting {
			return nil
		}
		time.Sleep(dependencyPoll)
	}
}

// satisfies reports whether the container meets a dependency condition now; an error means
// it never will.
func (c *container) satisfies(cond types.ContainerCondition) (bool, error) {
	exited := false
	select {
	case <-c.exited:
		exited = true
	default:
	}
	switch cond {
	case types.ContainerConditionStart:
		return c.cmd != nil, nil
	case types.ContainerConditionComplete:
		return exited, nil
	case types.ContainerConditionSuccess:
		if exited && c.code != 0 {
			return false, fmt.Errorf("%s exited with code %d, not 0", aws.ToString(c.def.Name), c.code)
		}
		return exited, nil
	case types.ContainerConditionHealthy:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.health == types.HealthStatusHealthy, nil
	}
	return false, fmt.Errorf("unknown dependency condition %q", cond)
}

// essentialExited reports whether a started essential container has exited.
func (t *task) essentialExited() bool {
	for _, c := range t.containers {
		if c.cmd == nil || (c.def.Essential != nil && !*c.def.Essential) {
			continue
		}
		select {
		case <-c.exited:
			return true
		default:
		}
	}
	return false
}

// stopOrder groups the containers into waves to stop one after the other: a container stops
// only once every container that depends on it has stopped, the reverse of the start order
// (the dependsOn doc: "for container shutdown it is reversed").
func stopOrder(cs []*container) [][]*container {
	dependents := map[string]int{}
	for _, c := range cs {
		for _, d := range c.def.DependsOn {
			dependents[aws.ToString(d.ContainerName)]++
		}
	}
	left := append([]*container{}, cs...)
	var waves [][]*container
	for len(left) > 0 {
		var wave, rest []*container
		for _, c := range left {
			if dependents[aws.ToString(c.def.Name)] == 0 {
				wave = append(wave, c)
			} else {
				rest = append(rest, c)
			}
		}
		if len(wave) == 0 { // a cycle, which registration refuses: stop the rest together
			wave, rest = rest, nil
		}
		for _, c := range wave {
			for _, d := range c.def.DependsOn {
				dependents[aws.ToString(d.ContainerName)]--
			}
		}
		waves = append(waves, wave)
		left = rest
	}
	return waves
}
