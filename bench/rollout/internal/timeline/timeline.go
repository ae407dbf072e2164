// Package timeline records what happens during a deployment on ecslocal and draws it: one
// self-contained HTML page (inline SVG, no script, no network) with a timeline per
// scenario — the production and test listener weights of each target group, the healthy
// targets of each group, every task's state, requests and failures per second, and the
// deployment's lifecycle stages. It is what an engineer wants to look at instead of logs.
//
// A Recorder samples the ECS and ELBv2 APIs and the load generator while a scenario runs
// (sample.go); Render draws the scenarios it recorded (render.go).
package timeline

import "time"

// Scenario is one recorded deployment.
type Scenario struct {
	Name string
	// Result is a one-line account shown under the name ("exit 0 (want 0), 0 of 5,210
	// requests failed").
	Result string
	// Start is the time the other times are drawn from.
	Start   time.Time
	Samples []Sample
	// Stages are the deployment's lifecycle stages (or rollout states) in the order seen,
	// each from the time it was first seen.
	Stages []Mark
	// Tasks are the tasks seen, in the order first seen.
	Tasks []Task
}

// Sample is the state at one moment.
type Sample struct {
	At time.Time
	// Production and Test are the listener rules' forward weights by target group name;
	// Test is empty when there is no test listener.
	Production, Test map[string]int32
	// Healthy is the number of healthy targets by target group name.
	Healthy map[string]int
	// Requests and Failed are the load generator's running totals.
	Requests, Failed int64
}

// Mark is a named moment.
type Mark struct {
	Name string
	At   time.Time
}

// Task is one task's states over time.
type Task struct {
	ID string
	// Revision is the task definition's family:revision, which tells old from new.
	Revision string
	// States are the task's states ("PENDING", "RUNNING", "RUNNING HEALTHY",
	// "DEACTIVATING", "STOPPED", ...) from the time each was first seen.
	States []Mark
}

// Duration is how long the scenario was recorded.
func (s *Scenario) Duration() time.Duration {
	if len(s.Samples) == 0 {
		return 0
	}
	return s.Samples[len(s.Samples)-1].At.Sub(s.Start)
}

// groups returns the target group names that appear in any sample, in the order first
// seen, so that a group keeps its colour for the whole scenario.
func (s *Scenario) groups() []string {
	var names []string
	seen := map[string]bool{}
	add := func(m map[string]int32) {
		for _, n := range sortedKeys(m) {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	for _, smp := range s.Samples {
		add(smp.Production)
		add(smp.Test)
		h := map[string]int32{}
		for k, v := range smp.Healthy {
			h[k] = int32(v)
		}
		add(h)
	}
	return names
}
