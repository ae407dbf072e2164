package cloudwatch

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	smithycbor "github.com/aws/smithy-go/encoding/cbor"
)

// aws-sdk-go-v2's CloudWatch client, which speaks RPC v2 CBOR, through the operations
// ecslocal serves: the members it sends and reads (timestamps under tag 1, doubles, the
// ActionsEnabled default), and errors with the awsQuery codes it reports.
func TestCBORWithTheSDKClient(t *testing.T) {
	start := time.Now()
	client := sdkClient(startService(t))
	ctx := context.Background()

	_, err := client.PutMetricAlarm(ctx, &cw.PutMetricAlarmInput{
		AlarmName: aws.String("green-5xx"), Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_Target_5XX_Count"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2), DatapointsToAlarm: aws.Int32(1),
		Threshold: aws.Float64(1.5), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold,
		TreatMissingData: aws.String("notBreaching"),
		Dimensions:       []cwtypes.Dimension{{Name: aws.String("TargetGroup"), Value: aws.String("targetgroup/green/1")}},
	})
	if err != nil {
		t.Fatalf("PutMetricAlarm: %v", err)
	}
	out, err := client.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{AlarmNames: []string{"green-5xx"}})
	if err != nil {
		t.Fatalf("DescribeAlarms: %v", err)
	}
	if len(out.MetricAlarms) != 1 {
		t.Fatalf("DescribeAlarms: %d alarms, want 1", len(out.MetricAlarms))
	}
	a := out.MetricAlarms[0]
	if aws.ToString(a.AlarmArn) != "arn:aws:cloudwatch:us-east-1:000000000000:alarm:green-5xx" || aws.ToFloat64(a.Threshold) != 1.5 ||
		aws.ToInt32(a.Period) != 60 || aws.ToInt32(a.EvaluationPeriods) != 2 || aws.ToInt32(a.DatapointsToAlarm) != 1 ||
		!aws.ToBool(a.ActionsEnabled) || a.StateValue != cwtypes.StateValueOk || // no data, treated as not breaching
		len(a.Dimensions) != 1 || aws.ToString(a.Dimensions[0].Value) != "targetgroup/green/1" {
		t.Fatalf("alarm %+v", a)
	}
	for name, ts := range map[string]*time.Time{"StateUpdatedTimestamp": a.StateUpdatedTimestamp, "AlarmConfigurationUpdatedTimestamp": a.AlarmConfigurationUpdatedTimestamp} {
		if ts == nil || ts.Before(start.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
			t.Fatalf("%s %v: want the time of PutMetricAlarm", name, ts)
		}
	}

	if _, err := client.SetAlarmState(ctx, &cw.SetAlarmStateInput{AlarmName: aws.String("green-5xx"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("testing")}); err != nil {
		t.Fatalf("SetAlarmState: %v", err)
	}
	out, err = client.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{StateValue: cwtypes.StateValueAlarm})
	if err != nil || len(out.MetricAlarms) != 1 || aws.ToString(out.MetricAlarms[0].StateReason) != "testing" {
		t.Fatalf("DescribeAlarms in ALARM: %v %+v", err, out)
	}
	hist, err := client.DescribeAlarmHistory(ctx, &cw.DescribeAlarmHistoryInput{AlarmName: aws.String("green-5xx"),
		StartDate: aws.Time(start.Add(-time.Minute)), EndDate: aws.Time(time.Now().Add(time.Minute))})
	if err != nil || len(hist.AlarmHistoryItems) == 0 || hist.AlarmHistoryItems[0].Timestamp == nil || hist.AlarmHistoryItems[0].Timestamp.IsZero() {
		t.Fatalf("DescribeAlarmHistory: %v %+v", err, hist)
	}
	stats, err := client.GetMetricStatistics(ctx, &cw.GetMetricStatisticsInput{
		Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("RequestCount"), Period: aws.Int32(60),
		StartTime: aws.Time(start.Add(-5 * time.Minute)), EndTime: aws.Time(start), Statistics: []cwtypes.Statistic{cwtypes.StatisticSum},
	})
	if err != nil || stats.Datapoints == nil && aws.ToString(stats.Label) != "RequestCount" {
		t.Fatalf("GetMetricStatistics: %v %+v", err, stats)
	}

	for _, c := range []struct {
		name, code, message string
		call                func() error
	}{
		{"a period CloudWatch refuses", "InvalidParameterValue", "Period 45", func() error {
			_, err := client.PutMetricAlarm(ctx, &cw.PutMetricAlarmInput{AlarmName: aws.String("bad"), Namespace: aws.String("AWS/ApplicationELB"),
				MetricName: aws.String("RequestCount"), Statistic: cwtypes.StatisticSum, Period: aws.Int32(45), EvaluationPeriods: aws.Int32(1),
				Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold})
			return err
		}},
		{"a missing alarm", "ResourceNotFound", "", func() error {
			_, err := client.DeleteAlarms(ctx, &cw.DeleteAlarmsInput{AlarmNames: []string{"nope"}})
			return err
		}},
		{"an operation ecslocal lacks", "InvalidAction", "does not implement the CloudWatch operation PutDashboard", func() error {
			_, err := client.PutDashboard(ctx, &cw.PutDashboardInput{DashboardName: aws.String("d"), DashboardBody: aws.String("{}")})
			return err
		}},
	} {
		var ae smithy.APIError
		if err := c.call(); !errors.As(err, &ae) || ae.ErrorCode() != c.code || !strings.Contains(ae.ErrorMessage(), c.message) {
			t.Errorf("%s: %v, want the API error %s saying %q", c.name, err, c.code, c.message)
		}
	}

	if _, err := client.DeleteAlarms(ctx, &cw.DeleteAlarmsInput{AlarmNames: []string{"green-5xx"}}); err != nil {
		t.Fatalf("DeleteAlarms: %v", err)
	}
	if out, err := client.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{}); err != nil || len(out.MetricAlarms) != 0 {
		t.Fatalf("after DeleteAlarms: %v %+v", err, out)
	}
}

// Requests the protocol refuses: without its Smithy-Protocol header, with a body that is
// not a CBOR map, with a tag other than a timestamp's.
func TestCBORRefused(t *testing.T) {
	url := startService(t)
	for _, c := range []struct {
		name, protocol string
		body           smithycbor.Value
		want           string
	}{
		{"no Smithy-Protocol", "", smithycbor.Map{}, "Smithy-Protocol header"},
		{"a list", "rpc-v2-cbor", smithycbor.List{smithycbor.String("x")}, "not a map"},
		{"a date-time tag", "rpc-v2-cbor", smithycbor.Map{"AlarmNames": &smithycbor.Tag{ID: 0, Value: smithycbor.String("2026-12-06T00:00:00Z")}}, "tag 0"},
		{"a timestamp of text", "rpc-v2-cbor", smithycbor.Map{"StartDate": &smithycbor.Tag{ID: 1, Value: smithycbor.String("now")}}, "not a number"},
	} {
		req, _ := http.NewRequest(http.MethodPost, url+CBORPathPrefix+"DescribeAlarms", bytes.NewReader(smithycbor.Encode(c.body)))
		if c.protocol != "" {
			req.Header.Set("Smithy-Protocol", c.protocol)
		}
		req.Header.Set("Content-Type", "application/cbor")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		v, err := smithycbor.Decode(buf.Bytes())
		m, _ := v.(smithycbor.Map)
		msg, _ := m["message"].(smithycbor.String)
		if err != nil || resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" || !strings.Contains(string(msg), c.want) {
			t.Errorf("%s: %d %v %q (%v), want 400 saying %q", c.name, resp.StatusCode, resp.Header, msg, err, c.want)
		}
	}
}

// Integers at the ends of int64's range cross the protocol both ways; beyond them an input is
// refused, not wrapped around.
func TestCBORIntegers(t *testing.T) {
	for _, i := range []int64{0, 1, -1, 255, -256, math.MaxInt64, math.MinInt64} {
		v, err := toCBOR(reflect.ValueOf(i))
		if err != nil {
			t.Fatal(err)
		}
		g, err := fromCBOR(v, 0)
		got := reflect.ValueOf(g)
		if err != nil || !got.CanInt() && !got.CanUint() {
			t.Fatalf("%d: %v %v", i, g, err)
		}
		if got.CanInt() && got.Int() != i || got.CanUint() && (i < 0 || got.Uint() != uint64(i)) {
			t.Errorf("%d crossed as %v", i, g)
		}
	}
	for _, n := range []smithycbor.NegInt{0, 1<<63 + 1} { // -2^64 and -(2^63+1)
		if g, err := fromCBOR(n, 0); err == nil {
			t.Errorf("NegInt(%d) read as %v, want an error", uint64(n), g)
		}
	}
}

// A metric-math alarm's queries keep their MetricStat, which ecslocal holds as the JSON it
// was given: it goes back to the SDK as a CBOR map, not as the JSON's bytes.
func TestCBORMetricMathAlarm(t *testing.T) {
	client := sdkClient(startService(t))
	ctx := context.Background()
	_, err := client.PutMetricAlarm(ctx, &cw.PutMetricAlarmInput{
		AlarmName: aws.String("error-rate"), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(0.05),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
		Metrics: []cwtypes.MetricDataQuery{
			{Id: aws.String("e"), Expression: aws.String("m / 100"), ReturnData: aws.Bool(true)},
			{Id: aws.String("m"), ReturnData: aws.Bool(false), MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_Target_5XX_Count"),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("TargetGroup"), Value: aws.String("targetgroup/green/1")}}},
				Period: aws.Int32(60), Stat: aws.String("Sum"),
			}},
		},
	})
	if err != nil {
		t.Fatalf("PutMetricAlarm: %v", err)
	}
	out, err := client.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{AlarmNames: []string{"error-rate"}})
	if err != nil || len(out.MetricAlarms) != 1 || len(out.MetricAlarms[0].Metrics) != 2 {
		t.Fatalf("DescribeAlarms: %v %+v", err, out)
	}
	ms := out.MetricAlarms[0].Metrics[1].MetricStat
	if ms == nil || ms.Metric == nil || aws.ToString(ms.Metric.MetricName) != "HTTPCode_Target_5XX_Count" || aws.ToInt32(ms.Period) != 60 ||
		aws.ToString(ms.Stat) != "Sum" || len(ms.Metric.Dimensions) != 1 {
		t.Fatalf("MetricStat %+v", ms)
	}
}

// startService serves a new CloudWatch service over HTTP until the test ends and returns
// its URL.
func startService(t *testing.T) string {
	srv := httptest.NewServer(New(Options{Region: "us-east-1", Account: "000000000000"}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// sdkClient is aws-sdk-go-v2's CloudWatch client for the service at url.
func sdkClient(url string) *cw.Client {
	return cw.New(cw.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}
