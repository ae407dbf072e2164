package ecs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/budget"
	"github.com/gangway-ecs/gangway/internal/config"
)

// TargetGroup is the part of an Elastic Load Balancing target group the budget needs, as
// `aws elbv2 describe-target-groups` prints it, optionally with the Attributes list that
// `aws elbv2 describe-target-group-attributes` prints.
type TargetGroup struct {
	HealthCheckIntervalSeconds *int
	HealthCheckTimeoutSeconds  *int
	HealthyThresholdCount      *int
	UnhealthyThresholdCount    *int
	Attributes                 []struct{ Key, Value string }
}

// ServiceSettings is the part of an ECS service the budget needs, as create-service input
// JSON or one service of describe-services output.
type ServiceSettings struct {
	HealthCheckGracePeriodSeconds *int32
	DeploymentConfiguration       *struct {
		MinimumHealthyPercent    *int32
		MaximumPercent           *int32
		Strategy                 string
		DeploymentCircuitBreaker *struct{ Enable, Rollback bool }
		// Alarms and LifecycleHooks are what test a blue/green revision before, and roll
		// it back after, production moves to it.
		Alarms *struct {
			AlarmNames       []string
			Enable, Rollback bool
		}
		LifecycleHooks []json.RawMessage
	}
	LoadBalancers            []json.RawMessage
	CapacityProviderStrategy []struct {
		CapacityProvider string
		Base, Weight     int32
	}
}

// LoadBalancer is the part of an Elastic Load Balancing load balancer the linter needs: the
// Attributes list that `aws elbv2 describe-load-balancer-attributes` prints.
type LoadBalancer struct {
	Attributes []struct{ Key, Value string }
}

// ReadLoadBalancer reads a load balancer file: describe-load-balancer-attributes output
// ({"Attributes": [...]}), alone or merged with describe-load-balancers output.
func ReadLoadBalancer(path string) (*LoadBalancer, error) {
	var lb LoadBalancer
	if err := readJSON(path, &lb); err != nil {
		return nil, fmt.Errorf("load balancer: %w", err)
	}
	return &lb, nil
}

// ReadTargetGroup reads a target group file: one target group object, or the whole
// describe-target-groups output ({"TargetGroups": [...]}, first group used); either may carry
// an "Attributes" list. Combine both outputs with `jq -s add groups.json attributes.json`.
func ReadTargetGroup(path string) (*TargetGroup, error) {
	var doc struct {
		TargetGroup
		TargetGroups []TargetGroup
	}
	if err := readJSON(path, &doc); err != nil {
		return nil, fmt.Errorf("target group: %w", err)
	}
	tg := doc.TargetGroup
	if len(doc.TargetGroups) > 0 {
		attrs := tg.Attributes
		tg = doc.TargetGroups[0]
		tg.Attributes = append(tg.Attributes, attrs...)
	}
	return &tg, nil
}

// ReadService reads a service file: create-service input JSON, one service object, or
// describe-services output ({"services": [...]}, first service used).
func ReadService(path string) (*ServiceSettings, error) {
	var doc struct {
		ServiceSettings
		Services []ServiceSettings
	}
	if err := readJSON(path, &doc); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if len(doc.Services) > 0 {
		return &doc.Services[0], nil
	}
	return &doc.ServiceSettings, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, jsonError(data, dec, err))
	}
	return nil
}

// LintInput is what Lint checks. Only TaskDefinition is required.
type LintInput struct {
	TaskDefinition *TaskDefinition
	// TargetGroup, when nil, is assumed to have the settings Gangway recommends
	// (budget.Defaults()): the task definition must fit them.
	TargetGroup *TargetGroup
	// Service, when nil, skips the service rules.
	Service *ServiceSettings
	// LoadBalancer, when nil, is assumed to have the ALB's default idle timeout (60 s).
	LoadBalancer *LoadBalancer
	// ConfigPath is the proxy's configuration file, when the task definition does not carry
	// the configuration itself. Each Gangway container's configuration is resolved the way
	// `proxy run` resolves it (config.Resolve) from ConfigPath and the container's
	// environment: GANGWAY_CONFIG_YAML, GANGWAY_UPSTREAM, the GANGWAY_SHUTDOWN_* overrides.
	// GANGWAY_CONFIG names a file inside the image, which the linter cannot read; without
	// ConfigPath it is ignored.
	ConfigPath string
	// Containers names the Gangway containers; when empty, they are found by their health
	// check command (see GangwayContainers).
	Containers []string
	// LongestRequest and ColdStart are the service's expectations; zero skips their rules.
	LongestRequest, ColdStart time.Duration
}

// Lint checks a task definition (and optionally its target group and service) against ECS's
// documented ranges and Gangway's timing budget. It returns every problem found, each naming
// the field as a path in the JSON it came from, or nil when everything fits.
func Lint(in LintInput) []budget.Violation {
	l := &linter{in: in}
	td := in.TaskDefinition
	l.task(td)
	l.startTimeouts(td)

	names := in.Containers
	if len(names) == 0 {
		names = GangwayContainers(td)
	}
	if len(names) == 0 {
		l.add("containerDefinitions", "no Gangway container",
			`no container declares the Gangway health check ["CMD", "/healthcheck"], so none can be checked against the timing budget`,
			`give the proxy container "healthCheck": {"command": ["CMD", "/healthcheck"], ...}`)
	}
	for _, name := range names {
		c, ok := Container(td, name)
		if !ok {
			l.add("containerDefinitions", name, fmt.Sprintf("there is no container named %q", name),
				"name an existing container")
			continue
		}
		l.container(td, c, names)
	}
	if in.Service != nil {
		l.service(in.Service)
		l.spot(in.Service)
	}
	if in.TargetGroup != nil {
		l.targetGroup(in.TargetGroup)
	}
	return dedupe(l.out)
}

// Unchecked says what Lint could not check in in.TaskDefinition, one sentence per gap: a
// Gangway container whose configuration is a file in the image (GANGWAY_CONFIG) and no
// ConfigPath was given, so the proxy's defaults stood in for it. Lint's silence on such a
// task definition means only that what it read fits.
func Unchecked(in LintInput) []string {
	if in.ConfigPath != "" {
		return nil
	}
	names := in.Containers
	if len(names) == 0 {
		names = GangwayContainers(in.TaskDefinition)
	}
	var out []string
	for _, name := range names {
		c, ok := Container(in.TaskDefinition, name)
		if !ok {
			continue
		}
		for _, kv := range c.Environment {
			if str(kv.Name) != config.EnvConfigFile || str(kv.Value) == "" {
				continue
			}
			out = append(out, fmt.Sprintf("containerDefinitions[%s].environment.%s names %s, a file in the image that lint cannot read: "+
				"its shutdown settings and timeout_idle were taken as the proxy's defaults (under the container's GANGWAY_SHUTDOWN_* overrides), "+
				"and whether the proxy accepts it at all was not checked; give the file with -config to check it",
				name, config.EnvConfigFile, str(kv.Value)))
		}
	}
	return out
}

// dedupe drops repeated findings: the target group and service are checked once per Gangway
// container.
func dedupe(vs []budget.Violation) []budget.Violation {
	var out []budget.Violation
	for _, v := range vs {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// targetGroup checks what the budget cannot see in a target group.
func (l *linter) targetGroup(tg *TargetGroup) {
	const key = "deregistration_delay.timeout_seconds"
	v, ok := tgAttribute(tg, key)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		l.add("targetGroup.Attributes["+key+"]", strconv.Quote(v), "the deregistration delay is a whole number of seconds, 0–3600",
			"set it to a number of seconds")
	case n == 0 && l.in.LongestRequest != 0:
		l.add("targetGroup.Attributes["+key+"]", "0",
			fmt.Sprintf("a deregistration delay of 0 cuts requests in flight when the target is deregistered; the longest request is %s", l.in.LongestRequest),
			fmt.Sprintf("set %s to at least %d", key, ceilSeconds(l.in.LongestRequest)))
	}
}

type linter struct {
	in  LintInput
	out []budget.Violation
}

func (l *linter) add(field, value, rule, fix string) {
	l.out = append(l.out, budget.Violation{Field: field, Value: value, Rule: rule, Fix: fix})
}

// fargateMemory lists, for each Fargate task CPU size, the memory sizes (MiB) allowed.
var fargateMemory = map[string]func(mem int) bool{
	"256":   func(m int) bool { return m == 512 || m == 1024 || m == 2048 },
	"512":   func(m int) bool { return m >= 1024 && m <= 4096 && m%1024 == 0 },
	"1024":  func(m int) bool { return m >= 2048 && m <= 8192 && m%1024 == 0 },
	"2048":  func(m int) bool { return m >= 4096 && m <= 16384 && m%1024 == 0 },
	"4096":  func(m int) bool { return m >= 8192 && m <= 30720 && m%1024 == 0 },
	"8192":  func(m int) bool { return m >= 16384 && m <= 61440 && m%4096 == 0 },
	"16384": func(m int) bool { return m >= 32768 && m <= 122880 && m%8192 == 0 },
}

// task checks the task-level fields Fargate requires.
func (l *linter) task(td *TaskDefinition) {
	if !slices.Contains(td.RequiresCompatibilities, ecstypes.CompatibilityFargate) {
		return
	}
	if td.NetworkMode != ecstypes.NetworkModeAwsvpc {
		l.add("networkMode", string(td.NetworkMode), "Fargate tasks require networkMode awsvpc",
			`set "networkMode": "awsvpc"`)
	}
	cpu, mem := str(td.Cpu), str(td.Memory)
	ok, known := fargateMemory[cpu]
	switch {
	case cpu == "" || mem == "":
		l.add("cpu", cpu+"/"+mem, "Fargate tasks require task-level cpu and memory",
			`set "cpu" and "memory" on the task, e.g. "256" and "512"`)
	case !known:
		l.add("cpu", cpu, "Fargate task cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384 (CPU units)",
			`set "cpu" to a Fargate size such as "256"`)
	default:
		m, err := strconv.Atoi(mem)
		if err != nil || !ok(m) {
			l.add("memory", mem, fmt.Sprintf("memory %s MiB is not a Fargate size for cpu %s", mem, cpu),
				"pick a memory size that Fargate offers for this cpu (for 256: 512, 1024 or 2048)")
		}
	}
}

// container checks one Gangway container: ordering, health check, stop timing, logs, and the
// timing budget with the target group and service.
func (l *linter) container(td *TaskDefinition, c *ecstypes.ContainerDefinition, gangway []string) {
	name := str(c.Name)
	path := fmt.Sprintf("containerDefinitions[%s]", name)

	if c.Essential != nil && !*c.Essential {
		l.add(path+".essential", "false", "the proxy must be essential: a task whose proxy exited keeps running without receiving traffic",
			`remove "essential": false`)
	}
	l.image(path, c)
	l.memory(path, c)
	l.threads(td, path, c)
	l.healthCheckCommand(path, c)
	if hc := c.HealthCheck; hc != nil {
		// The budget reads 0 as "not declared"; in a task definition it is out of range.
		for _, f := range []struct {
			name   string
			v      *int32
			lo, hi int
		}{{"interval", hc.Interval, 5, 300}, {"timeout", hc.Timeout, 2, 60}, {"retries", hc.Retries, 1, 10}} {
			if f.v != nil && *f.v == 0 {
				l.add(path+".healthCheck."+f.name, "0", fmt.Sprintf("the container health-check %s must be %d–%d", f.name, f.lo, f.hi),
					fmt.Sprintf("set it between %d and %d, or remove it for ECS's default", f.lo, f.hi))
			}
		}
	}
	if c.StopTimeout == nil {
		l.add(path+".stopTimeout", "not set",
			"stopTimeout must be set: the budget is checked against it, and without it the wait before SIGKILL is the platform's default (30 s on Fargate, ECS_CONTAINER_STOP_TIMEOUT on EC2)",
			fmt.Sprintf(`set "stopTimeout": %d`, budget.DefaultStopTimeout/time.Second))
	}
	names := shutdownNames(path, c)
	cfg := l.proxyConfig(path, c)
	sh := cfg.Shutdown
	l.idleTimeout(cfg)
	if c.StopTimeout != nil && sh.Deadline > seconds(*c.StopTimeout) {
		l.add(names.field(config.EnvShutdownDeadline), sh.Deadline.String(),
			fmt.Sprintf("the proxy's shutdown deadline must not exceed the container's stopTimeout (%d s), or ECS sends SIGKILL before the proxy has finished", *c.StopTimeout),
			fmt.Sprintf("set %s to %ds, the stopTimeout", names.short(config.EnvShutdownDeadline), *c.StopTimeout))
	}
	l.ordering(td, c, gangway)
	l.logs(path, c)

	s := l.settings(c, sh)
	for _, v := range budget.Check(s) {
		l.out = append(l.out, l.mapViolation(path, names, v))
	}
}

// MinProxyMemoryMiB is the least hard memory limit the proxy container may have: its
// executable, about 32 MiB, whose pages the kernel charges to the container that reads them
// from disk, 4 MiB, and at least 28 MiB of heap beside them. In a 64 MiB container the
// proxy serves at full speed; with less, `proxy run` warns at start, and under load either
// the garbage collector runs most of the time or the kernel pages the proxy's code in and
// out (docs/benchmarks.md, "Sidecar cost").
const MinProxyMemoryMiB = 64

// memory checks the proxy container's hard memory limit, when it has one.
func (l *linter) memory(path string, c *ecstypes.ContainerDefinition) {
	if c.Memory == nil || *c.Memory >= MinProxyMemoryMiB {
		return
	}
	l.add(path+".memory", fmt.Sprint(*c.Memory),
		fmt.Sprintf("the proxy container's memory limit must be at least %d MiB: its executable's pages count against the limit beside the heap, and with less it pages its code in and out under load", MinProxyMemoryMiB),
		fmt.Sprintf(`set "memory": %d or more, or remove it and let the task's memory cover the proxy`, MinProxyMemoryMiB))
}

// threads checks a GOMAXPROCS in the proxy container's environment: Go ignores a value that
// is not a whole number above zero, and more threads than the task's CPU limit has vCPUs
// (rounded up) spend the task's CFS quota early in each 100 ms period, after which the
// kernel stops every container of the task, the application too, until the next. Without
// GOMAXPROCS `proxy run` runs one thread unless it sees a CPU limit above one CPU.
func (l *linter) threads(td *TaskDefinition, path string, c *ecstypes.ContainerDefinition) {
	for _, kv := range c.Environment {
		if str(kv.Name) != "GOMAXPROCS" {
			continue
		}
		field, v := path+".environment.GOMAXPROCS", str(kv.Value)
		n, err := strconv.ParseInt(v, 10, 32) // as the runtime reads it
		if err != nil || n < 1 {
			l.add(field, v, "GOMAXPROCS must be a whole number of threads above zero: Go ignores any other value",
				`set it to a number such as "2", or remove it and let the proxy run one thread`)
			return
		}
		units, err := strconv.Atoi(str(td.Cpu))
		if err != nil || units <= 0 {
			return // no task-level CPU limit to compare with
		}
		if vcpus := (units + 1023) / 1024; n > int64(vcpus) {
			l.add(field, v,
				fmt.Sprintf("GOMAXPROCS %d is more threads than the task's cpu of %d units has vCPUs (%d, rounded up): together they spend the task's CPU quota early in each 100 ms period, and the kernel then stops every container of the task until the next", n, units, vcpus),
				fmt.Sprintf(`lower GOMAXPROCS to %d, or remove it and let the proxy run one thread`, vcpus))
		}
		return
	}
}

// image checks that the proxy's image is pinned. With ":latest" or no tag, ECS resolves the
// tag when each task starts: tasks of one deployment can run different proxies, and rolling
// back to the previous task definition does not roll the proxy back.
func (l *linter) image(path string, c *ecstypes.ContainerDefinition) {
	img := str(c.Image)
	repo, tag, digest := splitImage(img)
	if digest || (tag != "" && tag != "latest") {
		return
	}
	if repo == "" {
		repo = "REPOSITORY"
	}
	why := "no tag, which means :latest"
	if tag == "latest" {
		why = ":latest"
	}
	l.add(path+".image", strconv.Quote(img),
		fmt.Sprintf("the proxy's image is not pinned (%s): ECS resolves it when each task starts, so tasks of one deployment can run different proxies and a rollback does not roll the proxy back", why),
		fmt.Sprintf("pin a version tag (%s:v1.2.3) or a digest (%s@sha256:..., which `make image-push` prints)", repo, repo))
}

// splitImage splits an image reference into its repository, its tag ("" when none) and
// whether it names a digest. A colon before the last slash belongs to a registry's port.
func splitImage(ref string) (repo, tag string, digest bool) {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref, digest = ref[:i], true
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i], ref[i+1:], digest
	}
	return ref, "", digest
}

// proxyConfig resolves the container's proxy configuration as `proxy run` would. A
// configuration the proxy would refuse is a finding; the proxy's defaults then stand in.
func (l *linter) proxyConfig(path string, c *ecstypes.ContainerDefinition) *config.Config {
	env := map[string]string{}
	for _, kv := range c.Environment {
		env[str(kv.Name)] = str(kv.Value)
	}
	if l.in.ConfigPath == "" {
		delete(env, config.EnvConfigFile) // a path inside the image
	}
	cfg, _, err := config.Resolve(l.in.ConfigPath, func(k string) string { return env[k] })
	if err == nil {
		return cfg
	}
	field := path + ".environment"
	if l.in.ConfigPath != "" {
		field = "proxyConfig"
	}
	l.add(field, "invalid", "the proxy would refuse to start with this configuration: "+err.Error(),
		"correct it (`proxy validate -config FILE` checks a file; GANGWAY_SHUTDOWN_* take durations such as 12s)")
	return config.Default()
}

// shutdownSource names where a container's shutdown settings are set: its GANGWAY_SHUTDOWN_*
// environment variables when present, else the proxy's configuration.
type shutdownSource struct {
	path string
	env  map[string]bool
}

var shutdownKeys = map[string]string{
	config.EnvShutdownDelay:        "shutdown.delay",
	config.EnvShutdownDrainTimeout: "shutdown.drain_timeout",
	config.EnvShutdownDeadline:     "shutdown.deadline",
}

func shutdownNames(path string, c *ecstypes.ContainerDefinition) shutdownSource {
	src := shutdownSource{path: path, env: map[string]bool{}}
	for _, kv := range c.Environment {
		if _, ok := shutdownKeys[str(kv.Name)]; ok {
			src.env[str(kv.Name)] = true
		}
	}
	return src
}

// field is the full path of the setting named by env.
func (s shutdownSource) field(env string) string {
	if s.env[env] {
		return s.path + ".environment." + env
	}
	return "proxyConfig." + shutdownKeys[env]
}

// short is the setting's name in a sentence.
func (s shutdownSource) short(env string) string {
	if s.env[env] {
		return env
	}
	return shutdownKeys[env]
}

// ordering checks that the proxy stops before the application containers: ECS stops
// containers in reverse dependsOn order, so the proxy must depend on each application
// container, and no application container may depend on the proxy.
func (l *linter) ordering(td *TaskDefinition, c *ecstypes.ContainerDefinition, gangway []string) {
	name := str(c.Name)
	for _, app := range td.ContainerDefinitions {
		appName := str(app.Name)
		if slices.Contains(gangway, appName) {
			continue
		}
		for _, d := range app.DependsOn {
			if str(d.ContainerName) == name {
				l.add(fmt.Sprintf("containerDefinitions[%s].dependsOn", appName), name,
					fmt.Sprintf("container %q depends on the proxy, so ECS stops %q first (dependencies are reversed on shutdown) and requests still draining through the proxy fail", appName, appName),
					fmt.Sprintf("remove the dependency on %q and make %q depend on %q instead", name, name, appName))
			}
		}
		if app.Essential != nil && !*app.Essential {
			continue
		}
		i := slices.IndexFunc(c.DependsOn, func(d ecstypes.ContainerDependency) bool { return str(d.ContainerName) == appName })
		if i < 0 {
			l.add(fmt.Sprintf("containerDefinitions[%s].dependsOn", name), "none on "+appName,
				fmt.Sprintf("the proxy must depend on %q so that ECS starts it after and stops it before the application", appName),
				fmt.Sprintf(`add "dependsOn": [{"containerName": %q, "condition": "HEALTHY"}] (or "START" when %q has no health check)`, appName, appName))
			continue
		}
		cond := c.DependsOn[i].Condition
		if cond != ecstypes.ContainerConditionStart && cond != ecstypes.ContainerConditionHealthy {
			l.add(fmt.Sprintf("containerDefinitions[%s].dependsOn[%s].condition", name, appName), string(cond),
				"the proxy's dependency on an essential application container must be START or HEALTHY (COMPLETE and SUCCESS wait for it to exit)",
				`set "condition": "HEALTHY"`)
		}
		if cond == ecstypes.ContainerConditionHealthy && app.HealthCheck == nil {
			l.add(fmt.Sprintf("containerDefinitions[%s].dependsOn[%s].condition", name, appName), string(cond),
				fmt.Sprintf("condition HEALTHY needs a health check on %q, which has none, so the proxy would never start", appName),
				fmt.Sprintf(`give %q a healthCheck, or use "condition": "START"`, appName))
		}
	}
}

// logs checks that the proxy logs through awslogs without blocking on CloudWatch.
func (l *linter) logs(path string, c *ecstypes.ContainerDefinition) {
	lc := c.LogConfiguration
	if lc == nil {
		l.add(path+".logConfiguration", "not set", "the proxy's logs are lost without a log configuration",
			`set "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": ..., "awslogs-region": ..., "awslogs-stream-prefix": ..., "mode": "non-blocking"}}`)
		return
	}
	if lc.LogDriver == ecstypes.LogDriverAwslogs && lc.Options["mode"] != "non-blocking" {
		mode := lc.Options["mode"]
		if mode == "" {
			mode = "not set (the account's defaultLogDriverMode applies)"
		}
		l.add(path+".logConfiguration.options.mode", mode,
			"awslogs must run in non-blocking mode: in blocking mode a slow CloudWatch Logs stalls every write to stdout, and with it the proxy",
			`set "mode": "non-blocking" (and "max-buffer-size", e.g. "25m")`)
	}
}

// settings gathers the budget's settings for one Gangway container.
func (l *linter) settings(c *ecstypes.ContainerDefinition, sh config.Shutdown) budget.Settings {
	d := budget.Defaults()
	s := budget.Settings{
		ShutdownDelay:  sh.Delay,
		DrainTimeout:   sh.DrainTimeout,
		LongestRequest: l.in.LongestRequest,
		ColdStart:      l.in.ColdStart,
	}
	if c.StopTimeout != nil {
		s.StopTimeout = seconds(*c.StopTimeout)
	}
	if hc := c.HealthCheck; hc != nil {
		// ECS's defaults for the members a healthCheck omits.
		s.ContainerInterval = seconds(orDefault(hc.Interval, 30))
		s.ContainerTimeout = seconds(orDefault(hc.Timeout, 5))
		s.ContainerRetries = int(orDefault(hc.Retries, 3))
		s.ContainerStartPeriod = seconds(orDefault(hc.StartPeriod, 0))
		// The probe's own -timeout; without one, or with one healthCheckCommand refuses,
		// the budget assumes the probe's default.
		if d, err := time.ParseDuration(parseHealthCheck(hc.Command).timeout); err == nil && d > 0 {
			s.ProbeTimeout = d
		}
	}
	if tg := l.in.TargetGroup; tg != nil {
		// The ALB's defaults for the members the file omits.
		s.LBHealthInterval = time.Duration(intOr(tg.HealthCheckIntervalSeconds, 30)) * time.Second
		s.LBHealthTimeout = time.Duration(intOr(tg.HealthCheckTimeoutSeconds, 5)) * time.Second
		s.LBHealthyThreshold = intOr(tg.HealthyThresholdCount, 5)
		s.LBUnhealthyThreshold = intOr(tg.UnhealthyThresholdCount, 2)
		s.DeregistrationDelay = 300 * time.Second
		if v, ok := tgAttribute(tg, "deregistration_delay.timeout_seconds"); ok {
			n, _ := strconv.Atoi(v)
			s.DeregistrationDelay = time.Duration(n) * time.Second
		}
	} else {
		s.LBHealthInterval, s.LBHealthTimeout = d.LBHealthInterval, d.LBHealthTimeout
		s.LBHealthyThreshold, s.LBUnhealthyThreshold = d.LBHealthyThreshold, d.LBUnhealthyThreshold
		s.DeregistrationDelay = d.DeregistrationDelay
	}
	if svc := l.in.Service; svc != nil {
		if svc.HealthCheckGracePeriodSeconds != nil {
			s.HealthCheckGracePeriod = seconds(*svc.HealthCheckGracePeriodSeconds)
		}
		if dc := svc.DeploymentConfiguration; dc != nil {
			s.MinimumHealthyPercent = int(orDefault(dc.MinimumHealthyPercent, 0))
			s.MaximumPercent = int(orDefault(dc.MaximumPercent, 0))
		}
	}
	return s
}

// service checks the service settings the budget does not cover.
func (l *linter) service(svc *ServiceSettings) {
	grace := int32(0)
	if svc.HealthCheckGracePeriodSeconds != nil {
		grace = *svc.HealthCheckGracePeriodSeconds
	}
	if len(svc.LoadBalancers) > 0 && grace == 0 {
		l.add("service.healthCheckGracePeriodSeconds", "0",
			"a service behind a load balancer needs a grace period: with 0, failed load-balancer checks during the cold start count, and ECS replaces tasks that were about to become ready",
			fmt.Sprintf("set healthCheckGracePeriodSeconds to at least the cold start (%d)", ceilSeconds(max(l.in.ColdStart, time.Second))))
	}
	dc := svc.DeploymentConfiguration
	strategy := ""
	if dc != nil {
		strategy = dc.Strategy
	}
	if strategy != "" && strategy != string(ecstypes.DeploymentStrategyRolling) {
		l.blueGreenChecks(strategy)
		return // the circuit breaker covers rolling deployments only
	}
	if dc == nil || dc.DeploymentCircuitBreaker == nil || !dc.DeploymentCircuitBreaker.Enable || !dc.DeploymentCircuitBreaker.Rollback {
		l.add("service.deploymentConfiguration.deploymentCircuitBreaker", "not enabled with rollback",
			"a rolling deployment without the circuit breaker and rollback keeps replacing failing tasks for hours instead of returning to the last working revision",
			`set "deploymentCircuitBreaker": {"enable": true, "rollback": true}`)
	}
}

// budgetPaths maps budget.Settings field names to the place in the files where they are set;
// %s is the container's path; a GANGWAY_SHUTDOWN_* name is resolved by shutdownSource.
var budgetPaths = map[string]string{
	"LBHealthInterval":       "targetGroup.HealthCheckIntervalSeconds",
	"LBHealthTimeout":        "targetGroup.HealthCheckTimeoutSeconds",
	"LBHealthyThreshold":     "targetGroup.HealthyThresholdCount",
	"LBUnhealthyThreshold":   "targetGroup.UnhealthyThresholdCount",
	"DeregistrationDelay":    "targetGroup.Attributes[deregistration_delay.timeout_seconds]",
	"StopTimeout":            "%s.stopTimeout",
	"HealthCheckGracePeriod": "service.healthCheckGracePeriodSeconds",
	"MinimumHealthyPercent":  "service.deploymentConfiguration.minimumHealthyPercent",
	"MaximumPercent":         "service.deploymentConfiguration.maximumPercent",
	"ContainerInterval":      "%s.healthCheck.interval",
	"ContainerTimeout":       "%s.healthCheck.timeout",
	"ContainerRetries":       "%s.healthCheck.retries",
	"ContainerStartPeriod":   "%s.healthCheck.startPeriod",
	"ProbeTimeout":           "%s.healthCheck.command's -timeout",
	"ShutdownDelay":          config.EnvShutdownDelay,
	"DrainTimeout":           config.EnvShutdownDrainTimeout,
	"LongestRequest":         "longest request",
	"ColdStart":              "cold start",
}

var budgetNames = regexp.MustCompile(`\b(LBHealthInterval|LBHealthTimeout|LBHealthyThreshold|LBUnhealthyThreshold|DeregistrationDelay|StopTimeout|HealthCheckGracePeriod|MinimumHealthyPercent|MaximumPercent|ContainerInterval|ContainerTimeout|ContainerRetries|ContainerStartPeriod|ProbeTimeout|ShutdownDelay|DrainTimeout|LongestRequest|ColdStart)\b`)

// mapViolation renames the budget's field names to the paths a user edits.
func (l *linter) mapViolation(path string, names shutdownSource, v budget.Violation) budget.Violation {
	short := func(name string) string {
		p := budgetPaths[name]
		if _, ok := shutdownKeys[p]; ok {
			return names.short(p)
		}
		if strings.HasPrefix(p, "%s.") {
			return strings.TrimPrefix(p, "%s.")
		}
		if k, ok := strings.CutPrefix(p, "targetGroup.Attributes["); ok {
			return strings.TrimSuffix(k, "]")
		}
		p = strings.TrimPrefix(p, "targetGroup.")
		return strings.TrimPrefix(p, "proxyConfig.")
	}
	field := budgetPaths[v.Field]
	if _, ok := shutdownKeys[field]; ok {
		field = names.field(field)
	} else if strings.Contains(field, "%s") {
		field = fmt.Sprintf(field, path)
	}
	if strings.HasPrefix(field, "targetGroup.") && l.in.TargetGroup == nil {
		field += " (assumed: the recommended target group)"
	}
	return budget.Violation{
		Field: field,
		Value: v.Value,
		Rule:  budgetNames.ReplaceAllStringFunc(v.Rule, short),
		Fix:   budgetNames.ReplaceAllStringFunc(v.Fix, short),
	}
}

func tgAttribute(tg *TargetGroup, key string) (string, bool) {
	for _, a := range tg.Attributes {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

func seconds(n int32) time.Duration { return time.Duration(n) * time.Second }

func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

func orDefault(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}
