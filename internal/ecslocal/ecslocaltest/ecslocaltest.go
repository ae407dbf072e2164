// Package ecslocaltest serves ecslocal's APIs on 127.0.0.1 for tests and hands out the
// unmodified aws-sdk-go-v2 clients that talk to them.
package ecslocaltest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/aws/smithy-go"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/gangway-ecs/gangway/internal/ecslocal/server"
)

// Endpoint is a running server and clients for it.
type Endpoint struct {
	URL string
	ECS *ecs.Client
	ELB *elb.Client
}

// Start serves ecsAPI and elbAPI until the test ends. The clients retry as the SDK does
// (a client error is never retried, so it reaches the test as the server sent it).
func Start(t testing.TB, ecsAPI, elbAPI any) *Endpoint {
	t.Helper()
	srv := httptest.NewServer(server.New(ecsAPI, elbAPI, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      aws.CredentialsProviderFunc(dummyCredentials),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 3,
	}
	return &Endpoint{URL: srv.URL, ECS: ecs.NewFromConfig(cfg), ELB: elb.NewFromConfig(cfg)}
}

// dummyCredentials are what a user of ecslocal passes: any key is accepted, and the requests
// are signed as the SDK signs them for AWS.
func dummyCredentials(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDECSLOCAL", SecretAccessKey: "secret", Source: "ecslocaltest"}, nil
}

// Result holds a call's two results until Get checks the error:
// ecslocaltest.Must(c.CreateCluster(ctx, in)).Get(t).
type Result[T any] struct {
	v   T
	err error
}

// Must wraps the results of an SDK call.
func Must[T any](v T, err error) Result[T] { return Result[T]{v, err} }

// Get returns the value, or ends the test with the error.
func (r Result[T]) Get(t testing.TB) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

// WantCode ends the test unless err is an API error with code.
func WantCode(t testing.TB, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago, for a listener the
// test has something else open (a load balancer's, ecslocal's own).
func FreePort(t testing.TB) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// StackPorts are the ports the CDK stack's listeners take on its load balancer's address:
// HTTP on 80 (the redirect), the production listener on 443 (HTTPS in the template, HTTP on
// ecslocal: no certificates) and the test listener on 9443.
var StackPorts = []int{80, 443, 9443}

// FreeLoopbackIP returns a random 127.0.0.X, X in first..last, on which every one of ports
// was free a moment ago: for ecslocal -lb-addr, so that a stack's listeners meet no other
// run's, or anything else, holding those ports on 127.0.0.1.
func FreeLoopbackIP(t testing.TB, first, last int, ports []int) string {
	t.Helper()
	var b [1]byte
	for range 100 {
		_, _ = rand.Read(b[:])
		ip := fmt.Sprintf("127.0.0.%d", first+int(b[0])%(last-first+1))
		if portsFree(ip, ports) {
			return ip
		}
	}
	t.Fatalf("no IP of 127.0.0.%d-%d has ports %v free", first, last, ports)
	return ""
}

func portsFree(ip string, ports []int) bool {
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}
