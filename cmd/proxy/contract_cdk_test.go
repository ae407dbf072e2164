//go:build linux

package main

// The CDK construct's rows of the contract suite. The construct writes the Gangway
// container's environment, command and health check, and the target groups that ask it; the
// rows run the proxy on exactly that output. They read the synthesized templates as
// cdk/cmd/ecs-input renders them (AWS CLI input, one directory per template), which
// `make cdk-contracts` (part of `make cdk-test`) writes from a fresh `make synth` and the
// construct tests' templates, and names in GANGWAY_CDK_ECS_INPUT.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/nstest"
)

// envCDKInput names the directory cdk/cmd/ecs-input rendered the synthesized templates into.
const envCDKInput = "GANGWAY_CDK_ECS_INPUT"

// cdkTargetGroup is a rendered target group: CloudFormation's property names.
type cdkTargetGroup struct {
	file            string
	TargetType      string
	Port            int
	HealthCheckPort string
	HealthCheckPath string
	Matcher         struct{ HttpCode string }
}

// healthCheckPort is the port the load balancer's health check asks.
func (tg cdkTargetGroup) healthCheckPort(t *testing.T) int {
	t.Helper()
	if tg.HealthCheckPort == "" || tg.HealthCheckPort == "traffic-port" {
		return tg.Port
	}
	p, err := strconv.Atoi(tg.HealthCheckPort)
	if err != nil {
		t.Fatalf("%s: HealthCheckPort %q: %v", tg.file, tg.HealthCheckPort, err)
	}
	return p
}

// cdkTemplate is one rendered template: its task definition and the target groups that
// send it traffic (a Lambda target group, the construct's NoRoute, has no tasks).
type cdkTemplate struct {
	name   string
	td     *taskDef
	groups []cdkTargetGroup
}

func readCDKTemplate(t *testing.T, dir string) cdkTemplate {
	t.Helper()
	tpl := cdkTemplate{name: filepath.Base(dir)}
	tds, _ := filepath.Glob(filepath.Join(dir, "taskdef-*.json"))
	if len(tds) != 1 {
		t.Fatalf("%s: %d task definitions, want 1", dir, len(tds))
	}
	tpl.td = readTaskDef(t, tds[0])
	tgs, _ := filepath.Glob(filepath.Join(dir, "target-group-*.json"))
	for _, f := range tgs {
		tg := cdkTargetGroup{file: f}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &tg); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if tg.TargetType != "lambda" {
			tpl.groups = append(tpl.groups, tg)
		}
	}
	if len(tpl.groups) == 0 {
		t.Fatalf("%s: no target group sends traffic to tasks", dir)
	}
	return tpl
}

// cdkApp is what cdk/cdk.json declares for the CDK app's own stack: its name and the port
// its application listens on.
func cdkApp(t *testing.T) (stack string, appPort int) {
	t.Helper()
	var doc struct{ Context map[string]any }
	data, err := os.ReadFile(filepath.Join(repoRoot, "cdk/cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("cdk/cdk.json: %v", err)
	}
	stack = fmt.Sprint(doc.Context["gangway:stackName"])
	if appPort, err = strconv.Atoi(fmt.Sprint(doc.Context["gangway:appPort"])); err != nil {
		t.Fatalf("cdk/cdk.json: gangway:appPort: %v", err)
	}
	return stack, appPort
}

// cdkAppPort is the port the application listens on in the template's task: cdk/cdk.json's
// for the app's stack; for the construct tests' stacks, the port of the application the
// Gangway container's environment names (GANGWAY_UPSTREAM, which the construct sets to
// 127.0.0.1:AppPort, or a static endpoint of the ProxyConfig it carries).
func cdkAppPort(t *testing.T, tpl cdkTemplate, env map[string]string) int {
	t.Helper()
	if stack, port := cdkApp(t); tpl.name == stack {
		return port
	}
	addr, err := nstest.AppAddr(env)
	if err != nil {
		t.Fatalf("%s: %v", tpl.name, err)
	}
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return p
}

// cdkRows adds a row for every synthesized template: its Gangway container's environment
// and command → `proxy validate` and `proxy run`, ready on every target group's health-check
// port and path; the container's own health check passes in the same environment; traffic
// on the target group's port reaches the application on its port.
func cdkRows(t *testing.T, procs procStarter, bins func() binaries) {
	const row = "cdk synthesized task definition → proxy validate, proxy run, target groups, healthcheck"
	root := os.Getenv(envCDKInput)
	if root == "" {
		t.Run(row, func(t *testing.T) {
			t.Skipf("%s is not set: `make cdk-contracts` (part of make cdk-test and make test) synthesizes the templates, renders them and runs this row", envCDKInput)
		})
		return
	}
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("%s: %v", envCDKInput, err)
	}
	if len(dirs) == 0 {
		t.Fatalf("%s=%s: no rendered template", envCDKInput, root)
	}
	stack, _ := cdkApp(t)
	found := false
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		found = found || d.Name() == stack
		dir := filepath.Join(root, d.Name())
		t.Run(strings.Replace(row, "task definition", d.Name()+" task definition", 1), func(t *testing.T) {
			tpl := readCDKTemplate(t, dir)
			gw := tpl.td.gangway(t)
			env := gw.env(t)
			if code, out := runProxyMain(env, "validate"); code != exitOK {
				t.Fatalf("proxy validate in the container's environment: exit %d:\n%s", code, out)
			}
			for _, tg := range tpl.groups {
				if !slices.ContainsFunc(gw.PortMappings, func(p struct{ ContainerPort int }) bool { return p.ContainerPort == tg.Port }) {
					t.Fatalf("%s: port %d: container %s does not map it", tg.file, tg.Port, gw.Name)
				}
			}
			lb := loadBalancer{
				port:    tpl.groups[0].Port,
				path:    tpl.groups[0].HealthCheckPath,
				appPort: cdkAppPort(t, tpl, env),
			}
			n := newNetTask(t, procs, tpl.name, nil, vpcPeer)
			runTask(t, bins(), tpl.td, n, lb)
			for _, tg := range tpl.groups {
				if m := tg.Matcher.HttpCode; m != "" && m != "200" {
					t.Errorf("%s: Matcher %q: the proxy's readiness answers 200", tg.file, m)
				}
				healthCheckPasses(t, n, tg.file, tg.healthCheckPort(t), tg.HealthCheckPath)
			}
			if _, ok := env[config.EnvUpstream]; ok {
				checkForwarding(t, n, tpl.groups[0].Port)
			}
		})
	}
	if !found {
		t.Errorf("%s=%s: no rendering of the CDK app's stack %q (cdk/cdk.json)", envCDKInput, root, stack)
	}
}
