// Package ecs is Gangway's view of Amazon ECS: task definitions and their linter, the task
// metadata endpoint (v4), service discovery from ListTasks/DescribeTasks, and a rollout
// watcher that follows a deployment through the Service Deployments API and reports how it
// really ended — a rolled-back deployment is not a success.
//
// Every call to AWS goes through aws-sdk-go-v2 with a per-call deadline (CallTimeout).
// Tests drive real SDK clients against servers on 127.0.0.1: moto server for what it
// implements, and recorded responses (httptest, answering by X-Amz-Target) for the Service
// Deployments API, which moto does not implement.
package ecs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// CallTimeout bounds one ECS API call, the SDK's own retries included.
const CallTimeout = 30 * time.Second

// NewClient returns an ECS client configured the way the AWS CLI is: credentials, region and
// endpoint from the environment and shared config (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL,
// ...). region, when not empty, overrides the configured region.
//
// Two kinds of failure that the SDK would retry, and the watcher with it, end every call at
// once instead, because no retry can fix them: credentials that cannot be loaded
// (*CredentialsError), and an endpoint that answers 5xx with something other than an AWS
// JSON error, such as a proxy's HTML page or a server that does not implement the
// operation (*EndpointError).
func NewClient(ctx context.Context, region string) (*ecssdk.Client, error) {
	cfg, err := awsConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	return ecssdk.NewFromConfig(cfg, func(o *ecssdk.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Deserialize.Add(endpointCheck{}, middleware.After)
		})
	}), nil
}

// NewELBClient returns an Elastic Load Balancing client configured as NewClient configures
// ECS's (its errors are XML, so the JSON endpoint check does not apply).
func NewELBClient(ctx context.Context, region string) (*elbv2.Client, error) {
	cfg, err := awsConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	return elbv2.NewFromConfig(cfg), nil
}

func awsConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("aws config: no region: set AWS_REGION (or -region)")
	}
	if cfg.Credentials == nil {
		return aws.Config{}, &CredentialsError{Missing: true}
	}
	cfg.Credentials = credentialsCheck{cfg.Credentials,
		aws.IsCredentialsProvider(cfg.Credentials, (*ec2rolecreds.Provider)(nil))}
	return cfg, nil
}

// CredentialsError says that AWS credentials could not be loaded, or that AWS rejected them
// as expired or invalid. Retrying cannot help; its message says what to do, in the AWS
// CLI's words.
type CredentialsError struct {
	// Missing is set when no credential source is configured at all: the only provider
	// left was the EC2 instance metadata service, and it had no role to offer.
	Missing bool
	// Op and Code name the call AWS refused and its error code (ExpiredTokenException,
	// UnrecognizedClientException, ...); Message is AWS's text.
	Op, Code, Message string
	Err               error
}

func (e *CredentialsError) Error() string {
	switch {
	case e.Missing:
		return `Unable to locate credentials. You can configure credentials by running "aws configure".`
	case e.Code != "":
		return fmt.Sprintf("An error occurred (%s) when calling the %s operation: %s", e.Code, e.Op, e.Message)
	}
	return "Unable to load credentials: " + e.Err.Error()
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// RetryableError tells the SDK's retryer not to try again.
func (e *CredentialsError) RetryableError() bool { return false }

// credentialCodes are the errors with which AWS rejects a request's credentials.
// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/CommonErrors.html
var credentialCodes = map[string]bool{
	"ExpiredToken":                true,
	"ExpiredTokenException":       true,
	"UnrecognizedClientException": true,
	"InvalidClientTokenId":        true,
	"InvalidSignatureException":   true,
	"IncompleteSignature":         true,
	"MissingAuthenticationToken":  true,
}

// credentialsCheck turns a failure to load credentials into a *CredentialsError, except a
// network error of a configured source (the container credentials endpoint of a task, an
// STS call), which a later attempt may get past.
type credentialsCheck struct {
	aws.CredentialsProvider
	// imdsOnly: the provider is the EC2 role provider, the SDK's last resort when nothing is
	// configured. Off EC2 its endpoint cannot be reached, and that network error means
	// "no credentials", as it does for the AWS CLI.
	imdsOnly bool
}

func (c credentialsCheck) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.CredentialsProvider.Retrieve(ctx)
	var ne net.Error
	switch {
	case err == nil:
		return creds, nil
	case !c.imdsOnly && (errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)):
		return creds, err
	}
	return creds, &CredentialsError{Missing: c.imdsOnly, Err: err}
}

// EndpointError is a 5xx answer that is not an AWS API error: the endpoint does not speak
// the ECS API (an emulator without the operation, a proxy's or load balancer's error page).
type EndpointError struct {
	URL       string
	Status    int
	FirstLine string // the body's first non-empty line, at most 200 bytes
}

func (e *EndpointError) Error() string {
	return fmt.Sprintf("%s answered HTTP %d with a body that is not an AWS error (wrong endpoint, or one that does not implement the operation): %q",
		e.URL, e.Status, e.FirstLine)
}

// RetryableError tells the SDK's retryer not to try again.
func (e *EndpointError) RetryableError() bool { return false }

// endpointCheck reads a 5xx response before the SDK does: an AWS JSON error is passed on
// untouched, anything else becomes an *EndpointError.
type endpointCheck struct{}

func (endpointCheck) ID() string { return "gangway.EndpointCheck" }

func (endpointCheck) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if err != nil || !ok || resp.StatusCode < 500 || resp.Body == nil {
		return out, md, err
	}
	head := make([]byte, 4096)
	n, _ := io.ReadFull(resp.Body, head)
	head = head[:n]
	if trimmed := bytes.TrimSpace(head); len(trimmed) > 0 && trimmed[0] == '{' {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		return out, md, nil
	}
	// The SDK reads what is left and closes the body; there is nothing left it needs.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{bytes.NewReader(nil), resp.Body}
	ee := &EndpointError{URL: "the endpoint", Status: resp.StatusCode, FirstLine: firstLine(head)}
	if req, ok := in.Request.(*smithyhttp.Request); ok && req.URL != nil {
		ee.URL = req.URL.Scheme + "://" + req.URL.Host
	}
	return out, md, ee
}

// firstLine is the first line of body with text in it, HTML tags removed (so that an error
// page says "502 Bad Gateway", not "<html>"), trimmed to 200 bytes.
func firstLine(body []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if l := strings.TrimSpace(htmlTag.ReplaceAllString(sc.Text(), " ")); l != "" {
			l = strings.Join(strings.Fields(l), " ")
			if len(l) > 200 {
				l = l[:200] + "..."
			}
			return l
		}
	}
	return "(empty body)"
}

var htmlTag = regexp.MustCompile(`<[^>]*>`)

// Explain returns err in the form a person should read: the AWS CLI's message for
// credential problems, the endpoint and its answer for a non-AWS 5xx, err itself otherwise.
func Explain(err error) error {
	if ce := credentialsProblem(err); ce != nil {
		return ce
	}
	var ee *EndpointError
	var oe *smithy.OperationError
	if errors.As(err, &ee) && errors.As(err, &oe) {
		return fmt.Errorf("%s: %w", oe.OperationName, ee)
	}
	return err
}

// credentialsProblem finds the credential problem behind err, if there is one.
func credentialsProblem(err error) *CredentialsError {
	var ce *CredentialsError
	if errors.As(err, &ce) {
		return ce
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && credentialCodes[ae.ErrorCode()] {
		ce = &CredentialsError{Code: ae.ErrorCode(), Message: ae.ErrorMessage(), Err: err}
		var oe *smithy.OperationError
		if errors.As(err, &oe) {
			ce.Op = oe.OperationName
		}
		return ce
	}
	return nil
}

// withTimeout runs one API call under CallTimeout.
func withTimeout[T any](ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	return call(ctx)
}

// throttleCodes are the error codes AWS uses for "slow down".
var throttleCodes = map[string]bool{
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"TooManyRequestsException":               true,
	"RequestLimitExceeded":                   true,
	"ProvisionedThroughputExceededException": true,
}

// Throttled reports whether err is AWS asking the caller to slow down.
func Throttled(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && throttleCodes[ae.ErrorCode()]
}

// Transient reports whether a later attempt of the same call may succeed: throttling, server
// errors, timeouts and network errors. Anything else (access denied, service not found,
// invalid parameters) will fail the same way again.
func Transient(err error) bool {
	var ee *EndpointError
	if err == nil || credentialsProblem(err) != nil || errors.As(err, &ee) {
		return false
	}
	if Throttled(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ServerException", "ServiceUnavailable", "InternalFailure", "InternalServerError":
			return true
		}
		return ae.ErrorFault() == smithy.FaultServer
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}
