// Command readiness-hook is the Lambda function behind GangwayService's lifecycle hook: ECS
// invokes it at POST_SCALE_UP (healthy new tasks against the desired count) and at
// POST_TEST_TRAFFIC_SHIFT (readiness and smoke checks through the test listener), and it
// answers SUCCEEDED, IN_PROGRESS or FAILED (see package hook).
//
// Built for the provided.al2023 runtime by `make cdk-hook`:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./cmd/readiness-hook
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/gangway-ecs/gangway/cdk/hook"
)

func main() {
	cfg, err := hook.FromEnv(os.Getenv)
	if err != nil {
		// Every invocation then fails, and ECS rolls the deployment back: a misconfigured hook
		// must not let an unverified revision through.
		fmt.Fprintf(os.Stderr, "readiness-hook: configuration: %v\n", err)
		lambda.Start(func(context.Context, json.RawMessage) (hook.Response, error) {
			return hook.Response{}, fmt.Errorf("readiness-hook: configuration: %w", err)
		})
		return
	}
	h := &hook.Hook{Config: cfg}
	if cfg.ProductionRule != "" {
		// The Lambda runtime's role credentials and region, from its environment.
		aws, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			fmt.Fprintf(os.Stderr, "readiness-hook: AWS configuration: %v\n", err)
			os.Exit(1)
		}
		h.Fleet = hook.AWSFleet{ELB: elbv2.NewFromConfig(aws), ECS: ecs.NewFromConfig(aws), ProductionRule: cfg.ProductionRule}
	}
	lambda.Start(func(ctx context.Context, ev hook.Event) (hook.Response, error) {
		resp, err := h.Handle(ctx, ev)
		if err != nil {
			fmt.Fprintf(os.Stderr, "readiness-hook: %v\n", err)
			return resp, err
		}
		// One line per invocation in the function's log: the reason a deployment stopped.
		line, _ := json.Marshal(struct {
			Stage  string `json:"stage"`
			Status string `json:"hookStatus"`
			Reason string `json:"reason"`
		}{ev.LifecycleStage, resp.HookStatus, resp.Reason})
		fmt.Println(string(line))
		return resp, nil
	})
}
