# CDK: the GangwayService construct, its app, and the readiness hook Lambda (cdk/, its own
# Go module). Targets:
#   cdk-hook         build the hook (linux/$(CDK_HOOK_ARCH), provided.al2023) into cdk/build/
#   cdk-test         hook unit tests + template assertions, synth, cfn-lint (in `make test`)
#   synth            cdk synth into cdk/cdk.out (installs the pinned CLI when needed)
#   cdk-lint         cfn-lint on every template in cdk/cdk.out and cdk/build/templates
#   cdk-lint-ecs     each template's task definition, service and target groups rendered as
#                    AWS CLI input (cdk/cmd/ecs-input) and checked by bin/proxy lint
#   cdk-contracts    the contract suite's rows on that rendering: the Gangway container's
#                    environment and command run as proxy validate and proxy run (cmd/proxy
#                    TestContracts/cdk...), the readiness hook against that proxy through the
#                    test listener (cdk/hook TestContractHookAgainstProxy); needs root
#   cdk-deploy-moto  cdk bootstrap + deploy against a moto server on 127.0.0.1 (slow)

CDK_DIR        := cdk
CDK_HOOK_ARCH  ?= arm64
CDK_HOOK_DIR   := $(CDK_DIR)/build/readiness-hook
CDK_HOOK_SRCS  := $(wildcard $(CDK_DIR)/hook/*.go $(CDK_DIR)/cmd/readiness-hook/*.go) $(CDK_DIR)/go.mod $(CDK_DIR)/go.sum

# jsii and the CDK CLI print a banner on every run under Node 20 (past its end of life; the
# machines here have Node 20 and work with it). cdk/README.md recommends Node 22 or 24.
CDK_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

.PHONY: cdk-hook cdk-test cdk-go-test cdk-lint cdk-lint-ecs cdk-contracts synth cdk-deploy-moto

cdk-hook: $(CDK_HOOK_DIR)/bootstrap

# GOARCH must match the function's architecture (arm64 in the construct).
$(CDK_HOOK_DIR)/bootstrap: $(CDK_HOOK_SRCS)
	@mkdir -p $(CDK_HOOK_DIR)
	cd $(CDK_DIR) && GOOS=linux GOARCH=$(CDK_HOOK_ARCH) CGO_ENABLED=0 \
	  $(GO) build -trimpath -tags lambda.norpc -ldflags '-s -w' -o build/readiness-hook/bootstrap ./cmd/readiness-hook

# The construct's tests leave each stack variant they synthesize (strategies, internal load
# balancer, custom budget) in build/templates for cdk-lint.
cdk-go-test: cdk-hook
	rm -rf $(CDK_DIR)/build/templates
	cd $(CDK_DIR) && $(GO) vet ./... && $(CDK_ENV) GANGWAY_CDK_TEMPLATE_DIR=$(CURDIR)/$(CDK_DIR)/build/templates $(GO) test -race -count=1 ./...

synth: cdk-hook
	$(CDK_ENV) scripts/cdk-synth.sh

cdk-lint:
	scripts/cdk-lint.sh

# bin/proxy from this tree: the linter the construct must satisfy is the one beside it.
cdk-lint-ecs: build
	scripts/cdk-lint-ecs.sh

# The rows read what cdk-lint-ecs rendered (cdk/build/ecs-input), from a synth of this tree.
CDK_ECS_INPUT := $(CURDIR)/$(CDK_DIR)/build/ecs-input

cdk-contracts: synth cdk-lint-ecs
	GANGWAY_CDK_ECS_INPUT=$(CDK_ECS_INPUT) $(GO) test -race -count=1 -run '^TestContracts$$/^cdk' ./cmd/proxy
	cd $(CDK_DIR) && GANGWAY_CDK_ECS_INPUT=$(CDK_ECS_INPUT) $(GO) test -race -count=1 -run '^TestContractHookAgainstProxy$$' ./hook

cdk-test: cdk-go-test synth cdk-lint cdk-lint-ecs cdk-contracts

cdk-deploy-moto: cdk-hook
	$(CDK_ENV) scripts/cdk-deploy-moto.sh

TEST_SUITES += cdk-test
