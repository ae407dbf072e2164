package lambda

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/logs"
)

// A function's output, the emulator's START, END and REPORT lines included, goes to
// /aws/lambda/NAME (or its LoggingConfig.LogGroup), in a stream named after the day and the
// execution environment; GetFunctionConfiguration says where.
func TestLogsGoToCloudWatchLogs(t *testing.T) {
	rieBin := ecslocaltest.LambdaRIE(t)
	code := ecslocaltest.ReadinessHook(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer app.Close()
	streams := logs.New(logs.Options{})
	s := New(Options{Region: "us-east-1", Account: "000000000000", RIE: rieBin, Logs: streams})
	defer s.Close()
	env := map[string]string{"GANGWAY_READINESS_URL": app.URL + "/ready", "GANGWAY_PROBES": "1"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, c := range []struct {
		fn            Function
		group, stream string
	}{
		{Function{Name: "hook", Code: code, Environment: env}, "/aws/lambda/hook", `^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$`},
		{Function{Name: "shared", Code: code, Environment: env, LogGroup: "/gangway/hooks"}, "/gangway/hooks", `^\d{4}/\d{2}/\d{2}/shared\[\$LATEST\][0-9a-f]{32}$`},
	} {
		arn, err := s.CreateFunction(c.fn)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := s.InvokeHook(ctx, arn, event("POST_TEST_TRAFFIC_SHIFT", nil)); err != nil {
			t.Fatalf("%s: %s %v", c.fn.Name, out, err)
		}
		// The output is copied from the emulator's pipe while the answer goes back: wait
		// (bounded) for the invocation's REPORT line.
		var got []string
		var stream string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			out := ecslocaltest.Must(streams.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String(c.group)})).Get(t)
			got = got[:0]
			for _, e := range out.Events {
				got = append(got, aws.ToString(e.Message))
				stream = aws.ToString(e.LogStreamName)
			}
			if strings.Contains(strings.Join(got, "\n"), "REPORT RequestId:") {
				break
			}
		}
		all := strings.Join(got, "\n")
		for _, want := range []string{"START RequestId:", "END RequestId:", "REPORT RequestId:", `"hookStatus":"SUCCEEDED"`} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: the events of %s have no %q:\n%s", c.fn.Name, c.group, want, all)
			}
		}
		if !regexp.MustCompile(c.stream).MatchString(stream) {
			t.Errorf("%s: stream %q, want one matching %s", c.fn.Name, stream, c.stream)
		}
	}

	api := httptest.NewServer(s)
	defer api.Close()
	resp, err := http.Get(api.URL + PathPrefix + "/shared/configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var conf struct {
		FunctionName  string
		LoggingConfig struct{ LogFormat, LogGroup string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&conf); err != nil || resp.StatusCode != 200 ||
		conf.FunctionName != "shared" || conf.LoggingConfig.LogFormat != "Text" || conf.LoggingConfig.LogGroup != "/gangway/hooks" {
		t.Errorf("GetFunctionConfiguration: %s %+v %v", resp.Status, conf, err)
	}
}
