package runbooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The live test runs the blocks of docs/getting-started.md and of the runbooks with bash
// against bin/ecslocal: the service is created as getting-started.md's "Try it locally"
// blocks create it, README.md's block for a service deployed by hand sets the variables, and
// each runbook in scenarios runs after its drive script has put the service into the state
// the runbook is for. A block must exit 0 (or the code of its "<!-- exit: N -->" mark) and
// its output must hold each "<!-- expect: TEXT -->"; a block with a "# not exercised
// locally:" line is not run, nor one marked "<!-- not run by the test: why -->", and both
// are listed.

// scenario is the state a runbook is for and how to get there.
type scenario struct {
	runbook string
	state   string // what drive leaves the service in, for the list
	drive   string // bash, run before the runbook's blocks with the same variables
	after   string // bash, run after them: back to a steady service for the next scenario
	// notInState, when set, says why the service is not in the runbook's state: the blocks
	// that do not need it run (the others are marked "not run by the test"), and the runbook
	// is listed as not driven.
	notInState string
	// before is what the operator does between the runbook's blocks, where the runbook sends
	// them elsewhere: each step runs just before the first block whose text starts with its
	// prefix, and a prefix that starts no block fails the test.
	before []step
}

// step follows another runbook's blocks from the state the runbook before it left (that
// runbook counts as driven), then runs a script.
type step struct {
	prefix, follow, script string
}

// followed says whether a scenario's step follows runbook f.
func followed(list []scenario, f string) bool {
	return slices.ContainsFunc(list, func(sc scenario) bool {
		return slices.ContainsFunc(sc.before, func(st step) bool { return st.follow == f })
	})
}

// waitSteady waits (at most 3 minutes) until the service runs its desired count with one
// deployment and no pending task.
const waitSteady = `for attempt in $(seq 1 90); do
  STEADY=$(aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
    --query 'services[0].[runningCount,desiredCount,pendingCount,length(deployments)]' --output text)
  case "$STEADY" in "2	2	0	1") break ;; esac
  sleep 2
done
echo "steady: $STEADY"
[ "$STEADY" = "2	2	0	1" ]
`

// scenarios are in the order they run: each starts from the state the one before left.
// getting-started.md's blocks end with a revision rolled back by the circuit breaker, the
// state of deployment-failed.md.
var scenarios = []scenario{
	{
		runbook: "deployment-failed.md",
		state:   "getting-started.md's bad revision (the proxy's upstream on a port nobody listens on) rolled back by the circuit breaker",
	},
	{
		runbook: "health-checks-flapping.md",
		state:   "the tasks of the bad revision replaced for failed container health checks, the service healthy again on the last good one (nothing flaps: ecslocal has no application that fails its check now and then yet)",
	},
	{
		runbook: "tasks-fail-to-start.md",
		state:   "a revision whose proxy image is not in ecslocal's image map: CannotPullContainerError, rolled back by the circuit breaker",
		drive: `proxy rollout deploy -cluster "$CLUSTER" -service "$SERVICE" -taskdef "$LOCAL/taskdef.json" \
  -image proxy=registry.invalid/no-such-image:1 -force -interval 2s -timeout 5m || [ $? -eq 5 ]
`,
	},
	{
		runbook: "service-below-desired.md",
		state:   "one of the two tasks stopped by StopTask, its replacement not yet running",
		drive: `aws ecs stop-task --cluster "$CLUSTER" --reason "runbook test: below desired" \
  --task "$(aws ecs list-tasks --cluster "$CLUSTER" --service-name "$SERVICE" --query 'taskArns[0]' --output text)" \
  --query 'task.desiredStatus' --output text
`,
		after: waitSteady,
	},
	{
		runbook: "repaving-and-spot.md",
		state:   "a task stopped as an interruption stops it (StopTask), then the forced new deployment of the runbook",
		drive: `aws ecs stop-task --cluster "$CLUSTER" --reason "Your Spot Task was interrupted." \
  --task "$(aws ecs list-tasks --cluster "$CLUSTER" --service-name "$SERVICE" --query 'taskArns[0]' --output text)" \
  --query 'task.desiredStatus' --output text
` + waitSteady,
		after: `proxy rollout watch -cluster "$CLUSTER" -service "$SERVICE" -interval 2s -timeout 5m
`,
	},
	{
		runbook: "config-reload-rejected.md",
		state:   "the configuration file as changed, with a misspelt field a reload rejects (the proxy on ecslocal reads its configuration from GANGWAY_CONFIG_YAML, which is never reloaded, and ecslocal mounts no volumes)",
		drive: `CONFIG_FILE="$LOCAL/gangway.yaml"
cat > "$CONFIG_FILE" <<'YAML'
admin:
  address: 127.0.0.1:28080
listeners:
  - name: public
    address: ":8080"
    readiness_path: /gangway/ready
routes:
  - name: app
    match: {path_prefix: /}
    cluster: app
clusters:
  - name: app
    endpoints: ["127.0.0.1:80"]
    health_check: {type: tcp, interval: 2s, timeout: 1s}
YAML
proxy validate -config "$CONFIG_FILE"
sed -i 's/timeout: 1s/timout: 1s/' "$CONFIG_FILE"
`,
		after: `proxy rollout watch -cluster "$CLUSTER" -service "$SERVICE" -interval 2s -timeout 5m
`,
	},
	{
		runbook: "targets-stuck-draining.md",
		state:   "the target group's deregistration delay raised to 120 s and the service scaled in to 1: one target draining",
		drive: `aws elbv2 modify-target-group-attributes --target-group-arn "$BLUE_TG_ARN" \
  --attributes Key=deregistration_delay.timeout_seconds,Value=120 --output text
aws ecs update-service --cluster "$CLUSTER" --service "$SERVICE" --desired-count 1 --query service.desiredCount
for attempt in $(seq 1 60); do
  DRAINING=$(aws elbv2 describe-target-health --target-group-arn "$BLUE_TG_ARN" \
    --query "TargetHealthDescriptions[?TargetHealth.State=='draining'] | length(@)" --output text)
  [ "$DRAINING" = 1 ] && break
  sleep 1
done
[ "$DRAINING" = 1 ]
`,
	},
}

// stackUp waits (90 rounds of at most 8 s) until the stack's service runs its desired count with
// one deployment and the production listener (HTTPS in the template, HTTP on ecslocal, on
// port 443 of the load balancer's DNS name, which the test's curlrc resolves to -lb-addr)
// answers with the application.
const stackUp = `for attempt in $(seq 1 90); do
  STEADY=$(aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
    --query 'services[0].[runningCount,desiredCount,pendingCount,length(deployments)]' --output text)
  ANSWER=$(curl -sS --max-time 5 "http://$LB_DNS:443/" 2>&1 || true)
  case "$STEADY $ANSWER" in "2	2	0	1 Hello from the Gangway demo upstream."*) break ;; esac
  sleep 2
done
echo "steady: $STEADY; http://$LB_DNS:443/ answers: $ANSWER"
[ "$STEADY" = "2	2	0	1" ] && [ "${ANSWER#Hello from the Gangway demo upstream.}" != "$ANSWER" ]
`

// stackCurl makes curl, in the blocks that follow, reach the stack's load balancer by its DNS
// name: a curlrc (CURL_HOME) resolves the name, at each of the template's ports, to the
// loopback IP of the stack's ecslocal's -lb-addr, as ecslocal's /etc/hosts does for its
// Lambda functions. LB_IP is set by the test.
const stackCurl = `export CURL_HOME="$LOCAL/curl"
mkdir -p "$CURL_HOME"
for port in 80 443 9443; do
  echo "resolve = \"$LB_DNS:$port:$LB_IP\""
done > "$CURL_HOME/.curlrc"
cat "$CURL_HOME/.curlrc"
unset LB_IP
`

// stackResources checks that README.md's stack block set each variable to a resource of
// the stack: every command fails on a name or ARN that is not one.
const stackResources = `aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE_ARN" --query 'services[0].[serviceName,status,deploymentController.type]' --output text
[ "$(aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE_ARN" --query 'services[0].serviceName' --output text)" = "$SERVICE" ]
aws ecs describe-task-definition --task-definition "$TASK_FAMILY" --query 'taskDefinition.[family,containerDefinitions[].name]' --output text
aws elbv2 describe-target-groups --target-group-arns "$BLUE_TG_ARN" "$GREEN_TG_ARN" --query 'TargetGroups[].TargetGroupName' --output text
echo "listener ports: $(aws elbv2 describe-listeners --listener-arns "$PROD_LISTENER_ARN" "$TEST_LISTENER_ARN" --query 'Listeners[].Port' --output text)"
echo "rules: $(aws elbv2 describe-rules --rule-arns "$PROD_RULE_ARN" "$TEST_RULE_ARN" --query 'length(Rules[?length(Actions[0].ForwardConfig.TargetGroups) == ` + "`2`" + `])' --output text) with two weighted groups"
echo "alarms: $(aws cloudwatch describe-alarms --alarm-names $(echo "$ALARM_NAMES" | tr , ' ') --query 'length(MetricAlarms)' --output text) of $(echo "$ALARM_NAMES" | tr , '\n' | wc -l)"
echo "hook: $(aws lambda get-function --function-name "$HOOK_FUNCTION" --query 'Configuration.[FunctionName,Runtime]' --output text)"
LOAD_BALANCERS=$(aws elbv2 describe-load-balancers --query "length(LoadBalancers[?DNSName=='$LB_DNS'])" --output text)
echo "load balancers named $LB_DNS: $LOAD_BALANCERS"
[ "$LOAD_BALANCERS" = 1 ]
`

// stackScenarios run on the stack, after README.md's stack block and stackUp, in order.
var stackScenarios = []scenario{
	{
		runbook: "listener-weights.md",
		state:   "the stack's production rule pointed by ModifyRule at the Green target group, which has no tasks (weight 1; Blue, with the two healthy tasks, 0), as a bad stack update writes it: the production listener answers 503",
		drive: `aws elbv2 modify-rule --rule-arn "$PROD_RULE_ARN" \
  --actions "[{\"Type\":\"forward\",\"ForwardConfig\":{\"TargetGroups\":[{\"TargetGroupArn\":\"$BLUE_TG_ARN\",\"Weight\":0},{\"TargetGroupArn\":\"$GREEN_TG_ARN\",\"Weight\":1}]}}]" \
  --query 'Rules[0].Actions[0].ForwardConfig.TargetGroups[].[TargetGroupArn,Weight]' --output text
for attempt in $(seq 1 50); do
  CODE=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://$LB_DNS:443/" || true)
  [ "$CODE" = 503 ] && break
  sleep 0.2
done
echo "http://$LB_DNS:443/: $CODE"
[ "$CODE" = 503 ]
`,
		// The runbook's own check is HTTPS; on ecslocal the production listener serves HTTP
		// on port 443, and the test listener's rule, on 9443, forwards the requests with its
		// header.
		after: `TEST_HEADER=$(aws elbv2 describe-rules --rule-arns "$TEST_RULE_ARN" \
  --query "Rules[0].Conditions[?Field=='http-header'] | [0].HttpHeaderConfig.[HttpHeaderName,Values[0]]" --output text | tr '\t' :)
for attempt in $(seq 1 50); do
  PROD=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://$LB_DNS:443/" || true)
  TEST=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H "$TEST_HEADER" "http://$LB_DNS:9443/" || true)
  [ "$PROD $TEST" = "200 200" ] && break
  sleep 0.2
done
echo "http://$LB_DNS:443/: $PROD, http://$LB_DNS:9443/ with $TEST_HEADER: $TEST"
[ "$PROD $TEST" = "200 200" ]
`,
	},
	{
		runbook: "deployment-failed.md",
		state: "a revision whose application sends /orders to a downstream nobody serves (502), deployed under requests to /orders through the production listener: " +
			"the hook's checks of / pass, production moves to it, and the Green target group's 5xx alarm rolls it back during bake time",
		drive: `aws ecs describe-task-definition --task-definition "$TASK_FAMILY" --query taskDefinition \
  | jq 'del(.taskDefinitionArn, .revision, .status, .requiresAttributes, .compatibilities, .registeredAt, .registeredBy, .deregisteredAt)' \
  > "$LOCAL/taskdef.json"
ORDERS_CONFIG='` + ordersConfig + `'
(for attempt in $(seq 1 20000); do
  curl -sS -o /dev/null --max-time 2 "http://$LB_DNS:443/orders/1" 2>/dev/null || true
  sleep 0.01
done) &
LOAD=$!
DEPLOY_EXIT=0
proxy rollout deploy -cluster "$CLUSTER" -service "$SERVICE" -taskdef "$LOCAL/taskdef.json" \
  -env "app:GANGWAY_CONFIG_YAML=$ORDERS_CONFIG" -force -interval 1s -timeout 5m || DEPLOY_EXIT=$?
kill "$LOAD"
wait "$LOAD" || true
echo "proxy rollout deploy: exit $DEPLOY_EXIT"
[ "$DEPLOY_EXIT" = 5 ]
`,
		// Back on the revision before: / and /orders answer 200 through the production listener.
		after: `for path in / /orders/1; do
  CODE=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://$LB_DNS:443$path")
  echo "http://$LB_DNS:443$path: $CODE"
  [ "$CODE" = 200 ]
done
`,
	},
	{
		runbook:    "rollback-failed.md",
		state:      "the stack's service serving on Blue after listener-weights.md's fix",
		notInState: "no deployment ended ROLLBACK_FAILED (ecslocal's rollbacks of a BLUE_GREEN deployment do not fail while Blue's tasks run): steps 1 and 2 (the production rule's weights and the groups' targets) and the revision list run on the stack, going back by hand does not",
	},
	{
		runbook: "cloudformation-stuck.md",
		state: "a stack update (UpdateStack of the synthesized template) whose new revision's application answers / with 502: the hook's smoke check of / fails, " +
			"so it answers IN_PROGRESS at POST_TEST_TRAFFIC_SHIFT and the stack waits UPDATE_IN_PROGRESS for the service's deployment " +
			"(the update also gives the hook ECS's default timeout, 24 hours, as -time-scale makes the template's 13 minutes 8 s); " +
			"before the runbook's check that the stack finished, deployment-stuck.md's blocks run on the held deployment (its watcher times out, its rollback ends it), and the stack rolls back",
		drive: `BROKEN_CONFIG='` + brokenConfig + `'
jq --arg config "$BROKEN_CONFIG" '
  (.Resources[] | select(.Type == "AWS::ECS::TaskDefinition") | .Properties.ContainerDefinitions[] | select(.Name == "app"))
    += {Environment: [{Name: "GANGWAY_CONFIG_YAML", Value: $config}]}
  | (.Resources[] | select(.Type == "AWS::ECS::Service") | .Properties.DeploymentConfiguration.LifecycleHooks[].TimeoutConfiguration.TimeoutInMinutes)
    = 1440' ` + stackTemplate + ` > "$LOCAL/stuck.template.json"
aws cloudformation update-stack --stack-name "$STACK" --template-body "file://$LOCAL/stuck.template.json" --query StackId --output text
for attempt in $(seq 1 90); do
  HELD=$(aws ecs describe-service-deployments --service-deployment-arns \
    "$(aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" --query 'services[0].currentServiceDeployment' --output text)" \
    --query "serviceDeployments[0].[status,lifecycleStage,lifecycleHookDetails[?status=='IN_PROGRESS'] | [0].status]" --output text || true)
  case "$HELD" in "IN_PROGRESS	POST_TEST_TRAFFIC_SHIFT	IN_PROGRESS") break ;; esac
  sleep 2
done
STACK_STATUS=$(aws cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].StackStatus' --output text)
echo "stack: $STACK_STATUS; deployment: $HELD"
[ "$STACK_STATUS $HELD" = "UPDATE_IN_PROGRESS IN_PROGRESS	POST_TEST_TRAFFIC_SHIFT	IN_PROGRESS" ]
`,
		before: []step{{
			// Before step 3's check, step 2 sends the operator to deployment-stuck.md, whose
			// rollback (a Lambda hook answering IN_PROGRESS: its step 3, then step 2) fails the
			// service resource; the stack rolls back to its previous template.
			prefix: `aws cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].StackStatus'`,
			follow: "deployment-stuck.md",
			script: `for attempt in $(seq 1 90); do
  STACK_STATUS=$(aws cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].StackStatus' --output text)
  case "$STACK_STATUS" in *_COMPLETE|*_FAILED) break ;; esac
  sleep 2
done
echo "stack: $STACK_STATUS"
[ "$STACK_STATUS" = UPDATE_ROLLBACK_COMPLETE ]
`,
		}},
		after: stackUp,
	},
}

// ordersConfig is appConfig with a route for /orders to a downstream on a port nobody
// listens on: the application answers / as before, and /orders with 502.
const ordersConfig = `{admin: {address: "127.0.0.1:28081"}, demo_upstream: {enabled: true},
  listeners: [{name: app, address: ":80"}],
  routes: [{name: orders, match: {path_prefix: /orders}, cluster: orders}, {name: demo, match: {path_prefix: /}, cluster: demo}],
  clusters: [{name: orders, endpoints: ["127.0.0.1:18099"]}, {name: demo, endpoints: ["127.0.0.1:18080"]}]}`

// brokenConfig is appConfig with / sent to a downstream on a port nobody listens on: the
// proxy in front is ready (the application listens on port 80), and / answers 502.
const brokenConfig = `{admin: {address: "127.0.0.1:28081"},
  listeners: [{name: app, address: ":80"}], routes: [{name: demo, match: {path_prefix: /}, cluster: demo}],
  clusters: [{name: demo, endpoints: ["127.0.0.1:18099"]}]}`

// notDriven says why each runbook that is not in scenarios or stackScenarios is not: the
// test fails for a runbook in neither.
var notDriven = map[string]string{
	"certificate-expiring.md": "needs HTTPS listeners and ACM certificates, which ecslocal refuses",
}

// whyNotDriven says why the test does not drive runbook f into its state.
func whyNotDriven(f string) string {
	for _, sc := range append(slices.Clone(scenarios), stackScenarios...) {
		if sc.runbook == f && sc.notInState != "" {
			return sc.notInState
		}
	}
	return notDriven[f]
}

// substitutions are the changes the test makes to getting-started.md's blocks, so that its
// ecslocal meets no other on this machine: its own address, listener port, name, subnet and
// directories; and to a runbook's where a step's wait is what it shows, not its outcome
// (waits). Each must apply to some block, or the text and the test have drifted apart.
type substitution struct{ old, new string }

// waits shorten the waits of runbook steps whose point is that the wait runs out:
// deployment-stuck.md's watch gives up after 2 minutes on a deployment its hook holds for a
// day, and gives the same answer after 20 seconds.
var waits = map[string][]substitution{
	"deployment-stuck.md": {{"-timeout 2m", "-timeout 20s"}},
}

func TestRunbooksOnECSLocal(t *testing.T) {
	if os.Getenv("GANGWAY_RUNBOOKS_ECSLOCAL") == "" {
		// Like the rehearsal: `go test ./...` leaves it to its make target, which builds
		// bin/ecslocal, bin/proxy and the image first and runs it once, alone; there
		// GANGWAY_ECSLOCAL_REQUIRE makes a missing package or root a failure.
		t.Skip("GANGWAY_RUNBOOKS_ECSLOCAL is not set: the runbooks run on ecslocal in make test-runbooks (part of make test), with the binaries and image make builds")
	}
	ecslocaltest.RequireRoot(t, "runc", "ip", "haproxy", "aws", "jq", "curl")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"bin/ecslocal", "bin/proxy", "bin/healthcheck", "bin/image/oci/index.json"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatalf("%v: make test-runbooks builds it (make ecslocal build image)", err)
		}
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	addr := fmt.Sprintf("127.0.0.1:%d", ecslocaltest.FreePort(t))
	subs := []substitution{
		{"sudo ", ""},
		{"127.0.0.1:4580", addr},
		{"bin/ecslocal ", fmt.Sprintf("bin/ecslocal -name rb%02x%02x -subnet 198.19.%d.0/24 -state-dir %s ", b[0], b[1], 150+b[0]%50, t.TempDir())},
		{"LB_PORT=8000", fmt.Sprintf("LB_PORT=%d", ecslocaltest.FreePort(t))},
		{"LOCAL=bin/local", "LOCAL=" + t.TempDir()},
	}
	subsOf := map[string][]substitution{"getting-started.md": subs}
	for f, w := range waits {
		subsOf[f] = w
	}
	used := map[substitution]bool{}

	sh := newShell(t, root)
	var skipped []string
	driven := map[string]bool{"README.md": true}
	defer func() {
		fmt.Printf("blocks not run on ecslocal (%d):\n", len(skipped))
		for _, s := range skipped {
			fmt.Println("  " + s)
		}
		var names []string
		for _, f := range runbookFiles(t) {
			if !driven[f] {
				names = append(names, f)
			}
		}
		fmt.Printf("runbooks not driven into their state on ecslocal (%d):\n", len(names))
		for _, f := range names {
			fmt.Printf("  %s: %s\n", f, whyNotDriven(f))
		}
		fmt.Printf("blocks run on ecslocal: %d\n", sh.ran)
	}()
	// run runs b on the pass's ecslocal: "service" (getting-started.md's, by hand) or
	// "stack" (the template's). A block marked "on" runs on that pass only.
	run := func(b block, label, pass string) {
		t.Helper()
		if on := b.marked("on"); len(on) > 0 && !slices.Contains(on, pass) {
			return
		}
		if reasons := marked(b); len(reasons) > 0 {
			skipped = append(skipped, fmt.Sprintf("%s: %s", b, strings.Join(reasons, "; ")))
			return
		}
		if why := b.marked("not run by the test"); len(why) > 0 {
			skipped = append(skipped, fmt.Sprintf("%s: not run by the test: %s", b, strings.Join(why, "; ")))
			return
		}
		b.marks = forPass(b.marks, pass)
		for _, s := range subsOf[b.file] {
			if strings.Contains(b.text, s.old) {
				b.text = strings.ReplaceAll(b.text, s.old, s.new)
				used[s] = true
			}
		}
		if ready := b.marked("background"); len(ready) > 0 {
			sh.background(b, ready[0])
			return
		}
		sh.check(b, label)
	}

	// getting-started.md, in order: the service created, a good revision deployed, a bad one
	// rolled back, proxy rollout init on the live service.
	gs := filepath.Join(root, "docs", "getting-started.md")
	for _, b := range readBlocks(t, gs) {
		b.file = "getting-started.md"
		run(b, "getting-started", "service")
		if t.Failed() {
			t.Fatalf("getting-started.md stopped at %s", b)
		}
	}
	for _, s := range subs {
		if !used[s] {
			t.Errorf("getting-started.md: no block has %q, which the test changes to %q: update the test's substitutions", s.old, s.new)
		}
	}

	// The runbooks run in a new terminal, as the one on call opens it: it has the endpoint,
	// the credentials, proxy on PATH and the names of the cluster and the service (and LOCAL,
	// which only the drive scripts use), nothing else; README.md's block sets the rest.
	carried := "declare -p AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY PATH CLUSTER SERVICE LOCAL\n"
	ran := sh.ran
	_, state, problems := sh.run(block{file: "getting-started.md (state)", text: carried})
	if len(problems) > 0 {
		t.Fatalf("the variables getting-started.md set: %s\n%s", strings.Join(problems, "; "), state)
	}
	sh = newShell(t, root)
	sh.ran = ran
	if err := os.WriteFile(sh.state, state, 0o644); err != nil {
		t.Fatal(err)
	}

	// README.md: the variables from the service (the stack's block is marked), then the
	// shared blocks that read the current deployment.
	for _, b := range readBlocks(t, "README.md") {
		run(b, "README", "service")
	}
	if t.Failed() {
		t.FailNow()
	}

	// runScenarios drives the service into each scenario's state, runs the runbook's blocks
	// and brings the service back, in order: each starts from the state the one before left.
	runScenarios := func(list []scenario, pass string) {
		t.Helper()
		for _, sc := range list {
			if sc.notInState == "" {
				driven[sc.runbook] = true
			}
			t.Logf("%s (%s): %s", sc.runbook, pass, sc.state)
			if sc.drive != "" {
				sh.check(block{file: sc.runbook + " (drive)", text: sc.drive}, sc.runbook)
			}
			done := make([]bool, len(sc.before))
			for _, b := range readBlocks(t, sc.runbook) {
				for i, st := range sc.before {
					if done[i] || !strings.HasPrefix(b.text, st.prefix) {
						continue
					}
					done[i] = true
					if st.follow != "" {
						driven[st.follow] = true
						t.Logf("%s (%s), before %s: %s", st.follow, pass, b, sc.state)
						for _, fb := range readBlocks(t, st.follow) {
							run(fb, st.follow, pass)
						}
					}
					if st.script != "" {
						sh.check(block{file: sc.runbook + " (before " + b.String() + ")", text: st.script}, sc.runbook)
					}
				}
				run(b, sc.runbook, pass)
			}
			for i, st := range sc.before {
				if !done[i] {
					t.Errorf("%s: no block starts with %q, before which the test acts", sc.runbook, st.prefix)
				}
			}
			if sc.after != "" {
				sh.check(block{file: sc.runbook + " (after)", text: sc.after}, sc.runbook)
			}
			if t.Failed() {
				t.Fatalf("%s failed: the scenarios after it start from its state", sc.runbook)
			}
		}
	}
	runScenarios(scenarios, "service")

	// The stack from cdk/: a second ecslocal creates it from the synthesized template, the
	// template's proxy image from make image and, for its nginx, the proxy binary serving the
	// demo application on port 80 as getting-started.md's app container does. A new
	// terminal has the endpoint, the credentials and PATH; README.md's stack block sets the
	// rest from the stack's outputs.
	stackAddr := fmt.Sprintf("127.0.0.1:%d", ecslocaltest.FreePort(t))
	lbIP := ecslocaltest.FreeLoopbackIP(t, 100, 199, ecslocaltest.StackPorts) // 127.0.0.1 is a rehearsal's
	stackCmd := fmt.Sprintf("bin/ecslocal -addr %s -lb-addr %s -name rs%02x%02x -subnet 198.19.%d.0/24 -state-dir %s "+
		"-health-scale 0.2 -time-scale 0.01 -template %s -image %s=bin/image/oci -image %s=%s",
		stackAddr, lbIP, b[0], b[1], 200+b[1]%50, t.TempDir(), stackTemplate, stackImages(t, root)["proxy"],
		stackImages(t, root)["app"], appImage(t, root))
	sh.background(block{file: "the stack's ecslocal", text: stackCmd}, "serving")
	ran = sh.ran
	sh = newShell(t, root)
	sh.ran = ran
	env := fmt.Sprintf("export AWS_ENDPOINT_URL=http://%s AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test PATH=%q\nLOCAL=%q\n",
		stackAddr, filepath.Join(root, "bin")+":"+os.Getenv("PATH"), t.TempDir())
	if err := os.WriteFile(sh.state, []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range readBlocks(t, "README.md") {
		if slices.Contains(b.marked("on"), "stack") {
			run(b, "README (stack)", "stack")
		}
	}
	sh.check(block{file: "README.md (the stack's resources)", text: stackResources, marks: []mark{
		{"expect", "ACTIVE\tECS"}, {"expect", "proxy"}, {"expect", "listener ports: 443\t9443"},
		{"expect", "rules: 2 with two weighted groups"}, {"expect", "alarms: 7 of 7"},
		{"expect", "provided.al2023"},
	}}, "README (stack)")
	sh.check(block{file: "the stack's load balancer for curl", text: "LB_IP=" + lbIP + "\n" + stackCurl, marks: []mark{
		{"expect", ":443:" + lbIP}}}, "README (stack)")
	sh.check(block{file: "the stack (serving)", text: stackUp}, "README (stack)")
	if t.Failed() {
		t.FailNow()
	}
	runScenarios(stackScenarios, "stack")
	// The blocks of the other runbooks that read the stack's alarms, logs or hook function.
	for _, f := range runbookFiles(t) {
		if f == "README.md" || slices.ContainsFunc(stackScenarios, func(sc scenario) bool { return sc.runbook == f }) || followed(stackScenarios, f) {
			continue
		}
		for _, b := range readBlocks(t, f) {
			if slices.Contains(b.marked("on"), "stack") {
				run(b, f+" (stack)", "stack")
			}
		}
	}
	for f, w := range waits {
		for _, s := range w {
			if !used[s] {
				t.Errorf("%s: no block run has %q, which the test changes to %q: update waits", f, s.old, s.new)
			}
		}
	}
}

// stackTemplate is the rehearsal's BLUE_GREEN stack, relative to the repository's root: the
// template of cdk/ as make rehearse-stacks synthesizes it, with the lifecycle hook built for
// this machine, which aws-lambda-rie runs.
const stackTemplate = "cdk/build/rehearse/BLUE_GREEN/Gangway.template.json"

// stackImages is the image of each container of the stack's task definition.
func stackImages(t *testing.T, root string) map[string]string {
	t.Helper()
	return ecslocaltest.TemplateImages(t, filepath.Join(root, stackTemplate), "make test-runbooks runs make rehearse-stacks")
}

// appConfig is getting-started.md's application: the proxy's demo application behind a
// listener on port 80, where the template's proxy sends requests.
const appConfig = `{admin: {address: "127.0.0.1:28081"}, demo_upstream: {enabled: true},
  listeners: [{name: app, address: ":80"}], routes: [{name: demo, match: {path_prefix: /}, cluster: demo}],
  clusters: [{name: demo, endpoints: ["127.0.0.1:18080"]}]}`

// appImage writes the image that stands in for the template's nginx: bin/proxy running
// appConfig, as root (as nginx does, for port 80). The template gives the app container no
// command or environment, so they are the image's.
func appImage(t *testing.T, root string) string {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join(root, "bin", "proxy"))
	if err != nil {
		t.Fatal(err)
	}
	return ecslocaltest.ImageLayout(t, map[string][]byte{"proxy": bin}, v1.Config{
		Entrypoint: []string{"/proxy", "run"}, Env: []string{"GANGWAY_CONFIG_YAML=" + appConfig}})
}

// shell runs blocks one after the other, each in its own bash with errexit, nounset and
// pipefail, as a reader pastes them into one terminal: the variables and functions a block
// leaves are declared again before the next one.
type shell struct {
	t     *testing.T
	dir   string // every block runs here, the repository's root
	state string // the file with the variables and functions so far
	ran   int
}

func newShell(t *testing.T, dir string) *shell {
	state := filepath.Join(t.TempDir(), "state.sh")
	if err := os.WriteFile(state, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return &shell{t: t, dir: dir, state: state}
}

// saveState declares every variable and function but bash's own, so that sourcing the file
// sets them again; readonly and special variables are left out.
const saveState = `__save_state() {
  local v
  for v in $(compgen -v); do
    case "$v" in
      BASH*|SHELLOPTS|EUID|PPID|UID|GROUPS|FUNCNAME|PIPESTATUS|RANDOM|SRANDOM|SECONDS|LINENO|EPOCH*|HISTCMD|DIRSTACK|COMP_*|OPTARG|OPTIND|OPTERR|SHLVL|PWD|OLDPWD|IFS|PS1|PS2|PS4|_|__*|v) continue ;;
    esac
    declare -p "$v" 2>/dev/null || true
  done
  declare -f | sed '/^__save_state ()/,/^}/d'
}
`

// script is the bash that runs text after the state so far, and saves the state it leaves in
// next whatever its exit.
func (sh *shell) script(text, next string) string {
	return fmt.Sprintf(`source %q
%s
trap '__rc=$?; __save_state > %q; exit $__rc' EXIT
set -eu -o pipefail
%s`, sh.state, saveState, next, text)
}

// check runs b and reports its problems; it keeps the state b leaves.
func (sh *shell) check(b block, label string) {
	t := sh.t
	t.Helper()
	begin := time.Now()
	code, out, problems := sh.run(b)
	t.Logf("%s: %s: exit %d in %s", label, b, code, time.Since(begin).Round(100*time.Millisecond))
	for _, p := range problems {
		t.Errorf("%s: %s", b, p)
	}
	if len(problems) > 0 {
		t.Logf("%s: the block:\n%s\nits output (last 40 lines):\n%s", b, b.text, tail(out, 40))
	}
}

// run runs b and returns its exit code, its output, and how they differ from its marks: an
// exit code other than its "exit" mark's (0 without one), an "expect" mark's text missing
// from the output. Whatever the exit, the variables and functions b leaves are the state of
// the next block.
func (sh *shell) run(b block) (code int, out []byte, problems []string) {
	want := 0
	if codes := b.marked("exit"); len(codes) > 0 {
		n, err := strconv.Atoi(codes[0])
		if err != nil {
			return 0, nil, []string{fmt.Sprintf("<!-- exit: %s -->: %v", codes[0], err)}
		}
		want = n
	}
	next := sh.state + ".next"
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", sh.script(b.text, next))
	cmd.Dir = sh.dir
	cmd.Env = blockEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		return 0, out, []string{err.Error()}
	}
	sh.ran++
	if code != want {
		problems = append(problems, fmt.Sprintf("exit %d, want %d", code, want))
	}
	for _, e := range b.marked("expect") {
		if !bytes.Contains(out, []byte(e)) {
			problems = append(problems, fmt.Sprintf("the output does not show %q", e))
		}
	}
	if err := os.Rename(next, sh.state); err != nil {
		problems = append(problems, fmt.Sprintf("the shell's state: %v", err))
	}
	return code, out, problems
}

// blockEnv is the environment blocks start with: this process's without its AWS_
// variables (the blocks set the endpoint, the credentials and the region they need), and
// with no AWS configuration files, pager or instance metadata.
func blockEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
}

// background starts b, which serves until it is stopped (ecslocal), waits until its output
// shows ready, and stops it with SIGTERM when the test ends.
func (sh *shell) background(b block, ready string) {
	sh.t.Helper()
	cmd := exec.Command("bash", "-c", fmt.Sprintf("source %q\nset -eu -o pipefail\nexec %s", sh.state, strings.TrimSpace(b.text)))
	cmd.Dir = sh.dir
	cmd.Env = blockEnv()
	ecslocaltest.Background(sh.t, b.String(), cmd, ready, 90*time.Second)
	sh.ran++
}

// TestShellCarriesStateAndChecksMarks runs the live test's shell on blocks with known
// answers, without ecslocal: what one block sets, the next one has (plain, exported,
// multi-line, functions); a block's exit code and output are held against its marks.
func TestShellCarriesStateAndChecksMarks(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not on PATH: cannot run blocks")
	}
	sh := newShell(t, t.TempDir())
	blk := func(text string, marks ...mark) block { return block{file: "t.md", line: 1, text: text, marks: marks} }
	steps := []struct {
		b        block
		code     int
		out      string
		problems []string
	}{
		{b: blk("A=one; export B=two\nC='line 1\nline 2'\nf() { echo \"f says $1\"; }\n"), code: 0},
		{b: blk("echo \"$A $B\"; printf '%s\\n' \"$C\"; f hi; env | grep -c '^B=two$'\n",
			mark{"expect", "one two"}, mark{"expect", "line 1\nline 2"}, mark{"expect", "f says hi"}, mark{"expect", "\n1\n"}),
			code: 0, out: "one two\nline 1\nline 2\nf says hi\n1\n"},
		// errexit: the block stops at the first failing command, and its code is the block's.
		{b: blk("D=set-before; false; echo not reached\n"), code: 1, problems: []string{"exit 1, want 0"}},
		{b: blk("echo \"$D\"; exit 5\n", mark{"exit", "5"}, mark{"expect", "set-before"}), code: 5, out: "set-before\n"},
		{b: blk("echo other\n", mark{"expect", "missing"}), code: 0, out: "other\n",
			problems: []string{`the output does not show "missing"`}},
		// nounset: a variable no block set is an error.
		{b: blk("echo \"$NEVER_SET\"\n"), code: 1, problems: []string{"exit 1, want 0"}},
	}
	for i, s := range steps {
		code, out, problems := sh.run(s.b)
		if code != s.code || s.out != "" && string(out) != s.out || !slices.Equal(problems, s.problems) {
			t.Errorf("step %d: exit %d, output %q, problems %q; want %d, %q, %q", i, code, out, problems, s.code, s.out, s.problems)
		}
	}
}

// TestReadBlocksMarks checks which comment lines are a block's marks: those directly below
// its closing fence, indented or not, until the first other line.
func TestReadBlocksMarks(t *testing.T) {
	file := filepath.Join(t.TempDir(), "r.md")
	text := "```sh\necho a\n```\n<!-- expect: a -->\n<!-- exit: 0 -->\ntext\n<!-- expect: not a mark -->\n" +
		"- item\n  ```sh\n  echo b\n  ```\n  <!-- expect: b -->\n\n<!-- expect: after a blank line -->\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got := readBlocks(t, file)
	want := [][]mark{{{"expect", "a"}, {"exit", "0"}}, {{"expect", "b"}}}
	if len(got) != len(want) {
		t.Fatalf("%d blocks, want %d", len(got), len(want))
	}
	for i, b := range got {
		if !slices.Equal(b.marks, want[i]) {
			t.Errorf("block %d: marks %q, want %q", i, b.marks, want[i])
		}
	}
}

// forPass returns marks with each "expect on PASS" as an "expect" on pass, and left out on
// the other: what a block shows can differ between the service deployed by hand and the
// stack (a circuit breaker's rollback on one, an alarm's on the other).
func forPass(marks []mark, pass string) []mark {
	var out []mark
	for _, m := range marks {
		on, ok := strings.CutPrefix(m.key, "expect on ")
		switch {
		case !ok:
			out = append(out, m)
		case on == pass:
			out = append(out, mark{"expect", m.value})
		}
	}
	return out
}

// knownMarks are the marks the test on ecslocal reads; any other key is a typo that would
// leave a block unchecked, or run one that must not run.
var knownMarks = []string{"expect", "expect on service", "expect on stack", "exit", "background", "not run by the test", "on"}

// TestForPass checks that an "expect on PASS" mark is an expectation on that pass only.
func TestForPass(t *testing.T) {
	marks := []mark{{"exit", "5"}, {"expect", "both"}, {"expect on service", "breaker"}, {"expect on stack", "alarm"}}
	for pass, want := range map[string][]mark{
		"service": {{"exit", "5"}, {"expect", "both"}, {"expect", "breaker"}},
		"stack":   {{"exit", "5"}, {"expect", "both"}, {"expect", "alarm"}},
	} {
		if got := forPass(marks, pass); !slices.Equal(got, want) {
			t.Errorf("forPass(%q): %q, want %q", pass, got, want)
		}
	}
}

// TestMarksKnown checks every mark of the runbooks and of getting-started.md: its key is one
// the test reads, an exit code is a number, and an expect has text.
func TestMarksKnown(t *testing.T) {
	files := append(runbookFiles(t), filepath.Join("..", "getting-started.md"))
	n := 0
	for _, f := range files {
		for _, b := range readBlocks(t, f) {
			for _, m := range b.marks {
				n++
				switch {
				case !slices.Contains(knownMarks, m.key):
					t.Errorf("%s: <!-- %s: %s -->: unknown mark %q; the test reads %q", b, m.key, m.value, m.key, knownMarks)
				case m.key == "exit":
					if _, err := strconv.Atoi(m.value); err != nil {
						t.Errorf("%s: <!-- exit: %s -->: not a number", b, m.value)
					}
				case m.key == "on":
					if m.value != "service" && m.value != "stack" {
						t.Errorf("%s: <!-- on: %s -->: the test's passes are service and stack", b, m.value)
					}
				case strings.TrimSpace(m.value) == "":
					t.Errorf("%s: <!-- %s: --> without a value", b, m.key)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no marks found")
	}
}

// TestEveryRunbookDrivenOrExplained checks that the test on ecslocal drives each runbook into
// its state, or says why not: a new runbook must be one or the other.
func TestEveryRunbookDrivenOrExplained(t *testing.T) {
	for _, f := range runbookFiles(t) {
		if f == "README.md" {
			continue
		}
		_, explained := notDriven[f]
		inScenarios := func(sc scenario) bool { return sc.runbook == f }
		driven := slices.ContainsFunc(scenarios, inScenarios) || slices.ContainsFunc(stackScenarios, inScenarios) ||
			followed(scenarios, f) || followed(stackScenarios, f)
		if driven == explained {
			t.Errorf("%s: driven %v, in notDriven %v: drive it in scenarios, or say in notDriven why not", f, driven, explained)
		}
	}
	for f := range notDriven {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("notDriven: %v", err)
		}
	}
}
