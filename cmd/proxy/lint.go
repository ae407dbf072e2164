package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/gangway-ecs/gangway/internal/budget"
	"github.com/gangway-ecs/gangway/internal/ecs"
)

// LintCommand is `proxy lint`: it checks task definitions (and optionally the target group,
// load balancer and service they run in) against ECS's documented ranges and Gangway's
// timing budget.
// Exit 0 when every file is clean, 1 with findings, 4 on bad flags.
type LintCommand struct {
	env env
}

const lintUsage = `usage: proxy lint [flags] TASKDEF.json...

Checks each task definition (register-task-definition JSON) against ECS's documented ranges
and Gangway's timing budget, and prints every problem with the field, the value, the rule
and the fix. Exit 0 when clean, 1 with findings, 4 on bad flags.

Gangway containers are those whose healthCheck runs /healthcheck (or -container). Their
health check must ask the container probe (bin/healthcheck's default), never readiness:
ECS replaces every task whose check fails, so a readiness check replaces the whole fleet
when a dependency they share is down.
The proxy's shutdown settings are resolved as 'proxy run' resolves them, from -config and
the container's environment (GANGWAY_CONFIG_YAML, GANGWAY_UPSTREAM, GANGWAY_SHUTDOWN_*);
GANGWAY_CONFIG names a file in the image, which lint reads only when given as -config.
Without -target-group, the recommended target group is assumed (interval 5s, timeout 2s,
thresholds 2/2, deregistration delay 15s); without -load-balancer, the ALB's default idle
timeout (60s); without -service, the service rules are skipped.

flags:
`

// Run executes the command.
func (c *LintCommand) Run(_ context.Context, args []string) error {
	fs := newFlagSet("lint", c.env)
	fs.Usage = func() { fmt.Fprint(fs.Output(), lintUsage); fs.PrintDefaults() }
	var lf lintFlags
	lf.register(fs, "service")
	output := fs.String("output", "text", "text or json")
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("no task definition files given (try: proxy lint taskdefs/*.json)")
	}
	if *output != "text" && *output != "json" {
		return usageError("-output %q: want text or json", *output)
	}
	in, err := lf.input()
	if err != nil {
		return err
	}

	// Unchecked lists what lint could not read (a configuration file inside the image): a
	// file without findings is then "ok" only for what was checked.
	type fileResult struct {
		File      string             `json:"file"`
		Error     string             `json:"error,omitempty"`
		Findings  []budget.Violation `json:"findings"`
		Unchecked []string           `json:"unchecked,omitempty"`
	}
	var results []fileResult
	total := 0
	for _, path := range fs.Args() {
		r := fileResult{File: path, Findings: []budget.Violation{}}
		td, err := ecs.ReadTaskDefinition(path)
		if err != nil {
			r.Error = err.Error()
			total++
		} else {
			in.TaskDefinition = td
			if v := ecs.Lint(in); v != nil {
				r.Findings = v
				total += len(v)
			}
			r.Unchecked = ecs.Unchecked(in)
		}
		results = append(results, r)
	}

	if *output == "json" {
		enc := json.NewEncoder(c.env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			switch {
			case r.Error != "":
				fmt.Fprintf(c.env.stdout, "%s: %s\n", r.File, r.Error)
			case len(r.Findings) == 0 && len(r.Unchecked) == 0:
				fmt.Fprintf(c.env.stdout, "%s: ok\n", r.File)
			case len(r.Findings) == 0:
				fmt.Fprintf(c.env.stdout, "%s: ok for what was checked\n", r.File)
			}
			for _, v := range r.Findings {
				fmt.Fprintf(c.env.stdout, "%s: %s\n", r.File, v.Error())
			}
			for _, u := range r.Unchecked {
				fmt.Fprintf(c.env.stdout, "%s: not checked: %s\n", r.File, u)
			}
		}
	}
	if total > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%d problem(s) in %d file(s)", total, len(results))}
	}
	return nil
}

// lintFlags are the flags that say what a task definition is checked with: `proxy lint` and
// `proxy rollout deploy` register the same ones, so that deploy runs the checks lint runs.
type lintFlags struct {
	container, targetGroup, service, config string
	loadBalancer                            string
	serviceFlag                             string
	longestRequest, coldStart               time.Duration
}

// register adds the flags to fs; serviceFlag names the service file's flag (`proxy rollout`
// already uses -service for the service's name).
func (f *lintFlags) register(fs *flag.FlagSet, serviceFlag string) {
	d := budget.Defaults()
	f.serviceFlag = serviceFlag
	fs.StringVar(&f.container, "container", "", "comma-separated names of the Gangway containers (default: found by health check)")
	fs.StringVar(&f.targetGroup, "target-group", "", "target group JSON: describe-target-groups output, optionally with the Attributes list of describe-target-group-attributes")
	fs.StringVar(&f.service, serviceFlag, "", "service JSON: create-service input or describe-services output")
	fs.StringVar(&f.loadBalancer, "load-balancer", "", "load balancer JSON: describe-load-balancer-attributes output (idle_timeout.timeout_seconds)")
	fs.StringVar(&f.config, "config", "", "the proxy's configuration file, when the task definition does not carry it (GANGWAY_CONFIG_YAML, GANGWAY_UPSTREAM)")
	fs.DurationVar(&f.longestRequest, "longest-request", d.LongestRequest, "the longest request the service serves (0 skips its rules)")
	fs.DurationVar(&f.coldStart, "cold-start", d.ColdStart, "the time from task start to ready (0 skips its rules)")
}

// input reads the target group and service files; the caller sets TaskDefinition.
func (f *lintFlags) input() (ecs.LintInput, error) {
	in := ecs.LintInput{LongestRequest: f.longestRequest, ColdStart: f.coldStart, ConfigPath: f.config}
	if f.container != "" {
		in.Containers = strings.Split(f.container, ",")
	}
	var err error
	if f.targetGroup != "" {
		if in.TargetGroup, err = ecs.ReadTargetGroup(f.targetGroup); err != nil {
			return in, &exitError{code: exitFailure, err: fmt.Errorf("-target-group: %w", err)}
		}
	}
	if f.service != "" {
		if in.Service, err = ecs.ReadService(f.service); err != nil {
			return in, &exitError{code: exitFailure, err: fmt.Errorf("-%s: %w", f.serviceFlag, err)}
		}
	}
	if f.loadBalancer != "" {
		if in.LoadBalancer, err = ecs.ReadLoadBalancer(f.loadBalancer); err != nil {
			return in, &exitError{code: exitFailure, err: fmt.Errorf("-load-balancer: %w", err)}
		}
	}
	return in, nil
}
