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
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
)

// CallTimeout bounds one ECS API call, the SDK's own retries included.
const CallTimeout = 30 * time.Second

// NewClient returns an ECS client configured the way the AWS CLI is: credentials, region and
// endpoint from the environment and shared config (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL,
// ...). region, when not empty, overrides the configured region.
func NewClient(ctx context.Context, region string) (*ecssdk.Client, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("aws config: no region: set AWS_REGION (or -region)")
	}
	return ecssdk.NewFromConfig(cfg), nil
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
	if err == nil {
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
