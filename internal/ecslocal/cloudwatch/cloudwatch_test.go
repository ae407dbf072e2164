package cloudwatch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/lb"
)

// verdicts parses a row of the CloudWatch documentation's notation, oldest first: "0" a
// point within the threshold, "X" a breaching one, "-" a missing one.
func verdicts(row string) []int {
	var v []int
	for _, f := range strings.Fields(row) {
		switch f {
		case "0":
			v = append(v, notBreaching)
		case "X":
			v = append(v, breaching)
		default:
			v = append(v, missing)
		}
	}
	return v
}

// The alarm evaluation of "Configuring how CloudWatch alarms treat missing data", with 3
// evaluation periods and 3 datapoints to alarm over a range of 5, for every treatment.
func TestDecide(t *testing.T) {
	for _, c := range []struct {
		row                                       string
		missingT, ignoreT, breachingT, notBreachT string
	}{
		{"0 - X - X", "OK", "OK", "OK", "OK"}, // 3 real points: the newest 3 decide
		{"0 X X X X", "ALARM", "ALARM", "ALARM", "ALARM"},
		{"0 - X X X", "ALARM", "ALARM", "ALARM", "ALARM"},
		{"- - - - 0", "OK", "OK", "OK", "OK"},                     // cannot reach 3 breaching
		{"- - - - -", "INSUFFICIENT_DATA", "keep", "ALARM", "OK"}, // nothing at all
		{"- - X - -", "ALARM", "ALARM", "ALARM", "ALARM"},         // premature: the breach is 3 periods old
		{"- - - - X", "keep", "keep", "ALARM", "OK"},              // too recent to alarm on its own
		{"- - - X X", "keep", "keep", "ALARM", "OK"},
	} {
		for treat, want := range map[string]string{"missing": c.missingT, "ignore": c.ignoreT, "breaching": c.breachingT, "notBreaching": c.notBreachT} {
			for _, current := range []string{StateOK, StateAlarm, StateInsufficient} {
				got, _ := decide(verdicts(c.row), 3, 3, treat, current)
				w := want
				if w == "keep" {
					w = current
				}
				if got != w {
					t.Errorf("%q, %s, from %s: %s, want %s", c.row, treat, current, got, w)
				}
			}
		}
	}
	// M out of N: 2 of 3.
	if got, _ := decide(verdicts("0 0 X 0 X"), 3, 2, "missing", StateOK); got != StateAlarm {
		t.Errorf("2 of 3 breaching, DatapointsToAlarm 2: %s, want ALARM", got)
	}
	if got, _ := decide(verdicts("0 0 X 0 0"), 3, 2, "missing", StateAlarm); got != StateOK {
		t.Errorf("1 of 3 breaching, DatapointsToAlarm 2: %s, want OK", got)
	}
}

// fakeLB is a load balancer with one target group behind one load balancer, whose counters
// and health the test sets.
type fakeLB struct {
	mu        sync.Mutex
	counters  lb.Counters
	healthy   int
	unhealthy int
}

const (
	tgARN = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/green/0123456789abcdef"
	lbARN = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/fedcba9876543210"
)

func (f *fakeLB) Counters() map[string]lb.Counters {
	f.mu.Lock()
	defer f.mu.Unlock()
	return map[string]lb.Counters{tgARN: f.counters}
}

func (f *fakeLB) DescribeTargetGroups(context.Context, *elb.DescribeTargetGroupsInput) (*elb.DescribeTargetGroupsOutput, error) {
	return &elb.DescribeTargetGroupsOutput{TargetGroups: []elbtypes.TargetGroup{{TargetGroupArn: aws.String(tgARN), LoadBalancerArns: []string{lbARN}}}}, nil
}

func (f *fakeLB) DescribeTargetHealth(context.Context, *elb.DescribeTargetHealthInput) (*elb.DescribeTargetHealthOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out elb.DescribeTargetHealthOutput
	for i := range f.healthy + f.unhealthy {
		state := elbtypes.TargetHealthStateEnumHealthy
		if i >= f.healthy {
			state = elbtypes.TargetHealthStateEnumUnhealthy
		}
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, elbtypes.TargetHealthDescription{TargetHealth: &elbtypes.TargetHealth{State: state}})
	}
	return &out, nil
}

func (f *fakeLB) add(requests, target5xx, elb5xx int64) {
	f.mu.Lock()
	f.counters.Requests += requests
	f.counters.Target5XX += target5xx
	f.counters.ELB5XX += elb5xx
	f.mu.Unlock()
}

// clock is a test clock that Tick reads.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// A deployment alarm as the CDK construct declares it, on the green target group's 5xx count,
// goes to ALARM once a period's count crosses the threshold and back to OK when the load
// balancer publishes nothing (notBreaching), with periods scaled.
func TestAlarmOnTargetGroupCounters(t *testing.T) {
	f := &fakeLB{healthy: 2}
	c := &clock{t: time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)}
	s := New(Options{Region: "us-east-1", Account: "000000000000", TimeScale: 0.01, ELB: f, Counters: f, Now: c.now})
	step := func(d time.Duration, requests, target5xx int64) {
		// Requests spread over the step, one sample each 10 ms of scaled time.
		for i := time.Duration(0); i < d; i += 10 * time.Millisecond {
			c.t = c.t.Add(10 * time.Millisecond)
			if i == 0 {
				f.add(requests, target5xx, 0)
			}
			s.Tick(context.Background())
		}
	}
	step(50*time.Millisecond, 0, 0)
	dims := []Dimension{{"LoadBalancer", "app/web/fedcba9876543210"}, {"TargetGroup", "targetgroup/green/0123456789abcdef"}}
	for _, a := range []Alarm{
		{AlarmName: "green-target-5xx", Namespace: "AWS/ApplicationELB", MetricName: "HTTPCode_Target_5XX_Count", Statistic: "Sum",
			Dimensions: dims, Period: 60, EvaluationPeriods: 1, DatapointsToAlarm: 1, Threshold: 5,
			ComparisonOperator: "GreaterThanOrEqualToThreshold", TreatMissingData: "notBreaching"},
		{AlarmName: "green-unhealthy-hosts", Namespace: "AWS/ApplicationELB", MetricName: "UnHealthyHostCount", Statistic: "Maximum",
			Dimensions: dims, Period: 60, EvaluationPeriods: 2, DatapointsToAlarm: 2, Threshold: 1,
			ComparisonOperator: "GreaterThanOrEqualToThreshold", TreatMissingData: "notBreaching"},
	} {
		if err := s.PutMetricAlarm(a); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(name, want, when string) {
		t.Helper()
		got, ok := s.AlarmState(name)
		if !ok || got != want {
			t.Fatalf("%s: alarm %s is %q (found: %v), want %s", when, name, got, ok, want)
		}
	}
	expect("green-target-5xx", StateOK, "no requests yet, notBreaching")
	if _, ok := s.AlarmState("nope"); ok {
		t.Fatal("AlarmState of a missing alarm: ok")
	}

	// 100 requests, 2 of them 5xx, in a (scaled) minute: below the threshold.
	step(600*time.Millisecond, 100, 2)
	expect("green-target-5xx", StateOK, "2 5xx in a period, threshold 5")
	// 7 more within the next period: ALARM, with CloudWatch's reason.
	step(600*time.Millisecond, 100, 7)
	expect("green-target-5xx", StateAlarm, "7 5xx in a period, threshold 5")
	a := s.Alarms([]string{"green-target-5xx"}, "", "")[0]
	if !strings.HasPrefix(a.StateReason, "Threshold Crossed: 1 datapoint [7.0 (") || !strings.Contains(a.StateReason, "was greater than or equal to the threshold (5.0)") {
		t.Fatalf("StateReason %q", a.StateReason)
	}
	// No requests: nothing published. The breaching point stays the newest real one while it
	// is within the evaluation range (N+2 periods), then the missing points are not breaching.
	step(700*time.Millisecond, 0, 0)
	expect("green-target-5xx", StateAlarm, "a quiet period after the breach, still in range")
	step(1300*time.Millisecond, 0, 0)
	expect("green-target-5xx", StateOK, "quiet for the evaluation range, notBreaching")

	// One unhealthy target for two periods trips the 2-of-2 alarm; one period alone does not.
	expect("green-unhealthy-hosts", StateOK, "UnHealthyHostCount 0")
	f.mu.Lock()
	f.unhealthy = 1
	f.mu.Unlock()
	step(650*time.Millisecond, 0, 0)
	expect("green-unhealthy-hosts", StateOK, "one period with an unhealthy target, 2 of 2 needed")
	step(650*time.Millisecond, 0, 0)
	expect("green-unhealthy-hosts", StateAlarm, "two periods with an unhealthy target")

	// SetAlarmState holds until the next evaluation.
	if err := s.SetAlarmState("green-target-5xx", StateAlarm, "testing", ""); err != nil {
		t.Fatal(err)
	}
	expect("green-target-5xx", StateAlarm, "after SetAlarmState ALARM")
	step(650*time.Millisecond, 0, 0)
	expect("green-target-5xx", StateOK, "one evaluation after SetAlarmState")
}

func post(t *testing.T, url, op, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("X-Amz-Target", TargetPrefix+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %s: %v", op, raw, err)
	}
	return resp.StatusCode, resp.Header, out
}

// The awsJson1_0 wire: the members as the AWS CLI sends them, errors with __type and the
// awsQuery code in x-amzn-query-error.
func TestWire(t *testing.T) {
	url := startService(t)
	status, _, _ := post(t, url, "PutMetricAlarm", `{"AlarmName":"elb-5xx","Namespace":"AWS/ApplicationELB","MetricName":"HTTPCode_ELB_5XX_Count",
		"Statistic":"Sum","Period":60,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanOrEqualToThreshold",
		"Dimensions":[{"Name":"LoadBalancer","Value":"app/web/1"}],"TreatMissingData":"notBreaching"}`)
	if status != 200 {
		t.Fatalf("PutMetricAlarm: %d", status)
	}
	status, _, out := post(t, url, "DescribeAlarms", `{"AlarmNames":["elb-5xx"]}`)
	alarms, _ := out["MetricAlarms"].([]any)
	if status != 200 || len(alarms) != 1 {
		t.Fatalf("DescribeAlarms: %d %v", status, out)
	}
	a := alarms[0].(map[string]any)
	if a["AlarmArn"] != "arn:aws:cloudwatch:us-east-1:000000000000:alarm:elb-5xx" || a["StateValue"] != "OK" || a["ActionsEnabled"] != true {
		t.Fatalf("alarm %v", a)
	}
	if _, ok := a["StateUpdatedTimestamp"].(float64); !ok {
		t.Fatalf("StateUpdatedTimestamp %v: want epoch seconds", a["StateUpdatedTimestamp"])
	}
	status, h, out := post(t, url, "PutMetricAlarm", `{"AlarmName":"bad","Namespace":"AWS/ApplicationELB","MetricName":"RequestCount",
		"Statistic":"Sum","Period":45,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}`)
	if status != 400 || out["__type"] != "InvalidParameterValueException" || h.Get("x-amzn-query-error") != "InvalidParameterValue;Sender" ||
		!strings.Contains(out["message"].(string), "Period 45") {
		t.Fatalf("Period 45: %d %v %v", status, h, out)
	}
	status, h, _ = post(t, url, "DeleteAlarms", `{"AlarmNames":["nope"]}`)
	if status != 404 || h.Get("x-amzn-query-error") != "ResourceNotFound;Sender" {
		t.Fatalf("DeleteAlarms of a missing alarm: %d %v", status, h)
	}
	status, _, out = post(t, url, "PutDashboard", `{}`)
	if status != 400 || !strings.Contains(out["message"].(string), "does not implement the CloudWatch operation PutDashboard") {
		t.Fatalf("PutDashboard: %d %v", status, out)
	}
	if status, _, _ := post(t, url, "DeleteAlarms", `{"AlarmNames":["elb-5xx"]}`); status != 200 {
		t.Fatalf("DeleteAlarms: %d", status)
	}
	_, _, out = post(t, url, "DescribeAlarms", `{}`)
	if alarms, _ := out["MetricAlarms"].([]any); len(alarms) != 0 {
		t.Fatalf("after DeleteAlarms: %v", out)
	}
}
