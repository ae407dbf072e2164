package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ecslocaltest.RemoveReadinessHook()
	os.Exit(code)
}

// event is an ECS lifecycle-hook event in the nested form ECS sends.
func event(stage string, hookDetails map[string]any) []byte {
	ev := map[string]any{
		"executionId":    "f4fcae0f-0000-4000-8000-000000000001",
		"lifecycleStage": stage,
		"resourceArn":    "arn:aws:ecs:us-east-1:000000000000:service-deployment/app/web/EZe5RNVLH6PPzHXINuP28",
		"executionDetails": map[string]any{
			"serviceArn":               "arn:aws:ecs:us-east-1:000000000000:service/app/web",
			"targetServiceRevisionArn": "arn:aws:ecs:us-east-1:000000000000:service-revision/app/web/9313423515462893900",
			"testTrafficWeights":       map[string]any{},
			"productionTrafficWeights": map[string]any{},
		},
	}
	if hookDetails != nil {
		ev["hookDetails"] = hookDetails
	}
	raw, _ := json.Marshal(ev)
	return raw
}

type hookResponse struct {
	HookStatus    string         `json:"hookStatus"`
	CallBackDelay int            `json:"callBackDelay"`
	HookDetails   map[string]any `json:"hookDetails"`
	Reason        string         `json:"reason"`
}

func TestReadinessHookUnderRIE(t *testing.T) {
	rieBin := ecslocaltest.LambdaRIE(t)
	code := ecslocaltest.ReadinessHook(t)

	var ready atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gangway/ready" && ready.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer app.Close()

	s := New(Options{Region: "us-east-1", Account: "000000000000", RIE: rieBin, Dir: t.TempDir()})
	defer s.Close()
	arn, err := s.CreateFunction(Function{
		Name: "gangway-readiness", Code: code, Runtime: "provided.al2023", Handler: "bootstrap", Timeout: 30,
		Environment: map[string]string{
			"GANGWAY_READINESS_URL":  app.URL + "/gangway/ready",
			"GANGWAY_PROBES":         "2",
			"GANGWAY_PROBE_INTERVAL": "10ms",
			"GANGWAY_CALLBACK_DELAY": "7s",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:lambda:us-east-1:000000000000:function:gangway-readiness"; arn != want {
		t.Fatalf("ARN %s, want %s", arn, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	invoke := func(details map[string]any) hookResponse {
		t.Helper()
		out, err := s.InvokeHook(ctx, arn, event("POST_TEST_TRAFFIC_SHIFT", details))
		if err != nil {
			t.Fatalf("InvokeHook: %v", err)
		}
		var r hookResponse
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("hook response %s: %v", out, err)
		}
		return r
	}

	// Not ready: IN_PROGRESS with the configured callBackDelay and the hook's own state in
	// hookDetails, which the next invocation carries back.
	first := invoke(nil)
	if first.HookStatus != "IN_PROGRESS" || first.CallBackDelay != 7 || len(first.HookDetails) == 0 {
		t.Fatalf("first invocation, app not ready: %+v, want IN_PROGRESS, callBackDelay 7 and hookDetails", first)
	}
	second := invoke(first.HookDetails)
	if second.HookStatus != "IN_PROGRESS" || !strings.Contains(second.Reason, "attempt 2") {
		t.Fatalf("second invocation with the first's hookDetails: %+v, want IN_PROGRESS at attempt 2", second)
	}
	ready.Store(true)
	third := invoke(second.HookDetails)
	if third.HookStatus != "SUCCEEDED" || !strings.Contains(third.Reason, "attempt 3") {
		t.Fatalf("third invocation, app ready: %+v, want SUCCEEDED at attempt 3", third)
	}

	// The same through the Lambda API, as `aws lambda invoke` calls it, by name and by ARN.
	api := httptest.NewServer(s)
	defer api.Close()
	for _, ref := range []string{"gangway-readiness", arn} {
		resp, err := http.Post(api.URL+PathPrefix+"/"+ref+"/invocations", "application/json", bytes.NewReader(event("POST_TEST_TRAFFIC_SHIFT", nil)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r hookResponse
		_ = json.Unmarshal(body, &r)
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" || r.HookStatus != "SUCCEEDED" {
			t.Fatalf("Invoke %s: %s %v %s, want 200 and SUCCEEDED", ref, resp.Status, resp.Header, body)
		}
	}
	resp, err := http.Post(api.URL+PathPrefix+"/nope/invocations", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("X-Amzn-ErrorType") != "ResourceNotFoundException" {
		t.Fatalf("Invoke of a missing function: %s %v, want 404 ResourceNotFoundException", resp.Status, resp.Header)
	}

	// Close ends the emulator and the bootstrap with it.
	fn, _ := s.lookup("gangway-readiness")
	pid := fn.proc.cmd.Process.Pid
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d still there after Close (kill 0: %v)", pid, err)
	}
}

// A function that fails (here: the hook refuses its configuration) is a function error:
// Invoke answers 200 with X-Amz-Function-Error Unhandled and the error object, and
// InvokeHook an error naming the function and carrying its message.
func TestFunctionErrorIsUnhandled(t *testing.T) {
	rieBin := ecslocaltest.LambdaRIE(t)
	code := ecslocaltest.ReadinessHook(t)
	s := New(Options{Region: "us-east-1", Account: "000000000000", RIE: rieBin})
	defer s.Close()
	arn, err := s.CreateFunction(Function{Name: "broken", Code: code, Environment: map[string]string{"GANGWAY_PROBES": "many"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.InvokeHook(ctx, arn, event("POST_TEST_TRAFFIC_SHIFT", nil))
	if err == nil || !strings.Contains(err.Error(), arn) || !strings.Contains(err.Error(), "GANGWAY_PROBES") {
		t.Fatalf("InvokeHook of a failing function: %s, %v; want an error naming %s and the function's message", out, err, arn)
	}

	api := httptest.NewServer(s)
	defer api.Close()
	resp, err := http.Post(api.URL+PathPrefix+"/broken/invocations", "application/json", bytes.NewReader(event("POST_TEST_TRAFFIC_SHIFT", nil)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "Unhandled" || !bytes.Contains(body, []byte(`"errorMessage"`)) {
		t.Fatalf("Invoke of a failing function: %s %v %s; want 200, X-Amz-Function-Error Unhandled and the error object", resp.Status, resp.Header, body)
	}
}

// A function that outlives its timeout is a function error (Sandbox.Timedout, as Lambda
// reports it), and the next invocation gets a new environment that answers. The function is
// testdata/relay, which ignores its deadline: the readiness hook answers before its own.
func TestFunctionTimeout(t *testing.T) {
	rieBin := ecslocaltest.LambdaRIE(t)
	code := t.TempDir()
	if err := os.Rename(ecslocaltest.BuildGo(t, "testdata/relay"), filepath.Join(code, "bootstrap")); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var slow atomic.Bool
	slow.Store(true)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		io.WriteString(w, `{"hookStatus":"SUCCEEDED"}`)
	}))
	defer app.Close()
	defer close(release)
	s := New(Options{Region: "us-east-1", Account: "000000000000", RIE: rieBin})
	defer s.Close()
	arn, err := s.CreateFunction(Function{Name: "slow", Code: code, Timeout: 1, Environment: map[string]string{"RELAY_URL": app.URL}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	res, err := s.Invoke(ctx, arn, event("POST_TEST_TRAFFIC_SHIFT", nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "Unhandled" || !bytes.Contains(res.Payload, []byte("Sandbox.Timedout")) || !bytes.Contains(res.Payload, []byte("Task timed out after 1.00 seconds")) {
		t.Fatalf("an invocation past the 1 s timeout: %+v %s", res, res.Payload)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the timed-out invocation took %s, want about the 1 s timeout", d)
	}
	fn, _ := s.lookup("slow")
	if fn.proc != nil {
		t.Fatal("the timed-out environment is kept: Lambda does not reuse it")
	}
	slow.Store(false)
	out, err := s.InvokeHook(ctx, arn, event("POST_TEST_TRAFFIC_SHIFT", nil))
	if err != nil || !bytes.Contains(out, []byte(`"hookStatus":"SUCCEEDED"`)) {
		t.Fatalf("the invocation after a timeout: %s, %v; want SUCCEEDED from a new environment", out, err)
	}
}

// The readiness hook, given a probe timeout longer than the function's, cuts the probe short
// and answers IN_PROGRESS within the function's timeout (the deadline the emulator gives the
// runtime), rather than being timed out: ECS would roll back on that function error.
func TestReadinessHookAnswersWithinItsTimeout(t *testing.T) {
	rieBin := ecslocaltest.LambdaRIE(t)
	code := ecslocaltest.ReadinessHook(t)
	release := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer app.Close()
	defer close(release)
	s := New(Options{Region: "us-east-1", Account: "000000000000", RIE: rieBin})
	defer s.Close()
	arn, err := s.CreateFunction(Function{Name: "hook", Code: code, Timeout: 2, Environment: map[string]string{
		"GANGWAY_READINESS_URL": app.URL + "/ready", "GANGWAY_PROBES": "1", "GANGWAY_PROBE_TIMEOUT": "30s"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.InvokeHook(ctx, arn, event("POST_TEST_TRAFFIC_SHIFT", nil))
	if err != nil || !bytes.Contains(out, []byte(`"hookStatus":"IN_PROGRESS"`)) || !bytes.Contains(out, []byte("deadline exceeded")) {
		t.Fatalf("a probe that outlasts the function: %s, %v; want IN_PROGRESS with the probe cut short", out, err)
	}
}

// A function resolves the names of Options.Hosts: the readiness hook, given a URL that names
// a load balancer's DNS name (which no DNS server here knows), reaches the server on
// 127.0.0.1 behind it. The machine's /etc/hosts is left as it was.
func TestHostsResolveLoadBalancerNames(t *testing.T) {
	ecslocaltest.RequireRoot(t, "unshare", "mount")
	rieBin := ecslocaltest.LambdaRIE(t)
	code := ecslocaltest.ReadinessHook(t)
	before, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer app.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(app.URL, "http://"), ":")
	const name = "front-0123456789.us-east-1.elb.localhost"

	s := New(Options{Region: "us-east-1", Account: "000000000000", RIE: rieBin, Dir: t.TempDir(),
		Hosts: func() map[string]string { return map[string]string{name: "127.0.0.1"} }})
	defer s.Close()
	arn, err := s.CreateFunction(Function{
		Name: "gangway-readiness", Code: code, Runtime: "provided.al2023", Handler: "bootstrap", Timeout: 30,
		Environment: map[string]string{
			"GANGWAY_READINESS_URL":  "http://" + name + ":" + port + "/gangway/ready",
			"GANGWAY_PROBES":         "1",
			"GANGWAY_PROBE_INTERVAL": "10ms",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.InvokeHook(ctx, arn, event("POST_TEST_TRAFFIC_SHIFT", nil))
	if err != nil {
		t.Fatalf("InvokeHook: %v", err)
	}
	var r hookResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("hook response %s: %v", out, err)
	}
	if r.HookStatus != "SUCCEEDED" {
		t.Fatalf("the hook probing http://%s:%s: %+v, want SUCCEEDED", name, port, r)
	}
	if after, _ := os.ReadFile("/etc/hosts"); !bytes.Equal(before, after) {
		t.Fatalf("the machine's /etc/hosts changed:\n%s", after)
	}
}
