// Package ecstest serves recorded ECS API responses on 127.0.0.1 for tests that drive real
// aws-sdk-go-v2 clients. It stands in for the parts of ECS no emulator implements (the
// Service Deployments API and its failure modes); everything else is tested against moto
// server.
//
// The server answers by the X-Amz-Target header (by the form's Action for Elastic Load
// Balancing's Query protocol). A scripted operation replays its responses
// in order, then repeats the last one; the test fails at cleanup if a scripted operation was
// never called, so a script cannot silently stop mattering.
package ecstest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
)

const targetPrefix = "AmazonEC2ContainerServiceV20141113."

// Response is one recorded answer.
type Response struct {
	Status int
	Body   string
	// ContentType defaults to the ECS API's, application/x-amz-json-1.1.
	ContentType string
}

// Raw is a response that did not come from ECS: a proxy's error page, say.
func Raw(status int, contentType, body string) Response {
	return Response{Status: status, Body: body, ContentType: contentType}
}

// File is a 200 response whose JSON body is the file at path (a recorded response in
// testdata). It fails the test when the file cannot be read.
func File(t testing.TB, path string) Response {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ecstest: %v", err)
	}
	return OK(string(data))
}

// OK is a 200 response with a JSON body.
func OK(body string) Response { return Response{Status: http.StatusOK, Body: body} }

// Error is an AWS JSON error response, e.g. Error(400, "ThrottlingException", "Rate exceeded").
func Error(status int, code, message string) Response {
	return Response{Status: status, Body: fmt.Sprintf(`{"__type": %q, "message": %q}`, code, message)}
}

// Throttled is the response ECS sends when a caller exceeds its rate.
var Throttled = Error(http.StatusBadRequest, "ThrottlingException", "Rate exceeded")

// Request is one call the server received.
type Request struct {
	Op   string
	Body string
}

// Server is a recorded ECS endpoint.
type Server struct {
	URL string

	mu       sync.Mutex
	scripts  []*script
	defaults map[string]Response
	requests []Request
}

// script is the recorded answers to the calls of op whose body contains match.
type script struct {
	op, match string
	responses []Response
	calls     int
}

// NewServer starts a server on 127.0.0.1 that stops when the test ends.
func NewServer(t testing.TB) *Server {
	s := &Server{defaults: map[string]Response{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// A new connection for every call. On a reused one, a call's response could now and
	// then not be read ("use of closed network connection", 3 in 1,200 runs of
	// TestRolloutInit on a loaded machine, none in 3,600 without reuse): the SDK retries
	// that error, but Env turns its retries off so that scripts see every attempt.
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Start()
	s.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, sc := range s.scripts {
			if sc.calls == 0 {
				t.Errorf("ecstest: scripted operation %s (body containing %q) was never called", sc.op, sc.match)
			}
		}
	})
	return s
}

// On scripts op (e.g. "DescribeServiceDeployments"): the responses are replayed in order,
// and the last one repeats.
func (s *Server) On(op string, responses ...Response) { s.OnBody(op, "", responses...) }

// OnBody scripts the calls of op whose request body contains match (ListTasks with
// "STOPPED", say). Scripts with a match are tried before scripts without.
func (s *Server) OnBody(op, match string, responses ...Response) {
	if len(responses) == 0 {
		panic("ecstest: OnBody without responses")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := &script{op: op, match: match, responses: responses}
	if match != "" {
		s.scripts = append([]*script{sc}, s.scripts...)
	} else {
		s.scripts = append(s.scripts, sc)
	}
}

// Default answers op with r whenever it is called, without requiring that it is.
func (s *Server) Default(op string, r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defaults[op] = r
}

// Requests returns the bodies of the calls to op, in order.
func (s *Server) Requests(op string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		if r.Op == op {
			out = append(out, r.Body)
		}
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	body, _ := io.ReadAll(r.Body)
	if q, err := url.ParseQuery(string(body)); !ok && err == nil && q.Get("Action") != "" {
		// A Query-protocol API (Elastic Load Balancing) names the operation in the form body;
		// AWS_ENDPOINT_URL sends its calls here too. Record such answers with Raw (text/xml).
		op, ok = q.Get("Action"), true
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Op: op, Body: string(body)})
	resp, scripted := Response{}, false
	for _, sc := range s.scripts {
		if ok && sc.op == op && strings.Contains(string(body), sc.match) {
			resp, scripted = sc.responses[min(sc.calls, len(sc.responses)-1)], true
			sc.calls++
			break
		}
	}
	if d, found := s.defaults[op]; found && !scripted {
		resp, scripted = d, true
	}
	s.mu.Unlock()
	if !scripted {
		resp = Error(http.StatusBadRequest, "UnknownOperationException", "ecstest: no response recorded for "+op)
	}
	ct := resp.ContentType
	if ct == "" {
		ct = "application/x-amz-json-1.1"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(resp.Status)
	_, _ = io.WriteString(w, resp.Body)
}

// Client returns an ECS client for the server that does not retry on its own (each retry
// would replay the next recorded response; the code under test does its own backoff).
func (s *Server) Client() *ecssdk.Client { return ecssdk.New(s.options()) }

// InProcessClient is Client with each call answered in the calling goroutine, without a
// connection: for a test in a testing/synctest bubble, whose fake clock stands still while
// a goroutine waits on a real socket. The Server itself is started outside the bubble.
func (s *Server) InProcessClient() *ecssdk.Client {
	o := s.options()
	o.HTTPClient = handlerClient{http.HandlerFunc(s.serve)}
	return ecssdk.New(o)
}

func (s *Server) options() ecssdk.Options {
	return ecssdk.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(s.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	}
}

// handlerClient answers requests with a handler, as the SDK's HTTP client would with a
// server's answer.
type handlerClient struct{ h http.Handler }

func (c handlerClient) Do(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// Env returns the environment variables that point the AWS SDK's default configuration at
// the server, without retries.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":      s.URL,
		"AWS_ACCESS_KEY_ID":     "test",
		"AWS_SECRET_ACCESS_KEY": "test",
		"AWS_REGION":            "us-east-1",
		"AWS_MAX_ATTEMPTS":      "1",
	}
}

// SetEnv points the AWS SDK's default configuration at s for the rest of t: the variables
// of Env, region as AWS_REGION ("" for none), and no shared configuration or credentials
// file.
func (s *Server) SetEnv(t testing.TB, region string) {
	t.Helper()
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
}

// TaskMetadata serves the recorded task metadata document v4 (task
// arn:aws:ecs:us-west-2:111122223333:task/default/..., cluster
// arn:aws:ecs:us-west-2:111122223333:cluster/default) on 127.0.0.1 until t ends, and returns
// the URL to set as ECS_CONTAINER_METADATA_URI_V4.
func TaskMetadata(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "testdata", "metadata-v4-task.json"))
	if err != nil {
		t.Fatal(err)
	}
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/task" {
			http.NotFound(w, r)
			return
		}
		w.Write(doc)
	}))
	t.Cleanup(md.Close)
	return md.URL
}

// RunningTask is a DescribeTasks task of the orders service in the metadata's cluster:
// running, healthy, with ip as its private address.
func RunningTask(id, ip string) string {
	return fmt.Sprintf(`{"taskArn": "arn:aws:ecs:us-west-2:111122223333:task/default/%s",
		"taskDefinitionArn": "arn:aws:ecs:us-west-2:111122223333:task-definition/orders:3",
		"lastStatus": "RUNNING", "desiredStatus": "RUNNING", "healthStatus": "HEALTHY",
		"attachments": [{"type": "ElasticNetworkInterface", "details": [{"name": "privateIPv4Address", "value": %q}]}]}`, id, ip)
}
